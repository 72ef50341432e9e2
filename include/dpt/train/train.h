/* Runs: training a classifier, evaluating saved weights. Each returns the process exit code and
 * is called on every rank. */
#ifndef DPT_TRAIN_TRAIN_H
#define DPT_TRAIN_TRAIN_H

#include "dpt/core/config.h"

/* resume: NULL (a fresh run; refused when out_dir holds checkpoints), "auto" (the newest valid
 * checkpoint in out_dir/checkpoints, or a fresh run when there is none) or a checkpoint file. */
int train_classifier(const dpt_config *cfg, const char *out_dir, const char *resume);
/* A BigGAN (model.name = biggan, the [gan] section): resume as train_classifier's. */
int train_gan(const dpt_config *cfg, const char *out_dir, const char *resume);
/* dptrain sample's options after CONFIG (--checkpoint, -o, --classes, --truncation, ...); rank 0 works. */
int sample_gan(const dpt_config *cfg, int argc, char **argv);
/* weights_path: a weight file or a checkpoint (both hold params/ and buffers/). */
int eval_classifier(const dpt_config *cfg, const char *weights_path);
/* Loader throughput on the config's training split: `batches` timed batches after a warm-up,
 * `repeats` times; prints the median. */
int bench_loader(const dpt_config *cfg, int batches, int repeats);

/* dptrain bench step: timed training steps of the config's model (model.*, train.batch_size as
 * this process's batch, train.device and train.precision) on synthetic size x size images. */
typedef struct bench_step_opts {
    int steps, warmup;            /* timed steps after warm-up steps */
    int size, channels, classes;  /* synthetic input and label range */
    bool profile;                 /* per-layer table */
    bool no_comm;                 /* several ranks: no gradient allreduce (compute alone) */
} bench_step_opts;
int bench_step(const dpt_config *cfg, const bench_step_opts *o);

#endif
