/* dptrain data inspect: what a split holds and how it is stored. Runs without MPI. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dpt/data/dataset.h"

static int inspect(const char *path) {
    dpt_dataset d;
    /* max_bytes 0: nothing is loaded, the reader plans on-demand access (and says how). */
    dataset_opts o = {.subset = 0, .max_bytes = 0, .cache_bytes = 1 << 20};
    if (dataset_open_opts(&d, path, &o) != DPT_OK) {
        fprintf(stderr, "dptrain: error: %s\n", dpt_error_message());
        return 1;
    }
    printf("%s\n", path);
    if (d.storage == DS_RAW) {
        printf("  storage    raw uint8 '%s' (%lld, %d, %d, %d), %.1f MB\n", d.images_key, (long long)d.n, d.c, d.h,
               d.w, (double)d.n * d.sample_bytes / 1e6);
    } else {
        int64_t bytes = d.offsets[d.n] - d.offsets[0], lo = INT64_MAX, hi = 0;
        for (int64_t i = 0; i < d.n; i++) {
            int64_t b = d.offsets[i + 1] - d.offsets[i];
            lo = b < lo ? b : lo;
            hi = b > hi ? b : hi;
        }
        printf("  storage    JPEG bytes 'jpeg' + 'jpeg_offsets': %lld images, %d channels, shorter side %d, %.1f MB "
               "(mean %.1f KB, min %.1f KB, max %.1f KB per image)\n",
               (long long)d.n, d.c, d.h, bytes / 1e6, bytes / 1e3 / (double)d.n, lo / 1e3, hi / 1e3);
    }
    printf("  layout     %s\n", d.layout_desc);
    static const char *access[] = {"in memory", "pread of unfiltered chunks (parallel, no HDF5 lock)",
                                   "HDF5 reads with a chunk cache (compressed chunks)"};
    printf("  reading    when larger than data.max_memory_mb: %s\n", access[d.access]);
    printf("  classes    %d", d.num_classes);
    int64_t *count = calloc((size_t)d.num_classes, sizeof(int64_t));
    for (int64_t i = 0; count && i < d.n; i++) count[d.labels[i]]++;
    int64_t cmin = INT64_MAX, cmax = 0;
    for (int k = 0; count && k < d.num_classes; k++) {
        cmin = count[k] < cmin ? count[k] : cmin;
        cmax = count[k] > cmax ? count[k] : cmax;
    }
    printf(" (%lld to %lld samples per class)", (long long)cmin, (long long)cmax);
    if (d.class_names) {
        printf(": ");
        for (int k = 0; k < d.nclass_names && k < 8; k++) printf("%s%s", k ? ", " : "", d.class_names[k]);
        if (d.nclass_names > 8) printf(", ...");
    }
    printf("\n  normalise  mean");
    for (int k = 0; k < d.c; k++) printf(" %.4f", d.mean[k]);
    printf("  std");
    for (int k = 0; k < d.c; k++) printf(" %.4f", d.std[k]);
    printf("%s\n", d.has_stats ? "" : "  (no attributes: estimated or defaults)");
    free(count);
    dataset_close(&d);
    return 0;
}

int cmd_data(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[0], "inspect")) return inspect(argv[1]);
    fprintf(stderr, "usage: dptrain data inspect FILE.h5\n");
    return 2;
}
