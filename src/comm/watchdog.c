/* Stall and dead-rank detection. Every collective is issued non-blocking and completed by
 * comm_wait, which polls it against a deadline (comm.timeout_s). A blocking MPI call cannot be
 * interrupted, so one stopped rank would otherwise hang all the others forever.
 *
 * Protocol, on a duplicate of MPI_COMM_WORLD reserved for it (so that its messages never match
 * the collectives' traffic):
 *  - every rank inside comm_wait also answers status queries: MPI_Iprobe for TAG_QUERY, reply
 *    with how many collectives it has issued, which one it waits on (number and label) and its
 *    training step. A rank that is computing, stopped or dead does not answer.
 *  - a rank whose deadline passes sends a query to every other rank and collects replies for a
 *    grace period, clamp(timeout / 2, 1 s, 10 s). Ranks that do not answer have not arrived and
 *    do not respond; ranks that answer but have not issued the collective are behind; ranks that
 *    began to wait in it only after the deadline are late; ranks that issued a different
 *    collective under the same number disagree on the order.
 *  - to print one message per job rather than one per rank, a timed-out rank stays quiet when it
 *    knows of a lower rank that has timed out too (that rank queried it, or said so in its reply):
 *    the lowest one reports. The quiet ones keep answering for a bounded time, then abort anyway,
 *    so that no rank's exit depends on another rank behaving.
 *  - the reporting rank calls MPI_Abort, guarded by an alarm that _exit()s if MPI_Abort hangs;
 *    the launcher then kills every rank, stopped ones included. */
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "comm_internal.h"
#include "dpt/core/log.h"
#include "dpt/core/timer.h"

enum { TAG_QUERY = 1, TAG_REPLY = 2, WHAT_LEN = 48, MAX_NAMED = 8, ABORT_ALARM_S = 10 };
/* Issue times of the most recent collectives, so that a rank asked about collective #q can say
 * when it issued it even after it has gone on to later ones. */
enum { RECENT = 256 };

/* Polling, tuned on 2 cores with Open MPI 4.1 shared memory. When the ranks arrive together a
 * small allreduce completes within a few microseconds: spinning SPIN_S first keeps its latency at
 * the blocking call's. After that, up to YIELD_S, the rank polls with sched_yield in between,
 * which costs ~1 us on a core of its own and hands a shared core to the rank it waits for. That
 * covers compute jitter between ranks and, above all, large buffers: MPI moves host data only
 * inside MPI calls, so a 64 MB allreduce needs continuous polling (with 50 us naps between
 * 5 us bursts it ran 3-4x slower than with yields). Only a wait longer than YIELD_S (a
 * checkpoint written by one rank, a stalled rank) naps (nanosleep, 60-110 us with the kernel's
 * timer slack), so that it burns no core; after each nap a short burst of polls catches the next
 * rounds of a multi-round algorithm. Queries from other ranks and the deadline are looked at
 * every CHECK_S in both regimes. */
#define SPIN_S 20e-6
#define YIELD_S 1.0
#define CHECK_S 1e-3
#define BURST_S 5e-6
#define NAP_NS 50000L

/* One rank's answer to a query. Ranks are one binary on one architecture: sent as bytes. */
typedef struct wd_reply {
    uint64_t issued;   /* collectives issued so far */
    uint64_t wait_seq; /* the collective it waits on */
    int64_t step;
    double since_issued; /* seconds since it issued the queried collective; -1: not issued, or long ago */
    int32_t timed_out; /* it has missed its own deadline and is querying too */
    char what[WHAT_LEN];
} wd_reply;

/* What a reply says about a rank, from the point of view of the rank that timed out. */
typedef enum wd_verdict {
    WD_FINE,   /* waits in the same collective since before the deadline, or has passed it */
    WD_SILENT, /* no reply: stopped, hung in computation or an outside call, or dead */
    WD_BEHIND, /* has not issued the collective: waits in an earlier one */
    WD_LATE,   /* issued the collective only after the deadline */
    WD_OTHER,  /* issued a different collective under the same number */
} wd_verdict;

static struct {
    MPI_Comm comm; /* MPI_COMM_WORLD's duplicate for queries and replies */
    bool ready;
    int rank, world;
    double timeout;
    int64_t step;
    uint64_t issued;
    /* What this rank waits on, for replies. */
    uint64_t wait_seq;
    const char *wait_what;
    double wait_t0; /* when this rank began to wait */
    struct {
        uint64_t seq;
        double t;
    } recent[RECENT];
    bool timed_out;
    int lowest_querier; /* the lowest rank that has queried this one: it has timed out too */
    int64_t *pids;
    wd_reply *answers; /* one per querier: a send buffer must outlive its MPI_Isend */
} wd = {.step = -1};

void comm_set_timeout(double seconds) { wd.timeout = seconds > 0 ? seconds : 0; }

double comm_timeout(void) { return wd.timeout; }
void comm_set_step(int64_t step) { wd.step = step; }
uint64_t comm_sequence(void) { return wd.issued; }
uint64_t comm_next_seq(void) {
    uint64_t seq = ++wd.issued;
    wd.recent[seq % RECENT].seq = seq;
    wd.recent[seq % RECENT].t = timer_now();
    return seq;
}

void comm_watchdog_init(const comm_info *ci) {
    wd.rank = ci->rank;
    wd.world = ci->world;
    wd.lowest_querier = ci->world;
    MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &wd.comm));
    MPI_CHECK(MPI_Comm_set_errhandler(wd.comm, MPI_ERRORS_RETURN));
    wd.pids = dpt_xcalloc((size_t)ci->world, sizeof(int64_t));
    wd.answers = dpt_xcalloc((size_t)ci->world, sizeof(wd_reply));
    int64_t pid = (int64_t)getpid();
    /* Gathered now, while every rank is alive: a stalled rank cannot be asked later (host names
     * were gathered by comm_init: comm_host_of). */
    MPI_CHECK(MPI_Allgather(&pid, 1, MPI_INT64_T, wd.pids, 1, MPI_INT64_T, MPI_COMM_WORLD));
    wd.ready = true;
}

void comm_watchdog_finalize(void) {
    if (!wd.ready) return;
    MPI_Comm_free(&wd.comm);
    free(wd.pids);
    free(wd.answers);
    wd.pids = NULL;
    wd.answers = NULL;
    wd.ready = false;
}

static volatile sig_atomic_t abort_code = 1;

static void alarm_exit(int sig) {
    (void)sig;
    _exit(abort_code);
}

void comm_abort_bounded(int code) {
    fflush(stdout);
    fflush(stderr);
    abort_code = code;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = alarm_exit;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    alarm(ABORT_ALARM_S);
    int up = 0, down = 0;
    MPI_Initialized(&up);
    MPI_Finalized(&down);
    if (up && !down) MPI_Abort(MPI_COMM_WORLD, code);
    _exit(code);
}

static void nap(void) {
    struct timespec ts = {0, NAP_NS};
    nanosleep(&ts, NULL);
}

/* Answers every pending query. Best effort: errors are ignored, since a failure here must not
 * take the place of the report that the querier is about to print. */
static void serve_queries(void) {
    for (;;) {
        int flag = 0;
        MPI_Status st;
        if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_QUERY, wd.comm, &flag, &st) != MPI_SUCCESS || !flag) return;
        int src = st.MPI_SOURCE;
        uint64_t their_seq = 0;
        MPI_Recv(&their_seq, 1, MPI_UINT64_T, src, TAG_QUERY, wd.comm, MPI_STATUS_IGNORE);
        if (src < wd.lowest_querier) wd.lowest_querier = src;
        wd_reply *a = &wd.answers[src];
        memset(a, 0, sizeof *a);
        a->issued = wd.issued;
        a->wait_seq = wd.wait_seq;
        a->step = wd.step;
        bool known = wd.recent[their_seq % RECENT].seq == their_seq && their_seq != 0;
        a->since_issued = known ? timer_now() - wd.recent[their_seq % RECENT].t : -1;
        a->timed_out = wd.timed_out;
        snprintf(a->what, sizeof a->what, "%s", wd.wait_what ? wd.wait_what : "?");
        MPI_Request r;
        if (MPI_Isend(a, (int)sizeof *a, MPI_BYTE, src, TAG_REPLY, wd.comm, &r) == MPI_SUCCESS)
            MPI_Request_free(&r);
    }
}

/* Appends printf output to buf (capacity cap, used *len), truncating quietly. */
static void append(char *buf, size_t cap, size_t *len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t cap, size_t *len, const char *fmt, ...) {
    if (*len + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (k > 0) *len = DPT_MIN(cap - 1, *len + (size_t)k);
}

static void name_rank(char *buf, size_t cap, size_t *len, int r) {
    append(buf, cap, len, "rank %d (host %s, pid %lld)", r, comm_host_of(r), (long long)wd.pids[r]);
}

static void append_step(char *buf, size_t cap, size_t *len, int64_t step) {
    if (step >= 0) append(buf, cap, len, " at step %lld", (long long)step);
}

/* Labels may end in a parenthesised part that differs between ranks legitimately ("group
 * allreduce (ranks 2-3)"); the part before it names the operation. */
static bool same_operation(const char *a, const char *b) {
    size_t la = strcspn(a, "("), lb = strcspn(b, "(");
    return la == lb && strncmp(a, b, la) == 0;
}

/* arrived: when the rank issued the collective, on this rank's clock (from its reply). */
static wd_verdict judge(bool answered, const wd_reply *g, double arrived) {
    if (!answered) return WD_SILENT;
    if (g->issued < wd.wait_seq) return WD_BEHIND;
    if (g->wait_seq == wd.wait_seq && !same_operation(g->what, wd.wait_what)) return WD_OTHER;
    return arrived > wd.wait_t0 + wd.timeout ? WD_LATE : WD_FINE;
}

/* The one-line report: what this rank waited on, then every rank that explains the wait. */
static void describe(char *buf, size_t cap, const wd_reply *got, const bool *answered, const double *arrived,
                     double completed) {
    size_t len = 0;
    append(buf, cap, &len, "[rank %d %s] comm: waited %.1f s (comm.timeout_s) in %s", wd.rank,
           comm_host_of(wd.rank), wd.timeout, wd.wait_what);
    append_step(buf, cap, &len, wd.step);
    append(buf, cap, &len, " (collective #%llu): ", (unsigned long long)wd.wait_seq);
    int named = 0, more = 0;
    for (int r = 0; r < wd.world; r++) {
        if (r == wd.rank) continue;
        const wd_reply *g = &got[r];
        wd_verdict v = judge(answered[r], g, arrived[r]);
        if (v == WD_FINE) continue;
        if (named == MAX_NAMED) {
            more++;
            continue;
        }
        if (named++) append(buf, cap, &len, "; ");
        name_rank(buf, cap, &len, r);
        switch (v) {
        case WD_SILENT:
            append(buf, cap, &len, " has not arrived and does not respond (stopped, hung or dead)");
            break;
        case WD_LATE:
            append(buf, cap, &len, " arrived only %.1f s after this rank, past the deadline",
                   arrived[r] - wd.wait_t0);
            break;
        case WD_BEHIND:
            append(buf, cap, &len, " is behind: it waits in %s", g->what);
            append_step(buf, cap, &len, g->step);
            append(buf, cap, &len, " (collective #%llu)", (unsigned long long)g->wait_seq);
            break;
        case WD_OTHER:
            append(buf, cap, &len, " waits in %s", g->what);
            append_step(buf, cap, &len, g->step);
            append(buf, cap, &len, " as collective #%llu: the ranks disagree on the order of collectives",
                   (unsigned long long)g->wait_seq);
            break;
        case WD_FINE: break;
        }
    }
    if (more) append(buf, cap, &len, "; and %d more rank%s", more, more == 1 ? "" : "s");
    if (named) return;
    if (completed > 0)
        append(buf, cap, &len, "every rank responds, and the collective completed %.1f s after this rank began to wait",
               completed - wd.wait_t0);
    else
        append(buf, cap, &len, "every rank responds and has issued it, yet it has not completed");
}

/* The deadline has passed in the wait for reqs[0, n): find out who is missing, report (or leave
 * the report to a lower rank) and stop every rank. */
static _Noreturn void stall(MPI_Request *reqs, int n) {
    wd.timed_out = true;
    int world = wd.world;
    wd_reply *got = dpt_xcalloc((size_t)world, sizeof *got);
    bool *answered = dpt_xcalloc((size_t)world, sizeof *answered);
    double *arrived = dpt_xcalloc((size_t)world, sizeof *arrived);
    double completed = 0; /* when the collective completed during the grace period, if it did */
    MPI_Request *rr = dpt_xcalloc((size_t)world, sizeof *rr);
    static uint64_t query; /* the send buffer outlives this frame's MPI_Isend requests */
    query = wd.wait_seq;
    for (int r = 0; r < world; r++) {
        rr[r] = MPI_REQUEST_NULL;
        if (r == wd.rank) continue;
        if (MPI_Irecv(&got[r], (int)sizeof got[r], MPI_BYTE, r, TAG_REPLY, wd.comm, &rr[r]) != MPI_SUCCESS)
            rr[r] = MPI_REQUEST_NULL;
        MPI_Request s;
        if (MPI_Isend(&query, 1, MPI_UINT64_T, r, TAG_QUERY, wd.comm, &s) == MPI_SUCCESS) MPI_Request_free(&s);
    }
    double grace = DPT_MIN(10.0, DPT_MAX(1.0, wd.timeout / 2));
    double end = timer_now() + grace;
    int pending = world - 1;
    while (pending > 0 && timer_now() < end) {
        serve_queries();
        int done = 0;
        if (!completed && MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE) == MPI_SUCCESS && done)
            completed = timer_now();
        for (int r = 0; r < world; r++) {
            if (rr[r] == MPI_REQUEST_NULL) continue;
            int done = 0;
            if (MPI_Test(&rr[r], &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && done) {
                answered[r] = true;
                got[r].what[WHAT_LEN - 1] = '\0';
                /* Unknown: behind, or too long ago to have been late. */
                arrived[r] = got[r].since_issued >= 0 ? timer_now() - got[r].since_issued : -INFINITY;
                pending--;
            }
        }
        if (pending > 0) nap();
    }
    int lowest = wd.lowest_querier;
    for (int r = 0; r < world; r++)
        if (answered[r] && got[r].timed_out && r < lowest) lowest = r;
    char msg[3500];
    describe(msg, sizeof msg, got, answered, arrived, completed);
    if (lowest < wd.rank) {
        /* A lower rank reports; this one keeps its view in its own log file and stops a moment
         * later, after the reporter's grace period, unless the reporter's abort stops it first. */
        log_rank("error: %s (rank %d reports)", msg, lowest);
        double until = timer_now() + grace + 2.0;
        while (timer_now() < until) {
            serve_queries();
            nap();
        }
    } else {
        log_error("%s", msg);
    }
    comm_abort_bounded(1);
}

void comm_wait(MPI_Request *reqs, int n, uint64_t seq, const char *what) {
    int done = 0;
    MPI_CHECK(MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE));
    if (done) return;
    double t0 = timer_now(), poll_until = t0 + SPIN_S;
    double deadline = wd.timeout > 0 ? t0 + wd.timeout : INFINITY;
    wd.wait_seq = seq;
    wd.wait_what = what;
    wd.wait_t0 = t0;
    double next_check = t0 + CHECK_S;
    while (!done) {
        double now = timer_now();
        if (now >= poll_until) {
            if (now >= next_check) {
                if (wd.ready) serve_queries();
                if (now >= deadline && wd.ready) stall(reqs, n);
                next_check = now + CHECK_S;
            }
            if (now - t0 < YIELD_S) {
                sched_yield();
            } else {
                nap();
                poll_until = timer_now() + BURST_S;
            }
        }
        MPI_CHECK(MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE));
    }
}
