/* IDX import, the HDF5 reader's validation, augmentation and the loader. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "dpt/data/augment.h"
#include "dpt/data/dataset.h"
#include "dpt/data/h5io.h"
#include "dpt/data/loader.h"
#include "dpt/data/prep.h"
#include "dpt/data/sampler.h"
#include "testutil.h"

#define N 50
#define H 6
#define W 5

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void write_idx(const char *path, bool gz, int ndim, const uint32_t *dims, const uint8_t *data, size_t bytes,
                      size_t truncate) {
    uint8_t head[16] = {0, 0, 8, (uint8_t)ndim};
    for (int i = 0; i < ndim; i++) put32(head + 4 + 4 * i, dims[i]);
    size_t hb = 4 + 4 * (size_t)ndim;
    size_t nb = bytes - truncate;
    if (gz) {
        gzFile f = gzopen(path, "wb");
        gzwrite(f, head, (unsigned)hb);
        gzwrite(f, data, (unsigned)nb);
        gzclose(f);
    } else {
        FILE *f = fopen(path, "wb");
        fwrite(head, 1, hb, f);
        fwrite(data, 1, nb, f);
        fclose(f);
    }
}

static uint8_t images[N * H * W], labels[N];

int main(void) {
    for (int i = 0; i < N * H * W; i++) images[i] = (uint8_t)((i * 37) % 251);
    for (int i = 0; i < N; i++) labels[i] = (uint8_t)(i % 7);
    uint32_t idims[3] = {N, H, W}, ldims[1] = {N};
    char dir[256];
    snprintf(dir, sizeof dir, "/tmp/dpt_test_data_%d", (int)getpid());
    char img_gz[300], lab_raw[300], out[300], bad[300];
    snprintf(img_gz, sizeof img_gz, "%s_img.gz", dir);
    snprintf(lab_raw, sizeof lab_raw, "%s_lab", dir);
    snprintf(out, sizeof out, "%s.h5", dir);
    write_idx(img_gz, true, 3, idims, images, sizeof images, 0);
    write_idx(lab_raw, false, 1, ldims, labels, sizeof labels, 0);

    char summary[512];
    prep_idx_args a = {img_gz, lab_raw, out, 0, NULL};
    TU_CHECK(prep_idx(&a, summary, sizeof summary) == DPT_OK, "prep: %s", dpt_error_message());
    dpt_dataset d;
    TU_CHECK(dataset_open(&d, out, 0, 1 << 30) == DPT_OK, "open: %s", dpt_error_message());
    TU_CHECK(d.n == N && d.c == 1 && d.h == H && d.w == W && d.num_classes == 7, "shape or classes");
    TU_CHECK(!memcmp(d.images, images, sizeof images), "images differ after the round trip");
    bool lab_ok = true;
    for (int i = 0; i < N; i++) lab_ok = lab_ok && d.labels[i] == labels[i];
    TU_CHECK(lab_ok, "labels differ after the round trip");
    double m, s;
    dataset_compute_stats(images, N, 1, H, W, &m, &s);
    TU_CHECK(fabs(d.mean[0] - m) < 1e-6 && fabs(d.std[0] - s) < 1e-6, "mean/std attributes");
    dataset_close(&d);
    TU_CHECK(dataset_open(&d, out, 10, 1 << 30) == DPT_OK && d.n == 10, "subset");
    dataset_close(&d);
    /* Larger than the memory bound: read on demand (through HDF5: the IDX importer compresses), the same bytes. */
    TU_CHECK(dataset_open(&d, out, 0, 100) == DPT_OK && d.access == DS_HDF5 && d.images == NULL,
             "memory bound: %s", dpt_error_message());
    {
        uint8_t *buf = NULL;
        size_t cap = 0, size = 0;
        bool same = true;
        for (int64_t i = 0; i < N; i++) {
            const uint8_t *p;
            same = same && dataset_sample(&d, i, &buf, &cap, &p, &size) == DPT_OK && size == H * W &&
                   !memcmp(p, images + i * H * W, H * W);
        }
        TU_CHECK(same, "on-demand reads differ from the images");
        free(buf);
    }
    dataset_close(&d);

    /* Class names and an explicit class count. */
    prep_idx_args named = {img_gz, lab_raw, out, 8, "a,b,c,d,e,f,g,h"};
    TU_CHECK(prep_idx(&named, summary, sizeof summary) == DPT_OK, "prep named: %s", dpt_error_message());
    TU_CHECK(dataset_open(&d, out, 0, 1 << 30) == DPT_OK && d.num_classes == 8 && d.nclass_names == 8 &&
                 !strcmp(d.class_names[7], "h"),
             "class names");
    dataset_close(&d);
    prep_idx_args few = {img_gz, lab_raw, out, 0, "a,b"};
    TU_CHECK(prep_idx(&few, summary, sizeof summary) == DPT_ERR_ARG, "wrong class-name count accepted");
    prep_idx_args small = {img_gz, lab_raw, out, 5, NULL};
    TU_CHECK(prep_idx(&small, summary, sizeof summary) == DPT_ERR_FORMAT && tu_contains(dpt_error_message(), "label 6"),
             "label beyond --num-classes: %s", dpt_error_message());

    /* Broken IDX inputs. */
    snprintf(bad, sizeof bad, "%s_trunc", dir);
    write_idx(bad, false, 3, idims, images, sizeof images, 7);
    prep_idx_args t = {bad, lab_raw, out, 0, NULL};
    TU_CHECK(prep_idx(&t, summary, sizeof summary) == DPT_ERR_FORMAT && tu_contains(dpt_error_message(), "truncated"),
             "truncated: %s", dpt_error_message());
    uint32_t fewer[1] = {N - 1};
    write_idx(bad, false, 1, fewer, labels, N - 1, 0);
    prep_idx_args mm = {img_gz, bad, out, 0, NULL};
    TU_CHECK(prep_idx(&mm, summary, sizeof summary) == DPT_ERR_FORMAT && tu_contains(dpt_error_message(), "49 labels"),
             "count mismatch: %s", dpt_error_message());
    prep_idx_args swapped = {lab_raw, img_gz, out, 0, NULL};
    TU_CHECK(prep_idx(&swapped, summary, sizeof summary) == DPT_ERR_FORMAT, "labels as images accepted");
    prep_idx_args missing = {"/nonexistent.gz", lab_raw, out, 0, NULL};
    TU_CHECK(prep_idx(&missing, summary, sizeof summary) == DPT_ERR_IO &&
                 tu_contains(dpt_error_message(), "/nonexistent.gz"),
             "missing: %s", dpt_error_message());
    TU_CHECK(dataset_open(&d, "/nonexistent.h5", 0, 1 << 30) == DPT_ERR_IO, "missing h5");
    TU_CHECK(dataset_open(&d, lab_raw, 0, 1 << 30) == DPT_ERR_FORMAT && tu_contains(dpt_error_message(), "not an HDF5"),
             "not hdf5: %s", dpt_error_message());

    /* Augmentation: eval is identity + normalisation; crop and flip move pixels as stated. */
    TU_CHECK(prep_idx(&a, summary, sizeof summary) == DPT_OK, "prep again");
    TU_CHECK(dataset_open(&d, out, 0, 1 << 30) == DPT_OK, "open again");
    float mean = 0.5f, std = 0.25f;
    aug_params ap = {.train = false, .crop_pad = 2, .flip = true, .seed = 3, .c = 1, .h = H, .w = W,
                     .mean = &mean, .std = &std, .layout = LAYOUT_NHWC};
    float o[H * W];
    augment_sample(o, images + 3 * H * W, 3, 0, &ap);
    bool id = true;
    for (int i = 0; i < H * W; i++) id = id && fabsf(o[i] - (images[3 * H * W + i] / 255.0f - 0.5f) / 0.25f) < 1e-5f;
    TU_CHECK(id, "eval preprocessing is not plain normalisation");
    ap.train = true;
    int seen_flip = 0, seen_shift = 0;
    for (int64_t smp = 0; smp < 40; smp++) {
        int dy, dx;
        bool fl;
        augment_choice(&ap, smp, 1, &dy, &dx, &fl);
        TU_CHECK(dy >= 0 && dy <= 4 && dx >= 0 && dx <= 4, "crop offset out of range");
        seen_flip += fl;
        seen_shift += dy != 2 || dx != 2;
        augment_sample(o, images, smp, 1, &ap);
        bool ok = true;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int sy = y + dy - 2, sx = (fl ? W - 1 - x : x) + dx - 2;
                float v = (sy >= 0 && sy < H && sx >= 0 && sx < W) ? images[sy * W + sx] : 0.0f;
                ok = ok && fabsf(o[y * W + x] - (v / 255.0f - 0.5f) / 0.25f) < 1e-5f;
            }
        TU_CHECK(ok, "sample %lld: crop (%d, %d) flip %d moved pixels wrongly", (long long)smp, dy, dx, fl);
    }
    TU_CHECK(seen_flip > 5 && seen_flip < 35 && seen_shift > 20, "flip %d / shift %d of 40", seen_flip, seen_shift);

    /* The loader delivers each rank's slice of the global batches, augmented as above. */
    const int gb = 8, world = 2, rank = 1, lb = gb / world;
    ap.out_h = H;
    ap.out_w = W;
    dpt_loader *l = loader_create(&d, &ap, &(loader_opts){.batch = lb, .depth = 3, .workers = 2});
    int64_t perm[N];
    sampler_permutation(ap.seed, 4, N, perm);
    loader_start_train(l, 4, 1, 3, gb, rank, world);
    const loader_batch *b;
    int batches = 0;
    float expect[H * W];
    while ((b = loader_next(l)) != NULL) {
        int64_t step = 1 + batches;
        TU_CHECK(b->step == step && b->n == lb, "batch %d: step %lld n %d", batches, (long long)b->step, b->n);
        for (int i = 0; i < lb; i++) {
            int64_t si = perm[sampler_slice_begin(step, gb, rank, world) + i];
            augment_sample(expect, images + si * H * W, si, 4, &ap);
            TU_CHECK(b->y[i] == labels[si] && !memcmp(b->x + i * H * W, expect, sizeof expect),
                     "batch %d sample %d is not sample %lld", batches, i, (long long)si);
        }
        batches++;
    }
    TU_CHECK(batches == 3, "%d batches, want 3", batches);
    /* Evaluation: in order, last batch padded with zeros and counted short. */
    loader_start_eval(l, 40, 50);
    int seen = 0;
    while ((b = loader_next(l)) != NULL) {
        for (int i = 0; i < b->n; i++) TU_CHECK(b->y[i] == labels[40 + seen + i], "eval order");
        for (int i = b->n; i < lb; i++) TU_CHECK(b->x[i * H * W] == 0.0f, "padding not zero");
        seen += b->n;
    }
    TU_CHECK(seen == 10, "eval saw %d samples, want 10", seen);
    /* Stopping mid-pass and restarting works. */
    loader_start_train(l, 0, 0, 5, gb, 0, 1);
    TU_CHECK(loader_next(l) != NULL, "first batch");
    loader_stop(l);
    TU_CHECK(loader_next(l) == NULL, "batch after stop");
    loader_destroy(l);
    dataset_close(&d);
    remove(img_gz);
    remove(lab_raw);
    remove(out);
    remove(bad);
    return tu_finish("test_data");
}
