/* Importers: other formats -> the HDF5 split format of dataset.h. Each writes through a
 * temporary file that is renamed into place on success, so a failed conversion leaves nothing
 * under the output name. */
#ifndef DPT_DATA_PREP_H
#define DPT_DATA_PREP_H

#include "dpt/core/error.h"

typedef struct prep_idx_args {
    const char *images_path; /* IDX ubyte images, gzip or raw */
    const char *labels_path; /* IDX ubyte labels */
    const char *out_path;
    int num_classes;         /* 0: max label + 1 */
    const char *class_names; /* comma-separated, or NULL */
} prep_idx_args;

/* Writes images (N, 1, H, W), labels (N) and the attributes; prints a one-line summary into
 * summary. */
dpt_status prep_idx(const prep_idx_args *a, char *summary, size_t summary_size);

/* ImageNet-style folders of JPEGs: dir/<class>/<image>.JPEG, or a flat dir/<image>.JPEG with a
 * labels file. Raw mode stores images (N, 3, size, size): the shorter side resized to size, then
 * a centre crop. JPEG mode stores re-encoded JPEGs whose shorter side is size (see imagenet.c
 * for the layout). */
typedef struct prep_imagenet_args {
    const char *dir;
    const char *out_path;
    int size;                 /* raw: output height and width; jpeg: the shorter side */
    bool jpeg;                /* store JPEG bytes + offsets instead of raw pixels */
    int quality;              /* jpeg: 1..100 */
    const char *classes_path; /* take class_names (and their indices) from this split, or NULL */
    const char *labels_path;  /* flat layout: "NAME CLASS" lines, or NULL for the folder layout */
    int threads;              /* decode threads; 0: the cores this process may run on */
    bool skip_bad;            /* skip (and count) unreadable images instead of failing */
    bool strict_channels;     /* an image without 3 colour components is an error */
    int64_t limit;            /* > 0: only the first `limit` images in (class, name) order */
} prep_imagenet_args;

dpt_status prep_imagenet(const prep_imagenet_args *a, char *summary, size_t summary_size);

/* CIFAR-10 binary version: dir/data_batch_{1..5}.bin (train) or dir/test_batch.bin. */
typedef struct prep_cifar10_args {
    const char *dir;
    const char *out_path;
    bool test;
    int64_t limit; /* > 0: only the first `limit` records */
} prep_cifar10_args;

dpt_status prep_cifar10(const prep_cifar10_args *a, char *summary, size_t summary_size);

#endif
