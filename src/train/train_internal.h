#ifndef DPT_TRAIN_INTERNAL_H
#define DPT_TRAIN_INTERNAL_H

#include <stdio.h>

#include "dpt/backend/backend.h"
#include "dpt/comm/comm.h"
#include "dpt/core/config.h"
#include "dpt/data/dataset.h"
#include "dpt/data/loader.h"
#include "dpt/models/models.h"
#include "dpt/optim/schedule.h"
#include "dpt/optim/sgd.h"

typedef struct run_ctx {
    const dpt_config *cfg;
    const comm_info *ci;
    const dpt_backend *be;
    int threads;
    char threads_why[128];
    dpt_dataset train, test;
    int local_batch, global_batch;
    int64_t steps_per_epoch, total_steps;
    nn_graph *g;
    model_spec spec;
    aug_params aug;
    dpt_loader *train_loader, *eval_loader;
    /* training only */
    comm_grad_sync *sync;
    int *node_param_start, *node_param_count; /* params registered by each node */
    dpt_sgd sgd;
    dpt_schedule sched;
    FILE *metrics, *dawnbench;
    char out_dir[1024];
} run_ctx;

/* Set-up shared by train and eval. Every function is called on every rank; run_agree turns one
 * rank's failure into a clean stop of all of them, with the message printed once. */
bool run_agree(dpt_status st);
bool run_setup_common(run_ctx *r, const dpt_config *cfg, bool need_train_split);
void run_teardown(run_ctx *r);
void run_banner(const run_ctx *r, const char *what);

/* Evaluation over the test split, split across ranks; every sample counted once. */
typedef struct eval_result {
    double top1, top5, loss; /* fractions, mean loss */
    int64_t count;
    double seconds;
} eval_result;
eval_result run_evaluate(run_ctx *r);

/* Run directory outputs. */
dpt_status runlog_open(run_ctx *r);
void runlog_close(run_ctx *r);
void runlog_train(run_ctx *r, int64_t step, double epoch, double loss, double lr, double momentum, double img_s,
                  double comm_exposed_ms, double elapsed_s);
void runlog_eval(run_ctx *r, int64_t step, int64_t epoch, const eval_result *e, double elapsed_s);
void runlog_summary(run_ctx *r, const char *json_fields);

/* Weight files (params/<name>, buffers/<name>). */
dpt_status weights_save(const nn_graph *g, const char *path, const char *model, int64_t step, int64_t epoch);
dpt_status weights_load(nn_graph *g, const char *path);

/* Console progress. */
typedef struct progress {
    bool bar; /* single updating line (TTY) */
    bool lines;
    double t_start;
} progress;
void progress_init(progress *p, const dpt_config *cfg);
void progress_step(progress *p, const run_ctx *r, int64_t epoch, int64_t step_in_epoch, int64_t global_step,
                   double loss, double lr, double img_s);

#endif
