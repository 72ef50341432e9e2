/* The data path at scale: on-demand reading (pread of unfiltered chunks, HDF5 for compressed
 * ones), JPEG splits, the resampler, random-resized crop, and the multi-threaded loader:
 * determinism over worker and rank counts, sharding, size changes, corrupt samples. */
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dpt/data/augment.h"
#include "dpt/data/dataset.h"
#include "dpt/data/h5io.h"
#include "dpt/data/image.h"
#include "dpt/data/loader.h"
#include "dpt/data/sampler.h"
#include "testutil.h"

#define N 64
#define C 3
#define H 20
#define W 24

static uint8_t images[N * C * H * W];
static int64_t labels[N];
static char dir[256];

/* chunk_n 0: contiguous; deflate: compressed chunks; tile: chunks that split images. */
static void write_raw(const char *path, int n, int chunk_n, bool deflate, bool tile) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[4] = {(hsize_t)n, C, H, W};
    hid_t sp = H5Screate_simple(4, dims, NULL), pl = H5Pcreate(H5P_DATASET_CREATE);
    if (chunk_n) {
        hsize_t ch[4] = {(hsize_t)chunk_n, C, tile ? H / 2 : H, W};
        H5Pset_chunk(pl, 4, ch);
        if (deflate) H5Pset_deflate(pl, 1);
    }
    hid_t ds = H5Dcreate2(f, "images", H5T_STD_U8LE, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, images);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Pclose(pl);
    h5_write_array(f, "labels", H5T_STD_I64LE, H5T_NATIVE_INT64, labels, 1, (int64_t[]){n});
    h5_write_attr_i64(f, "num_classes", 10);
    H5Fclose(f);
}

/* A JPEG split of N images (H x W, RGB, from `images` transposed to HWC); sample `corrupt`
 * (>= 0) is cut short. Returns the total bytes. */
static void write_jpeg(const char *path, int corrupt) {
    img_codec *codec = img_codec_create();
    uint8_t *all = NULL, *hwc = malloc(H * W * C), *enc = NULL;
    size_t all_len = 0, cap = 0, size = 0;
    int64_t off[N + 1];
    for (int i = 0; i < N; i++) {
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int ch = 0; ch < C; ch++)
                    hwc[(y * W + x) * C + ch] = images[((i * C + ch) * H + y) * W + x];
        TU_CHECK(img_jpeg_encode(codec, hwc, W, H, C, 95, &enc, &cap, &size) == DPT_OK, "encode: %s",
                 dpt_error_message());
        if (i == corrupt) size = size / 2;
        off[i] = (int64_t)all_len;
        all = realloc(all, all_len + size);
        memcpy(all + all_len, enc, size);
        all_len += size;
    }
    off[N] = (int64_t)all_len;
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t n1 = all_len;
    hid_t sp = H5Screate_simple(1, &n1, NULL), pl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t ch = 1000; /* chunks that split images: reads must stitch them */
    H5Pset_chunk(pl, 1, &ch);
    hid_t ds = H5Dcreate2(f, "jpeg", H5T_STD_U8LE, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, all);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Pclose(pl);
    h5_write_array(f, "jpeg_offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, off, 1, (int64_t[]){N + 1});
    h5_write_array(f, "labels", H5T_STD_I64LE, H5T_NATIVE_INT64, labels, 1, (int64_t[]){N});
    h5_write_attr_i64(f, "num_classes", 10);
    h5_write_attr_i64(f, "channels", C);
    h5_write_attr_i64(f, "size", H);
    H5Fclose(f);
    free(all);
    free(hwc);
    free(enc);
    img_codec_destroy(codec);
}

static void check_reads(const char *what, const char *path, int64_t max_bytes, dataset_access want) {
    dpt_dataset d;
    dataset_opts o = {.max_bytes = max_bytes, .cache_bytes = 1 << 20};
    dpt_status st = dataset_open_opts(&d, path, &o);
    TU_CHECK(st == DPT_OK && d.access == want, "%s: open %d access %d want %d: %s", what, st, d.access, want,
             dpt_error_message());
    if (st != DPT_OK) return;
    uint8_t *buf = NULL;
    size_t cap = 0, size = 0;
    bool same = true;
    for (int64_t i = N - 1; i >= 0; i -= 3) {
        const uint8_t *p;
        same = same && dataset_sample(&d, i, &buf, &cap, &p, &size) == DPT_OK && size == C * H * W &&
               !memcmp(p, images + i * C * H * W, C * H * W);
    }
    TU_CHECK(same, "%s: samples differ from the written images", what);
    free(buf);
    dataset_close(&d);
}

static void test_storage(void) {
    char p[300];
    snprintf(p, sizeof p, "%s_contig.h5", dir);
    write_raw(p, N, 0, false, false);
    check_reads("contiguous, in memory", p, 1 << 30, DS_IN_MEMORY);
    check_reads("contiguous, pread", p, 0, DS_PREAD);
    snprintf(p, sizeof p, "%s_chunk.h5", dir);
    write_raw(p, N, 5, false, false);
    check_reads("chunks of 5 images, pread", p, 0, DS_PREAD);
    snprintf(p, sizeof p, "%s_deflate.h5", dir);
    write_raw(p, N, 5, true, false);
    check_reads("compressed chunks, HDF5", p, 0, DS_HDF5);
    snprintf(p, sizeof p, "%s_tile.h5", dir);
    write_raw(p, N, 4, false, true);
    check_reads("chunks splitting images, HDF5", p, 0, DS_HDF5);

    /* A file cut short: the reader reports it (at open or at the read), naming the file. */
    snprintf(p, sizeof p, "%s_contig.h5", dir);
    char q[300];
    snprintf(q, sizeof q, "%s_cut.h5", dir);
    FILE *in = fopen(p, "rb"), *out = fopen(q, "wb");
    fseek(in, 0, SEEK_END);
    long len = ftell(in);
    fseek(in, 0, SEEK_SET);
    uint8_t *bytes = malloc((size_t)len);
    TU_CHECK(fread(bytes, 1, (size_t)len, in) == (size_t)len, "read back");
    fwrite(bytes, 1, (size_t)len - 3000, out);
    fclose(in);
    fclose(out);
    free(bytes);
    dpt_dataset d;
    dataset_opts o = {.max_bytes = 0};
    dpt_status st = dataset_open_opts(&d, q, &o);
    if (st == DPT_OK) {
        uint8_t *buf = NULL;
        size_t cap = 0, size = 0;
        const uint8_t *s;
        st = dataset_sample(&d, N - 1, &buf, &cap, &s, &size);
        TU_CHECK(st != DPT_OK && tu_contains(dpt_error_message(), q) && tu_contains(dpt_error_message(), "[63]"),
                 "truncated file: %s", dpt_error_message());
        free(buf);
        dataset_close(&d);
    } else {
        TU_CHECK(tu_contains(dpt_error_message(), q), "truncated file: %s", dpt_error_message());
    }
    remove(q);
}

static void test_resample(void) {
    img_scratch s = {0};
    /* Identity: the whole image at its own size is an exact copy. */
    uint8_t out[C * 64 * 64];
    img_view v = img_view_chw(images, W, H, C);
    img_resample_u8(&v, 0, 0, W, H, out, W, H, &s);
    bool same = true;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int ch = 0; ch < C; ch++) same = same && out[(y * W + x) * C + ch] == images[(ch * H + y) * W + x];
    TU_CHECK(same, "identity resample changed pixels");
    /* A constant image stays constant for any box and size; a horizontal ramp stays a ramp. */
    static uint8_t flat[40 * 50 * 3], ramp[40 * 50];
    memset(flat, 77, sizeof flat);
    for (int y = 0; y < 40; y++)
        for (int x = 0; x < 50; x++) ramp[y * 50 + x] = (uint8_t)(4 * x);
    img_view fv = img_view_hwc(flat, 50, 40, 3), rv = img_view_hwc(ramp, 50, 40, 1);
    const int sizes[][2] = {{7, 5}, {50, 40}, {64, 64}, {13, 31}};
    for (int k = 0; k < 4; k++) {
        img_resample_u8(&fv, 3.5, 2.25, 30.5, 20, out, sizes[k][0], sizes[k][1], &s);
        bool flat_ok = true;
        for (int i = 0; i < sizes[k][0] * sizes[k][1] * 3; i++) flat_ok = flat_ok && out[i] == 77;
        TU_CHECK(flat_ok, "constant image not constant at %dx%d", sizes[k][0], sizes[k][1]);
    }
    /* Enlarging a ramp 2x in the interior: value = 4 * (source x at the output centre). */
    img_resample_u8(&rv, 10, 0, 20, 40, out, 40, 40, &s);
    bool ramp_ok = true;
    for (int x = 2; x < 38; x++) {
        double sx = 10 + (x + 0.5) * 0.5 - 0.5;
        ramp_ok = ramp_ok && fabs(out[5 * 40 + x] - 4 * sx) <= 0.5 + 1e-9;
    }
    TU_CHECK(ramp_ok, "ramp is not linear after enlarging");
    /* The float path equals the uint8 path before rounding, mirrored when flipped, in both layouts. */
    float scale[3] = {0.5f, 1.0f, 2.0f}, shift[3] = {-1.0f, 0.0f, 3.0f};
    static float nhwc[64 * 64 * 3], nchw[64 * 64 * 3], flip[64 * 64 * 3];
    const int ow = 17, oh = 11;
    img_resample_u8(&v, 1.5, 2, 20, 15, out, ow, oh, &s);
    img_resample_norm(&v, 1.5, 2, 20, 15, ow, oh, false, scale, shift, true, nhwc, &s);
    img_resample_norm(&v, 1.5, 2, 20, 15, ow, oh, false, scale, shift, false, nchw, &s);
    img_resample_norm(&v, 1.5, 2, 20, 15, ow, oh, true, scale, shift, true, flip, &s);
    bool f_ok = true;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++)
            for (int ch = 0; ch < 3; ch++) {
                float a = nhwc[(y * ow + x) * 3 + ch];
                f_ok = f_ok && fabsf((a - shift[ch]) / scale[ch] - out[(y * ow + x) * 3 + ch]) <= 0.5f + 1e-3f;
                f_ok = f_ok && a == nchw[(ch * oh + y) * ow + x];
                f_ok = f_ok && a == flip[(y * ow + (ow - 1 - x)) * 3 + ch];
            }
    TU_CHECK(f_ok, "normalised resample disagrees with uint8, NCHW or flipped output");
    img_scratch_free(&s);
}

static aug_params base_params(const dpt_dataset *d, const float *mean, const float *std) {
    return (aug_params){.train = true, .flip = true, .seed = 11, .c = C, .h = H, .w = W, .out_h = 16, .out_w = 16,
                        .rrc = true, .scale_min = 0.08f, .scale_max = 1.0f, .ratio_min = 0.75f,
                        .ratio_max = 4.0f / 3.0f, .eval_crop = 0.875f, .decode_scaled = true, .mean = mean,
                        .std = std, .layout = LAYOUT_NHWC};
    (void)d;
}

static void test_rrc(void) {
    float m[3] = {0.5f, 0.5f, 0.5f}, sd[3] = {0.25f, 0.25f, 0.25f};
    aug_params p = base_params(NULL, m, sd);
    const int sw = 200, sh = 150;
    double area_sum = 0;
    int flips = 0, inside = 1, in_range = 1, exact = 1, fallback = 0;
    const int n = 5000;
    for (int i = 0; i < n; i++) {
        double x0, y0, bw, bh, x1, y1, bw1, bh1;
        bool fl, fl1;
        augment_box(&p, i, 3, sw, sh, &x0, &y0, &bw, &bh, &fl);
        augment_box(&p, i, 3, sw, sh, &x1, &y1, &bw1, &bh1, &fl1);
        exact &= x0 == x1 && y0 == y1 && bw == bw1 && bh == bh1 && fl == fl1;
        inside &= x0 >= 0 && y0 >= 0 && x0 + bw <= sw && y0 + bh <= sh && bw >= 1 && bh >= 1 && x0 == floor(x0);
        double frac = bw * bh / (sw * sh), ratio = bw / bh;
        if (bw == sw && bh == sh) fallback++;
        else in_range &= frac > 0.08 * 0.9 && frac <= 1.0 && ratio > 0.75 * 0.97 && ratio < 4.0 / 3.0 * 1.03;
        area_sum += frac;
        flips += fl;
    }
    TU_CHECK(exact, "random-resized crop is not a pure function of (seed, epoch, sample)");
    TU_CHECK(inside, "a crop box leaves the image or is not whole pixels");
    TU_CHECK(in_range, "a crop box's area fraction or aspect ratio is out of range");
    TU_CHECK(area_sum / n > 0.35 && area_sum / n < 0.6, "mean area fraction %.3f (expect ~0.45-0.55)", area_sum / n);
    TU_CHECK(flips > n * 0.45 && flips < n * 0.55, "flips %d of %d", flips, n);
    TU_CHECK(fallback < n / 20, "%d fallbacks", fallback);
    double x0, y0, bw, bh, x1, y1, bw1, bh1;
    bool fl;
    augment_box(&p, 7, 3, sw, sh, &x0, &y0, &bw, &bh, &fl);
    augment_box(&p, 7, 4, sw, sh, &x1, &y1, &bw1, &bh1, &fl);
    TU_CHECK(x0 != x1 || y0 != y1 || bw != bw1 || bh != bh1, "the same crop in two epochs");
    /* Evaluation: a centred square of 0.875 of the shorter side, no flip. */
    p.train = false;
    augment_box(&p, 7, 3, sw, sh, &x0, &y0, &bw, &bh, &fl);
    TU_CHECK(fabs(bw - 131.25) < 1e-9 && fabs(bh - 131.25) < 1e-9 && fabs(x0 - 34.375) < 1e-9 &&
                 fabs(y0 - 9.375) < 1e-9 && !fl,
             "eval box (%g, %g, %g, %g)", x0, y0, bw, bh);
}

/* All batches of an epoch from one loader configuration, concatenated in global order. */
static float *collect(const dpt_dataset *d, const aug_params *p, int gb, int world, int workers, int steps,
                      int64_t epoch, int32_t *ys) {
    const int lb = gb / world;
    const int64_t per = (int64_t)C * p->out_h * p->out_w;
    float *all = calloc((size_t)steps * gb * per, sizeof(float));
    for (int rank = 0; rank < world; rank++) {
        dpt_loader *l = loader_create(d, p, &(loader_opts){.batch = lb, .depth = 3, .workers = workers});
        loader_start_train(l, epoch, 0, steps, gb, rank, world);
        const loader_batch *b;
        while ((b = loader_next(l)) != NULL) {
            memcpy(all + (b->step * gb + rank * lb) * per, b->x, (size_t)(lb * per) * sizeof(float));
            if (ys) memcpy(ys + b->step * gb + rank * lb, b->y, (size_t)lb * sizeof(int32_t));
        }
        loader_destroy(l);
    }
    return all;
}

static void test_loader_determinism(const char *raw_path, const char *jpeg_path) {
    float m[3] = {0.4f, 0.5f, 0.6f}, sd[3] = {0.2f, 0.25f, 0.3f};
    const char *paths[2] = {raw_path, jpeg_path};
    for (int k = 0; k < 2; k++) {
        dpt_dataset d;
        dataset_opts o = {.max_bytes = k ? 0 : 1 << 30}; /* raw in memory, jpeg read on demand */
        TU_CHECK(dataset_open_opts(&d, paths[k], &o) == DPT_OK, "open %s: %s", paths[k], dpt_error_message());
        aug_params p = base_params(&d, m, sd);
        const int gb = 16, steps = 4;
        const size_t bytes = (size_t)steps * gb * C * 16 * 16 * sizeof(float);
        float *one = collect(&d, &p, gb, 1, 1, steps, 2, NULL);
        float *four = collect(&d, &p, gb, 1, 4, steps, 2, NULL);
        float *ranks = collect(&d, &p, gb, 4, 3, steps, 2, NULL);
        float *other = collect(&d, &p, gb, 1, 2, steps, 3, NULL);
        TU_CHECK(!memcmp(one, four, bytes), "%s: 1 and 4 workers give different batches", paths[k]);
        TU_CHECK(!memcmp(one, ranks, bytes), "%s: 4 ranks' slices differ from the 1-rank batches", paths[k]);
        TU_CHECK(memcmp(one, other, bytes) != 0, "%s: epochs 2 and 3 give the same batches", paths[k]);
        bool finite = true;
        for (size_t i = 0; i < bytes / sizeof(float); i++) finite = finite && isfinite(one[i]);
        TU_CHECK(finite, "non-finite loader output");
        /* A size change (progressive resizing) gives what augment_load gives at that size. */
        dpt_loader *l = loader_create(&d, &p, &(loader_opts){.batch = 4, .depth = 2, .workers = 2, .max_h = 20, .max_w = 20});
        loader_set_size(l, 12, 12);
        loader_start_eval(l, 0, 8);
        const loader_batch *b = loader_next(l);
        aug_params q = p;
        q.train = false;
        q.out_h = q.out_w = 12;
        aug_worker *aw = aug_worker_create();
        float expect[C * 12 * 12];
        bool ok = b != NULL;
        for (int i = 0; ok && i < 4; i++)
            ok = augment_load(aw, &d, i, 0, &q, expect) == DPT_OK && !memcmp(b->x + i * C * 144, expect, sizeof expect);
        TU_CHECK(ok, "%s: batch after loader_set_size(12, 12) differs from augment_load at 12x12", paths[k]);
        aug_worker_destroy(aw);
        loader_destroy(l);
        free(one);
        free(four);
        free(ranks);
        free(other);
        dataset_close(&d);
    }
}

/* Every image holds its own index in every pixel: the loader's output names the samples. */
static void test_sharding(void) {
    char p[300];
    snprintf(p, sizeof p, "%s_ids.h5", dir);
    for (int i = 0; i < N; i++) memset(images + (size_t)i * C * H * W, i, C * H * W);
    const int sizes[2] = {64, 60};
    for (int t = 0; t < 2; t++) {
        const int n = sizes[t];
        write_raw(p, n, 8, false, false);
        dpt_dataset d;
        TU_CHECK(dataset_open(&d, p, 0, 0) == DPT_OK && d.access == DS_PREAD, "open ids: %s", dpt_error_message());
        float m[3] = {0, 0, 0}, sd[3] = {1.0f / 255, 1.0f / 255, 1.0f / 255};
        aug_params a = base_params(&d, m, sd);
        a.rrc = false;
        a.flip = false;
        a.out_h = H;
        a.out_w = W;
        const int gb = 8, steps = (int)sampler_steps_per_epoch(n, gb);
        int seen_any[N] = {0};
        for (int64_t epoch = 0; epoch < 2; epoch++) {
            float *x = collect(&d, &a, gb, 4, 2, steps, epoch, NULL);
            int count[N] = {0};
            for (int s = 0; s < steps * gb; s++) {
                int id = (int)lroundf(x[(size_t)s * C * H * W]);
                if (id >= 0 && id < n) {
                    count[id]++;
                    seen_any[id]++;
                }
            }
            int once = 0, twice = 0;
            for (int i = 0; i < n; i++) {
                once += count[i] == 1;
                twice += count[i] > 1;
            }
            TU_CHECK(twice == 0 && once == steps * gb, "n %d epoch %lld: %d samples once, %d more than once", n,
                     (long long)epoch, once, twice);
            free(x);
        }
        if (n == 64) {
            TU_CHECK(steps * gb == n, "an epoch of 64 in batches of 8 covers the split");
        } else { /* 4 dropped per epoch; others in the next epoch */
            int covered = 0;
            for (int i = 0; i < n; i++) covered += seen_any[i] > 0;
            TU_CHECK(covered > steps * gb, "the same samples were dropped in both epochs");
        }
        dataset_close(&d);
    }
    remove(p);
}

static void test_corrupt_jpeg(const char *path) {
    dpt_dataset d;
    TU_CHECK(dataset_open(&d, path, 0, 1 << 30) == DPT_OK, "open corrupt split: %s", dpt_error_message());
    float m[3] = {0.5f, 0.5f, 0.5f}, sd[3] = {0.25f, 0.25f, 0.25f};
    aug_params p = base_params(&d, m, sd);
    aug_worker *aw = aug_worker_create();
    float out[C * 16 * 16];
    TU_CHECK(augment_load(aw, &d, 4, 0, &p, out) == DPT_OK, "a good sample fails: %s", dpt_error_message());
    dpt_status st = augment_load(aw, &d, 5, 0, &p, out);
    TU_CHECK(st != DPT_OK && tu_contains(dpt_error_message(), "jpeg[5]") && tu_contains(dpt_error_message(), path),
             "truncated JPEG: status %d, message '%s'", st, dpt_error_message());
    aug_worker_destroy(aw);
    dataset_close(&d);
}

int main(void) {
    h5_quiet();
    snprintf(dir, sizeof dir, "/tmp/dpt_test_loader_%d", (int)getpid());
    /* Smooth images (JPEG-friendly) with some detail. */
    for (int i = 0; i < N; i++) {
        labels[i] = i % 10;
        for (int ch = 0; ch < C; ch++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    images[((i * C + ch) * H + y) * W + x] =
                        (uint8_t)(128 + 60 * sin(0.3 * x + 0.2 * y + i + ch) + 30 * cos(0.5 * y - 0.1 * x * ch));
    }
    test_storage();
    test_resample();
    test_rrc();
    char raw[300], jpg[300], bad[300];
    snprintf(raw, sizeof raw, "%s_contig.h5", dir);
    snprintf(jpg, sizeof jpg, "%s_jpeg.h5", dir);
    snprintf(bad, sizeof bad, "%s_badjpeg.h5", dir);
    write_jpeg(jpg, -1);
    write_jpeg(bad, 5);
    test_loader_determinism(raw, jpg);
    test_corrupt_jpeg(bad);
    test_sharding();
    const char *suffix[] = {"_contig.h5", "_chunk.h5", "_deflate.h5", "_tile.h5", "_jpeg.h5", "_badjpeg.h5"};
    for (int i = 0; i < 6; i++) {
        char p[300];
        snprintf(p, sizeof p, "%s%s", dir, suffix[i]);
        remove(p);
    }
    return tu_finish("test_loader");
}
