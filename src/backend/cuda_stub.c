/* The CUDA entry points of a build without the CUDA back end (-DDPT_CUDA=OFF or no nvcc). */
#include "dpt/backend/cuda.h"
#include "dpt/core/error.h"

bool cuda_built(void) { return false; }

int cuda_device_count(char *why, size_t size) {
    if (why) snprintf(why, size, "this dptrain was built without the CUDA back end (-DDPT_CUDA=OFF or no nvcc)");
    return 0;
}

void cuda_init(int device) {
    dpt_fatal("dptrain", "cuda_init", __FILE__, __LINE__,
              "device %d requested, but this dptrain was built without the CUDA back end; rebuild with "
              "nvcc on the PATH (or -DCMAKE_CUDA_COMPILER=...) and -DDPT_CUDA=ON",
              device);
}

const dpt_backend *backend_cuda(dpt_precision precision) {
    (void)precision;
    cuda_init(0);
    return NULL;
}

void *cuda_stream(void) { return NULL; }

const char *backend_cuda_describe(void) { return "CUDA back end not built"; }

void cuda_print_info(FILE *f) { fprintf(f, "  CUDA back end : not built (-DDPT_CUDA=OFF or no nvcc at configure time)\n"); }
