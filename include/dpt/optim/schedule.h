/* Learning-rate and momentum schedules, as functions of the global step.
 *   linear scaling rule: peak lr = optim.lr * global_batch / reference_batch (Goyal et al.)
 *   warmup (constant, step, cosine): linear from warmup_start_factor * peak to peak
 *   step: peak * gamma^(milestones passed); cosine: to final_lr_factor * peak
 *   onecycle (fast.ai / DAWNBench ResNet-9): linear from warmup_start_factor * peak up to the
 *     peak at peak_fraction of training, then linear down to final_lr_factor * peak; momentum
 *     moves the opposite way between momentum_max and momentum_min when cycle_momentum. */
#ifndef DPT_OPTIM_SCHEDULE_H
#define DPT_OPTIM_SCHEDULE_H

#include "dpt/core/config.h"

typedef enum sched_kind { SCHED_CONSTANT, SCHED_STEP, SCHED_COSINE, SCHED_ONECYCLE } sched_kind;

typedef struct dpt_schedule {
    sched_kind kind;
    double peak_lr;
    double start_factor;
    int64_t warmup_steps, total_steps, steps_per_epoch;
    double milestones[CFG_LIST_MAX];
    int nmilestones;
    double gamma, final_factor;
    int64_t peak_step;
    bool cycle_momentum;
    double momentum, momentum_min, momentum_max;
} dpt_schedule;

void schedule_init(dpt_schedule *s, const dpt_config *cfg, int64_t global_batch, int64_t steps_per_epoch,
                   int64_t total_steps);
/* lr and momentum for the update made at `step` (0-based). */
void schedule_at(const dpt_schedule *s, int64_t step, double *lr, double *momentum);

#endif
