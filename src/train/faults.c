/* Test hooks: DPT_FAULT makes one rank misbehave at a chosen step, so that the tests can check
 * what the others do. A comma-separated list of KIND@STEP[:RANK] (STEP may be a range A-B; no
 * RANK: every rank). STEP counts from 1, as the logs do. Kinds:
 *   nan         the rank's batch holds a NaN at that step (a bad batch)
 *   kill        the rank SIGKILLs itself before the step (a dead node)
 *   stop        the rank SIGSTOPs itself before the step (a hung node)
 *   term        the rank sends itself SIGTERM before the step (a preemption notice)
 *   inf_grad    the rank's first gradient value is +Inf after backward at that step (an
 *               overflow of the scaled gradient, for dynamic loss scaling)
 *   crash_ckpt  the rank SIGKILLs itself while writing the checkpoint of that step, before the
 *               rename that would make it visible
 * Unset, every check is one branch on a flag. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/core/log.h"
#include "train_internal.h"

typedef struct fault {
    char kind[16];
    int64_t first, last;
    int rank; /* -1: every rank */
} fault;

static fault faults[16];
static int nfaults = -1; /* not parsed yet */

static void parse(void) {
    nfaults = 0;
    const char *env = getenv("DPT_FAULT");
    if (!env || !*env) return;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", env);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok && nfaults < 16; tok = strtok_r(NULL, ",", &save)) {
        fault f = {.rank = -1};
        long long a = 0, b = -1;
        int rank = -1;
        char kind[16];
        if (sscanf(tok, "%15[a-z_]@%lld-%lld:%d", kind, &a, &b, &rank) >= 3 ||
            sscanf(tok, "%15[a-z_]@%lld:%d", kind, &a, &rank) >= 2) {
            snprintf(f.kind, sizeof f.kind, "%s", kind);
            f.first = a;
            f.last = b >= a ? b : a;
            f.rank = rank;
            faults[nfaults++] = f;
        } else {
            log_warn("DPT_FAULT: cannot parse '%s' (KIND@STEP[-STEP][:RANK])", tok);
        }
    }
}

bool fault_at(const char *kind, int64_t step, int rank) {
    if (nfaults < 0) parse();
    for (int i = 0; i < nfaults; i++) {
        const fault *f = &faults[i];
        if (!strcmp(f->kind, kind) && step >= f->first && step <= f->last && (f->rank < 0 || f->rank == rank))
            return true;
    }
    return false;
}
