/* Stall detection in the MPI comm layer, driven by tests/mpi/comm_timeout.sh.
 *   stall_check MODE [--timeout S] [--rank R] [--stop | --sleep S] [--steps N] [--tag T]
 * MODE is where ranks meet each step:
 *   allreduce  comm_allreduce_sum_f64
 *   grad       the bucketed gradient allreduce (comm_grad_*); rank R acts midway through backward
 *   group      comm_group_allreduce_sum_f64 in groups of 2 ranks, then a world allreduce
 *   check      correctness of every collective (gather, scatter, allreduce_min, broadcast, ...)
 *              and of the collective count
 *   latency    median latency of comm_allreduce_sum_f64 of 2 doubles against a blocking
 *              MPI_Allreduce, measured alternately in the same run (--steps: iterations)
 * In the first three, rank R (default 1) stops itself with SIGSTOP (--stop) or computes for S
 * seconds (--sleep) at step 3 just before the collective; with --timeout S the comm layer must
 * then stop the job with a report (or, for a sleep shorter than S, complete it). Every result is
 * checked; the exit status is 0 only when all steps completed correctly. --tag is ignored: it
 * marks the processes of one test run for pgrep. */
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

#include "dpt/comm/comm.h"
#include "dpt/core/timer.h"
#include "testutil.h"

enum { ACT_STEP = 3 };

static struct {
    const char *mode;
    double timeout, sleep_s;
    int rank, steps;
    bool stop;
} opt = {.rank = 1, .steps = 6};

static const comm_info *ci;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    if (ci->rank != 0) return;
    va_list ap;
    va_start(ap, fmt);
    printf("stall_check: ");
    vprintf(fmt, ap);
    putchar('\n');
    fflush(stdout);
    va_end(ap);
}

/* The victim's misbehaviour, at step ACT_STEP just before it would join the collective. */
static void act(int step) {
    if (ci->rank != opt.rank || step != ACT_STEP) return;
    if (opt.stop) {
        fprintf(stderr, "stall_check: rank %d (pid %lld) stops itself at step %d\n", ci->rank, (long long)getpid(),
                step);
        raise(SIGSTOP);
    } else if (opt.sleep_s > 0) {
        usleep((useconds_t)(opt.sleep_s * 1e6));
    }
}

static void run_allreduce(void) {
    for (int step = 0; step < opt.steps; step++) {
        comm_set_step(step);
        double v[2] = {ci->rank + 1.0, step};
        act(step);
        comm_allreduce_sum_f64(v, 2);
        TU_CHECK(v[0] == ci->world * (ci->world + 1) / 2.0 && v[1] == (double)step * ci->world, "step %d: %g %g",
                 step, v[0], v[1]);
    }
}

static void run_group(void) {
    TU_CHECK(ci->world % 2 == 0, "group mode needs an even number of ranks, not %d", ci->world);
    if (ci->world % 2) return;
    comm_group *g = comm_group_create(2);
    for (int step = 0; step < opt.steps; step++) {
        comm_set_step(step);
        double v = ci->rank;
        act(step);
        comm_group_allreduce_sum_f64(g, &v, 1);
        int first = ci->rank / 2 * 2;
        TU_CHECK(v == 2.0 * first + 1, "step %d: group sum %g", step, v);
        double one = 1;
        comm_allreduce_sum_f64(&one, 1);
        TU_CHECK(one == ci->world, "step %d: world sum %g", step, one);
    }
    comm_group_destroy(g);
}

static void run_grad(void) {
    /* Gradients of uneven sizes at 64-byte aligned offsets, as the arena lays them out. */
    const int64_t numel[] = {1000, 10, 5000, 10, 20000, 10, 3000, 7};
    const int np = (int)DPT_ARRAY_LEN(numel);
    size_t off[DPT_ARRAY_LEN(numel)], pos = 0;
    for (int i = 0; i < np; i++) {
        off[i] = pos;
        pos += dpt_align_up((size_t)numel[i] * sizeof(float), DPT_ALIGN);
    }
    int64_t total = (int64_t)(pos / sizeof(float));
    float *grad = calloc((size_t)total, sizeof(float));
    comm_grad_sync *s = comm_grad_sync_create(grad, off, numel, np, 16 * 1024, false);
    if (opt.steps > 0) say("grad: %d gradient buckets", comm_grad_num_buckets(s));
    for (int step = 0; step < opt.steps; step++) {
        comm_set_step(step);
        float mine = (float)((ci->rank + 1) * (step + 1));
        for (int i = 0; i < np; i++)
            for (int64_t k = 0; k < numel[i]; k++) grad[off[i] / sizeof(float) + k] = mine;
        comm_grad_begin(s);
        for (int p = np - 1; p >= 0; p--) {
            if (p == np / 2) act(step); /* midway through backward: some buckets started, some not */
            comm_grad_ready(s, p);
            comm_grad_progress(s);
        }
        comm_grad_wait(s);
        float want = (float)((step + 1) * ci->world * (ci->world + 1) / 2);
        int64_t bad = 0;
        for (int i = 0; i < np; i++)
            for (int64_t k = 0; k < numel[i]; k++) bad += grad[off[i] / sizeof(float) + k] != want;
        TU_CHECK(bad == 0, "step %d: %lld gradient values differ from %g", step, (long long)bad, want);
    }
    comm_grad_sync_destroy(s);
    free(grad);
}

/* Every collective against its known result, and the collective count. n is large enough to
 * cross piece boundaries (and end in a partial piece) in the test build with 4 KiB pieces. */
static void run_check(void) {
    const int r = ci->rank, w = ci->world, root = w - 1;
    uint64_t seq0 = comm_sequence();
    const int64_t n = 5000;
    float *mine = malloc((size_t)n * sizeof(float)), *all = malloc((size_t)(n * w) * sizeof(float));
    float *back = malloc((size_t)n * sizeof(float));
    for (int64_t k = 0; k < n; k++) mine[k] = (float)(r * 100000 + k);
    comm_gather_f32(mine, n, r == root ? all : NULL, root);
    if (r == root) {
        int64_t bad = 0;
        for (int q = 0; q < w; q++)
            for (int64_t k = 0; k < n; k++) bad += all[q * n + k] != (float)(q * 100000 + k);
        TU_CHECK(bad == 0, "gather: %lld wrong values", (long long)bad);
        for (int64_t k = 0; k < n * w; k++) all[k] = -all[k];
    }
    comm_scatter_f32(r == root ? all : NULL, back, n, root);
    int64_t bad = 0;
    for (int64_t k = 0; k < n; k++) bad += back[k] != -(float)(r * 100000 + k);
    TU_CHECK(bad == 0, "scatter: %lld wrong values", (long long)bad);

    int64_t v[3] = {100 - r, r, r == 1 ? INT64_MIN : INT64_MAX};
    comm_allreduce_min_i64(v, 3);
    TU_CHECK(v[0] == 100 - (w - 1) && v[1] == 0 && v[2] == (w > 1 ? INT64_MIN : INT64_MAX),
             "allreduce_min: %lld %lld %lld", (long long)v[0], (long long)v[1], (long long)v[2]);

    float *f = malloc((size_t)n * sizeof(float));
    for (int64_t k = 0; k < n; k++) f[k] = (float)(r + k);
    comm_allreduce_sum_f32(f, n);
    bad = 0;
    for (int64_t k = 0; k < n; k++) bad += f[k] != (float)(w * (w - 1) / 2 + w * k);
    TU_CHECK(bad == 0, "allreduce_sum_f32: %lld wrong values", (long long)bad);

    for (int64_t k = 0; k < n; k++) mine[k] = r == 0 ? (float)(7 * k) : -1.0f;
    comm_bcast(mine, (size_t)n * sizeof(float), 0);
    bad = 0;
    for (int64_t k = 0; k < n; k++) bad += mine[k] != (float)(7 * k);
    TU_CHECK(bad == 0, "bcast: %lld wrong values", (long long)bad);

    double d[2] = {r, -r};
    comm_allreduce_max_f64(d, 2);
    TU_CHECK(d[0] == w - 1 && d[1] == 0, "allreduce_max: %g %g", d[0], d[1]);
    int64_t i64 = r;
    comm_allreduce_sum_i64(&i64, 1);
    TU_CHECK(i64 == (int64_t)w * (w - 1) / 2, "allreduce_sum_i64: %lld", (long long)i64);
    TU_CHECK(comm_agree(r == w - 1 ? DPT_ERR_IO : DPT_OK) == (w > 1 ? w - 1 : 0), "comm_agree");
    TU_CHECK(comm_agree(DPT_OK) == -1, "comm_agree, all ok");
    comm_barrier();

    /* 10 collectives above (a call in pieces counts once), and every rank counts the same. */
    uint64_t issued = comm_sequence() - seq0;
    TU_CHECK(issued == 10, "comm_sequence counted %llu collectives, not 10", (unsigned long long)issued);
    uint64_t *seqs = malloc((size_t)w * sizeof(uint64_t));
    comm_allgather_u64(comm_sequence(), seqs);
    bad = 0;
    for (int q = 0; q < w; q++) bad += seqs[q] != seqs[r];
    TU_CHECK(bad == 0, "ranks disagree on the collective count");
    say("check: gather, scatter, allreduce (sum f32/f64/i64, max, min i64), broadcast, allgather, agree, "
        "barrier on %d ranks; %llu collectives counted",
        w, (unsigned long long)comm_sequence());
    free(seqs);
    free(f);
    free(mine);
    free(all);
    free(back);
}

static void run_latency(void) {
    const int iters = opt.steps, warm = 200;
    double *t_comm = malloc((size_t)iters * sizeof(double)), *t_mpi = malloc((size_t)iters * sizeof(double));
    const double want0 = ci->world * (ci->world + 1) / 2.0, want1 = ci->world;
    int64_t bad = 0;
    for (int i = -warm; i < iters; i++) {
        /* Alternately, so that both see the same conditions (load, frequency). */
        double v[2] = {ci->rank + 1.0, 1.0};
        double t0 = timer_now();
        comm_allreduce_sum_f64(v, 2);
        double t1 = timer_now();
        bad += v[0] != want0 || v[1] != want1;
        double u[2] = {ci->rank + 1.0, 1.0};
        double t2 = timer_now();
        MPI_Allreduce(MPI_IN_PLACE, u, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        double t3 = timer_now();
        bad += u[0] != want0 || u[1] != want1;
        if (i >= 0) {
            t_comm[i] = t1 - t0;
            t_mpi[i] = t3 - t2;
        }
    }
    TU_CHECK(bad == 0, "latency: %lld wrong results", (long long)bad);
    double mc = timer_median(t_comm, iters) * 1e6, mm = timer_median(t_mpi, iters) * 1e6;
    say("latency: allreduce of 2 doubles on %d ranks, median of %d (after %d warm-up): comm_allreduce_sum_f64 "
        "%.2f us, blocking MPI_Allreduce %.2f us, ratio %.2f",
        ci->world, iters, warm, mc, mm, mc / mm);
    /* Loose: a shared 2-core machine is noisy; this catches a wait that sleeps before it polls. */
    if (ci->rank == 0) TU_CHECK(mc <= 3 * mm + 10, "polled allreduce %.2f us against %.2f us blocking", mc, mm);
    free(t_comm);
    free(t_mpi);
}

static void usage(void) {
    fprintf(stderr, "usage: stall_check allreduce|grad|group|check|latency [--timeout S] [--rank R] "
                    "[--stop | --sleep S] [--steps N] [--tag T]\n");
    exit(2);
}

int main(int argc, char **argv) {
    comm_init(&argc, &argv);
    ci = comm_get();
    if (argc < 2) usage();
    opt.mode = argv[1];
    if (!strcmp(opt.mode, "latency")) opt.steps = 2000;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--stop")) opt.stop = true;
        else if (!next) usage();
        else if (!strcmp(a, "--timeout")) opt.timeout = atof(argv[++i]);
        else if (!strcmp(a, "--rank")) opt.rank = atoi(argv[++i]);
        else if (!strcmp(a, "--sleep")) opt.sleep_s = atof(argv[++i]);
        else if (!strcmp(a, "--steps")) opt.steps = atoi(argv[++i]);
        else if (!strcmp(a, "--tag")) i++;
        else usage();
    }
    comm_set_timeout(opt.timeout);
    double t0 = timer_now();
    if (!strcmp(opt.mode, "allreduce")) run_allreduce();
    else if (!strcmp(opt.mode, "grad")) run_grad();
    else if (!strcmp(opt.mode, "group")) run_group();
    else if (!strcmp(opt.mode, "check")) run_check();
    else if (!strcmp(opt.mode, "latency")) run_latency();
    else usage();
    comm_set_step(-1);
    /* Every rank's verdict, so that rank 0's exit status speaks for all. */
    int64_t failures = tu_failures;
    comm_allreduce_sum_i64(&failures, 1);
    if (strcmp(opt.mode, "check") && strcmp(opt.mode, "latency"))
        say("%s: %d steps completed in %.2f s, %lld failures", opt.mode, opt.steps, timer_now() - t0,
            (long long)failures);
    comm_finalize();
    return failures ? 1 : 0;
}
