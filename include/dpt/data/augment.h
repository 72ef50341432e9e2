/* Per-sample preprocessing: uint8 (C, H, W) -> normalised float in the graph's layout, with
 * random crop (zero padding, then a crop back to H x W) and horizontal flip when training.
 * The random choices depend only on (seed, epoch, sample index). */
#ifndef DPT_DATA_AUGMENT_H
#define DPT_DATA_AUGMENT_H

#include "dpt/core/tensor.h"

typedef struct aug_params {
    bool train;   /* false: no augmentation */
    int crop_pad; /* 0: no random crop */
    bool flip;
    uint64_t seed;
    int c, h, w;
    const float *mean, *std; /* (C), [0, 1] pixel units */
    dpt_layout layout;
} aug_params;

/* The crop offsets (0 .. 2*pad) and flip chosen for a sample. */
void augment_choice(const aug_params *p, int64_t sample, int64_t epoch, int *dy, int *dx, bool *flip);
/* out: one sample, (H, W, C) for NHWC or (C, H, W) for NCHW. */
void augment_sample(float *out, const uint8_t *img, int64_t sample, int64_t epoch, const aug_params *p);

#endif
