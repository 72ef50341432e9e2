#include "dpt/optim/schedule.h"

#include <math.h>
#include <string.h>

void schedule_init(dpt_schedule *s, const dpt_config *cfg, int64_t global_batch, int64_t steps_per_epoch,
                   int64_t total_steps) {
    memset(s, 0, sizeof *s);
    const char *name = cfg->schedule.name;
    s->kind = !strcmp(name, "step") ? SCHED_STEP
              : !strcmp(name, "cosine") ? SCHED_COSINE
              : !strcmp(name, "onecycle") ? SCHED_ONECYCLE
                                          : SCHED_CONSTANT;
    s->peak_lr = cfg->optim.lr * (cfg->schedule.scale_lr ? (double)global_batch / cfg->schedule.reference_batch : 1.0);
    s->start_factor = cfg->schedule.warmup_start_factor;
    s->steps_per_epoch = steps_per_epoch;
    s->total_steps = total_steps > 0 ? total_steps : 1;
    s->warmup_steps = (int64_t)llround(cfg->schedule.warmup_epochs * (double)steps_per_epoch);
    s->nmilestones = cfg->schedule.milestones.n;
    for (int i = 0; i < s->nmilestones; i++) s->milestones[i] = cfg->schedule.milestones.v[i];
    s->gamma = cfg->schedule.gamma;
    s->final_factor = cfg->schedule.final_lr_factor;
    s->peak_step = (int64_t)llround(cfg->schedule.peak_fraction * (double)s->total_steps);
    if (s->peak_step < 1) s->peak_step = 1;
    s->cycle_momentum = cfg->schedule.cycle_momentum;
    s->momentum = cfg->optim.momentum;
    s->momentum_min = cfg->schedule.momentum_min;
    s->momentum_max = cfg->schedule.momentum_max;
}

/* Linear interpolation from a (at t = 0) to b (at t = 1). */
static double lerp(double a, double b, double t) { return a + (b - a) * t; }

void schedule_at(const dpt_schedule *s, int64_t step, double *lr, double *momentum) {
    const double peak = s->peak_lr;
    *momentum = s->momentum;
    if (s->kind == SCHED_ONECYCLE) {
        if (step < s->peak_step) {
            /* step + 1: the last rising step reaches the peak and the first one is not zero. */
            double t = (double)(step + 1) / (double)s->peak_step;
            *lr = lerp(s->start_factor * peak, peak, t);
            if (s->cycle_momentum) *momentum = lerp(s->momentum_max, s->momentum_min, t);
        } else {
            int64_t span = s->total_steps - s->peak_step;
            double t = span > 0 ? (double)(step - s->peak_step) / (double)span : 1.0;
            if (t > 1.0) t = 1.0;
            *lr = lerp(peak, s->final_factor * peak, t);
            if (s->cycle_momentum) *momentum = lerp(s->momentum_min, s->momentum_max, t);
        }
        return;
    }
    if (step < s->warmup_steps) {
        *lr = lerp(s->start_factor * peak, peak, (double)(step + 1) / (double)s->warmup_steps);
        return;
    }
    switch (s->kind) {
    case SCHED_STEP: {
        double epoch = (double)step / (double)s->steps_per_epoch, f = 1.0;
        for (int i = 0; i < s->nmilestones; i++)
            if (epoch >= s->milestones[i]) f *= s->gamma;
        *lr = peak * f;
        break;
    }
    case SCHED_COSINE: {
        int64_t span = s->total_steps - s->warmup_steps;
        double t = span > 0 ? (double)(step - s->warmup_steps) / (double)span : 1.0;
        if (t > 1.0) t = 1.0;
        *lr = s->final_factor * peak + (1.0 - s->final_factor) * peak * 0.5 * (1.0 + cos(M_PI * t));
        break;
    }
    default: *lr = peak; break;
    }
}
