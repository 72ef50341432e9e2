/* Writes a small JPEG split in dptrain's layout (jpeg, jpeg_offsets, labels, attributes) for
 * the integration tests: N smooth RGB images of varying size, labels i % classes.
 *   make_jpeg_split OUT.h5 N CLASSES [CORRUPT_INDEX]
 * CORRUPT_INDEX (optional) stores that image's stream cut in half. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/data/h5io.h"
#include "dpt/data/image.h"

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: make_jpeg_split OUT.h5 N CLASSES [CORRUPT_INDEX]\n");
        return 2;
    }
    const int n = atoi(argv[2]), classes = atoi(argv[3]), corrupt = argc > 4 ? atoi(argv[4]) : -1;
    img_codec *codec = img_codec_create();
    uint8_t *all = NULL, *enc = NULL, *pix = malloc(64 * 64 * 3);
    size_t len = 0, cap = 0, size = 0;
    int64_t *off = malloc(sizeof(int64_t) * (size_t)(n + 1)), *labels = malloc(sizeof(int64_t) * (size_t)n);
    for (int i = 0; i < n; i++) {
        int w = 32 + (i % 5) * 8, h = 32 + (i % 3) * 8, cls = i % classes;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int c = 0; c < 3; c++) /* class-dependent pattern: learnable */
                    pix[(y * w + x) * 3 + c] =
                        (uint8_t)(128 + 90 * sin(0.15 * (cls + 1) * (c == 0 ? x : y) + c) + 20 * sin(0.05 * i));
        if (img_jpeg_encode(codec, pix, w, h, 3, 90, &enc, &cap, &size) != DPT_OK) {
            fprintf(stderr, "make_jpeg_split: %s\n", dpt_error_message());
            return 1;
        }
        if (i == corrupt) size /= 2;
        off[i] = (int64_t)len;
        all = realloc(all, len + size);
        memcpy(all + len, enc, size);
        len += size;
        labels[i] = cls;
    }
    off[n] = (int64_t)len;
    hid_t f = H5Fcreate(argv[1], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    h5_write_array(f, "jpeg", H5T_STD_U8LE, H5T_NATIVE_UINT8, all, 1, (int64_t[]){(int64_t)len});
    h5_write_array(f, "jpeg_offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, off, 1, (int64_t[]){n + 1});
    h5_write_array(f, "labels", H5T_STD_I64LE, H5T_NATIVE_INT64, labels, 1, (int64_t[]){n});
    h5_write_attr_i64(f, "num_classes", classes);
    h5_write_attr_i64(f, "channels", 3);
    h5_write_attr_i64(f, "size", 32);
    H5Fclose(f);
    printf("wrote %s: %d JPEGs, %zu bytes\n", argv[1], n, len);
    img_codec_destroy(codec);
    free(all);
    free(enc);
    free(pix);
    free(off);
    free(labels);
    return 0;
}
