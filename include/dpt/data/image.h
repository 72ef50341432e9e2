/* Image primitives shared by the importers and the loader: JPEG decode and encode through
 * libjpeg-turbo's TurboJPEG API, and separable antialiased resampling (PIL's bilinear filter:
 * a triangle kernel whose support widens with the downscale factor).
 *
 * Pixels are addressed through an img_view (element strides), so the same resampler reads the
 * planar (C, H, W) arrays of a raw split and the interleaved (H, W, C) output of the decoder.
 * Every function here is reentrant; an img_codec and an img_scratch belong to one thread. */
#ifndef DPT_DATA_IMAGE_H
#define DPT_DATA_IMAGE_H

#include <stddef.h>

#include "dpt/core/error.h"

typedef struct img_view {
    const uint8_t *data;
    int w, h, c;
    ptrdiff_t sx, sy, sc; /* strides in elements: pixel (x, y) channel ch is data[y*sy + x*sx + ch*sc] */
} img_view;

static inline img_view img_view_hwc(const uint8_t *data, int w, int h, int c) {
    return (img_view){data, w, h, c, c, (ptrdiff_t)w * c, 1};
}
static inline img_view img_view_chw(const uint8_t *data, int w, int h, int c) {
    return (img_view){data, w, h, c, 1, w, (ptrdiff_t)w * h};
}

/* Growable per-thread work memory for the resampler. Zero-initialise; free with img_scratch_free. */
typedef struct img_scratch {
    float *f;
    size_t fcap;
    int32_t *i;
    size_t icap;
} img_scratch;
void img_scratch_free(img_scratch *s);

/* Resamples the box [x0, x0 + bw) x [y0, y0 + bh) of src (source pixel units, may be fractional,
 * must lie inside the image) to out_w x out_h, interleaved uint8 (out_h, out_w, src->c).
 * Matches PIL's Image.resize(..., BILINEAR, box=...) to within rounding. */
void img_resample_u8(const img_view *src, double x0, double y0, double bw, double bh, uint8_t *out, int out_w,
                     int out_h, img_scratch *s);

/* The same resampling, writing normalised floats: v = pixel * scale[ch] + shift[ch] (pixel in
 * 0..255), mirrored horizontally when flip, in (out_h, out_w, c) order when nhwc, else
 * (c, out_h, out_w). */
void img_resample_norm(const img_view *src, double x0, double y0, double bw, double bh, int out_w, int out_h,
                       bool flip, const float *scale, const float *shift, bool nhwc, float *out, img_scratch *s);

/* TurboJPEG handles and a decode buffer for one thread. */
typedef struct img_codec img_codec;
img_codec *img_codec_create(void);
void img_codec_destroy(img_codec *c);

/* The header of a JPEG: size and colour components (1 grey, 3 colour, 4 CMYK/YCCK).
 * `what` names the image in errors ("path/to/x.JPEG", "train.h5: jpeg[42]"). */
dpt_status img_jpeg_info(img_codec *c, const uint8_t *buf, size_t size, const char *what, int *w, int *h,
                         int *components);

/* Decodes to interleaved uint8 (h, w, channels), channels 1 or 3, converting any JPEG colour
 * space (grey -> RGB by replication, colour -> grey by luma, CMYK -> RGB). When min_w and
 * min_h are positive, uses the smallest libjpeg-turbo scaling factor (k/8) whose output is at
 * least min_w x min_h (the decoder's cheap downscale). *out is grown with realloc to the
 * needed size (*cap bytes). A truncated or corrupt stream is an error naming `what`. */
dpt_status img_jpeg_decode(img_codec *c, const uint8_t *buf, size_t size, const char *what, int channels, int min_w,
                           int min_h, uint8_t **out, size_t *cap, int *w, int *h);

/* Encodes interleaved uint8 (h, w, channels), channels 1 or 3, at quality 1..100 with 4:2:0
 * chroma subsampling. *out is grown with realloc (*cap bytes); *size receives the length. */
dpt_status img_jpeg_encode(img_codec *c, const uint8_t *pix, int w, int h, int channels, int quality, uint8_t **out,
                           size_t *cap, size_t *size);

#endif
