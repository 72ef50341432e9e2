/* IDX (MNIST, Fashion-MNIST) importer. Format: magic 0x0000TTDD (TT = 0x08 unsigned byte,
 * DD = number of dimensions), DD big-endian uint32 sizes, then the data. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "dpt/data/dataset.h"
#include "dpt/data/h5io.h"
#include "dpt/data/prep.h"

typedef struct idx_file {
    int ndim;
    uint32_t dims[4];
    uint8_t *data;
    size_t bytes;
} idx_file;

static uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* gzread reads gzip and plain files alike. */
static dpt_status read_idx(const char *path, int want_ndim, idx_file *out) {
    memset(out, 0, sizeof *out);
    gzFile f = gzopen(path, "rb");
    if (!f) return dpt_error(DPT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t head[4 + 4 * 4];
    dpt_status st = DPT_OK;
    if (gzread(f, head, 4) != 4) st = dpt_error(DPT_ERR_FORMAT, "%s: too short for an IDX header", path);
    else if (head[0] != 0 || head[1] != 0 || head[2] != 0x08)
        st = dpt_error(DPT_ERR_FORMAT, "%s: not an unsigned-byte IDX file (magic %02x%02x%02x%02x)", path, head[0],
                       head[1], head[2], head[3]);
    else if (head[3] != want_ndim)
        st = dpt_error(DPT_ERR_FORMAT, "%s: has %d dimensions, expected %d", path, head[3], want_ndim);
    if (st == DPT_OK && gzread(f, head + 4, (unsigned)(4 * want_ndim)) != 4 * want_ndim)
        st = dpt_error(DPT_ERR_FORMAT, "%s: truncated header", path);
    if (st == DPT_OK) {
        out->ndim = want_ndim;
        out->bytes = 1;
        for (int i = 0; i < want_ndim; i++) {
            out->dims[i] = be32(head + 4 + 4 * i);
            out->bytes *= out->dims[i];
        }
        if (out->bytes == 0) st = dpt_error(DPT_ERR_FORMAT, "%s: empty", path);
    }
    if (st == DPT_OK) {
        out->data = dpt_xmalloc(out->bytes);
        size_t got = 0;
        while (got < out->bytes) {
            unsigned want = (unsigned)DPT_MIN(out->bytes - got, (size_t)1 << 30);
            int r = gzread(f, out->data + got, want);
            if (r <= 0) break;
            got += (size_t)r;
        }
        if (got != out->bytes)
            st = dpt_error(DPT_ERR_FORMAT, "%s: truncated: %zu of %zu data bytes", path, got, out->bytes);
    }
    gzclose(f);
    if (st != DPT_OK) free(out->data);
    return st;
}

static int split_names(const char *list, char ***names) {
    int n = 1;
    for (const char *p = list; *p; p++) n += *p == ',';
    *names = dpt_xcalloc((size_t)n, sizeof(char *));
    char *copy = dpt_xstrdup(list), *save = NULL;
    int i = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok && i < n; tok = strtok_r(NULL, ",", &save))
        (*names)[i++] = dpt_xstrdup(tok);
    free(copy);
    return i;
}

dpt_status prep_idx(const prep_idx_args *a, char *summary, size_t summary_size) {
    idx_file img, lab;
    DPT_TRY(read_idx(a->images_path, 3, &img));
    dpt_status st = read_idx(a->labels_path, 1, &lab);
    if (st != DPT_OK) {
        free(img.data);
        return st;
    }
    int64_t n = img.dims[0], h = img.dims[1], w = img.dims[2];
    int num_classes = a->num_classes;
    char **names = NULL;
    int nnames = 0;
    if (lab.dims[0] != img.dims[0])
        st = dpt_error(DPT_ERR_FORMAT, "%s has %u labels but %s has %u images", a->labels_path, lab.dims[0],
                       a->images_path, img.dims[0]);
    if (st == DPT_OK) {
        int maxl = 0;
        for (int64_t i = 0; i < n; i++) maxl = lab.data[i] > maxl ? lab.data[i] : maxl;
        if (num_classes == 0) num_classes = maxl + 1;
        if (maxl >= num_classes)
            st = dpt_error(DPT_ERR_FORMAT, "%s: label %d is out of range for --num-classes %d", a->labels_path, maxl,
                           num_classes);
    }
    if (st == DPT_OK && a->class_names) {
        nnames = split_names(a->class_names, &names);
        if (nnames != num_classes)
            st = dpt_error(DPT_ERR_ARG, "--class-names lists %d names but there are %d classes", nnames, num_classes);
    }
    if (st == DPT_OK) {
        h5_quiet();
        char tmp[4200];
        hid_t f = h5_create_file_atomic(a->out_path, tmp, sizeof tmp);
        if (f < 0) st = dpt_error(DPT_ERR_IO, "%s: cannot create (does the directory exist?)", a->out_path);
        if (st == DPT_OK) {
            /* images (N, 1, H, W) uint8, chunks of ~1 MiB along N, deflate level 1. */
            hsize_t dims[4] = {(hsize_t)n, 1, (hsize_t)h, (hsize_t)w};
            hsize_t per = (hsize_t)DPT_MAX(1, (1 << 20) / (h * w));
            hsize_t chunk[4] = {per < (hsize_t)n ? per : (hsize_t)n, 1, (hsize_t)h, (hsize_t)w};
            hid_t sp = H5Screate_simple(4, dims, NULL), pl = H5Pcreate(H5P_DATASET_CREATE);
            H5_CHECK(H5Pset_chunk(pl, 4, chunk));
            H5_CHECK(H5Pset_deflate(pl, 1));
            hid_t ds = H5Dcreate2(f, "images", H5T_STD_U8LE, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
            H5_CHECK(ds);
            H5_CHECK(H5Dwrite(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, img.data));
            H5Dclose(ds);
            H5Pclose(pl);
            H5Sclose(sp);

            int64_t *labels = dpt_xmalloc((size_t)n * sizeof(int64_t));
            for (int64_t i = 0; i < n; i++) labels[i] = lab.data[i];
            hsize_t ldims[1] = {(hsize_t)n};
            sp = H5Screate_simple(1, ldims, NULL);
            ds = H5Dcreate2(f, "labels", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            H5_CHECK(ds);
            H5_CHECK(H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels));
            H5Dclose(ds);
            H5Sclose(sp);
            free(labels);

            double mean[1], std[1];
            dataset_compute_stats(img.data, n, 1, (int)h, (int)w, mean, std);
            h5_write_attr_i64(f, "num_classes", num_classes);
            h5_write_attr_f64s(f, "mean", mean, 1);
            h5_write_attr_f64s(f, "std", std, 1);
            if (names) h5_write_attr_strings(f, "class_names", (const char *const *)names, nnames);
            h5_write_attr_string(f, "source", a->images_path);
            st = h5_commit_file(f, tmp, a->out_path);
            if (st == DPT_OK)
                snprintf(summary, summary_size, "%s: %lld images (1, %lld, %lld), %d classes, mean %.4f, std %.4f",
                         a->out_path, (long long)n, (long long)h, (long long)w, num_classes, mean[0], std[0]);
        }
    }
    if (names)
        for (int i = 0; i < nnames; i++) free(names[i]);
    free(names);
    free(img.data);
    free(lab.data);
    return st;
}
