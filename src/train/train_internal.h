#ifndef DPT_TRAIN_INTERNAL_H
#define DPT_TRAIN_INTERNAL_H

#include <stdio.h>

#include "dpt/backend/backend.h"
#include "dpt/comm/comm.h"
#include "dpt/comm/comm_device.h"
#include "dpt/core/config.h"
#include "dpt/data/dataset.h"
#include "dpt/data/h5io.h"
#include "dpt/data/loader.h"
#include "dpt/models/models.h"
#include "dpt/optim/schedule.h"
#include "mllog.h"
#include "tbevents.h"
#include "dpt/optim/optimizer.h"

#define MAX_SIZE_PHASES CFG_LIST_MAX
typedef struct size_phase {
    int64_t epoch; /* first epoch of the phase */
    int h, w;
} size_phase;

/* The overlapped, bucketed gradient allreduce of a graph (gradsync.c): nn_backward(g, ...,
 * grad_sync_hook, &s) between comm_grad_begin(s.sync) and comm_grad_wait(s.sync) sums g's
 * gradients across ranks while backward runs. s.sync is NULL on one rank. */
typedef struct grad_sync {
    comm_grad_sync *sync;
    int *node_param_start, *node_param_count; /* params registered by each node */
} grad_sync;
/* Buckets of comm.bucket_mb, comm.grad_dtype on the wire; device arenas through comm_device.h. */
void grad_sync_init(grad_sync *s, const nn_graph *g, int world, const dpt_config *cfg);
void grad_sync_free(grad_sync *s);
void grad_sync_hook(void *ctx, int node);

typedef struct run_ctx {
    const dpt_config *cfg;
    const comm_info *ci;
    const dpt_backend *be;
    int threads;
    char threads_why[128];
    int gpu;                /* this rank's CUDA device, -1: the CPU back end */
    char gpu_why[128];      /* how it was chosen (comm_pick_device) */
    dpt_dataset train, test;
    int local_batch, global_batch; /* of the current batch phase */
    int accum, micro_batch;        /* train.accum_steps; the graph's batch: local_batch / accum */
    int bn_group;                  /* ranks per BatchNorm statistics group */
    comm_group *bn_comm;           /* NULL: per-rank BatchNorm */
    comm_dev_group *bn_dev;        /* the same group over NCCL (GPU ranks), else NULL */
    int64_t steps_per_epoch, total_steps;
    nn_graph *g;
    model_spec spec;
    aug_params aug;
    dpt_loader *train_loader, *eval_loader;
    int workers;
    char workers_why[128];
    size_phase phases[MAX_SIZE_PHASES]; /* data.image_size */
    int nphases;
    /* training only */
    grad_sync gsync;
    dpt_optimizer opt;
    dpt_schedule sched;
    int64_t warmup_steps;
    FILE *metrics, *dawnbench;
    mllog *mllog;
    tb_writer *tb;
    char out_dir[1024];
} run_ctx;

/* Set-up shared by train and eval. Every function is called on every rank; run_agree turns one
 * rank's failure into a clean stop of all of them, with the message printed once. */
bool run_agree(dpt_status st);
dpt_status run_select_backend(run_ctx *r, const dpt_config *cfg);
/* Device collectives (comm_device.h) when the ranks compute on GPUs: all of them or none. */
dpt_status run_open_device_comm(run_ctx *r, const dpt_config *cfg);
/* Back-end memory (device or host): a float32 copy within the back end (queued on a GPU); a
 * malloc'ed host copy; a broadcast from rank 0 (through the host for device memory). */
void run_copy_floats(const dpt_backend *be, void *dst, const void *src, size_t bytes);
void *run_host_copy(const dpt_backend *be, const void *p, size_t bytes);
void run_bcast_mem(const dpt_backend *be, void *p, size_t bytes);
bool run_setup_common(run_ctx *r, const dpt_config *cfg, bool need_train_split);
/* cfg, comm, back end, compute threads (applied) and loader threads: the first part of
 * run_setup_common, also used by GAN training. */
void run_setup_threads(run_ctx *r, const dpt_config *cfg);
/* The loaders for r->train (when train) and r->test (when open), from the config. */
void run_make_loaders(run_ctx *r, bool train);
/* Cores this rank may use (the launcher's binding, else the node's cores / ranks on it). */
int run_rank_cores(const comm_info *ci, char *why, size_t size);
void run_teardown(run_ctx *r);
void run_banner(const run_ctx *r, const char *what);
/* The input size phase of an epoch. */
const size_phase *run_phase_for_epoch(const run_ctx *r, int64_t epoch);
/* The global batch of an epoch (train.batch_size phases). */
int64_t run_batch_for_epoch(const run_ctx *r, int64_t epoch);
/* Rebuilds the graph for another global batch or input size (batch-size phases, progressive
 * resizing), keeping parameters and buffers, and points the loaders at the new shape (new
 * loaders when the batch changed). Returns true when anything changed. */
bool run_reshape(run_ctx *r, int global_batch, int h, int w);

/* The input-size phases of data.image_size; the stored size when unset. */
dpt_status parse_size_phases(const cfg_phases *p, int stored_h, int stored_w, size_phase *out, int *n);

/* Evaluation over the test split, split across ranks; every sample counted once. */
typedef struct eval_result {
    double top1, top5, loss; /* fractions, mean loss */
    int64_t count;
    double seconds;
} eval_result;
eval_result run_evaluate(run_ctx *r);

/* Run directory outputs (runlog.c): every function does nothing on ranks other than 0. */
typedef struct run_result {
    int64_t epochs;
    bool reached;
    double reached_at_s, final_top1, final_top5, best_top1;
} run_result;
/* append: a resumed run goes on with the files of the run directory. */
dpt_status runlog_open(run_ctx *r, bool append);
/* A {"type": "resume"} line: the lines that follow continue from the checkpoint's step. */
void runlog_resume(run_ctx *r, int64_t step, const char *path);
void runlog_close(run_ctx *r);
void runlog_init_start(run_ctx *r);
void runlog_run_start(run_ctx *r);
void runlog_epoch(run_ctx *r, int64_t epoch, bool start);
void runlog_eval_start(run_ctx *r, int64_t epoch);
void runlog_train(run_ctx *r, int64_t step, double epoch, double loss, double lr, double momentum, double img_s,
                  double comm_exposed_ms, double elapsed_s);
void runlog_eval(run_ctx *r, int64_t step, int64_t epoch, const eval_result *e, double elapsed_s);
void runlog_summary(run_ctx *r, const run_result *res, const char *json_fields);

/* Weight files (params/<name>, buffers/<name>). */
/* Reads group/name, which must have the given shape, into dst (host). DPT_ERR_FORMAT: missing or
 * of another shape (a file of another model), naming the tensor; DPT_ERR_IO: present but
 * unreadable (a corrupt file, a failed checksum). Shared by weight files and checkpoints. */
dpt_status weights_read_tensor(hid_t f, const char *path, const char *group, const char *name, int ndim,
                               const int64_t *shape, float *dst);
dpt_status weights_save(const nn_graph *g, const char *path, const char *model, int64_t step, int64_t epoch);
dpt_status weights_load(nn_graph *g, const char *path);

/* Checkpoints (checkpoint.c; layout in README "Checkpoints"). Every function is collective
 * unless it says otherwise. */
typedef struct ckpt_meta {
    int64_t step;          /* steps done */
    int64_t epoch;         /* the epoch to go on with (0-based) */
    int64_t step_in_epoch; /* its steps already done; all of them: only its evaluation is left */
    int64_t global_batch, world, seed;
    int64_t skipped_steps; /* non-finite steps skipped so far */
    int64_t best_epoch, reached_epoch;
    int64_t finished, reached;
    double elapsed_s; /* training time so far: time to accuracy goes on from it */
    double best_top1, reached_at_s, lr, momentum, last_top1, last_top5;
    double loss_scale;       /* dynamic loss scaling's S (1 when off) */
    int64_t loss_scale_good; /* its good steps since the last change */
    char model[64], optimizer[64];
} ckpt_meta;
/* <out>/checkpoints and <out>/checkpoints/step_<8 digits>.h5 (any rank). */
void ckpt_dir(const run_ctx *r, char *buf, size_t size);
void ckpt_step_path(const run_ctx *r, int64_t step, char *buf, size_t size);
/* The steps of the step checkpoints on disk, newest first (any rank; *steps malloc'ed). */
int ckpt_list(const run_ctx *r, int64_t **steps);
/* Deletes all but the newest `keep` step checkpoints (rank 0). */
void ckpt_rotate(const run_ctx *r, int64_t keep);
/* A fresh run must not mix its checkpoints with an earlier run's (rotation would delete them):
 * an error on rank 0 when out_dir/checkpoints holds any (DPT_OK on the other ranks). */
dpt_status ckpt_check_fresh(const run_ctx *r);
/* Deletes the temporary files a writer killed before its rename left in the checkpoint directory
 * (rank 0). */
void ckpt_remove_temporaries(const run_ctx *r);
/* Rank 0 gathers every rank's buffers and writes the file atomically. The status is rank 0's,
 * on every rank (its message on rank 0). */
dpt_status ckpt_save(run_ctx *r, const ckpt_meta *m, const char *path);
/* ckpt_save to step_<m->step>.h5 (path receives it), then deletes all but the newest
 * train.keep_checkpoints. */
dpt_status ckpt_save_step(run_ctx *r, const ckpt_meta *m, char *path, size_t size);
/* best.h5: a second name for just_written when given, else a file of its own. */
dpt_status ckpt_save_best(run_ctx *r, const ckpt_meta *m, const char *just_written);
/* spec "auto": the newest step checkpoint that reads back whole and fits this run, falling back
 * past damaged ones with a warning; else the file spec. Loads parameters, optimizer state and
 * buffers (each rank its own when the world size is the same, the average otherwise) into the
 * run. Returns 1 when loaded (*m, used), 0 when "auto" found nothing, -1 on an error (printed
 * once). */
int ckpt_resume(run_ctx *r, const char *spec, ckpt_meta *m, char *used, size_t used_size);

/* Stop signals (stopsig.c): SIGTERM, SIGUSR1, SIGINT are recorded, not acted on at once. */
void stop_signals_install(void);
void stop_signals_restore(void);
int stop_signal_pending(void); /* the last signal received, 0: none */

/* Test hooks (faults.c, environment DPT_FAULT): whether `kind` fires at `step` on `rank`. */
bool fault_at(const char *kind, int64_t step, int rank);

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
