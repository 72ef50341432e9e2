#include "dpt/data/h5io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dpt/core/fsutil.h"

void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static herr_t walk_last(unsigned n, const H5E_error2_t *e, void *data) {
    char **out = data;
    if (n == 0) snprintf(out[0], (size_t)(uintptr_t)out[1], "%s (%s)", e->desc ? e->desc : "?", e->func_name);
    return 0;
}

void h5_last_error(char *buf, size_t size) {
    snprintf(buf, size, "unknown HDF5 error");
    char *ctx[2] = {buf, (char *)(uintptr_t)size};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_last, ctx);
}

bool h5_has_attr(hid_t obj, const char *name) { return H5Aexists(obj, name) > 0; }

dpt_status h5_read_attr_i64(hid_t obj, const char *file, const char *name, int64_t *out) {
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return dpt_error(DPT_ERR_FORMAT, "%s: attribute '%s' missing", file, name);
    hid_t sp = H5Aget_space(a);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    hid_t t = H5Aget_type(a);
    bool is_int = H5Tget_class(t) == H5T_INTEGER;
    H5Tclose(t);
    herr_t rc = -1;
    if (n == 1 && is_int) rc = H5Aread(a, H5T_NATIVE_INT64, out);
    H5Aclose(a);
    if (rc < 0) return dpt_error(DPT_ERR_FORMAT, "%s: attribute '%s' must be one integer", file, name);
    return DPT_OK;
}

dpt_status h5_read_attr_f64s(hid_t obj, const char *file, const char *name, double *out, int max, int *n) {
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return dpt_error(DPT_ERR_FORMAT, "%s: attribute '%s' missing", file, name);
    hid_t sp = H5Aget_space(a);
    hssize_t cnt = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    hid_t t = H5Aget_type(a);
    H5T_class_t cls = H5Tget_class(t);
    H5Tclose(t);
    herr_t rc = -1;
    if (cnt >= 1 && cnt <= max && (cls == H5T_FLOAT || cls == H5T_INTEGER)) rc = H5Aread(a, H5T_NATIVE_DOUBLE, out);
    H5Aclose(a);
    if (rc < 0)
        return dpt_error(DPT_ERR_FORMAT, "%s: attribute '%s' must hold 1 to %d numbers", file, name, max);
    *n = (int)cnt;
    return DPT_OK;
}

dpt_status h5_read_attr_strings(hid_t obj, const char *file, const char *name, char ***names_out, int *n_out) {
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return dpt_error(DPT_ERR_FORMAT, "%s: attribute '%s' missing", file, name);
    hid_t sp = H5Aget_space(a);
    int n = (int)H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    hid_t t = H5Aget_type(a);
    dpt_status st = DPT_OK;
    char **names = dpt_xcalloc((size_t)(n > 0 ? n : 1), sizeof(char *));
    if (H5Tget_class(t) != H5T_STRING || n < 1) {
        st = dpt_error(DPT_ERR_FORMAT, "%s: attribute '%s' must be an array of strings", file, name);
    } else if (H5Tis_variable_str(t) > 0) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(t));
        char **tmp = dpt_xcalloc((size_t)n, sizeof(char *));
        if (H5Aread(a, mt, tmp) < 0) st = dpt_error(DPT_ERR_FORMAT, "%s: cannot read attribute '%s'", file, name);
        else
            for (int i = 0; i < n; i++) names[i] = dpt_xstrdup(tmp[i] ? tmp[i] : "");
        if (st == DPT_OK) {
            hid_t sp2 = H5Aget_space(a);
            H5Dvlen_reclaim(mt, sp2, H5P_DEFAULT, tmp);
            H5Sclose(sp2);
        }
        free(tmp);
        H5Tclose(mt);
    } else {
        size_t len = H5Tget_size(t);
        char *flat = dpt_xcalloc((size_t)n, len + 1);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, len);
        H5Tset_cset(mt, H5Tget_cset(t));
        if (H5Aread(a, mt, flat) < 0) st = dpt_error(DPT_ERR_FORMAT, "%s: cannot read attribute '%s'", file, name);
        else
            for (int i = 0; i < n; i++) {
                names[i] = dpt_xcalloc(len + 1, 1);
                memcpy(names[i], flat + (size_t)i * len, len);
            }
        H5Tclose(mt);
        free(flat);
    }
    H5Tclose(t);
    H5Aclose(a);
    if (st != DPT_OK) {
        h5_free_strings(names, n);
        return st;
    }
    *names_out = names;
    *n_out = n;
    return DPT_OK;
}

void h5_free_strings(char **names, int n) {
    if (!names) return;
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

void h5_write_attr_i64(hid_t obj, const char *name, int64_t v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5_CHECK(a);
    H5_CHECK(H5Awrite(a, H5T_NATIVE_INT64, &v));
    H5Aclose(a);
    H5Sclose(sp);
}

void h5_write_attr_f64s(hid_t obj, const char *name, const double *v, int n) {
    hsize_t dims[1] = {(hsize_t)n};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t a = H5Acreate2(obj, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5_CHECK(a);
    H5_CHECK(H5Awrite(a, H5T_NATIVE_DOUBLE, v));
    H5Aclose(a);
    H5Sclose(sp);
}

void h5_write_attr_string(hid_t obj, const char *name, const char *s) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5_CHECK(a);
    H5_CHECK(H5Awrite(a, t, &s));
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

void h5_write_attr_strings(hid_t obj, const char *name, const char *const *s, int n) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hsize_t dims[1] = {(hsize_t)n};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5_CHECK(a);
    H5_CHECK(H5Awrite(a, t, s));
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

void h5_write_f32(hid_t file, const char *path, const float *data, int ndim, const int64_t *shape) {
    h5_write_array(file, path, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, data, ndim, shape);
}

/* Creates and writes one dataset; dcpl sets its layout and filters (H5P_DEFAULT: contiguous). */
static void write_dataset(hid_t file, const char *path, hid_t file_type, hid_t mem_type, const void *data, int ndim,
                          const hsize_t *dims, hid_t dcpl) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5_CHECK(H5Pset_create_intermediate_group(lcpl, 1));
    hid_t sp = H5Screate_simple(ndim, dims, NULL);
    hid_t d = H5Dcreate2(file, path, file_type, sp, lcpl, dcpl, H5P_DEFAULT);
    H5_CHECK(d);
    H5_CHECK(H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
    H5Dclose(d);
    H5Sclose(sp);
    H5Pclose(lcpl);
}

void h5_write_array(hid_t file, const char *path, hid_t file_type, hid_t mem_type, const void *data, int ndim,
                    const int64_t *shape) {
    hsize_t dims[8];
    for (int i = 0; i < ndim; i++) dims[i] = (hsize_t)shape[i];
    write_dataset(file, path, file_type, mem_type, data, ndim, dims, H5P_DEFAULT);
}

void h5_write_f32_checksummed(hid_t file, const char *path, const float *data, int ndim, const int64_t *shape) {
    DPT_CHECK(ndim >= 1 && ndim <= 8);
    hsize_t dims[8], chunk[8];
    size_t row = sizeof(float);
    for (int i = 0; i < ndim; i++) {
        dims[i] = chunk[i] = (hsize_t)shape[i];
        if (i > 0) row *= (size_t)shape[i];
    }
    /* Slabs along the first axis of at most 16 MiB (a chunk must stay below 4 GiB). */
    hsize_t rows = (hsize_t)DPT_MAX((size_t)1, ((size_t)16 << 20) / row);
    chunk[0] = DPT_MAX((hsize_t)1, DPT_MIN(dims[0], rows));
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5_CHECK(H5Pset_chunk(dcpl, ndim, chunk));
    H5_CHECK(H5Pset_fletcher32(dcpl));
    write_dataset(file, path, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, data, ndim, dims, dcpl);
    H5Pclose(dcpl);
}

hid_t h5_create_file_atomic_checksummed(const char *path, char *tmp_path, size_t tmp_size) {
    snprintf(tmp_path, tmp_size, "%s.tmp.%d", path, (int)getpid());
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5_CHECK(H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST));
    hid_t f = H5Fcreate(tmp_path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    return f;
}

hid_t h5_create_file_atomic(const char *path, char *tmp_path, size_t tmp_size) {
    snprintf(tmp_path, tmp_size, "%s.tmp.%d", path, (int)getpid());
    return H5Fcreate(tmp_path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
}

dpt_status h5_commit_file(hid_t file, const char *tmp_path, const char *path) {
    if (H5Fclose(file) < 0) {
        unlink(tmp_path);
        return dpt_error(DPT_ERR_IO, "cannot write %s", tmp_path);
    }
    return fs_commit_tmp(tmp_path, path);
}
