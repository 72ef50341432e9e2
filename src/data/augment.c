#include "dpt/data/augment.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "dpt/core/rng.h"
#include "dpt/data/image.h"

/* Block k of the sample's random values: block 0 gives the pad crop and the flip, blocks
 * 1..10 the random-resized-crop tries. */
static void aug_rand(const aug_params *p, int64_t sample, int64_t epoch, uint32_t k, uint32_t r[4]) {
    rng_block(p->seed, RNG_AUGMENT + (k << 8), (uint64_t)sample, (uint32_t)epoch, r);
}

bool augment_resizes(const aug_params *p, const dpt_dataset *d) {
    return d->storage == DS_JPEG || p->rrc || p->out_h != d->h || p->out_w != d->w;
}

void augment_choice(const aug_params *p, int64_t sample, int64_t epoch, int *dy, int *dx, bool *flip) {
    uint32_t r[4];
    aug_rand(p, sample, epoch, 0, r);
    int span = 2 * p->crop_pad + 1;
    *dy = p->train && p->crop_pad ? (int)rng_below(r[0], (uint32_t)span) : p->crop_pad;
    *dx = p->train && p->crop_pad ? (int)rng_below(r[1], (uint32_t)span) : p->crop_pad;
    *flip = p->train && p->flip && (r[2] & 1u);
}

void augment_sample(float *out, const uint8_t *img, int64_t sample, int64_t epoch, const aug_params *p) {
    const int c = p->c, h = p->h, w = p->w, pad = p->crop_pad;
    int dy, dx;
    bool flip;
    augment_choice(p, sample, epoch, &dy, &dx, &flip);
    float scale[DATASET_MAX_CHANNELS], shift[DATASET_MAX_CHANNELS];
    for (int ch = 0; ch < c; ch++) {
        scale[ch] = 1.0f / (255.0f * p->std[ch]);
        shift[ch] = -p->mean[ch] / p->std[ch];
    }
    for (int y = 0; y < h; y++) {
        int sy = y + dy - pad; /* source row; outside the image is the zero padding */
        for (int x = 0; x < w; x++) {
            int sx = (flip ? w - 1 - x : x) + dx - pad;
            bool inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
            for (int ch = 0; ch < c; ch++) {
                float v = inside ? (float)img[((int64_t)ch * h + sy) * w + sx] : 0.0f;
                float o = v * scale[ch] + shift[ch];
                if (p->layout == LAYOUT_NHWC) out[((int64_t)y * w + x) * c + ch] = o;
                else out[((int64_t)ch * h + y) * w + x] = o;
            }
        }
    }
}

static double u01(uint32_t x) { return (double)x * (1.0 / 4294967296.0); }

void augment_box(const aug_params *p, int64_t sample, int64_t epoch, int src_w, int src_h, double *x0, double *y0,
                 double *bw, double *bh, bool *flip) {
    uint32_t r[4];
    aug_rand(p, sample, epoch, 0, r);
    *flip = p->train && p->flip && (r[2] & 1u);
    const double W = src_w, H = src_h;
    if (!p->rrc) { /* the whole image */
        *x0 = *y0 = 0.0;
        *bw = W;
        *bh = H;
        return;
    }
    if (!p->train) { /* centre crop of eval_crop of the shorter side, with the output's aspect */
        double side = p->eval_crop * (W < H ? W : H);
        double m = p->out_w > p->out_h ? p->out_w : p->out_h;
        *bw = side * p->out_w / m;
        *bh = side * p->out_h / m;
        *x0 = 0.5 * (W - *bw);
        *y0 = 0.5 * (H - *bh);
        return;
    }
    /* torchvision's RandomResizedCrop.get_params, with whole-pixel boxes. */
    const double area = W * H, lr0 = log(p->ratio_min), lr1 = log(p->ratio_max);
    for (uint32_t k = 1; k <= 10; k++) {
        aug_rand(p, sample, epoch, k, r);
        double target = area * (p->scale_min + (p->scale_max - p->scale_min) * u01(r[0]));
        double aspect = exp(lr0 + (lr1 - lr0) * u01(r[1]));
        int w = (int)lround(sqrt(target * aspect)), h = (int)lround(sqrt(target / aspect));
        if (w > 0 && h > 0 && w <= src_w && h <= src_h) {
            *y0 = rng_below(r[2], (uint32_t)(src_h - h + 1));
            *x0 = rng_below(r[3], (uint32_t)(src_w - w + 1));
            *bw = w;
            *bh = h;
            return;
        }
    }
    double in_ratio = W / H;
    int w = src_w, h = src_h;
    if (in_ratio < p->ratio_min) h = (int)lround(w / p->ratio_min);
    else if (in_ratio > p->ratio_max) w = (int)lround(h * p->ratio_max);
    *bw = w;
    *bh = h;
    *x0 = (src_w - w) / 2;
    *y0 = (src_h - h) / 2;
}

struct aug_worker {
    img_codec *codec;
    img_scratch scratch;
    uint8_t *buf, *pix;
    size_t buf_cap, pix_cap;
};

aug_worker *aug_worker_create(void) {
    aug_worker *w = dpt_xcalloc(1, sizeof *w);
    w->codec = img_codec_create();
    return w;
}

void aug_worker_destroy(aug_worker *w) {
    if (!w) return;
    img_codec_destroy(w->codec);
    img_scratch_free(&w->scratch);
    free(w->buf);
    free(w->pix);
    free(w);
}

dpt_status augment_load(aug_worker *w, const dpt_dataset *d, int64_t sample, int64_t epoch, const aug_params *p,
                        float *out) {
    const uint8_t *data;
    size_t size;
    DPT_TRY(dataset_sample(d, sample, &w->buf, &w->buf_cap, &data, &size));
    if (!augment_resizes(p, d)) {
        augment_sample(out, data, sample, epoch, p);
        return DPT_OK;
    }
    float scale[DATASET_MAX_CHANNELS], shift[DATASET_MAX_CHANNELS];
    for (int ch = 0; ch < d->c; ch++) {
        scale[ch] = 1.0f / (255.0f * p->std[ch]);
        shift[ch] = -p->mean[ch] / p->std[ch];
    }
    double x0, y0, bw, bh;
    bool flip;
    img_view v;
    if (d->storage == DS_RAW) {
        augment_box(p, sample, epoch, d->w, d->h, &x0, &y0, &bw, &bh, &flip);
        v = img_view_chw(data, d->w, d->h, d->c);
    } else {
        char what[1200];
        snprintf(what, sizeof what, "%s: jpeg[%lld]", d->path, (long long)sample);
        int W, H, comps;
        DPT_TRY(img_jpeg_info(w->codec, data, size, what, &W, &H, &comps));
        augment_box(p, sample, epoch, W, H, &x0, &y0, &bw, &bh, &flip);
        int min_w = 0, min_h = 0;
        if (p->decode_scaled) {
            min_w = (int)ceil(W * (double)p->out_w / bw);
            min_h = (int)ceil(H * (double)p->out_h / bh);
        }
        int dw, dh;
        DPT_TRY(img_jpeg_decode(w->codec, data, size, what, d->c, min_w, min_h, &w->pix, &w->pix_cap, &dw, &dh));
        if (dw != W || dh != H) { /* scaled decode: the box in decoded pixels */
            double sx = (double)dw / W, sy = (double)dh / H;
            x0 *= sx;
            bw *= sx;
            y0 *= sy;
            bh *= sy;
            if (x0 + bw > dw) bw = dw - x0;
            if (y0 + bh > dh) bh = dh - y0;
        }
        v = img_view_hwc(w->pix, dw, dh, d->c);
    }
    img_resample_norm(&v, x0, y0, bw, bh, p->out_w, p->out_h, flip, scale, shift, p->layout == LAYOUT_NHWC, out,
                      &w->scratch);
    return DPT_OK;
}
