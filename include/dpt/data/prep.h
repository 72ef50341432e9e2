/* Importers: other formats -> the HDF5 split format of dataset.h. */
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

#endif
