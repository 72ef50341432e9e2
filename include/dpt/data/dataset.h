/* An image classification split in HDF5 (see README "Data format"), in one of two storages:
 *   raw:  images uint8 (N, C, H, W), chunked along N     (BigGAN-PyTorch's files: `imgs`)
 *   jpeg: jpeg uint8 (total bytes), every image's JPEG stream concatenated, and
 *         jpeg_offsets int64 (N + 1): image i is jpeg[off[i] : off[i + 1]]
 * with labels integer (N) and root attributes num_classes, mean (C), std (C) in [0, 1] pixel
 * units, optional class_names; jpeg splits also carry channels and size (the stored shorter side).
 *
 * Labels are validated on open (every one in range) and held in memory. Image bytes are held in
 * memory when they fit in max_bytes; otherwise they are read on demand, directly with pread()
 * from the file when the dataset's chunks are unfiltered (no HDF5 lock, so loader threads read in
 * parallel), or through HDF5 with a sized chunk cache when the chunks are compressed. */
#ifndef DPT_DATA_DATASET_H
#define DPT_DATA_DATASET_H

#include <pthread.h>
#include <stddef.h>

#include "dpt/core/error.h"

#define DATASET_MAX_CHANNELS 16

typedef enum dataset_storage { DS_RAW = 0, DS_JPEG } dataset_storage;
typedef enum dataset_access { DS_IN_MEMORY = 0, DS_PREAD, DS_HDF5 } dataset_access;

typedef struct dataset_opts {
    int64_t subset;      /* > 0: keep the first `subset` samples */
    int64_t max_bytes;   /* image bytes held in memory at most; beyond, read on demand */
    int64_t cache_bytes; /* HDF5 chunk cache for compressed datasets */
} dataset_opts;

typedef struct dpt_dataset {
    char path[1024];
    const char *images_key; /* "images", "imgs" or "jpeg" */
    dataset_storage storage;
    dataset_access access;
    int64_t n;
    int c, h, w; /* raw: the image shape; jpeg: channels, and h = w = the stored shorter side */
    int num_classes;
    bool has_stats;
    float mean[DATASET_MAX_CHANNELS], std[DATASET_MAX_CHANNELS];
    char **class_names;
    int nclass_names;
    int32_t *labels; /* (n) */
    int64_t sample_bytes; /* raw: c*h*w */
    int64_t *offsets;     /* jpeg: (n + 1) byte offsets */
    uint8_t *images;      /* DS_IN_MEMORY: raw (n, c, h, w) or the jpeg bytes */
    /* DS_PREAD: the dataset's bytes, in row-major order, are in chunks of chunk_bytes at
     * chunk_addr[k] in the file (one chunk covering everything for a contiguous layout). */
    int fd;
    int64_t chunk_bytes, nchunks;
    int64_t *chunk_addr;
    /* DS_HDF5 */
    int64_t file_id, dset_id;
    pthread_mutex_t *h5_mu;
    char layout_desc[256]; /* for `dptrain data inspect` and the banner */
} dpt_dataset;

dpt_status dataset_open_opts(dpt_dataset *d, const char *path, const dataset_opts *o);
/* Defaults for the cache; max_bytes as given. */
dpt_status dataset_open(dpt_dataset *d, const char *path, int64_t subset, int64_t max_bytes);
void dataset_close(dpt_dataset *d);

/* The stored bytes of sample i (raw: C*H*W bytes in (C, H, W) order; jpeg: the JPEG stream).
 * *data points into memory for in-memory splits, else into *buf (grown with realloc, *cap
 * bytes). Safe to call from several threads with their own buffers. Errors name file and index. */
dpt_status dataset_sample(const dpt_dataset *d, int64_t i, uint8_t **buf, size_t *cap, const uint8_t **data,
                          size_t *size);

/* Checks that a second split (test) can be evaluated with a model trained on the first:
 * same channels, and the same image size unless `resized` (the loader resizes both). */
dpt_status dataset_check_compatible(const dpt_dataset *train, const dpt_dataset *test, bool resized);

/* Per-channel mean and std of the images, in [0, 1] pixel units. */
void dataset_compute_stats(const uint8_t *images, int64_t n, int c, int h, int w, double *mean, double *std);

#endif
