/* Per-sample preprocessing: stored image -> normalised float in the graph's layout.
 *   pad crop (CIFAR style): zero-pad by crop_pad, random crop back to the stored size, flip;
 *   resize: random-resized crop (Inception/torchvision: area fraction in [scale_min,
 *   scale_max], log-uniform aspect ratio in [ratio_min, ratio_max], 10 tries, then a centre
 *   fallback) or the whole image when training; a centre crop of eval_crop of the shorter side
 *   (rrc) or the whole image when evaluating; then antialiased resampling to out_h x out_w.
 * JPEG samples are decoded first, with libjpeg-turbo's scaled decode down to the smallest
 * size that still gives the crop at least the output's resolution. Every random choice is a
 * pure function of (seed, epoch, sample index): thread and rank counts do not change a batch. */
#ifndef DPT_DATA_AUGMENT_H
#define DPT_DATA_AUGMENT_H

#include "dpt/core/tensor.h"
#include "dpt/data/dataset.h"

typedef struct aug_params {
    bool train; /* false: evaluation preprocessing */
    int crop_pad; /* pad crop: 0 is no random crop */
    bool flip;
    uint64_t seed;
    int c, h, w;          /* stored shape (raw splits) */
    int out_h, out_w;     /* output size; equal to (h, w) with !rrc means no resampling (raw) */
    bool rrc;             /* random-resized crop (training), centre crop (evaluation) */
    float scale_min, scale_max, ratio_min, ratio_max;
    float eval_crop;      /* rrc evaluation: fraction of the shorter side kept */
    bool decode_scaled;
    const float *mean, *std; /* (C), [0, 1] pixel units */
    dpt_layout layout;
} aug_params;

/* Whether samples go through the resampler (else the pad-crop path on the stored size). */
bool augment_resizes(const aug_params *p, const dpt_dataset *d);

/* The pad-crop offsets (0 .. 2*pad) and flip chosen for a sample. */
void augment_choice(const aug_params *p, int64_t sample, int64_t epoch, int *dy, int *dx, bool *flip);
/* Pad-crop path. out: one sample, (H, W, C) for NHWC or (C, H, W) for NCHW. */
void augment_sample(float *out, const uint8_t *img, int64_t sample, int64_t epoch, const aug_params *p);

/* The crop box (source pixels) and flip for a W x H source image. */
void augment_box(const aug_params *p, int64_t sample, int64_t epoch, int src_w, int src_h, double *x0, double *y0,
                 double *bw, double *bh, bool *flip);

/* Per-thread state for augment_load: decoder, resampler scratch, read and decode buffers. */
typedef struct aug_worker aug_worker;
aug_worker *aug_worker_create(void);
void aug_worker_destroy(aug_worker *w);

/* Reads, decodes and augments sample `sample` of d into out (out_h x out_w x c floats).
 * Errors (unreadable or corrupt image) name the file and the index. */
dpt_status augment_load(aug_worker *w, const dpt_dataset *d, int64_t sample, int64_t epoch, const aug_params *p,
                        float *out);

#endif
