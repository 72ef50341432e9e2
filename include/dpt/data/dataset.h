/* An image classification split in HDF5 (see README "Data format"):
 *   images  uint8 (N, C, H, W), chunked along N   (BigGAN-PyTorch's files: `imgs`)
 *   labels  integer (N)
 *   attributes: num_classes, mean (C), std (C) in [0, 1] pixel units, optional class_names.
 * The split is validated on open (shapes, types, every label in range) and held in memory. */
#ifndef DPT_DATA_DATASET_H
#define DPT_DATA_DATASET_H

#include "dpt/core/error.h"

#define DATASET_MAX_CHANNELS 16

typedef struct dpt_dataset {
    char path[1024];
    const char *images_key; /* "images" or "imgs" */
    int64_t n;
    int c, h, w;
    int num_classes;
    bool has_stats;
    float mean[DATASET_MAX_CHANNELS], std[DATASET_MAX_CHANNELS];
    char **class_names;
    int nclass_names;
    uint8_t *images; /* (n, c, h, w) */
    int32_t *labels; /* (n) */
} dpt_dataset;

/* subset > 0 keeps the first `subset` samples. max_bytes bounds the in-memory image array. */
dpt_status dataset_open(dpt_dataset *d, const char *path, int64_t subset, int64_t max_bytes);
void dataset_close(dpt_dataset *d);

/* Checks that a second split (test) matches the first (train) in shape and classes. */
dpt_status dataset_check_compatible(const dpt_dataset *train, const dpt_dataset *test);

/* Per-channel mean and std of the images, in [0, 1] pixel units. */
void dataset_compute_stats(const uint8_t *images, int64_t n, int c, int h, int w, double *mean, double *std);

#endif
