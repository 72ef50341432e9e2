/* Stop signals: SIGTERM (what a scheduler sends before it kills a job), SIGUSR1 (Slurm's
 * `--signal=USR1@120`, and what mpirun forwards to every rank) and SIGINT. The handler only
 * records the signal; the step loop agrees on it across ranks at the next step boundary, writes
 * a checkpoint and exits 0. A second SIGINT ends the process at once. */
#include <signal.h>
#include <string.h>

#include "train_internal.h"

static volatile sig_atomic_t pending;

static void on_signal(int sig) {
    if (sig == SIGINT && pending == SIGINT) {
        signal(SIGINT, SIG_DFL);
        raise(SIGINT);
        return;
    }
    pending = sig;
}

void stop_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

void stop_signals_restore(void) {
    signal(SIGTERM, SIG_DFL);
    signal(SIGUSR1, SIG_DFL);
    signal(SIGINT, SIG_DFL);
}

int stop_signal_pending(void) { return pending; }
