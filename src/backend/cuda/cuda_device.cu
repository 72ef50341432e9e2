/* Device set-up, the library handles and the versions `dptrain info` prints (real build). */
#include <cublasLt.h>
#include <nccl.h>
#include <stdio.h>
#include <string.h>

#include "cuda_libs.h"

bool cuda_built(void) { return true; }

int cuda_device_count(char *why, size_t size) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        if (why) snprintf(why, size, "cudaGetDeviceCount: %s", cudaGetErrorString(e));
        (void)cudaGetLastError(); /* not sticky: clear it */
        return 0;
    }
    if (n == 0 && why) snprintf(why, size, "no CUDA device visible");
    return n;
}

void cuda_init(int device) {
    cu_ctx *c = cu_ctx_get();
    if (c->ready) {
        DPT_CHECK_LIB("CUDA", c->device == device, "cuda_init", "already initialised on device %d, not %d",
                      c->device, device);
        return;
    }
    c->device = device;
    char why[256] = "";
    const int n = cuda_device_count(why, sizeof why);
    DPT_CHECK_LIB("CUDA", device >= 0 && device < n, "cuda_init", "device %d requested, %d visible%s%s", device, n,
                  why[0] ? ": " : "", why);
    CUDA_CHECK(cudaSetDevice(device));
    CUDA_CHECK(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    cublasHandle_t blas;
    CUBLAS_CHECK(cublasCreate(&blas));
    CUBLAS_CHECK(cublasSetStream(blas, c->stream));
    c->blas = blas;
    cudnnHandle_t dnn;
    CUDNN_CHECK(cudnnCreate(&dnn));
    CUDNN_CHECK(cudnnSetStream(dnn, c->stream));
    c->dnn = dnn;
    cu_ctx_buffers();
    cu_workspace_reserve(32u << 20); /* cuBLAS's and small cuDNN algorithms' needs */
    CUBLAS_CHECK(cublasSetWorkspace(blas, c->workspace, c->workspace_bytes));
}

static void version_text(char *buf, size_t size, int v, int major_div, int minor_div) {
    snprintf(buf, size, "%d.%d", v / major_div, (v % major_div) / minor_div);
}

/* Library versions, each as the library reports it at run time (the one actually loaded). */
static void versions(char *buf, size_t size) {
    int rt = 0, drv = 0, nccl = 0;
    cudaRuntimeGetVersion(&rt);
    cudaDriverGetVersion(&drv);
    char rts[32], drvs[32];
    version_text(rts, sizeof rts, rt, 1000, 10);
    if (drv) version_text(drvs, sizeof drvs, drv, 1000, 10);
    else snprintf(drvs, sizeof drvs, "none");
    const size_t dnn = cudnnGetVersion(), lt = cublasLtGetVersion();
    int bmaj = 0, bmin = 0, bpat = 0;
    cublasGetProperty(MAJOR_VERSION, &bmaj);
    cublasGetProperty(MINOR_VERSION, &bmin);
    cublasGetProperty(PATCH_LEVEL, &bpat);
    ncclGetVersion(&nccl);
    snprintf(buf, size, "driver %s, runtime %s, cuDNN %zu.%zu.%zu, cuBLAS %d.%d.%d (cuBLASLt %zu), NCCL %d.%d.%d", drvs,
             rts, dnn / 10000, (dnn % 10000) / 100, dnn % 100, bmaj, bmin, bpat, lt, nccl / 10000,
             (nccl % 10000) / 100, nccl % 100);
}

const char *backend_cuda_describe(void) {
    static char buf[1024];
    cu_ctx *c = cu_ctx_get();
    cudaDeviceProp p;
    CUDA_CHECK(cudaGetDeviceProperties(&p, c->device));
    char v[256];
    versions(v, sizeof v);
    snprintf(buf, sizeof buf, "CUDA device %d: %s (sm_%d%d, %.1f GiB), %s", c->device, p.name, p.major, p.minor,
             (double)p.totalGlobalMem / (1u << 30), v);
    return buf;
}

void cuda_print_info(FILE *f) {
    char v[256], why[256] = "";
    versions(v, sizeof v);
    fprintf(f, "  CUDA back end : built (%s)\n", v);
    const int n = cuda_device_count(why, sizeof why);
    if (n == 0) {
        fprintf(f, "  GPUs          : none (%s)\n", why);
        return;
    }
    for (int i = 0; i < n; i++) {
        cudaDeviceProp p;
        if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
        fprintf(f, "  GPU %d         : %s, sm_%d%d, %.1f GiB, %d SMs, bus %04x:%02x:%02x\n", i, p.name, p.major,
                p.minor, (double)p.totalGlobalMem / (1u << 30), p.multiProcessorCount, p.pciDomainID, p.pciBusID,
                p.pciDeviceID);
    }
}
