#include "dpt/data/augment.h"

#include "dpt/core/rng.h"

void augment_choice(const aug_params *p, int64_t sample, int64_t epoch, int *dy, int *dx, bool *flip) {
    uint32_t r[4];
    rng_block(p->seed, RNG_AUGMENT, (uint64_t)sample, (uint32_t)epoch, r);
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
    float scale[16], shift[16];
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
