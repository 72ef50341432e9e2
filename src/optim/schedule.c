#include "dpt/optim/schedule.h"

#include <math.h>
#include <string.h>

void schedule_init(dpt_schedule *s, const dpt_config *cfg, double total_epochs) {
    memset(s, 0, sizeof *s);
    const char *name = cfg->schedule.name;
    s->kind = !strcmp(name, "step")       ? SCHED_STEP
              : !strcmp(name, "cosine")   ? SCHED_COSINE
              : !strcmp(name, "onecycle") ? SCHED_ONECYCLE
              : !strcmp(name, "poly")     ? SCHED_POLY
                                          : SCHED_CONSTANT;
    s->base_lr = cfg->optim.lr;
    s->scale_lr = cfg->schedule.scale_lr;
    s->reference_batch = cfg->schedule.reference_batch;
    s->start_factor = cfg->schedule.warmup_start_factor;
    s->total_epochs = total_epochs > 0 ? total_epochs : 1;
    s->warmup_epochs = cfg->schedule.warmup_epochs;
    s->nmilestones = cfg->schedule.milestones.n;
    for (int i = 0; i < s->nmilestones; i++) s->milestones[i] = cfg->schedule.milestones.v[i];
    s->gamma = cfg->schedule.gamma;
    s->final_factor = cfg->schedule.final_lr_factor;
    s->power = cfg->schedule.poly_power;
    s->peak_epoch = cfg->schedule.peak_fraction * s->total_epochs;
    s->cycle_momentum = cfg->schedule.cycle_momentum;
    s->momentum = cfg->optim.momentum;
    s->momentum_min = cfg->schedule.momentum_min;
    s->momentum_max = cfg->schedule.momentum_max;
}

double schedule_peak_lr(const dpt_schedule *s, int64_t global_batch) {
    return s->base_lr * (s->scale_lr ? (double)global_batch / s->reference_batch : 1.0);
}

/* Linear interpolation from a (at t = 0) to b (at t = 1). */
static double lerp(double a, double b, double t) { return a + (b - a) * t; }

/* Fraction of the span [from, to] that position x has covered, in [0, 1]. */
static double progress(double x, double from, double to) {
    if (to <= from) return 1.0;
    double t = (x - from) / (to - from);
    return t < 0.0 ? 0.0 : t > 1.0 ? 1.0 : t;
}

void schedule_at(const dpt_schedule *s, double epoch, double step_epochs, int64_t global_batch, double *lr,
                 double *momentum) {
    const double peak = schedule_peak_lr(s, global_batch);
    /* Rising phases use the position after the step: the last rising step reaches the peak
     * and the first one is not zero. */
    const double after = epoch + step_epochs;
    *momentum = s->momentum;
    if (s->kind == SCHED_ONECYCLE) {
        if (epoch < s->peak_epoch) {
            double t = progress(after, 0.0, s->peak_epoch);
            *lr = lerp(s->start_factor * peak, peak, t);
            if (s->cycle_momentum) *momentum = lerp(s->momentum_max, s->momentum_min, t);
        } else {
            double t = progress(epoch, s->peak_epoch, s->total_epochs);
            *lr = lerp(peak, s->final_factor * peak, t);
            if (s->cycle_momentum) *momentum = lerp(s->momentum_min, s->momentum_max, t);
        }
        return;
    }
    if (epoch < s->warmup_epochs) {
        *lr = lerp(s->start_factor * peak, peak, progress(after, 0.0, s->warmup_epochs));
        return;
    }
    double t = progress(epoch, s->warmup_epochs, s->total_epochs), f = 1.0;
    switch (s->kind) {
    case SCHED_STEP:
        for (int i = 0; i < s->nmilestones; i++)
            if (epoch >= s->milestones[i]) f *= s->gamma;
        *lr = peak * f;
        break;
    case SCHED_COSINE: *lr = s->final_factor * peak + (1.0 - s->final_factor) * peak * 0.5 * (1.0 + cos(M_PI * t)); break;
    case SCHED_POLY: *lr = s->final_factor * peak + (1.0 - s->final_factor) * peak * pow(1.0 - t, s->power); break;
    default: *lr = peak; break;
    }
}
