/* Runs: training a classifier, evaluating saved weights. Each returns the process exit code and
 * is called on every rank. */
#ifndef DPT_TRAIN_TRAIN_H
#define DPT_TRAIN_TRAIN_H

#include "dpt/core/config.h"

int train_classifier(const dpt_config *cfg, const char *out_dir);
int eval_classifier(const dpt_config *cfg, const char *weights_path);
/* Loader throughput on the config's training split: `batches` timed batches after a warm-up,
 * `repeats` times; prints the median. */
int bench_loader(const dpt_config *cfg, int batches, int repeats);

#endif
