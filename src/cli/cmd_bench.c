/* dptrain bench allreduce: parse arguments, start MPI, run comm_bench_allreduce. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dpt/backend/cuda.h"
#include "dpt/comm/comm.h"
#include "dpt/comm/comm_device.h"
#include "dpt/comm/topology.h"
#include "dpt/core/log.h"

/* "8", "64K", "256M", "1G" (powers of 1024) to bytes; -1 when malformed. */
static int64_t parse_size(const char *s) {
    char *end;
    double v = strtod(s, &end);
    int64_t mul = 1;
    if (*end == 'K' || *end == 'k') mul = (int64_t)1 << 10;
    else if (*end == 'M' || *end == 'm') mul = (int64_t)1 << 20;
    else if (*end == 'G' || *end == 'g') mul = (int64_t)1 << 30;
    if (mul > 1) end++;
    if (end == s || *end != '\0' || v < 1 || v * (double)mul > 64.0 * (double)((int64_t)1 << 30)) return -1;
    return (int64_t)(v * (double)mul);
}

static dpt_status parse(int argc, char **argv, comm_bench_opts *o, char backend[8], bool *device) {
    *o = (comm_bench_opts){.min_bytes = 8, .max_bytes = (int64_t)256 << 20, .warmup = 5, .iters = 20,
                           .corrupt_rank = -1};
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return dpt_error(DPT_ERR_ARG, "bench allreduce: %s needs a value", s);
        i++;
        if (!strcmp(s, "--backend")) {
            if (strcmp(v, "mpi") && strcmp(v, "nccl"))
                return dpt_error(DPT_ERR_ARG, "bench allreduce: --backend '%s': use mpi or nccl", v);
            snprintf(backend, 8, "%s", v);
        } else if (!strcmp(s, "--buffers")) {
            if (strcmp(v, "host") && strcmp(v, "device"))
                return dpt_error(DPT_ERR_ARG, "bench allreduce: --buffers '%s': use host or device", v);
            *device = !strcmp(v, "device");
        } else if (!strcmp(s, "--min") || !strcmp(s, "--max")) {
            int64_t b = parse_size(v);
            if (b < 0) return dpt_error(DPT_ERR_ARG, "bench allreduce: %s '%s': a size from 1 to 64G (8, 64K, 256M)", s, v);
            *(!strcmp(s, "--min") ? &o->min_bytes : &o->max_bytes) = b;
        } else if (!strcmp(s, "--dtype")) {
            if (strcmp(v, "fp32") && strcmp(v, "bf16"))
                return dpt_error(DPT_ERR_ARG, "bench allreduce: --dtype '%s': use fp32 or bf16", v);
            o->bf16 = !strcmp(v, "bf16");
        } else if (!strcmp(s, "--warmup") || !strcmp(s, "--iters")) {
            int n = atoi(v);
            if (n < (s[2] == 'w' ? 0 : 1) || n > 100000)
                return dpt_error(DPT_ERR_ARG, "bench allreduce: %s '%s': a count in [%d, 100000]", s, v, s[2] == 'w' ? 0 : 1);
            *(s[2] == 'w' ? &o->warmup : &o->iters) = n;
        } else if (!strcmp(s, "--test-corrupt-rank")) { /* test hook: the check must catch this */
            o->corrupt_rank = atoi(v);
        } else {
            return dpt_error(DPT_ERR_ARG, "bench allreduce: unknown option '%s' (see dptrain help)", s);
        }
    }
    if (!strcmp(backend, "nccl")) *device = true; /* NCCL reduces device buffers only */
    if (!strcmp(backend, "nccl") && !comm_dev_nccl_built())
        return dpt_error(DPT_ERR_ARG, "bench allreduce: --backend nccl: this dptrain was built without the CUDA back end "
                                      "and NCCL; use --backend mpi");
    if (o->min_bytes > o->max_bytes)
        return dpt_error(DPT_ERR_ARG, "bench allreduce: --min (%lld B) is larger than --max (%lld B)",
                         (long long)o->min_bytes, (long long)o->max_bytes);
    return DPT_OK;
}

/* This rank's GPU and the fp32 back end for memory. */
static dpt_status open_device(comm_bench_opts *o, int *gpu) {
    char why[256] = "";
    const int visible = cuda_device_count(why, sizeof why);
    if (visible <= 0) return dpt_error(DPT_ERR_CONFIG, "bench allreduce: device buffers, but no GPU can be used: %s", why);
    const comm_info *ci = comm_get();
    *gpu = comm_pick_device(ci->local_rank, ci->local_size, visible, why, sizeof why);
    cuda_init(*gpu);
    o->dev = backend_cuda(PREC_FP32);
    o->dev_sum = comm_dev_allreduce_sum;
    return DPT_OK;
}

int cmd_bench_allreduce(int argc, char **argv) {
    comm_init(&argc, &argv);
    comm_bench_opts o;
    char backend[8] = "mpi";
    bool device = false;
    int gpu = -1;
    dpt_status st = parse(argc, argv, &o, backend, &device);
    int bad = comm_agree(st), rc = 2;
    if (bad < 0 && device) {
        bad = comm_agree(open_device(&o, &gpu));
        if (bad < 0) bad = comm_agree(comm_dev_init(backend, gpu, cuda_stream()));
        o.transport = comm_dev_describe();
    }
    if (bad >= 0) {
        if (bad == comm_get()->rank) log_error("%s", dpt_error_message());
    } else {
        int64_t wrong = comm_bench_allreduce(&o);
        if (wrong && comm_get()->rank == 0) log_error("bench allreduce: %lld wrong elements", (long long)wrong);
        rc = wrong ? 1 : 0;
    }
    comm_dev_finalize();
    comm_finalize();
    return rc;
}
