/* Device collectives of a build without the CUDA back end: nothing to reduce on a device. */
#include "dpt/comm/comm_device.h"

bool comm_dev_nccl_built(void) { return false; }

dpt_status comm_dev_init(const char *want, int gpu, void *stream) {
    (void)gpu;
    (void)stream;
    return dpt_error(DPT_ERR_CONFIG, "comm.backend = %s: this dptrain was built without the CUDA back end, so it has "
                     "no device buffers to reduce", want);
}

comm_dev_transport comm_dev_get(void) { return COMM_DEV_NONE; }
const char *comm_dev_describe(void) { return "none (built without CUDA)"; }
void comm_dev_finalize(void) {}

static DPT_NORETURN void not_built(const char *what) {
    dpt_fatal("comm", what, __FILE__, __LINE__, "this dptrain was built without the CUDA back end");
}

void comm_dev_allreduce_sum(void *buf, int64_t n, bool bf16) {
    (void)buf;
    (void)n;
    (void)bf16;
    not_built("comm_dev_allreduce_sum");
}
comm_dev_group *comm_dev_group_create(int size) {
    (void)size;
    return NULL;
}
void comm_dev_group_destroy(comm_dev_group *g) { (void)g; }
void comm_dev_group_allreduce_sum_f64(comm_dev_group *g, double *buf, int n) {
    (void)g;
    (void)buf;
    (void)n;
    not_built("comm_dev_group_allreduce_sum_f64");
}
comm_grad_sync *comm_dev_grad_sync_create(float *base, const size_t *offsets, const int64_t *numel, int nparams,
                                          size_t bucket_bytes, bool bf16) {
    (void)base;
    (void)offsets;
    (void)numel;
    (void)nparams;
    (void)bucket_bytes;
    (void)bf16;
    not_built("comm_dev_grad_sync_create");
}
