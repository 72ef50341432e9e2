/* The JPEG codec of image.h: round trips within stated tolerances, the choice of the decoder's
 * scaling factor, colour conversions (grey <-> RGB, CMYK -> RGB) and errors on broken streams. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "dpt/data/image.h"
#include "testutil.h"

/* Smooth content: at most one cycle across the image, values in [28, 228]. */
static uint8_t synth(int c, int x, int y, int w, int h) {
    double u = (x + 0.5) / w, v = (y + 0.5) / h, ph = 0.29 * c;
    return (uint8_t)lround(128 + 80 * sin(2 * M_PI * (0.6 * u + ph)) * cos(2 * M_PI * (0.4 * v - 0.5 * ph)) +
                           20 * (u - v));
}

static uint8_t *make_rgb(int w, int h) {
    uint8_t *p = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) p[((size_t)y * w + x) * 3 + c] = synth(c, x, y, w, h);
    return p;
}

static void diff_stats(const uint8_t *a, const uint8_t *b, size_t n, double *mean, int *max) {
    double s = 0;
    *max = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        s += d;
        *max = d > *max ? d : *max;
    }
    *mean = s / (double)n;
}

int main(void) {
    img_codec *c = img_codec_create();
    uint8_t *jpg = NULL, *out = NULL;
    size_t jcap = 0, ocap = 0, jlen = 0;
    int w = 0, h = 0, comp = 0;
    double mean;
    int max;

    /* 1. RGB round trip at quality 95 (4:2:0): smooth content comes back within mean 2, max 30. */
    uint8_t *rgb = make_rgb(64, 48);
    TU_CHECK(img_jpeg_encode(c, rgb, 64, 48, 3, 95, &jpg, &jcap, &jlen) == DPT_OK, "%s", dpt_error_message());
    TU_CHECK(jlen > 100 && jlen < jcap + 1, "encoded %zu bytes", jlen);
    TU_CHECK(img_jpeg_info(c, jpg, jlen, "rt", &w, &h, &comp) == DPT_OK && w == 64 && h == 48 && comp == 3,
             "info %dx%d comp %d", w, h, comp);
    TU_CHECK(img_jpeg_decode(c, jpg, jlen, "rt", 3, 0, 0, &out, &ocap, &w, &h) == DPT_OK, "%s", dpt_error_message());
    TU_CHECK(w == 64 && h == 48, "decoded %dx%d", w, h);
    diff_stats(rgb, out, (size_t)64 * 48 * 3, &mean, &max);
    TU_CHECK(mean < 2.0 && max < 30, "q95 round trip: mean abs %.3f, max %d", mean, max);
    /* Lower quality is measurably worse: the quality argument reaches the encoder. */
    size_t jlen95 = jlen;
    TU_CHECK(img_jpeg_encode(c, rgb, 64, 48, 3, 20, &jpg, &jcap, &jlen) == DPT_OK, "%s", dpt_error_message());
    TU_CHECK(jlen < jlen95, "q20 %zu bytes not smaller than q95 %zu", jlen, jlen95);
    free(rgb);

    /* 2. Scaled decode: the smallest k/8 whose output covers min_w x min_h. */
    rgb = make_rgb(400, 300);
    TU_CHECK(img_jpeg_encode(c, rgb, 400, 300, 3, 90, &jpg, &jcap, &jlen) == DPT_OK, "%s", dpt_error_message());
    struct {
        int mw, mh, ew, eh;
    } cases[] = {
        {100, 75, 100, 75},  /* 1/4 exactly */
        {101, 75, 150, 113}, /* 1/4 is one pixel short: 3/8, ceil(112.5) = 113 */
        {50, 10, 50, 38},    /* 1/8: 50 x ceil(37.5) */
        {10, 10, 50, 38},    /* never below 1/8 */
        {0, 0, 400, 300},    /* no minimum: full size */
        {400, 300, 400, 300},
        {401, 300, 400, 300}, /* larger than the image: full size, never enlarged */
        {200, 151, 250, 188}, /* 1/2 gives 150 rows < 151: 5/8 -> 250 x 187.5 -> 188 */
    };
    for (size_t k = 0; k < DPT_ARRAY_LEN(cases); k++) {
        dpt_status st = img_jpeg_decode(c, jpg, jlen, "scaled", 3, cases[k].mw, cases[k].mh, &out, &ocap, &w, &h);
        TU_CHECK(st == DPT_OK && w == cases[k].ew && h == cases[k].eh, "min %dx%d: got %dx%d, want %dx%d",
                 cases[k].mw, cases[k].mh, w, h, cases[k].ew, cases[k].eh);
    }
    /* The 1/4 decode approximates the image sampled at the output pixel centres. */
    TU_CHECK(img_jpeg_decode(c, jpg, jlen, "scaled", 3, 100, 75, &out, &ocap, &w, &h) == DPT_OK, "decode");
    uint8_t *small = make_rgb(100, 75);
    diff_stats(small, out, (size_t)100 * 75 * 3, &mean, &max);
    TU_CHECK(mean < 3.0 && max < 40, "1/4 decode vs content: mean abs %.3f, max %d", mean, max);
    free(small);

    /* 3. Grey: encoded with 1 component; decoded to RGB every channel equals the grey decode. */
    uint8_t *grey = malloc(48 * 40);
    for (int y = 0; y < 40; y++)
        for (int x = 0; x < 48; x++) grey[y * 48 + x] = synth(0, x, y, 48, 40);
    TU_CHECK(img_jpeg_encode(c, grey, 48, 40, 1, 95, &jpg, &jcap, &jlen) == DPT_OK, "%s", dpt_error_message());
    TU_CHECK(img_jpeg_info(c, jpg, jlen, "grey", &w, &h, &comp) == DPT_OK && comp == 1, "grey components %d", comp);
    uint8_t *g1 = NULL;
    size_t g1cap = 0;
    TU_CHECK(img_jpeg_decode(c, jpg, jlen, "grey", 1, 0, 0, &g1, &g1cap, &w, &h) == DPT_OK && w == 48 && h == 40,
             "grey decode");
    diff_stats(grey, g1, 48 * 40, &mean, &max);
    TU_CHECK(mean < 2.0 && max < 30, "grey round trip: mean abs %.3f, max %d", mean, max);
    TU_CHECK(img_jpeg_decode(c, jpg, jlen, "grey", 3, 0, 0, &out, &ocap, &w, &h) == DPT_OK, "grey to rgb");
    int unequal = 0;
    for (int i = 0; i < 48 * 40; i++)
        unequal += out[3 * i] != g1[i] || out[3 * i + 1] != g1[i] || out[3 * i + 2] != g1[i];
    TU_CHECK(unequal == 0, "%d grey pixels not replicated exactly into R, G and B", unequal);
    free(grey);

    /* 4. Colour to grey: the luma plane, ~ 0.299 R + 0.587 G + 0.114 B. */
    free(rgb);
    rgb = make_rgb(64, 48);
    TU_CHECK(img_jpeg_encode(c, rgb, 64, 48, 3, 95, &jpg, &jcap, &jlen) == DPT_OK, "encode");
    TU_CHECK(img_jpeg_decode(c, jpg, jlen, "luma", 1, 0, 0, &g1, &g1cap, &w, &h) == DPT_OK, "rgb to grey");
    double err = 0;
    for (int i = 0; i < 64 * 48; i++)
        err += fabs(g1[i] - (0.299 * rgb[3 * i] + 0.587 * rgb[3 * i + 1] + 0.114 * rgb[3 * i + 2]));
    TU_CHECK(err / (64 * 48) < 2.0, "luma mean abs error %.3f", err / (64 * 48));
    free(g1);

    /* 5. CMYK (Adobe, inverted): TurboJPEG returns the stored C, M, Y, K unchanged (checked here
     *    on a file it wrote), and the codec maps them to R = C * K / 255 etc. */
    const int K = 200;
    uint8_t *cmyk = malloc((size_t)64 * 48 * 4);
    for (int i = 0; i < 64 * 48; i++) {
        memcpy(cmyk + 4 * i, rgb + 3 * i, 3);
        cmyk[4 * i + 3] = (uint8_t)K;
    }
    tjhandle tj = tjInitCompress();
    unsigned char *cj = NULL;
    unsigned long cjlen = 0;
    TU_CHECK(tjCompress2(tj, cmyk, 64, 0, 48, TJPF_CMYK, &cj, &cjlen, TJSAMP_444, 98, 0) == 0, "CMYK encode: %s",
             tjGetErrorStr2(tj));
    tjDestroy(tj);
    TU_CHECK(img_jpeg_info(c, cj, cjlen, "cmyk", &w, &h, &comp) == DPT_OK && comp == 4, "CMYK components %d", comp);
    tjhandle td = tjInitDecompress();
    uint8_t *raw = malloc((size_t)64 * 48 * 4);
    TU_CHECK(tjDecompress2(td, cj, cjlen, raw, 64, 0, 48, TJPF_CMYK, 0) == 0, "CMYK decode");
    tjDestroy(td);
    diff_stats(cmyk, raw, (size_t)64 * 48 * 4, &mean, &max);
    TU_CHECK(mean < 2.0 && max < 30, "TurboJPEG returns the stored CMYK values: mean abs %.3f, max %d", mean, max);
    TU_CHECK(img_jpeg_decode(c, cj, cjlen, "cmyk", 3, 0, 0, &out, &ocap, &w, &h) == DPT_OK, "%s", dpt_error_message());
    int bad = 0;
    for (int i = 0; i < 64 * 48; i++)
        for (int ch = 0; ch < 3; ch++) {
            int want = (raw[4 * i + ch] * raw[4 * i + 3] + 127) / 255;
            bad += abs(out[3 * i + ch] - want) > 0;
        }
    TU_CHECK(bad == 0, "%d CMYK values not converted as C * K / 255", bad);
    uint8_t *exp = malloc((size_t)64 * 48 * 3);
    for (int i = 0; i < 64 * 48 * 3; i++) exp[i] = (uint8_t)lround(rgb[i] * K / 255.0);
    diff_stats(exp, out, (size_t)64 * 48 * 3, &mean, &max);
    TU_CHECK(mean < 2.0 && max < 30, "CMYK content: mean abs %.3f, max %d", mean, max);
    tjFree(cj);
    free(cmyk);
    free(raw);
    free(exp);

    /* 6. Broken streams are errors naming the image: cut inside the scan (the header, 600 bytes,
     *    is intact: without TJFLAG_STOPONWARNING this would decode with grey rows), cut inside the
     *    header, overwritten bytes, not a JPEG, empty. */
    free(rgb);
    rgb = make_rgb(400, 300);
    TU_CHECK(img_jpeg_encode(c, rgb, 400, 300, 3, 95, &jpg, &jcap, &jlen) == DPT_OK && jlen > 4000, "encode");
    TU_CHECK(img_jpeg_info(c, jpg, jlen / 2, "half.JPEG", &w, &h, &comp) == DPT_OK, "the header of half a file");
    dpt_status st = img_jpeg_decode(c, jpg, jlen / 2, "half.JPEG", 3, 0, 0, &out, &ocap, &w, &h);
    TU_CHECK(st == DPT_ERR_FORMAT && tu_contains(dpt_error_message(), "half.JPEG") &&
                 tu_contains(dpt_error_message(), "truncated"),
             "truncated: status %d, '%s'", st, dpt_error_message());
    /* a corrupted entropy-coded segment (bytes overwritten in the middle) */
    uint8_t *corrupt = malloc(jlen);
    memcpy(corrupt, jpg, jlen);
    memset(corrupt + jlen / 2, 0xFF, 16);
    st = img_jpeg_decode(c, corrupt, jlen, "corrupt.JPEG", 3, 0, 0, &out, &ocap, &w, &h);
    TU_CHECK(st == DPT_ERR_FORMAT && tu_contains(dpt_error_message(), "corrupt.JPEG"), "corrupt: status %d, '%s'", st,
             dpt_error_message());
    free(corrupt);
    st = img_jpeg_info(c, (const uint8_t *)"\x89PNG\r\n\x1a\n0000", 12, "x.JPEG", &w, &h, &comp);
    TU_CHECK(st == DPT_ERR_FORMAT && tu_contains(dpt_error_message(), "x.JPEG: not a JPEG") &&
                 tu_contains(dpt_error_message(), "PNG"),
             "png: '%s'", dpt_error_message());
    st = img_jpeg_info(c, jpg, 0, "empty.JPEG", &w, &h, &comp);
    TU_CHECK(st == DPT_ERR_FORMAT && tu_contains(dpt_error_message(), "empty.JPEG: empty"), "empty: '%s'",
             dpt_error_message());
    for (size_t cut = 2; cut < 600; cut += 37) {
        w = h = 77;
        st = img_jpeg_info(c, jpg, cut, "header.JPEG", &w, &h, &comp);
        TU_CHECK(st == DPT_ERR_FORMAT && tu_contains(dpt_error_message(), "header.JPEG: corrupt or truncated"),
                 "header cut at %zu bytes: status %d, %dx%d, '%s'", cut, st, w, h, dpt_error_message());
    }
    st = img_jpeg_encode(c, rgb, 64, 48, 3, 0, &jpg, &jcap, &jlen);
    TU_CHECK(st == DPT_ERR_ARG, "quality 0 accepted");
    free(rgb);

    free(jpg);
    free(out);
    img_codec_destroy(c);
    return tu_finish("test_jpeg_codec");
}
