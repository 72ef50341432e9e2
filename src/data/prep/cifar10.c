/* CIFAR-10, binary version (cifar-10-batches-bin) -> one HDF5 split.
 *
 * Files: DIR/data_batch_1.bin .. data_batch_5.bin (train) or DIR/test_batch.bin (--test), and
 * optionally DIR/batches.meta.txt (the ten class names, one a line). A record is 1 label byte
 * (0..9) and 3072 pixel bytes: the red plane, then green, then blue, 32 x 32 each, rows top to
 * bottom, which is already the (C, H, W) order of the split format.
 * The published files hold exactly 10000 records (30730000 bytes) each; any whole number of
 * records is accepted, so that tests can use small files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dpt/data/dataset.h"
#include "dpt/data/h5io.h"
#include "dpt/data/prep.h"

enum { CIFAR_PIXELS = 3 * 32 * 32, CIFAR_RECORD = 1 + CIFAR_PIXELS, CIFAR_CLASSES = 10, CIFAR_PER_FILE = 10000 };

static const char *const standard_names[CIFAR_CLASSES] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                                          "dog",      "frog",       "horse", "ship", "truck"};

/* batches.meta.txt: the class names, one a line, blank lines ignored. */
static dpt_status read_names(const char *path, char **names) {
    FILE *f = fopen(path, "r");
    if (!f) return dpt_error(DPT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char line[512];
    int n = 0;
    dpt_status st = DPT_OK;
    while (st == DPT_OK && fgets(line, sizeof line, f)) {
        size_t l = strlen(line);
        while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r' || line[l - 1] == ' ' || line[l - 1] == '\t'))
            line[--l] = '\0';
        char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        if (!*s) continue;
        if (n == CIFAR_CLASSES)
            st = dpt_error(DPT_ERR_FORMAT, "%s: more than %d class names", path, CIFAR_CLASSES);
        else
            names[n++] = dpt_xstrdup(s);
    }
    fclose(f);
    if (st == DPT_OK && n != CIFAR_CLASSES)
        st = dpt_error(DPT_ERR_FORMAT, "%s: has %d class names, CIFAR-10 has %d", path, n, CIFAR_CLASSES);
    if (st != DPT_OK)
        for (int i = 0; i < n; i++) free(names[i]);
    return st;
}

static dpt_status write_split(const prep_cifar10_args *a, const uint8_t *images, const int64_t *labels, int64_t n,
                              char *const *names, double *mean, double *std) {
    h5_quiet();
    char tmp[4200];
    hid_t f = h5_create_file_atomic(a->out_path, tmp, sizeof tmp);
    if (f < 0) return dpt_error(DPT_ERR_IO, "%s: cannot create (does the directory exist?)", a->out_path);
    /* Chunks of whole images, about 1 MiB, unfiltered: the loader reads them with pread. */
    hsize_t dims[4] = {(hsize_t)n, 3, 32, 32};
    hsize_t chunk[4] = {(hsize_t)DPT_MIN(n, (1 << 20) / CIFAR_PIXELS), 3, 32, 32};
    hid_t sp = H5Screate_simple(4, dims, NULL), pl = H5Pcreate(H5P_DATASET_CREATE);
    H5_CHECK(H5Pset_chunk(pl, 4, chunk));
    hid_t ds = H5Dcreate2(f, "images", H5T_STD_U8LE, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    herr_t rc = ds < 0 ? -1 : H5Dwrite(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, images);
    if (ds >= 0) H5Dclose(ds);
    H5Pclose(pl);
    H5Sclose(sp);
    if (rc >= 0) {
        hsize_t ldims[1] = {(hsize_t)n};
        sp = H5Screate_simple(1, ldims, NULL);
        ds = H5Dcreate2(f, "labels", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        rc = ds < 0 ? -1 : H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels);
        if (ds >= 0) H5Dclose(ds);
        H5Sclose(sp);
    }
    if (rc < 0) {
        char msg[512];
        h5_last_error(msg, sizeof msg);
        H5Fclose(f);
        unlink(tmp);
        return dpt_error(DPT_ERR_IO, "%s: cannot write: %s", a->out_path, msg);
    }
    dataset_compute_stats(images, n, 3, 32, 32, mean, std);
    h5_write_attr_i64(f, "num_classes", CIFAR_CLASSES);
    h5_write_attr_strings(f, "class_names", (const char *const *)names, CIFAR_CLASSES);
    h5_write_attr_f64s(f, "mean", mean, 3);
    h5_write_attr_f64s(f, "std", std, 3);
    h5_write_attr_string(f, "source", a->dir);
    return h5_commit_file(f, tmp, a->out_path);
}

dpt_status prep_cifar10(const prep_cifar10_args *a, char *summary, size_t summary_size) {
    const int nfiles = a->test ? 1 : 5;
    char paths[5][4200];
    int64_t records[5], total = 0;
    /* Check every file before reading any, so that a missing or short batch fails fast. */
    for (int i = 0; i < nfiles; i++) {
        if (a->test) snprintf(paths[i], sizeof paths[i], "%s/test_batch.bin", a->dir);
        else snprintf(paths[i], sizeof paths[i], "%s/data_batch_%d.bin", a->dir, i + 1);
        struct stat sb;
        if (stat(paths[i], &sb) != 0)
            return dpt_error(DPT_ERR_IO, "%s: %s (CIFAR-10 binary version: data_batch_1.bin .. data_batch_5.bin, "
                                         "and test_batch.bin for --test)",
                             paths[i], strerror(errno));
        if (sb.st_size == 0 || sb.st_size % CIFAR_RECORD != 0)
            return dpt_error(DPT_ERR_FORMAT,
                             "%s: %lld bytes is not a whole number of %d-byte records (expected %d bytes: %d records "
                             "of 1 label byte and %d pixel bytes)",
                             paths[i], (long long)sb.st_size, CIFAR_RECORD, CIFAR_PER_FILE * CIFAR_RECORD,
                             CIFAR_PER_FILE, CIFAR_PIXELS);
        records[i] = sb.st_size / CIFAR_RECORD;
        total += records[i];
    }
    int64_t n = a->limit > 0 ? DPT_MIN(a->limit, total) : total;
    char *names[CIFAR_CLASSES];
    char meta[4200];
    snprintf(meta, sizeof meta, "%s/batches.meta.txt", a->dir);
    bool own_names = access(meta, F_OK) == 0;
    if (own_names) DPT_TRY(read_names(meta, names));
    else
        for (int i = 0; i < CIFAR_CLASSES; i++) names[i] = (char *)standard_names[i];

    uint8_t *images = dpt_xmalloc((size_t)n * CIFAR_PIXELS);
    int64_t *labels = dpt_xmalloc((size_t)n * sizeof(int64_t));
    uint8_t rec[CIFAR_RECORD];
    dpt_status st = DPT_OK;
    int64_t done = 0;
    for (int i = 0; st == DPT_OK && i < nfiles && done < n; i++) {
        FILE *f = fopen(paths[i], "rb");
        if (!f) {
            st = dpt_error(DPT_ERR_IO, "%s: cannot open: %s", paths[i], strerror(errno));
            break;
        }
        for (int64_t r = 0; st == DPT_OK && r < records[i] && done < n; r++, done++) {
            if (fread(rec, 1, CIFAR_RECORD, f) != CIFAR_RECORD)
                st = dpt_error(DPT_ERR_IO, "%s: read error at record %lld", paths[i], (long long)r);
            else if (rec[0] >= CIFAR_CLASSES)
                st = dpt_error(DPT_ERR_FORMAT, "%s: record %lld has label %d; CIFAR-10 labels are 0..9", paths[i],
                               (long long)r, rec[0]);
            else {
                labels[done] = rec[0];
                memcpy(images + done * CIFAR_PIXELS, rec + 1, CIFAR_PIXELS);
            }
        }
        fclose(f);
    }
    double mean[3], std[3];
    if (st == DPT_OK) st = write_split(a, images, labels, n, names, mean, std);
    if (st == DPT_OK) {
        struct stat sb;
        double mb = stat(a->out_path, &sb) == 0 ? sb.st_size / 1e6 : 0.0;
        snprintf(summary, summary_size,
                 "%s: %lld images (3, 32, 32), %d classes, %.1f MB, mean %.4f %.4f %.4f, std %.4f %.4f %.4f",
                 a->out_path, (long long)n, CIFAR_CLASSES, mb, mean[0], mean[1], mean[2], std[0], std[1], std[2]);
    }
    if (own_names)
        for (int i = 0; i < CIFAR_CLASSES; i++) free(names[i]);
    free(images);
    free(labels);
    return st;
}
