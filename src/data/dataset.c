#include "dpt/data/dataset.h"

#include <errno.h>
#include <fcntl.h>
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

/* Where the dataset's bytes are, for reading them without HDF5: a contiguous layout or
 * unfiltered chunks that each span whole rows (all dimensions but the first complete). */
static dpt_status plan_pread(dpt_dataset *d, hid_t ds, int ndim, const hsize_t *dims, int64_t row_bytes,
                             bool *possible) {
    *possible = false;
    hid_t dcpl = H5Dget_create_plist(ds);
    H5D_layout_t layout = H5Pget_layout(dcpl);
    dpt_status st = DPT_OK;
    if (layout == H5D_CONTIGUOUS) {
        haddr_t addr = H5Dget_offset(ds);
        if (addr != HADDR_UNDEF) {
            d->nchunks = 1;
            d->chunk_bytes = (int64_t)dims[0] * row_bytes;
            d->chunk_addr = dpt_xmalloc(sizeof(int64_t));
            d->chunk_addr[0] = (int64_t)addr;
            *possible = true;
        }
        snprintf(d->layout_desc, sizeof d->layout_desc, "contiguous");
    } else if (layout == H5D_CHUNKED) {
        hsize_t cd[8] = {0};
        int cn = H5Pget_chunk(dcpl, 8, cd);
        int nf = H5Pget_nfilters(dcpl);
        bool whole_rows = cn == ndim;
        for (int k = 1; k < ndim && whole_rows; k++) whole_rows = cd[k] == dims[k];
        char shape[96] = "";
        for (int k = 0; k < cn; k++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%llu", k ? ", " : "",
                     (unsigned long long)cd[k]);
        snprintf(d->layout_desc, sizeof d->layout_desc, "chunked (%s), %d filter(s)%s", shape, nf,
                 nf ? ": compressed" : "");
        if (nf == 0 && whole_rows && cd[0] > 0) {
            d->chunk_bytes = (int64_t)cd[0] * row_bytes;
            d->nchunks = (int64_t)((dims[0] + cd[0] - 1) / cd[0]);
            d->chunk_addr = dpt_xmalloc((size_t)d->nchunks * sizeof(int64_t));
            for (int64_t k = 0; k < d->nchunks && st == DPT_OK; k++) {
                hsize_t off[8] = {0};
                off[0] = (hsize_t)k * cd[0];
                unsigned mask = 0;
                haddr_t addr = HADDR_UNDEF;
                hsize_t size = 0;
                if (H5Dget_chunk_info_by_coord(ds, off, &mask, &addr, &size) < 0 || addr == HADDR_UNDEF)
                    st = dpt_error(DPT_ERR_FORMAT, "%s: '%s': chunk %lld (rows from %llu) was never written", d->path,
                                   d->images_key, (long long)k, (unsigned long long)off[0]);
                d->chunk_addr[k] = (int64_t)addr;
            }
            *possible = st == DPT_OK;
        }
    } else {
        snprintf(d->layout_desc, sizeof d->layout_desc, "compact");
    }
    H5Pclose(dcpl);
    return st;
}

/* Reads `bytes` bytes at linear offset `pos` of the dataset's row-major storage. */
static dpt_status pread_range(const dpt_dataset *d, int64_t pos, int64_t bytes, uint8_t *out, int64_t index) {
    while (bytes > 0) {
        int64_t k = pos / d->chunk_bytes, in = pos % d->chunk_bytes;
        int64_t take = DPT_MIN(bytes, d->chunk_bytes - in);
        if (k >= d->nchunks)
            return dpt_error(DPT_ERR_FORMAT, "%s: %s[%lld] lies beyond the stored data", d->path, d->images_key,
                             (long long)index);
        int64_t at = d->chunk_addr[k] + in, done = 0;
        while (done < take) {
            ssize_t r = pread(d->fd, out + done, (size_t)(take - done), (off_t)(at + done));
            if (r <= 0)
                return dpt_error(DPT_ERR_IO, "%s: cannot read %s[%lld] (%lld bytes at offset %lld): %s", d->path,
                                 d->images_key, (long long)index, (long long)(take - done), (long long)(at + done),
                                 r == 0 ? "file is truncated" : strerror(errno));
            done += r;
        }
        pos += take;
        bytes -= take;
        out += take;
    }
    return DPT_OK;
}

dpt_status dataset_sample(const dpt_dataset *d, int64_t i, uint8_t **buf, size_t *cap, const uint8_t **data,
                          size_t *size) {
    DPT_CHECK(i >= 0 && i < d->n);
    int64_t pos, bytes;
    if (d->storage == DS_RAW) {
        pos = i * d->sample_bytes;
        bytes = d->sample_bytes;
    } else {
        pos = d->offsets[i];
        bytes = d->offsets[i + 1] - d->offsets[i];
    }
    *size = (size_t)bytes;
    if (d->access == DS_IN_MEMORY) {
        *data = d->images + (d->storage == DS_JPEG ? pos - d->offsets[0] : pos);
        return DPT_OK;
    }
    uint8_t *out = dpt_xgrow(buf, cap, (size_t)(bytes > 0 ? bytes : 1));
    *data = out;
    if (d->access == DS_PREAD) return pread_range(d, pos, bytes, out, i);
    /* Through HDF5: one hyperslab (the library serialises threads; so does our mutex when the
     * library was built without thread safety). */
    pthread_mutex_lock(d->h5_mu);
    hid_t ds = (hid_t)d->dset_id, sp = H5Dget_space(ds);
    int nd = H5Sget_simple_extent_ndims(sp);
    hsize_t start[4] = {0}, count[4] = {0}, dims[4] = {0};
    H5Sget_simple_extent_dims(sp, dims, NULL);
    if (d->storage == DS_RAW) {
        start[0] = (hsize_t)i;
        count[0] = 1;
        for (int k = 1; k < nd; k++) count[k] = dims[k];
    } else {
        start[0] = (hsize_t)pos;
        count[0] = (hsize_t)bytes;
    }
    hid_t ms = H5Screate_simple(1, (hsize_t[]){(hsize_t)bytes}, NULL);
    H5Sselect_hyperslab(sp, H5S_SELECT_SET, start, NULL, count, NULL);
    herr_t rc = bytes > 0 ? H5Dread(ds, H5T_NATIVE_UINT8, ms, sp, H5P_DEFAULT, out) : 0;
    H5Sclose(ms);
    H5Sclose(sp);
    dpt_status st = DPT_OK;
    if (rc < 0) {
        char msg[512];
        h5_last_error(msg, sizeof msg);
        st = dpt_error(DPT_ERR_FORMAT, "%s: cannot read %s[%lld]: %s", d->path, d->images_key, (long long)i, msg);
    }
    pthread_mutex_unlock(d->h5_mu);
    return st;
}

static dpt_status read_offsets(dpt_dataset *d, hid_t f, const char *path, int64_t *total, int64_t jpeg_bytes) {
    hid_t ds = H5Dopen2(f, "jpeg_offsets", H5P_DEFAULT);
    if (ds < 0) return dpt_error(DPT_ERR_FORMAT, "%s: dataset 'jpeg' needs 'jpeg_offsets' (int64, N + 1)", path);
    hid_t sp = H5Dget_space(ds), t = H5Dget_type(ds);
    hsize_t dims[2] = {0, 0};
    int rank = H5Sget_simple_extent_ndims(sp);
    if (rank == 1) H5Sget_simple_extent_dims(sp, dims, NULL);
    dpt_status st = DPT_OK;
    if (rank != 1 || H5Tget_class(t) != H5T_INTEGER || dims[0] < 2) {
        st = dpt_error(DPT_ERR_FORMAT, "%s: 'jpeg_offsets' must be a 1-d integer dataset of N + 1 >= 2 entries", path);
    } else {
        *total = (int64_t)dims[0] - 1;
        d->offsets = dpt_xmalloc((size_t)dims[0] * sizeof(int64_t));
        if (H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, d->offsets) < 0)
            st = dpt_error(DPT_ERR_FORMAT, "%s: cannot read 'jpeg_offsets'", path);
        for (hsize_t i = 0; st == DPT_OK && i + 1 < dims[0]; i++)
            if (d->offsets[i] < 0 || d->offsets[i + 1] <= d->offsets[i] || d->offsets[i + 1] > jpeg_bytes)
                st = dpt_error(DPT_ERR_FORMAT,
                               "%s: jpeg_offsets[%llu] = %lld, [%llu] = %lld: offsets must increase and stay within "
                               "the %lld bytes of 'jpeg'",
                               path, (unsigned long long)i, (long long)d->offsets[i], (unsigned long long)i + 1,
                               (long long)d->offsets[i + 1], (long long)jpeg_bytes);
    }
    H5Tclose(t);
    H5Sclose(sp);
    H5Dclose(ds);
    return st;
}

static dpt_status open_checked(dpt_dataset *d, hid_t f, const char *path, const dataset_opts *o) {
    hid_t ds = -1;
    if (H5Lexists(f, "images", H5P_DEFAULT) > 0) d->images_key = "images";
    else if (H5Lexists(f, "imgs", H5P_DEFAULT) > 0) d->images_key = "imgs";
    else if (H5Lexists(f, "jpeg", H5P_DEFAULT) > 0) d->images_key = "jpeg";
    else return dpt_error(DPT_ERR_FORMAT, "%s: no dataset 'images' (or BigGAN-PyTorch's 'imgs', or 'jpeg')", path);
    d->storage = strcmp(d->images_key, "jpeg") ? DS_RAW : DS_JPEG;
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    size_t cache = (size_t)(o->cache_bytes > 0 ? o->cache_bytes : 256 << 20);
    H5Pset_chunk_cache(dapl, 12421, cache, 1.0);
    ds = H5Dopen2(f, d->images_key, dapl);
    H5Pclose(dapl);
    if (ds < 0) return dpt_error(DPT_ERR_FORMAT, "%s: cannot open dataset '%s'", path, d->images_key);
    hid_t sp = H5Dget_space(ds), t = H5Dget_type(ds);
    hsize_t dims[4] = {0};
    int rank = H5Sget_simple_extent_ndims(sp);
    bool u8 = H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) == 1 && H5Tget_sign(t) == H5T_SGN_NONE;
    if (rank >= 1 && rank <= 4) H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Tclose(t);
    H5Sclose(sp);
    dpt_status st = DPT_OK;
    int64_t total = 0;
    if (d->storage == DS_RAW) {
        if (rank != 4 || !u8) {
            st = dpt_error(DPT_ERR_FORMAT, "%s: '%s' must be uint8 with 4 dimensions (N, C, H, W)", path,
                           d->images_key);
        } else if (dims[0] == 0 || dims[1] == 0 || dims[1] > DATASET_MAX_CHANNELS || dims[2] == 0 || dims[3] == 0) {
            st = dpt_error(DPT_ERR_FORMAT,
                           "%s: '%s' has shape (%llu, %llu, %llu, %llu); need N > 0 and 1..%d channels", path,
                           d->images_key, (unsigned long long)dims[0], (unsigned long long)dims[1],
                           (unsigned long long)dims[2], (unsigned long long)dims[3], DATASET_MAX_CHANNELS);
        } else {
            total = (int64_t)dims[0];
            d->c = (int)dims[1];
            d->h = (int)dims[2];
            d->w = (int)dims[3];
            d->sample_bytes = (int64_t)d->c * d->h * d->w;
        }
    } else {
        if (rank != 1 || !u8) {
            st = dpt_error(DPT_ERR_FORMAT,
                           "%s: 'jpeg' must be a 1-d uint8 dataset of concatenated JPEG streams (variable-length "
                           "HDF5 types are not read; convert with dptrain prep)",
                           path);
        } else {
            st = read_offsets(d, f, path, &total, (int64_t)dims[0]);
            int64_t ch = 3, size = 0;
            if (st == DPT_OK && h5_has_attr(f, "channels")) st = h5_read_attr_i64(f, path, "channels", &ch);
            if (st == DPT_OK && h5_has_attr(f, "size")) st = h5_read_attr_i64(f, path, "size", &size);
            if (st == DPT_OK && ch != 1 && ch != 3)
                st = dpt_error(DPT_ERR_FORMAT, "%s: attribute channels = %lld; JPEG splits have 1 or 3", path,
                               (long long)ch);
            d->c = (int)ch;
            d->h = d->w = (int)size;
        }
    }
    if (st != DPT_OK) {
        H5Dclose(ds);
        return st;
    }
    d->n = o->subset > 0 && o->subset < total ? o->subset : total;
    int64_t first = d->storage == DS_RAW ? 0 : d->offsets[0];
    int64_t bytes = d->storage == DS_RAW ? d->n * d->sample_bytes : d->offsets[d->n] - first;

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
    if (st == DPT_OK && d->storage == DS_JPEG && d->h <= 0)
        st = dpt_error(DPT_ERR_FORMAT, "%s: JPEG split without the attribute 'size' (the stored shorter side)", path);

    bool can_pread = false;
    if (st == DPT_OK) st = plan_pread(d, ds, rank, dims, d->storage == DS_RAW ? d->sample_bytes : 1, &can_pread);
    if (st == DPT_OK && bytes <= o->max_bytes) {
        d->access = DS_IN_MEMORY;
        d->images = dpt_xmalloc((size_t)(bytes > 0 ? bytes : 1));
        if (d->storage == DS_RAW) {
            st = read_images(ds, path, d->images_key, d->n, d->images);
        } else {
            hid_t fs = H5Dget_space(ds), ms = H5Screate_simple(1, (hsize_t[]){(hsize_t)bytes}, NULL);
            H5Sselect_hyperslab(fs, H5S_SELECT_SET, (hsize_t[]){(hsize_t)first}, NULL, (hsize_t[]){(hsize_t)bytes},
                                NULL);
            if (H5Dread(ds, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, d->images) < 0)
                st = dpt_error(DPT_ERR_FORMAT, "%s: cannot read 'jpeg'", path);
            H5Sclose(ms);
            H5Sclose(fs);
        }
    } else if (st == DPT_OK && can_pread) {
        d->access = DS_PREAD;
        d->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (d->fd < 0) st = dpt_error(DPT_ERR_IO, "%s: cannot open for reading: %s", path, strerror(errno));
    } else if (st == DPT_OK) {
        d->access = DS_HDF5;
        d->h5_mu = dpt_xmalloc(sizeof *d->h5_mu);
        pthread_mutex_init(d->h5_mu, NULL);
        d->file_id = (int64_t)H5Freopen(f);
        d->dset_id = (int64_t)ds;
        ds = -1; /* kept open */
    }
    if (ds >= 0) H5Dclose(ds);
    if (st == DPT_OK && !d->has_stats) {
        /* Files without the attributes: raw splits in memory get exact statistics; others are
         * estimated from up to 2000 evenly spaced images (raw) or take ImageNet's values (jpeg). */
        double m[DATASET_MAX_CHANNELS], s[DATASET_MAX_CHANNELS];
        if (d->storage == DS_RAW && d->access == DS_IN_MEMORY) {
            dataset_compute_stats(d->images, d->n, d->c, d->h, d->w, m, s);
        } else if (d->storage == DS_RAW) {
            int64_t take = DPT_MIN(d->n, (int64_t)2000);
            uint8_t *tmp = dpt_xmalloc((size_t)(take * d->sample_bytes)), *buf = NULL;
            size_t cap = 0, size = 0;
            for (int64_t k = 0; k < take && st == DPT_OK; k++) {
                const uint8_t *p;
                st = dataset_sample(d, k * (d->n / take), &buf, &cap, &p, &size);
                if (st == DPT_OK) memcpy(tmp + k * d->sample_bytes, p, (size_t)d->sample_bytes);
            }
            if (st == DPT_OK) dataset_compute_stats(tmp, take, d->c, d->h, d->w, m, s);
            free(tmp);
            free(buf);
        } else {
            static const double im_m[3] = {0.485, 0.456, 0.406}, im_s[3] = {0.229, 0.224, 0.225};
            for (int i = 0; i < d->c; i++) {
                m[i] = d->c == 3 ? im_m[i] : 0.449;
                s[i] = d->c == 3 ? im_s[i] : 0.226;
            }
        }
        for (int i = 0; st == DPT_OK && i < d->c; i++) {
            d->mean[i] = (float)m[i];
            d->std[i] = s[i] > 0.0 ? (float)s[i] : 1.0f;
        }
    }
    return st;
}

dpt_status dataset_open_opts(dpt_dataset *d, const char *path, const dataset_opts *o) {
    memset(d, 0, sizeof *d);
    snprintf(d->path, sizeof d->path, "%s", path);
    h5_quiet();
    if (access(path, R_OK) != 0) return dpt_error(DPT_ERR_IO, "%s: no such file or not readable", path);
    if (H5Fis_hdf5(path) <= 0) return dpt_error(DPT_ERR_FORMAT, "%s: not an HDF5 file", path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return dpt_error(DPT_ERR_FORMAT, "%s: cannot open as HDF5", path);
    dpt_status st = open_checked(d, f, path, o);
    H5Fclose(f);
    if (st != DPT_OK) dataset_close(d);
    return st;
}

dpt_status dataset_open(dpt_dataset *d, const char *path, int64_t subset, int64_t max_bytes) {
    dataset_opts o = {.subset = subset, .max_bytes = max_bytes, .cache_bytes = 256 << 20};
    return dataset_open_opts(d, path, &o);
}

void dataset_close(dpt_dataset *d) {
    free(d->images);
    free(d->labels);
    free(d->offsets);
    free(d->chunk_addr);
    h5_free_strings(d->class_names, d->nclass_names);
    if (d->access == DS_PREAD && d->fd >= 0) close(d->fd);
    if (d->access == DS_HDF5) {
        H5Dclose((hid_t)d->dset_id);
        H5Fclose((hid_t)d->file_id);
    }
    if (d->h5_mu) {
        pthread_mutex_destroy(d->h5_mu);
        free(d->h5_mu);
    }
    memset(d, 0, sizeof *d);
}

dpt_status dataset_check_compatible(const dpt_dataset *train, const dpt_dataset *test, bool resized) {
    if (train->c != test->c || (!resized && (train->h != test->h || train->w != test->w ||
                                             train->storage != DS_RAW || test->storage != DS_RAW)))
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
