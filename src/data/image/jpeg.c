/* JPEG decode and encode through libjpeg-turbo's TurboJPEG 2.1 API (see image.h).
 *
 * Every libjpeg warning is an error here, naming the image: libjpeg treats a truncated stream as
 * a warning ("Premature end of JPEG file") and pads the missing rows with grey, which would put
 * silently damaged images into a dataset. TurboJPEG 2.1 already returns -1 after a warning;
 * TJFLAG_STOPONWARNING makes it stop at the warning instead of decoding the padding. The price:
 * a file with a harmless warning (e.g. "extraneous bytes before marker") is refused too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "dpt/data/image.h"

/* A decoded image above this many pixels is refused rather than allocated: a corrupt header can
 * claim 65535 x 65535 (12 GB of RGB). 2^28 pixels is a 16384 x 16384 photograph. */
#define IMG_MAX_PIXELS ((size_t)1 << 28)

struct img_codec {
    tjhandle dec, enc;
    uint8_t *cmyk; /* CMYK decode buffer, converted to RGB afterwards */
    size_t cmyk_cap;
};

img_codec *img_codec_create(void) {
    img_codec *c = dpt_xcalloc(1, sizeof *c);
    c->dec = tjInitDecompress();
    DPT_CHECK_LIB("TurboJPEG", c->dec != NULL, "tjInitDecompress()", "%s", tjGetErrorStr2(NULL));
    return c;
}

void img_codec_destroy(img_codec *c) {
    if (!c) return;
    if (c->dec) tjDestroy(c->dec);
    if (c->enc) tjDestroy(c->enc);
    free(c->cmyk);
    free(c);
}

/* Says what a buffer that is not a JPEG looks like, for the error message. */
static const char *sniff(const uint8_t *buf, size_t size) {
    if (size >= 8 && !memcmp(buf, "\x89PNG\r\n\x1a\n", 8)) return " (it is a PNG file)";
    if (size >= 6 && (!memcmp(buf, "GIF87a", 6) || !memcmp(buf, "GIF89a", 6))) return " (it is a GIF file)";
    if (size >= 2 && !memcmp(buf, "BM", 2)) return " (it looks like a BMP file)";
    if (size >= 12 && !memcmp(buf, "RIFF", 4) && !memcmp(buf + 8, "WEBP", 4)) return " (it is a WebP file)";
    if (size >= 4 && (!memcmp(buf, "II*\0", 4) || !memcmp(buf, "MM\0*", 4))) return " (it is a TIFF file)";
    return "";
}

dpt_status img_jpeg_info(img_codec *c, const uint8_t *buf, size_t size, const char *what, int *w, int *h,
                         int *components) {
    if (size == 0) return dpt_error(DPT_ERR_FORMAT, "%s: empty file, not a JPEG image", what);
    if (size < 2 || buf[0] != 0xFF || buf[1] != 0xD8)
        return dpt_error(DPT_ERR_FORMAT, "%s: not a JPEG image (no start-of-image marker)%s", what, sniff(buf, size));
    int sub = 0, cs = 0;
    *w = *h = 0; /* not set for a tables-only stream (which a cut header can look like) */
    if (tjDecompressHeader3(c->dec, buf, (unsigned long)size, w, h, &sub, &cs) != 0)
        return dpt_error(DPT_ERR_FORMAT, "%s: corrupt or truncated JPEG header: %s", what, tjGetErrorStr2(c->dec));
    if (*w <= 0 || *h <= 0)
        return dpt_error(DPT_ERR_FORMAT, "%s: corrupt or truncated JPEG: no image after the header tables", what);
    switch (cs) {
    case TJCS_GRAY: *components = 1; break;
    case TJCS_RGB:
    case TJCS_YCbCr: *components = 3; break;
    case TJCS_CMYK:
    case TJCS_YCCK: *components = 4; break;
    default: return dpt_error(DPT_ERR_FORMAT, "%s: unsupported JPEG colour space %d", what, cs);
    }
    return DPT_OK;
}

/* The smallest factor k/8 <= 1 whose output still covers min_w x min_h; 1 when none does. */
static tjscalingfactor pick_scale(int w, int h, int min_w, int min_h) {
    tjscalingfactor best = {1, 1};
    if (min_w <= 0 || min_h <= 0) return best;
    int n = 0;
    tjscalingfactor *sf = tjGetScalingFactors(&n);
    for (int i = 0; sf && i < n; i++) {
        if (sf[i].num > sf[i].denom) continue;
        if (TJSCALED(w, sf[i]) < min_w || TJSCALED(h, sf[i]) < min_h) continue;
        if ((long)sf[i].num * best.denom < (long)best.num * sf[i].denom) best = sf[i];
    }
    return best;
}

/* Adobe CMYK JPEGs (Photoshop's, the only kind seen in practice) store inverted ink amounts, and
 * libjpeg returns the stored values unchanged, so with c, m, y, k as decoded: R = c * k / 255. */
static void cmyk_to_rgb(const uint8_t *src, size_t npix, int channels, uint8_t *dst) {
    for (size_t i = 0; i < npix; i++) {
        const uint8_t *p = src + 4 * i;
        unsigned k = p[3];
        unsigned r = (p[0] * k + 127) / 255, g = (p[1] * k + 127) / 255, b = (p[2] * k + 127) / 255;
        if (channels == 3) {
            dst[3 * i] = (uint8_t)r;
            dst[3 * i + 1] = (uint8_t)g;
            dst[3 * i + 2] = (uint8_t)b;
        } else {
            /* ITU-R BT.601 luma, the weights libjpeg uses for YCbCr. */
            dst[i] = (uint8_t)((299 * r + 587 * g + 114 * b + 500) / 1000);
        }
    }
}

dpt_status img_jpeg_decode(img_codec *c, const uint8_t *buf, size_t size, const char *what, int channels, int min_w,
                           int min_h, uint8_t **out, size_t *cap, int *w, int *h) {
    DPT_CHECK(channels == 1 || channels == 3);
    int iw = 0, ih = 0, comp = 0;
    DPT_TRY(img_jpeg_info(c, buf, size, what, &iw, &ih, &comp));
    tjscalingfactor sf = pick_scale(iw, ih, min_w, min_h);
    int ow = TJSCALED(iw, sf), oh = TJSCALED(ih, sf);
    size_t npix = (size_t)ow * (size_t)oh;
    if (npix > IMG_MAX_PIXELS)
        return dpt_error(DPT_ERR_FORMAT, "%s: %d x %d pixels is larger than this decoder accepts (%zu pixels)", what,
                         ow, oh, IMG_MAX_PIXELS);
    const int flags = TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS;
    int rc;
    if (comp == 4) {
        /* TurboJPEG decodes CMYK and YCCK only to CMYK pixels. */
        dpt_xgrow(&c->cmyk, &c->cmyk_cap, npix * 4);
        rc = tjDecompress2(c->dec, buf, (unsigned long)size, c->cmyk, ow, 0, oh, TJPF_CMYK, flags);
        if (rc == 0) cmyk_to_rgb(c->cmyk, npix, channels, dpt_xgrow(out, cap, npix * (size_t)channels));
    } else {
        /* libjpeg converts grey -> RGB (replication) and YCbCr -> grey (the luma plane) itself. */
        dpt_xgrow(out, cap, npix * (size_t)channels);
        rc = tjDecompress2(c->dec, buf, (unsigned long)size, *out, ow, 0, oh, channels == 3 ? TJPF_RGB : TJPF_GRAY,
                           flags);
    }
    if (rc != 0)
        return dpt_error(DPT_ERR_FORMAT, "%s: corrupt or truncated JPEG: %s", what, tjGetErrorStr2(c->dec));
    *w = ow;
    *h = oh;
    return DPT_OK;
}

dpt_status img_jpeg_encode(img_codec *c, const uint8_t *pix, int w, int h, int channels, int quality, uint8_t **out,
                           size_t *cap, size_t *size) {
    DPT_CHECK(channels == 1 || channels == 3);
    if (quality < 1 || quality > 100) return dpt_error(DPT_ERR_ARG, "JPEG quality %d is outside [1, 100]", quality);
    if (w <= 0 || h <= 0) return dpt_error(DPT_ERR_ARG, "cannot encode an empty image (%d x %d)", w, h);
    if (!c->enc) {
        c->enc = tjInitCompress();
        DPT_CHECK_LIB("TurboJPEG", c->enc != NULL, "tjInitCompress()", "%s", tjGetErrorStr2(NULL));
    }
    int subsamp = channels == 3 ? TJSAMP_420 : TJSAMP_GRAY;
    /* tjBufSize is the worst case, so TJFLAG_NOREALLOC keeps TurboJPEG off our realloc'ed buffer. */
    unsigned long bound = tjBufSize(w, h, subsamp);
    if (bound == (unsigned long)-1) return dpt_error(DPT_ERR_ARG, "cannot encode a %d x %d image", w, h);
    dpt_xgrow(out, cap, bound);
    unsigned char *dst = *out;
    unsigned long len = (unsigned long)*cap;
    if (tjCompress2(c->enc, pix, w, 0, h, channels == 3 ? TJPF_RGB : TJPF_GRAY, &dst, &len, subsamp, quality,
                    TJFLAG_NOREALLOC) != 0)
        return dpt_error(DPT_ERR_FORMAT, "JPEG encode of a %d x %d image failed: %s", w, h, tjGetErrorStr2(c->enc));
    *size = len;
    return DPT_OK;
}
