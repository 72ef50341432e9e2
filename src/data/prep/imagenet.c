/* ImageNet-style folders of JPEGs -> one HDF5 split (dptrain prep imagenet).
 *
 * Input (imagenet_list.c finds the images and their labels)
 *   folders: DIR/<class>/<name>.{JPEG,jpg,jpeg} (any case); the classes are the folder names in
 *            byte order (Python's sorted(), torchvision's ImageFolder), a label is an index in it.
 *   flat:    DIR/<name>.JPEG and --labels FILE with "NAME CLASS" lines.
 *   --classes TRAIN.h5 takes the class list from an existing split, so that a validation split
 *   gets the training split's indices.
 *   Images are written in (label, name) order.
 *
 * Output, raw mode (default):
 *   images        uint8 (N, 3, S, S): the shorter side resized to S (antialiased), centre crop
 *                 to S x S. Chunked along N in chunks of whole images of about 1 MiB, without any
 *                 filter: the loader reads the chunks with pread, not through HDF5.
 * Output, JPEG mode (--jpeg): variable-length uint8 stored as bytes + offsets,
 *   jpeg          uint8 (total bytes), 1-d: every image's JPEG stream, concatenated. Without any
 *                 filter: chunked in 1 MiB chunks (the size is unknown until the end), or
 *                 contiguous when the whole split is under 1 MiB
 *   jpeg_offsets  int64 (N + 1): off[0] = 0, image i is jpeg[off[i] : off[i + 1]]
 *                 Each image is resized, aspect ratio kept, so its shorter side is S (small images
 *                 are enlarged); a longer side beyond 4 S is centre-cropped to 4 S. Re-encoded at
 *                 --quality with 4:2:0 chroma, always 3 components.
 *   attributes    channels = 3, size = S (int64)
 * Both modes:
 *   labels        int64 (N)
 *   attributes    num_classes (int64), class_names (strings), mean and std (float64 (3), [0, 1]
 *                 pixel units, over the stored pixels as the loader decodes them, in double
 *                 precision from exact per-image integer sums), source (DIR)
 *
 * Worker threads (each with its own codec and scratch) read, decode and resize images into a
 * bounded window of slots; the calling thread writes the slots in order and is the only thread
 * that calls HDF5. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dpt/core/timer.h"
#include "dpt/data/h5io.h"
#include "dpt/data/image.h"
#include "imagenet_internal.h"

#define JPEG_CHUNK_BYTES ((int64_t)1 << 20)
#define RAW_CHUNK_TARGET ((int64_t)1 << 20)
#define SKIPPED_LISTED 5 /* skipped files named in the summary */
#define SKIPPED_WARNED 20 /* skipped files reported on stderr as they happen */

typedef struct slot {
    bool ready;
    dpt_status st;
    bool fatal; /* an error that --skip-bad does not skip */
    char err[700];
    int comps;  /* colour components of the source JPEG */
    uint8_t *data; /* raw: (3, S, S); jpeg: the re-encoded stream */
    size_t cap, len;
    uint64_t sum[3], sum2[3], npix;
} slot;

typedef struct pipeline {
    const prep_imagenet_args *a;
    const prep_item *items;
    int64_t n;
    slot *slots;
    int64_t window;
    pthread_mutex_t mu;
    pthread_cond_t cv_ready, cv_space;
    int64_t next, written;
    bool abort;
} pipeline;

typedef struct worker {
    pipeline *p;
    pthread_t tid;
    img_codec *codec;
    img_scratch scratch;
    uint8_t *file, *pix, *rs, *dec;
    size_t file_cap, pix_cap, rs_cap, dec_cap;
} worker;

static dpt_status read_file(const char *path, uint8_t **buf, size_t *cap, size_t *len) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return dpt_error(DPT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return dpt_error(DPT_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    }
    size_t want = (size_t)sb.st_size, got = 0;
    dpt_xgrow(buf, cap, want > 0 ? want : 1);
    while (got < want) {
        ssize_t r = read(fd, *buf + got, want - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    int err = errno;
    close(fd);
    if (got != want)
        return dpt_error(DPT_ERR_IO, "%s: read %zu of %zu bytes: %s", path, got, want,
                         got < want && err == 0 ? "the file shrank while being read" : strerror(err));
    *len = got;
    return DPT_OK;
}

static void add_stats(slot *s, const uint8_t *p, size_t npix, ptrdiff_t pix_stride, ptrdiff_t ch_stride) {
    for (int c = 0; c < 3; c++) {
        uint64_t a = 0, a2 = 0;
        const uint8_t *q = p + c * ch_stride;
        for (size_t k = 0; k < npix; k++) {
            unsigned v = q[(ptrdiff_t)k * pix_stride];
            a += v;
            a2 += v * v;
        }
        s->sum[c] = a;
        s->sum2[c] = a2;
    }
    s->npix = npix;
}

/* Reads, decodes and resizes one image into its slot. */
static dpt_status convert_one(worker *wk, const prep_item *it, slot *s) {
    const prep_imagenet_args *a = wk->p->a;
    const int S = a->size;
    size_t len = 0;
    s->fatal = true;
    DPT_TRY(read_file(it->path, &wk->file, &wk->file_cap, &len));
    s->fatal = false;
    int iw, ih;
    DPT_TRY(img_jpeg_info(wk->codec, wk->file, len, it->path, &iw, &ih, &s->comps));
    if (a->strict_channels && s->comps != 3) {
        s->fatal = true;
        return dpt_error(DPT_ERR_FORMAT, "%s: has %d colour component%s (%s), and --strict-channels accepts only 3",
                         it->path, s->comps, s->comps == 1 ? "" : "s", s->comps == 1 ? "grey-scale" : "CMYK");
    }
    /* The decoder's DCT-domain downscale (a proper low-pass) is cheap; it is used only when it
     * at least halves the image, and never below S on the shorter side, so the antialiased
     * resample that follows still works from at least S x S pixels. */
    int mw = 0, mh = 0, w, h;
    if (DPT_MIN(iw, ih) >= 2 * S) mw = mh = S;
    DPT_TRY(img_jpeg_decode(wk->codec, wk->file, len, it->path, 3, mw, mh, &wk->pix, &wk->pix_cap, &w, &h));
    img_view v = img_view_hwc(wk->pix, w, h, 3);
    s->fatal = true; /* from here on a failure is ours, not the input's */
    if (!a->jpeg) {
        double side = DPT_MIN(w, h);
        uint8_t *rs = dpt_xgrow(&wk->rs, &wk->rs_cap, (size_t)3 * S * S);
        img_resample_u8(&v, (w - side) / 2, (h - side) / 2, side, side, rs, S, S, &wk->scratch);
        uint8_t *out = dpt_xgrow(&s->data, &s->cap, (size_t)3 * S * S);
        const size_t plane = (size_t)S * S;
        for (size_t k = 0; k < plane; k++) {
            out[k] = rs[3 * k];
            out[plane + k] = rs[3 * k + 1];
            out[2 * plane + k] = rs[3 * k + 2];
        }
        s->len = 3 * plane;
        add_stats(s, out, plane, 1, (ptrdiff_t)plane);
        return DPT_OK;
    }
    double x0 = 0, y0 = 0, bw = w, bh = h;
    int ow, oh;
    if (w <= h) {
        ow = S;
        oh = (int)lround((double)h * S / w);
        if (oh > 4 * S) {
            oh = 4 * S;
            bh = 4.0 * w;
            y0 = (h - bh) / 2;
        }
    } else {
        oh = S;
        ow = (int)lround((double)w * S / h);
        if (ow > 4 * S) {
            ow = 4 * S;
            bw = 4.0 * h;
            x0 = (w - bw) / 2;
        }
    }
    uint8_t *rs = dpt_xgrow(&wk->rs, &wk->rs_cap, (size_t)3 * ow * oh);
    img_resample_u8(&v, x0, y0, bw, bh, rs, ow, oh, &wk->scratch);
    DPT_TRY(img_jpeg_encode(wk->codec, rs, ow, oh, 3, a->quality, &s->data, &s->cap, &s->len));
    /* Statistics over what the loader will see: the stored stream, decoded. */
    int dw, dh;
    DPT_TRY(img_jpeg_decode(wk->codec, s->data, s->len, it->path, 3, 0, 0, &wk->dec, &wk->dec_cap, &dw, &dh));
    add_stats(s, wk->dec, (size_t)dw * dh, 3, 1);
    return DPT_OK;
}

static void *worker_main(void *arg) {
    worker *wk = arg;
    pipeline *p = wk->p;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->abort && p->next < p->n && p->next >= p->written + p->window)
            pthread_cond_wait(&p->cv_space, &p->mu);
        if (p->abort || p->next >= p->n) break;
        int64_t i = p->next++;
        pthread_mutex_unlock(&p->mu);
        slot *s = &p->slots[i % p->window];
        s->st = convert_one(wk, &p->items[i], s);
        if (s->st != DPT_OK) snprintf(s->err, sizeof s->err, "%s", dpt_error_message());
        pthread_mutex_lock(&p->mu);
        s->ready = true;
        pthread_cond_broadcast(&p->cv_ready);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---- writer (the calling thread; the only one that calls HDF5) ---- */

typedef struct writer {
    const prep_imagenet_args *a;
    hid_t file, ds;
    int64_t stored;       /* images accepted */
    int64_t flushed;      /* raw: images written to `images`; jpeg: bytes written to `jpeg` */
    uint8_t *buf;         /* staging: whole raw chunks, or JPEG bytes up to whole 1 MiB chunks */
    size_t buf_len, buf_cap;
    int64_t chunk_images; /* raw */
    int64_t *labels, *offsets;
    double sum[3], sum2[3], npix, mean[3], std[3];
    int64_t grey, cmyk, skipped;
    char skipped_names[SKIPPED_LISTED][512];
} writer;

static dpt_status h5_fail(const char *out, const char *what) {
    char msg[512];
    h5_last_error(msg, sizeof msg);
    return dpt_error(DPT_ERR_IO, "%s: cannot write %s: %s", out, what, msg);
}

/* Appends count rows (along dimension 0) to a chunked dataset of the given rank. */
static dpt_status append_rows(const writer *wr, hid_t ds, int rank, const char *name, hsize_t at, hsize_t count,
                              const void *data) {
    hsize_t dims[4], start[4] = {at, 0, 0, 0};
    hid_t fs = H5Dget_space(ds);
    H5Sget_simple_extent_dims(fs, dims, NULL);
    H5Sclose(fs);
    dims[0] = at + count;
    if (H5Dset_extent(ds, dims) < 0) return h5_fail(wr->a->out_path, name);
    hsize_t cnt[4] = {count, dims[1], dims[2], dims[3]};
    fs = H5Dget_space(ds);
    hid_t ms = H5Screate_simple(rank, cnt, NULL);
    herr_t rc = H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL);
    if (rc >= 0) rc = H5Dwrite(ds, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, data);
    H5Sclose(ms);
    H5Sclose(fs);
    return rc < 0 ? h5_fail(wr->a->out_path, name) : DPT_OK;
}

/* The JPEG byte dataset. A split under one chunk (1 MiB) is written contiguous at its exact
 * size when it is complete; a larger one is created chunked, extendible, at the first whole
 * chunk. */
static dpt_status create_jpeg_dataset(writer *wr, bool chunked, hsize_t size) {
    hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t dims[1] = {chunked ? 0 : size}, maxd[1] = {chunked ? H5S_UNLIMITED : size};
    hsize_t chunk[1] = {(hsize_t)JPEG_CHUNK_BYTES};
    if (chunked) H5_CHECK(H5Pset_chunk(pl, 1, chunk));
    H5_CHECK(H5Pset_fill_time(pl, H5D_FILL_TIME_NEVER));
    hid_t sp = H5Screate_simple(1, dims, maxd);
    wr->ds = H5Dcreate2(wr->file, "jpeg", H5T_STD_U8LE, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    H5Sclose(sp);
    H5Pclose(pl);
    return wr->ds < 0 ? h5_fail(wr->a->out_path, "jpeg") : DPT_OK;
}

/* Writes the staged bytes: raw, whole chunks of images (or the tail when final); jpeg, whole
 * 1 MiB chunks (or everything when final). */
static dpt_status writer_flush(writer *wr, bool final) {
    if (!wr->a->jpeg) {
        size_t per = (size_t)3 * wr->a->size * wr->a->size;
        hsize_t k = wr->buf_len / per;
        if (k == 0 || (!final && (int64_t)k < wr->chunk_images)) return DPT_OK;
        DPT_TRY(append_rows(wr, wr->ds, 4, "images", (hsize_t)wr->flushed, k, wr->buf));
        wr->flushed += (int64_t)k;
        wr->buf_len = 0;
        return DPT_OK;
    }
    size_t bytes = final ? wr->buf_len : wr->buf_len / JPEG_CHUNK_BYTES * JPEG_CHUNK_BYTES;
    if (bytes == 0) return DPT_OK;
    if (wr->ds < 0 && final) {
        DPT_TRY(create_jpeg_dataset(wr, false, bytes));
        if (H5Dwrite(wr->ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, wr->buf) < 0)
            return h5_fail(wr->a->out_path, "jpeg");
    } else {
        if (wr->ds < 0) DPT_TRY(create_jpeg_dataset(wr, true, 0));
        DPT_TRY(append_rows(wr, wr->ds, 1, "jpeg", (hsize_t)wr->flushed, bytes, wr->buf));
    }
    wr->flushed += (int64_t)bytes;
    memmove(wr->buf, wr->buf + bytes, wr->buf_len - bytes);
    wr->buf_len -= bytes;
    return DPT_OK;
}

static dpt_status writer_take(writer *wr, const prep_item *it, const slot *s) {
    if (s->st != DPT_OK) {
        if (s->fatal || !wr->a->skip_bad || s->st != DPT_ERR_FORMAT) {
            const char *hint = !s->fatal && s->st == DPT_ERR_FORMAT ? " (--skip-bad skips unreadable images)" : "";
            return dpt_error(s->st, "%s%s", s->err, hint);
        }
        if (wr->skipped < SKIPPED_LISTED)
            snprintf(wr->skipped_names[wr->skipped], sizeof wr->skipped_names[0], "%s", it->path);
        if (wr->skipped < SKIPPED_WARNED) fprintf(stderr, "dptrain: warning: skipped %s\n", s->err);
        else if (wr->skipped == SKIPPED_WARNED) fprintf(stderr, "dptrain: warning: skipping more unreadable images\n");
        wr->skipped++;
        return DPT_OK;
    }
    wr->grey += s->comps == 1;
    wr->cmyk += s->comps == 4;
    for (int c = 0; c < 3; c++) {
        wr->sum[c] += (double)s->sum[c];
        wr->sum2[c] += (double)s->sum2[c];
    }
    wr->npix += (double)s->npix;
    wr->labels[wr->stored] = it->label;
    if (wr->a->jpeg) wr->offsets[wr->stored + 1] = wr->offsets[wr->stored] + (int64_t)s->len;
    wr->stored++;
    memcpy(dpt_xgrow(&wr->buf, &wr->buf_cap, wr->buf_len + s->len) + wr->buf_len, s->data, s->len);
    wr->buf_len += s->len;
    return writer_flush(wr, false);
}

/* Creates the (empty, extendible) images dataset; the jpeg one is made when its size is known
 * to exceed a chunk (writer_flush). */
static dpt_status writer_create(writer *wr, int64_t n) {
    const prep_imagenet_args *a = wr->a;
    if (a->jpeg) return DPT_OK;
    int64_t per = (int64_t)3 * a->size * a->size;
    wr->chunk_images = DPT_MAX(1, DPT_MIN(n, RAW_CHUNK_TARGET / per));
    hsize_t dims[4] = {0, 3, (hsize_t)a->size, (hsize_t)a->size};
    hsize_t maxd[4] = {H5S_UNLIMITED, 3, (hsize_t)a->size, (hsize_t)a->size};
    hsize_t chunk[4] = {(hsize_t)wr->chunk_images, 3, (hsize_t)a->size, (hsize_t)a->size};
    hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
    H5_CHECK(H5Pset_fill_time(pl, H5D_FILL_TIME_NEVER));
    H5_CHECK(H5Pset_chunk(pl, 4, chunk));
    hid_t sp = H5Screate_simple(4, dims, maxd);
    wr->ds = H5Dcreate2(wr->file, "images", H5T_STD_U8LE, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    H5Sclose(sp);
    H5Pclose(pl);
    return wr->ds < 0 ? h5_fail(a->out_path, "images") : DPT_OK;
}

static dpt_status write_i64(const writer *wr, const char *name, const int64_t *v, int64_t n) {
    hsize_t dims[1] = {(hsize_t)n};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t ds = H5Dcreate2(wr->file, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = ds < 0 ? -1 : H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(sp);
    return rc < 0 ? h5_fail(wr->a->out_path, name) : DPT_OK;
}

static dpt_status writer_finish(writer *wr, const prep_class_list *cl) {
    const prep_imagenet_args *a = wr->a;
    DPT_TRY(writer_flush(wr, true));
    if (wr->stored == 0)
        return dpt_error(DPT_ERR_FORMAT, "%s: none of the images could be read (%lld skipped)", a->dir,
                         (long long)wr->skipped);
    DPT_TRY(write_i64(wr, "labels", wr->labels, wr->stored));
    if (a->jpeg) DPT_TRY(write_i64(wr, "jpeg_offsets", wr->offsets, wr->stored + 1));
    /* The same formula as dataset_compute_stats, from exact integer sums. */
    for (int c = 0; c < 3; c++) {
        double m = wr->sum[c] / wr->npix, v = wr->sum2[c] / wr->npix - m * m;
        wr->mean[c] = m / 255.0;
        wr->std[c] = sqrt(v > 0.0 ? v : 0.0) / 255.0;
    }
    h5_write_attr_i64(wr->file, "num_classes", cl->n);
    h5_write_attr_strings(wr->file, "class_names", (const char *const *)cl->names, cl->n);
    h5_write_attr_f64s(wr->file, "mean", wr->mean, 3);
    h5_write_attr_f64s(wr->file, "std", wr->std, 3);
    if (a->jpeg) {
        h5_write_attr_i64(wr->file, "channels", 3);
        h5_write_attr_i64(wr->file, "size", a->size);
    }
    h5_write_attr_string(wr->file, "source", a->dir);
    return DPT_OK;
}

/* ---- progress ---- */

/* On a terminal one line rewritten in place; otherwise (a log file) a line every 5 s, and a last
 * one when there were any. */
typedef struct progress {
    bool tty, shown;
    double start, last;
} progress;

static void progress_show(progress *pg, int64_t done, int64_t total, bool final) {
    double now = timer_now();
    if (!final && now - pg->last < (pg->tty ? 0.25 : 5.0)) return;
    if (final && !pg->tty && !pg->shown) return;
    pg->last = now;
    pg->shown = true;
    double el = now - pg->start, rate = el > 0 ? done / el : 0;
    double eta = rate > 0 ? (total - done) / rate : 0;
    int es = (int)eta;
    fprintf(stderr, "%sprep: %lld/%lld images (%.1f%%), %.0f images/s, ETA %d:%02d:%02d%s", pg->tty ? "\r" : "",
            (long long)done, (long long)total, total ? 100.0 * done / total : 100.0, rate, es / 3600, es / 60 % 60,
            es % 60, !pg->tty ? "\n" : final ? "\033[K\n" : "\033[K");
    fflush(stderr);
}

static int default_threads(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void summarize(const writer *wr, const prep_class_list *cl, char *summary, size_t size) {
    const prep_imagenet_args *a = wr->a;
    struct stat sb;
    double mb = stat(a->out_path, &sb) == 0 ? sb.st_size / 1e6 : 0.0;
    int len;
    if (a->jpeg)
        len = snprintf(summary, size, "%s: %lld images as JPEG (shorter side %d, quality %d, %.1f KB each on average)",
                       a->out_path, (long long)wr->stored, a->size, a->quality,
                       wr->offsets[wr->stored] / 1e3 / (double)wr->stored);
    else
        len = snprintf(summary, size, "%s: %lld images (3, %d, %d)", a->out_path, (long long)wr->stored, a->size,
                       a->size);
    len += snprintf(summary + len, size - (size_t)DPT_MIN((size_t)len, size),
                    ", %d classes, %.1f MB, converted %lld grey and %lld CMYK images to RGB, skipped %lld unreadable",
                    cl->n, mb, (long long)wr->grey, (long long)wr->cmyk, (long long)wr->skipped);
    for (int64_t i = 0; i < DPT_MIN(wr->skipped, SKIPPED_LISTED) && (size_t)len < size; i++)
        len += snprintf(summary + len, size - (size_t)len, "%s%s", i ? ", " : ": ", wr->skipped_names[i]);
    if (wr->skipped > SKIPPED_LISTED && (size_t)len < size)
        snprintf(summary + len, size - (size_t)len, " and %lld more", (long long)(wr->skipped - SKIPPED_LISTED));
}

/* Runs the workers and writes their results in order. */
static dpt_status run_pipeline(writer *wr, const prep_item *items, int64_t n, int nthreads) {
    const prep_imagenet_args *a = wr->a;
    pipeline p = {.a = a, .items = items, .n = n};
    /* Enough slots that a slow image does not stall the other threads for long. */
    p.window = 8 * (int64_t)nthreads + 8;
    p.slots = dpt_xcalloc((size_t)p.window, sizeof(slot));
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv_ready, NULL);
    pthread_cond_init(&p.cv_space, NULL);
    worker *wk = dpt_xcalloc((size_t)nthreads, sizeof(worker));
    int started = 0;
    for (int t = 0; t < nthreads; t++) {
        wk[t].p = &p;
        wk[t].codec = img_codec_create();
        if (pthread_create(&wk[t].tid, NULL, worker_main, &wk[t]) != 0) break;
        started++;
    }
    progress pg = {.tty = isatty(2) == 1, .start = timer_now()};
    pg.last = pg.start;
    dpt_status st = started > 0 ? DPT_OK : dpt_error(DPT_ERR_INTERNAL, "cannot start a worker thread");
    for (int64_t i = 0; st == DPT_OK && i < n; i++) {
        slot *s = &p.slots[i % p.window];
        pthread_mutex_lock(&p.mu);
        while (!s->ready) pthread_cond_wait(&p.cv_ready, &p.mu);
        pthread_mutex_unlock(&p.mu);
        st = writer_take(wr, &items[i], s);
        pthread_mutex_lock(&p.mu);
        s->ready = false;
        p.written = i + 1;
        pthread_cond_broadcast(&p.cv_space);
        pthread_mutex_unlock(&p.mu);
        progress_show(&pg, i + 1, n, i + 1 == n);
    }
    pthread_mutex_lock(&p.mu);
    p.abort = true;
    pthread_cond_broadcast(&p.cv_space);
    pthread_mutex_unlock(&p.mu);
    for (int t = 0; t < nthreads; t++) {
        if (t < started) pthread_join(wk[t].tid, NULL);
        img_codec_destroy(wk[t].codec);
        img_scratch_free(&wk[t].scratch);
        free(wk[t].file);
        free(wk[t].pix);
        free(wk[t].rs);
        free(wk[t].dec);
    }
    free(wk);
    for (int64_t k = 0; k < p.window; k++) free(p.slots[k].data);
    free(p.slots);
    pthread_cond_destroy(&p.cv_space);
    pthread_cond_destroy(&p.cv_ready);
    pthread_mutex_destroy(&p.mu);
    return st;
}

dpt_status prep_imagenet(const prep_imagenet_args *a, char *summary, size_t summary_size) {
    if (a->size < 1 || a->size > 8192) return dpt_error(DPT_ERR_ARG, "--size %d is outside [1, 8192]", a->size);
    if (a->jpeg && (a->quality < 1 || a->quality > 100))
        return dpt_error(DPT_ERR_ARG, "--quality %d is outside [1, 100]", a->quality);
    prep_class_list cl = {0};
    prep_item *items = NULL;
    int64_t n = 0;
    DPT_TRY(prep_list_images(a, &cl, &items, &n));
    int64_t use = a->limit > 0 ? DPT_MIN(a->limit, n) : n;
    int nthreads = a->threads > 0 ? a->threads : default_threads();
    nthreads = (int)DPT_MAX(1, DPT_MIN((int64_t)nthreads, use));
    fprintf(stderr, "prep: %lld of %lld images in %d classes from %s, %d thread%s\n", (long long)use, (long long)n,
            cl.n, a->dir, nthreads, nthreads == 1 ? "" : "s");

    h5_quiet();
    char tmp[4200];
    writer wr = {.a = a, .ds = -1};
    wr.file = h5_create_file_atomic(a->out_path, tmp, sizeof tmp);
    dpt_status st = DPT_OK;
    if (wr.file < 0) st = dpt_error(DPT_ERR_IO, "%s: cannot create (does the directory exist?)", a->out_path);
    if (st == DPT_OK) {
        wr.labels = dpt_xmalloc((size_t)use * sizeof(int64_t));
        if (a->jpeg) wr.offsets = dpt_xcalloc((size_t)use + 1, sizeof(int64_t));
        st = writer_create(&wr, use);
        if (st == DPT_OK) st = run_pipeline(&wr, items, use, nthreads);
        if (st == DPT_OK) st = writer_finish(&wr, &cl);
        if (wr.ds >= 0) H5Dclose(wr.ds);
        if (st == DPT_OK) st = h5_commit_file(wr.file, tmp, a->out_path);
        else {
            H5Fclose(wr.file);
            unlink(tmp);
        }
        if (st == DPT_OK) summarize(&wr, &cl, summary, summary_size);
    }
    free(wr.buf);
    free(wr.labels);
    free(wr.offsets);
    prep_free_items(items, n);
    prep_free_classes(&cl);
    return st;
}
