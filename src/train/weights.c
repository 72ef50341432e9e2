/* Weight files: every parameter under params/<name> and every buffer under buffers/<name>,
 * float32 with the tensor's shape, plus attributes model, dptrain_version, step, epoch.
 * Readable with h5ls/h5py; written atomically (temporary file, fsync, rename). */
#include <stdio.h>
#include <stdlib.h>

#include "dpt/data/h5io.h"
#include "train_internal.h"

static void save_one(hid_t f, const char *group, const char *name, const dpt_tensor *t, const dpt_backend *be) {
    float *host = dpt_xmalloc(tensor_bytes(t));
    be->copy_to_host(host, t->data, tensor_bytes(t));
    char key[NN_NAME_MAX + 64];
    snprintf(key, sizeof key, "%s/%s", group, name);
    h5_write_f32(f, key, host, t->ndim, t->shape);
    free(host);
}

dpt_status weights_save(const nn_graph *g, const char *path, const char *model, int64_t step, int64_t epoch) {
    h5_quiet();
    char tmp[1200];
    hid_t f = h5_create_file_atomic(path, tmp, sizeof tmp);
    if (f < 0) return dpt_error(DPT_ERR_IO, "%s: cannot create", path);
    for (int i = 0; i < g->nparams; i++) save_one(f, "params", g->params[i].name, &g->params[i].value, g->be);
    for (int i = 0; i < g->nbuffers; i++) save_one(f, "buffers", g->buffers[i].name, &g->buffers[i].value, g->be);
    h5_write_attr_string(f, "model", model);
    h5_write_attr_string(f, "dptrain_version", DPT_VERSION);
    h5_write_attr_i64(f, "step", step);
    h5_write_attr_i64(f, "epoch", epoch);
    return h5_commit_file(f, tmp, path);
}

static void shape_text(const int64_t *s, int nd, char *buf, size_t size) {
    size_t off = (size_t)snprintf(buf, size, "(");
    for (int i = 0; i < nd && off < size; i++)
        off += (size_t)snprintf(buf + off, size - off, i ? ", %lld" : "%lld", (long long)s[i]);
    if (off < size) snprintf(buf + off, size - off, ")");
}

dpt_status weights_read_tensor(hid_t f, const char *path, const char *group, const char *name, int ndim,
                               const int64_t *shape, float *dst) {
    char key[NN_NAME_MAX + 96];
    snprintf(key, sizeof key, "%s/%s", group, name);
    if (H5Lexists(f, group, H5P_DEFAULT) <= 0 || H5Lexists(f, key, H5P_DEFAULT) <= 0)
        return dpt_error(DPT_ERR_FORMAT, "%s: tensor '%s' missing (a file of another model?)", path, key);
    hid_t ds = H5Dopen2(f, key, H5P_DEFAULT);
    if (ds < 0) return dpt_error(DPT_ERR_IO, "%s: tensor '%s' cannot be opened (corrupt file)", path, key);
    hid_t sp = H5Dget_space(ds);
    hsize_t dims[9] = {0};
    int nd = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
    if (nd > 0 && nd <= 9) H5Sget_simple_extent_dims(sp, dims, NULL);
    if (sp >= 0) H5Sclose(sp);
    bool same = nd == ndim;
    int64_t have[9] = {0};
    for (int i = 0; i < nd && i < 9; i++) {
        have[i] = (int64_t)dims[i];
        if (i < ndim && have[i] != shape[i]) same = false;
    }
    dpt_status st = DPT_OK;
    if (!same) {
        char a[128], b[128];
        shape_text(have, DPT_MAX(nd, 0), a, sizeof a);
        shape_text(shape, ndim, b, sizeof b);
        st = dpt_error(DPT_ERR_FORMAT, "%s: tensor '%s' has shape %s, the model needs %s", path, key, a, b);
    } else if (H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0) {
        char msg[256];
        h5_last_error(msg, sizeof msg);
        st = dpt_error(DPT_ERR_IO, "%s: tensor '%s' cannot be read (%s)", path, key, msg);
    }
    H5Dclose(ds);
    return st;
}

static dpt_status load_one(hid_t f, const char *path, const char *group, const char *name, const dpt_tensor *t,
                           const dpt_backend *be) {
    float *host = dpt_xmalloc(tensor_bytes(t));
    dpt_status st = weights_read_tensor(f, path, group, name, t->ndim, t->shape, host);
    if (st == DPT_OK) be->copy_to_device(t->data, host, tensor_bytes(t));
    free(host);
    return st;
}

dpt_status weights_load(nn_graph *g, const char *path) {
    h5_quiet();
    if (H5Fis_hdf5(path) <= 0) return dpt_error(DPT_ERR_IO, "%s: missing or not an HDF5 file", path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return dpt_error(DPT_ERR_IO, "%s: cannot open", path);
    dpt_status st = DPT_OK;
    for (int i = 0; st == DPT_OK && i < g->nparams; i++)
        st = load_one(f, path, "params", g->params[i].name, &g->params[i].value, g->be);
    for (int i = 0; st == DPT_OK && i < g->nbuffers; i++)
        st = load_one(f, path, "buffers", g->buffers[i].name, &g->buffers[i].value, g->be);
    H5Fclose(f);
    return st;
}
