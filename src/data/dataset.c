#include "dpt/data/dataset.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dpt/data/h5io.h"

static dpt_status read_labels(hid_t f, const char *path, int64_t n_images, int64_t n, int32_t *out) {
    hid_t ds = H5Dopen2(f, "labels", H5P_DEFAULT);
    if (ds < 0) return dpt_error(DPT_ERR_FORMAT, "%s: dataset 'labels' missing", path);
    hid_t sp = H5Dget_space(ds), t = H5Dget_type(ds);
    hsize_t dims[2] = {0, 0};
    int rank = H5Sget_simple_extent_ndims(sp);
    if (rank == 1) H5Sget_simple_extent_dims(sp, dims, NULL);
    dpt_status st = DPT_OK;
    if (rank != 1 || H5Tget_class(t) != H5T_INTEGER) {
        st = dpt_error(DPT_ERR_FORMAT, "%s: 'labels' must be a 1-d integer dataset", path);
    } else if ((int64_t)dims[0] != n_images) {
        st = dpt_error(DPT_ERR_FORMAT, "%s: 'labels' has %llu entries but the images have %lld", path,
                       (unsigned long long)dims[0], (long long)n_images);
    } else {
        int64_t *tmp = dpt_xmalloc((size_t)n * sizeof(int64_t));
        hsize_t start[1] = {0}, count[1] = {(hsize_t)n};
        hid_t ms = H5Screate_simple(1, count, NULL);
        H5Sselect_hyperslab(sp, H5S_SELECT_SET, start, NULL, count, NULL);
        if (H5Dread(ds, H5T_NATIVE_INT64, ms, sp, H5P_DEFAULT, tmp) < 0)
            st = dpt_error(DPT_ERR_FORMAT, "%s: cannot read 'labels'", path);
        for (int64_t i = 0; st == DPT_OK && i < n; i++) {
            if (tmp[i] < 0 || tmp[i] > INT32_MAX)
                st = dpt_error(DPT_ERR_FORMAT, "%s: labels[%lld] = %lld is negative or too large", path, (long long)i,
                               (long long)tmp[i]);
            else
                out[i] = (int32_t)tmp[i];
        }
        H5Sclose(ms);
        free(tmp);
    }
    H5Tclose(t);
    H5Sclose(sp);
    H5Dclose(ds);
    return st;
}

static dpt_status read_images(hid_t ds, const char *path, const char *key, int64_t n, uint8_t *out) {
    hid_t sp = H5Dget_space(ds);
    hsize_t dims[4];
    H5Sget_simple_extent_dims(sp, dims, NULL);
    hsize_t start[4] = {0, 0, 0, 0}, count[4] = {(hsize_t)n, dims[1], dims[2], dims[3]};
    hid_t ms = H5Screate_simple(4, count, NULL);
    H5Sselect_hyperslab(sp, H5S_SELECT_SET, start, NULL, count, NULL);
    herr_t rc = H5Dread(ds, H5T_NATIVE_UINT8, ms, sp, H5P_DEFAULT, out);
    H5Sclose(ms);
    H5Sclose(sp);
    if (rc < 0) {
        char msg[512];
        h5_last_error(msg, sizeof msg);
        return dpt_error(DPT_ERR_FORMAT, "%s: cannot read '%s': %s", path, key, msg);
    }
    return DPT_OK;
}

static dpt_status open_checked(dpt_dataset *d, hid_t f, const char *path, int64_t subset, int64_t max_bytes) {
    hid_t ds = -1;
    if (H5Lexists(f, "images", H5P_DEFAULT) > 0) d->images_key = "images";
    else if (H5Lexists(f, "imgs", H5P_DEFAULT) > 0) d->images_key = "imgs";
    else return dpt_error(DPT_ERR_FORMAT, "%s: no dataset 'images' (or BigGAN-PyTorch's 'imgs')", path);
    ds = H5Dopen2(f, d->images_key, H5P_DEFAULT);
    if (ds < 0) return dpt_error(DPT_ERR_FORMAT, "%s: cannot open dataset '%s'", path, d->images_key);
    hid_t sp = H5Dget_space(ds), t = H5Dget_type(ds);
    hsize_t dims[4] = {0};
    int rank = H5Sget_simple_extent_ndims(sp);
    bool u8 = H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) == 1 && H5Tget_sign(t) == H5T_SGN_NONE;
    if (rank == 4) H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Tclose(t);
    H5Sclose(sp);
    dpt_status st = DPT_OK;
    if (rank != 4 || !u8) {
        st = dpt_error(DPT_ERR_FORMAT, "%s: '%s' must be uint8 with 4 dimensions (N, C, H, W)", path, d->images_key);
    } else if (dims[0] == 0 || dims[1] == 0 || dims[1] > DATASET_MAX_CHANNELS || dims[2] == 0 || dims[3] == 0) {
        st = dpt_error(DPT_ERR_FORMAT, "%s: '%s' has shape (%llu, %llu, %llu, %llu); need N > 0 and 1..%d channels",
                       path, d->images_key, (unsigned long long)dims[0], (unsigned long long)dims[1],
                       (unsigned long long)dims[2], (unsigned long long)dims[3], DATASET_MAX_CHANNELS);
    }
    if (st != DPT_OK) {
        H5Dclose(ds);
        return st;
    }
    int64_t total = (int64_t)dims[0];
    d->c = (int)dims[1];
    d->h = (int)dims[2];
    d->w = (int)dims[3];
    d->n = subset > 0 && subset < total ? subset : total;
    int64_t bytes = d->n * d->c * d->h * d->w;
    if (bytes > max_bytes) {
        H5Dclose(ds);
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: %lld MB of images exceed data.max_memory_mb = %lld (this version keeps a split in memory)",
                         path, (long long)(bytes >> 20), (long long)(max_bytes >> 20));
    }

    /* Attributes live on the file's root group. */
    int64_t nc = 0;
    if (h5_has_attr(f, "num_classes")) {
        st = h5_read_attr_i64(f, path, "num_classes", &nc);
        if (st == DPT_OK && (nc < 1 || nc > 1000000))
            st = dpt_error(DPT_ERR_FORMAT, "%s: num_classes = %lld is out of range [1, 1000000]", path, (long long)nc);
    }
    if (st == DPT_OK && h5_has_attr(f, "mean") && h5_has_attr(f, "std")) {
        double m[DATASET_MAX_CHANNELS], s[DATASET_MAX_CHANNELS];
        int nm = 0, ns = 0;
        st = h5_read_attr_f64s(f, path, "mean", m, DATASET_MAX_CHANNELS, &nm);
        if (st == DPT_OK) st = h5_read_attr_f64s(f, path, "std", s, DATASET_MAX_CHANNELS, &ns);
        if (st == DPT_OK && (nm != d->c || ns != d->c))
            st = dpt_error(DPT_ERR_FORMAT, "%s: attributes mean and std need %d values (one per channel), have %d and %d",
                           path, d->c, nm, ns);
        for (int i = 0; st == DPT_OK && i < d->c; i++) {
            if (!(s[i] > 0.0) || !isfinite(m[i]))
                st = dpt_error(DPT_ERR_FORMAT, "%s: std[%d] = %g must be positive (mean[%d] = %g)", path, i, s[i], i, m[i]);
            d->mean[i] = (float)m[i];
            d->std[i] = (float)s[i];
        }
        d->has_stats = st == DPT_OK;
    }
    if (st == DPT_OK && h5_has_attr(f, "class_names"))
        st = h5_read_attr_strings(f, path, "class_names", &d->class_names, &d->nclass_names);

    if (st == DPT_OK) {
        d->labels = dpt_xmalloc((size_t)d->n * sizeof(int32_t));
        st = read_labels(f, path, total, d->n, d->labels);
    }
    if (st == DPT_OK) {
        int32_t maxl = 0;
        for (int64_t i = 0; i < d->n; i++) maxl = d->labels[i] > maxl ? d->labels[i] : maxl;
        if (nc == 0) nc = (int64_t)maxl + 1; /* files without the attribute (BigGAN-PyTorch's) */
        d->num_classes = (int)nc;
        for (int64_t i = 0; i < d->n; i++)
            if (d->labels[i] >= d->num_classes) {
                st = dpt_error(DPT_ERR_FORMAT, "%s: labels[%lld] = %d is out of range: num_classes = %d", path,
                               (long long)i, d->labels[i], d->num_classes);
                break;
            }
        if (st == DPT_OK && d->class_names && d->nclass_names != d->num_classes)
            st = dpt_error(DPT_ERR_FORMAT, "%s: class_names has %d entries, num_classes is %d", path, d->nclass_names,
                           d->num_classes);
    }
    if (st == DPT_OK) {
        d->images = dpt_xmalloc((size_t)bytes);
        st = read_images(ds, path, d->images_key, d->n, d->images);
    }
    H5Dclose(ds);
    if (st == DPT_OK && !d->has_stats) {
        double m[DATASET_MAX_CHANNELS], s[DATASET_MAX_CHANNELS];
        dataset_compute_stats(d->images, d->n, d->c, d->h, d->w, m, s);
        for (int i = 0; i < d->c; i++) {
            d->mean[i] = (float)m[i];
            d->std[i] = s[i] > 0.0 ? (float)s[i] : 1.0f;
        }
    }
    return st;
}

dpt_status dataset_open(dpt_dataset *d, const char *path, int64_t subset, int64_t max_bytes) {
    memset(d, 0, sizeof *d);
    snprintf(d->path, sizeof d->path, "%s", path);
    h5_quiet();
    if (access(path, R_OK) != 0) return dpt_error(DPT_ERR_IO, "%s: no such file or not readable", path);
    if (H5Fis_hdf5(path) <= 0) return dpt_error(DPT_ERR_FORMAT, "%s: not an HDF5 file", path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return dpt_error(DPT_ERR_FORMAT, "%s: cannot open as HDF5", path);
    dpt_status st = open_checked(d, f, path, subset, max_bytes);
    H5Fclose(f);
    if (st != DPT_OK) dataset_close(d);
    return st;
}

void dataset_close(dpt_dataset *d) {
    free(d->images);
    free(d->labels);
    h5_free_strings(d->class_names, d->nclass_names);
    d->images = NULL;
    d->labels = NULL;
    d->class_names = NULL;
    d->nclass_names = 0;
}

dpt_status dataset_check_compatible(const dpt_dataset *train, const dpt_dataset *test) {
    if (train->c != test->c || train->h != test->h || train->w != test->w)
        return dpt_error(DPT_ERR_FORMAT, "%s: images are (%d, %d, %d) but %s has (%d, %d, %d)", test->path, test->c,
                         test->h, test->w, train->path, train->c, train->h, train->w);
    if (test->num_classes > train->num_classes)
        return dpt_error(DPT_ERR_FORMAT, "%s: num_classes = %d exceeds the training split's %d (%s)", test->path,
                         test->num_classes, train->num_classes, train->path);
    return DPT_OK;
}

void dataset_compute_stats(const uint8_t *images, int64_t n, int c, int h, int w, double *mean, double *std) {
    const int64_t plane = (int64_t)h * w;
    for (int ch = 0; ch < c; ch++) {
        double s = 0.0, s2 = 0.0;
        for (int64_t i = 0; i < n; i++) {
            const uint8_t *p = images + (i * c + ch) * plane;
            uint64_t a = 0, a2 = 0;
            for (int64_t k = 0; k < plane; k++) {
                a += p[k];
                a2 += (uint64_t)p[k] * p[k];
            }
            s += (double)a;
            s2 += (double)a2;
        }
        double cnt = (double)n * (double)plane;
        double m = s / cnt, v = s2 / cnt - m * m;
        mean[ch] = m / 255.0;
        std[ch] = sqrt(v > 0.0 ? v : 0.0) / 255.0;
    }
}
