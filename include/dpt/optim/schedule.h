/* Learning-rate and momentum schedules, as functions of the position in training measured in
 * epochs (so that a change of batch size between epochs keeps the shape):
 *   linear scaling rule: peak lr = optim.lr * global_batch / reference_batch (Goyal et al.),
 *     with the batch of the step: a batch-size phase change rescales the lr at that epoch
 *   warmup (constant, step, cosine, poly): linear from warmup_start_factor * peak to the peak
 *   step: peak * gamma^(milestones passed); cosine: to final_lr_factor * peak
 *   poly (LARS, MLPerf): final + (peak - final) * (1 - t)^poly_power, t over the epochs after warmup
 *   onecycle (fast.ai / DAWNBench ResNet-9): linear from warmup_start_factor * peak up to the
 *     peak at peak_fraction of training, then linear down to final_lr_factor * peak; momentum
 *     moves the opposite way between momentum_max and momentum_min when cycle_momentum. */
#ifndef DPT_OPTIM_SCHEDULE_H
#define DPT_OPTIM_SCHEDULE_H

#include "dpt/core/config.h"

typedef enum sched_kind { SCHED_CONSTANT, SCHED_STEP, SCHED_COSINE, SCHED_ONECYCLE, SCHED_POLY } sched_kind;

typedef struct dpt_schedule {
    sched_kind kind;
    double base_lr;          /* optim.lr */
    bool scale_lr;
    double reference_batch;
    double start_factor;
    double warmup_epochs, total_epochs;
    double milestones[CFG_LIST_MAX];
    int nmilestones;
    double gamma, final_factor, power;
    double peak_epoch; /* onecycle */
    bool cycle_momentum;
    double momentum, momentum_min, momentum_max;
} dpt_schedule;

/* total_epochs: the position training ends at (fractional when train.max_steps cuts it). */
void schedule_init(dpt_schedule *s, const dpt_config *cfg, double total_epochs);
/* The peak lr at a global batch (linear scaling rule). */
double schedule_peak_lr(const dpt_schedule *s, int64_t global_batch);
/* lr and momentum for the update made by a step that starts at position `epoch` and advances
 * training by `step_epochs` (= global batch / training samples), with that global batch. */
void schedule_at(const dpt_schedule *s, double epoch, double step_epochs, int64_t global_batch, double *lr,
                 double *momentum);

#endif
