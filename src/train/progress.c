/* Console progress on rank 0: an updating bar on a terminal, plain lines otherwise. */
#include <stdio.h>
#include <string.h>

#include "dpt/core/log.h"
#include "dpt/core/timer.h"
#include "train_internal.h"

void progress_init(progress *p, const dpt_config *cfg) {
    memset(p, 0, sizeof *p);
    const char *mode = cfg->train.progress;
    /* Open MPI hands its ranks a pseudo-terminal for stdout even when mpirun's own output goes
     * to a file, so a process started by a launcher cannot tell: it prints lines. */
    bool tty = log_is_tty() && !comm_get()->launched;
    p->bar = !strcmp(mode, "bar") || (!strcmp(mode, "auto") && tty);
    p->lines = !strcmp(mode, "lines") || (!strcmp(mode, "auto") && !tty);
    p->t_start = timer_now();
}

static void fmt_duration(double s, char *buf, size_t size) {
    if (s < 0 || s > 1e7) snprintf(buf, size, "?");
    else if (s >= 3600) snprintf(buf, size, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else snprintf(buf, size, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

void progress_step(progress *p, const run_ctx *r, int64_t epoch, int64_t step_in_epoch, int64_t global_step,
                   double loss, double lr, double img_s) {
    if (r->ci->rank != 0) return;
    const dpt_config *cfg = r->cfg;
    int64_t total = r->total_steps;
    double elapsed = timer_now() - p->t_start;
    double eta = global_step > 0 ? elapsed / (double)global_step * (double)(total - global_step) : -1.0;
    char eta_s[32];
    fmt_duration(eta, eta_s, sizeof eta_s);
    if (p->bar) {
        const int width = 24;
        int filled = (int)(width * (double)step_in_epoch / (double)r->steps_per_epoch);
        char bar[32];
        for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
        bar[width] = '\0';
        char line[256];
        snprintf(line, sizeof line, "epoch %lld/%lld [%s] %lld/%lld  loss %.4f  lr %.4g  %.0f img/s  ETA %s",
                 (long long)epoch + 1, (long long)cfg->train.epochs, bar, (long long)step_in_epoch,
                 (long long)r->steps_per_epoch, loss, lr, img_s, eta_s);
        log_status_line(line);
    } else if (p->lines) {
        log_info("epoch %lld/%lld  step %lld/%lld (global %lld)  loss %.4f  lr %.4g  %.0f img/s  ETA %s",
                 (long long)epoch + 1, (long long)cfg->train.epochs, (long long)step_in_epoch,
                 (long long)r->steps_per_epoch, (long long)global_step, loss, lr, img_s, eta_s);
    }
}
