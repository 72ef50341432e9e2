/* dptrain bench allreduce: parse arguments, start MPI, run comm_bench_allreduce. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dpt/comm/comm.h"
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

static dpt_status parse(int argc, char **argv, comm_bench_opts *o) {
    *o = (comm_bench_opts){.min_bytes = 8, .max_bytes = (int64_t)256 << 20, .warmup = 5, .iters = 20,
                           .corrupt_rank = -1};
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return dpt_error(DPT_ERR_ARG, "bench allreduce: %s needs a value", s);
        i++;
        if (!strcmp(s, "--backend")) {
            if (!strcmp(v, "nccl"))
                return dpt_error(DPT_ERR_ARG, "bench allreduce: --backend nccl: this build has no NCCL (CPU back end "
                                              "only); use --backend mpi");
            if (strcmp(v, "mpi")) return dpt_error(DPT_ERR_ARG, "bench allreduce: --backend '%s': use mpi or nccl", v);
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
    if (o->min_bytes > o->max_bytes)
        return dpt_error(DPT_ERR_ARG, "bench allreduce: --min (%lld B) is larger than --max (%lld B)",
                         (long long)o->min_bytes, (long long)o->max_bytes);
    return DPT_OK;
}

int cmd_bench_allreduce(int argc, char **argv) {
    comm_init(&argc, &argv);
    comm_bench_opts o;
    dpt_status st = parse(argc, argv, &o);
    int bad = comm_agree(st), rc;
    if (bad >= 0) {
        if (bad == comm_get()->rank) log_error("%s", dpt_error_message());
        rc = 2;
    } else {
        int64_t wrong = comm_bench_allreduce(&o);
        if (wrong && comm_get()->rank == 0) log_error("bench allreduce: %lld wrong elements", (long long)wrong);
        rc = wrong ? 1 : 0;
    }
    comm_finalize();
    return rc;
}
