/* Thin HDF5 helpers used by the data layer and by weight files. */
#ifndef DPT_DATA_H5IO_H
#define DPT_DATA_H5IO_H

#include <hdf5.h>

#include "dpt/core/error.h"

/* HDF5 library failures that must not happen (writing a file we just created, say). */
#define H5_CHECK(expr)                                                                    \
    do {                                                                                  \
        if ((expr) < 0) {                                                                 \
            char h5_msg_[512];                                                            \
            h5_last_error(h5_msg_, sizeof h5_msg_);                                       \
            DPT_CHECK_LIB("HDF5", 0, #expr, "%s", h5_msg_);                               \
        }                                                                                 \
    } while (0)

/* Turns off HDF5's own printing of error stacks: we report errors ourselves. */
void h5_quiet(void);
/* The innermost message of the current HDF5 error stack. */
void h5_last_error(char *buf, size_t size);

bool h5_has_attr(hid_t obj, const char *name);
dpt_status h5_read_attr_i64(hid_t obj, const char *file, const char *name, int64_t *out);
/* Reads up to max doubles; *n receives the count. */
dpt_status h5_read_attr_f64s(hid_t obj, const char *file, const char *name, double *out, int max, int *n);
/* Reads a 1-d array of strings (fixed or variable length); *names is malloc'ed, free with h5_free_strings. */
dpt_status h5_read_attr_strings(hid_t obj, const char *file, const char *name, char ***names, int *n);
void h5_free_strings(char **names, int n);

void h5_write_attr_i64(hid_t obj, const char *name, int64_t v);
void h5_write_attr_f64s(hid_t obj, const char *name, const double *v, int n);
void h5_write_attr_string(hid_t obj, const char *name, const char *s);
void h5_write_attr_strings(hid_t obj, const char *name, const char *const *s, int n);

/* Writes a dataset of the given shape and types (file_type on disk, mem_type of data),
 * contiguous, creating intermediate groups ("a/b/c"). */
void h5_write_array(hid_t file, const char *path, hid_t file_type, hid_t mem_type, const void *data, int ndim,
                    const int64_t *shape);
/* h5_write_array of float32. */
void h5_write_f32(hid_t file, const char *path, const float *data, int ndim, const int64_t *shape);

/* h5_write_f32 in chunks that carry a Fletcher-32 checksum: a flipped bit makes the read fail
 * instead of returning wrong numbers (checkpoints). */
void h5_write_f32_checksummed(hid_t file, const char *path, const float *data, int ndim, const int64_t *shape);

/* Creates a file through a temporary name in the same directory; h5_commit_file fsyncs and
 * renames it into place, so a crash never leaves a half-written file under the final name. */
hid_t h5_create_file_atomic(const char *path, char *tmp_path, size_t tmp_size);
/* The same in the HDF5 1.8 file format, whose object headers and heaps carry checksums too. */
hid_t h5_create_file_atomic_checksummed(const char *path, char *tmp_path, size_t tmp_size);
dpt_status h5_commit_file(hid_t file, const char *tmp_path, const char *path);

#endif
