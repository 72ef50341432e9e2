/* BigGAN training, sampling and metrics (gan.c, gan_ckpt.c, gan_features.c, gan_sample.c). */
#ifndef DPT_TRAIN_GAN_INTERNAL_H
#define DPT_TRAIN_GAN_INTERNAL_H

#include "dpt/metrics/gan_metrics.h"
#include "train_internal.h"

/* The gan_spec of a config: image channels and classes come from the data. */
dpt_status gan_spec_from_config(const dpt_config *cfg, int image_channels, int num_classes, gan_spec *s);
/* A generator or discriminator graph for a per-rank batch, initialised from the seed; G's BatchNorm
 * is cross-replica over `bn` when given. */
nn_graph *gan_build(const gan_spec *s, bool generator, int batch, comm_group *bn, uint64_t seed, gan_io *io,
                    dpt_status *st);

/* Latents and labels of samples [first, first + n) of draw `draw`: z ~ N(0, 1) per element
 * (|z| <= truncation by resampling when truncation > 0), labels uniform over the classes. Pure
 * functions of (seed, draw, sample index): a global batch draws the same values on any number of
 * ranks, each rank its own slice. y may be NULL. */
void gan_draw(float *z, int32_t *y, int n, int dim_z, int num_classes, uint64_t seed, uint64_t draw, int64_t first,
              float truncation);

/* Runs G (eval mode unless train) on n samples in batches of G->batch; out receives n images
 * (C, H, W) each in G->layout's sample order. */
void gan_generate(nn_graph *G, const gan_io *io, const float *z, const int32_t *y, int n, bool train, float *out);

/* Standing statistics (BigGAN-PyTorch's accumulate_standing_stats): every BatchNorm running
 * mean and variance of G becomes the average of the batch statistics of `batches` training
 * forwards on random z and labels, averaged across ranks (collective). */
void gan_standing_stats(nn_graph *G, const gan_io *io, const gan_spec *s, int batches, uint64_t seed, uint64_t draw);

/* Fixed-z sample grid (a row per class, up to 10, 8 columns) and the interpolation sheet (a row per
 * class, z moving linearly between two draws over 10 columns) of G in eval mode, as PNGs. */
dpt_status gan_write_samples(nn_graph *G, const gan_io *io, const gan_spec *s, uint64_t seed, const char *path);
dpt_status gan_write_interp(nn_graph *G, const gan_io *io, const gan_spec *s, uint64_t seed, const char *path);

/* The feature network for FID and IS: a dptrain classifier. */
typedef struct featnet {
    nn_graph *g;
    int feat_value;       /* input of the last linear layer: (N, F) */
    int c, h, w, classes; /* its input and outputs */
    int features;
    float scale[DATASET_MAX_CHANNELS], shift[DATASET_MAX_CHANNELS]; /* pixel 0..255 -> its input */
    char name[80];        /* FID-<name> */
    float *input, *feat, *prob; /* (batch, ...) */
    uint8_t *pix;
} featnet;
/* Builds the classifier of cfg->gan.fid_config (or the config.ini beside gan.fid_weights) for
 * per-rank batches of `batch` and loads gan.fid_weights; images of `channels` channels. Collective. */
bool featnet_open(featnet *f, const dpt_config *cfg, int batch, int channels);
void featnet_close(featnet *f);
/* Features and class probabilities of n <= batch images (C, res, res) in `layout` with values in
 * [-1, 1]: each is quantised to 8 bits (as a saved PNG would be), resampled to the classifier's
 * input size and normalised as its training data were. Results in f->feat (n, F), f->prob (n, K). */
void featnet_run(featnet *f, const float *images, int n, int res, dpt_layout layout);

/* GAN checkpoints: G, D, G-EMA (params/ and buffers/ under /G, /D, /G_ema), Adam moments
 * (/optimizer/{G,D}/{m,v}/<name>) and the run's position as root attributes. Rank 0 writes;
 * every rank's BatchNorm statistics are averaged into the file (SN vectors are equal on all
 * ranks). */
typedef struct gan_meta {
    int64_t step, d_batches, world, seed, global_batch;
    double elapsed_s, last_fid, best_fid, first_fid;
    int64_t last_fid_step;
} gan_meta;
typedef struct gan_state {
    nn_graph *G, *D, *E;
    float *mg, *vg, *md, *vd; /* Adam moments, laid out like the gradient arenas */
} gan_state;
/* Collective; rank 0 creates <out>/checkpoints when needed and writes `path` atomically. The
 * status is rank 0's, on every rank. */
dpt_status gan_ckpt_save(const run_ctx *r, const gan_state *s, const gan_meta *m, const char *path);
/* Loads `path` into s (the calling rank reads the file itself) and *m; with only_ema, just G_ema's parameters
 * and buffers into s->E (the others may be NULL). Errors name the file and tensor. */
dpt_status gan_ckpt_load(gan_state *s, gan_meta *m, const char *path, bool only_ema);

#endif
