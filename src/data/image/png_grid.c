/* PNG writing through libpng and sample grids (see png.h).
 *
 * libpng reports errors by longjmp from its error callback; encode() keeps every libpng call
 * between one setjmp and the destruction of the write struct, and nothing it changes after the
 * setjmp is read after a longjmp. */
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dpt/core/fsutil.h"
#include "dpt/data/png.h"

/* Larger grids are refused rather than allocated: 2^28 bytes is a 9000 x 9000 RGB sheet. */
#define PNG_MAX_BYTES ((int64_t)1 << 28)

typedef struct png_err {
    jmp_buf jump;
    char msg[256];
} png_err;

static void on_png_error(png_structp png, png_const_charp msg) {
    png_err *e = png_get_error_ptr(png);
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    longjmp(e->jump, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg; /* libpng warns only about ancillary chunks, which a writer does not produce */
}

static dpt_status encode(FILE *f, const uint8_t *pix, int w, int h, int c, const char *path) {
    png_err err = {.msg = ""};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &err, on_png_error, on_png_warning);
    if (!png) return dpt_error(DPT_ERR_NOMEM, "cannot write %s: png_create_write_struct failed", path);
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return dpt_error(DPT_ERR_NOMEM, "cannot write %s: png_create_info_struct failed", path);
    }
    if (setjmp(err.jump)) {
        png_destroy_write_struct(&png, &info);
        return dpt_error(DPT_ERR_IO, "cannot write %s: libpng: %s", path, err.msg);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, c == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, pix + (size_t)y * w * c);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return DPT_OK;
}

dpt_status png_write_u8(const char *path, const uint8_t *pix, int w, int h, int c) {
    if (w < 1 || h < 1 || (c != 1 && c != 3))
        return dpt_error(DPT_ERR_ARG, "cannot write %s: bad image size %d x %d x %d (channels must be 1 or 3)", path,
                         w, h, c);
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
        return dpt_error(DPT_ERR_IO, "cannot write %s: path too long", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return dpt_error(DPT_ERR_IO, "cannot write %s: cannot create %s: %s", path, tmp, strerror(errno));
    dpt_status st = encode(f, pix, w, h, c, path);
    if (st == DPT_OK && fflush(f) != 0)
        st = dpt_error(DPT_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    if (fclose(f) != 0 && st == DPT_OK) st = dpt_error(DPT_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    if (st != DPT_OK) {
        unlink(tmp);
        return st;
    }
    return fs_commit_tmp(tmp, path);
}

void png_grid_size(int n, int h, int w, int cols, int pad, int *grid_w, int *grid_h) {
    int per_row = DPT_MIN(cols, n);
    int rows = (n + per_row - 1) / per_row;
    *grid_w = per_row * (w + pad) + pad;
    *grid_h = rows * (h + pad) + pad;
}

static dpt_status check_grid_args(const char *path, int n, int c, int h, int w, dpt_layout layout, int cols, int pad,
                                  float lo, float hi) {
    if (n < 1 || h < 1 || w < 1 || (c != 1 && c != 3))
        return dpt_error(DPT_ERR_ARG, "cannot write grid %s: bad image shape (%d, %d, %d, %d): need n, h, w >= 1 and "
                         "c = 1 or 3", path, n, c, h, w);
    if (layout != LAYOUT_NCHW && layout != LAYOUT_NHWC)
        return dpt_error(DPT_ERR_ARG, "cannot write grid %s: unknown layout %d", path, (int)layout);
    if (cols < 1 || pad < 0)
        return dpt_error(DPT_ERR_ARG, "cannot write grid %s: cols = %d, pad = %d (need cols >= 1, pad >= 0)", path,
                         cols, pad);
    if (!(isfinite(lo) && isfinite(hi) && hi > lo))
        return dpt_error(DPT_ERR_ARG, "cannot write grid %s: value range [%g, %g] is not a finite interval", path,
                         (double)lo, (double)hi);
    int64_t per_row = DPT_MIN(cols, n), rows = (n + per_row - 1) / per_row;
    int64_t gw = per_row * ((int64_t)w + pad) + pad, gh = rows * ((int64_t)h + pad) + pad;
    if (gw * gh * c > PNG_MAX_BYTES)
        return dpt_error(DPT_ERR_ARG, "cannot write grid %s: %lld x %lld pixels is too large", path, (long long)gw,
                         (long long)gh);
    return DPT_OK;
}

/* Copies image i into its cell of the interleaved grid (grid_w pixels per row). */
static void place_image(uint8_t *grid, int grid_w, const float *images, int i, int c, int h, int w,
                        dpt_layout layout, int cols, int pad, float lo, float hi) {
    int x0 = pad + (i % cols) * (w + pad), y0 = pad + (i / cols) * (h + pad);
    const float *img = images + (size_t)i * c * h * w;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < c; ch++) {
                size_t src = layout == LAYOUT_NHWC ? ((size_t)y * w + x) * c + ch : ((size_t)ch * h + y) * w + x;
                grid[((size_t)(y0 + y) * grid_w + x0 + x) * c + ch] = png_quantize(img[src], lo, hi);
            }
}

dpt_status png_write_grid(const char *path, const float *images, int n, int c, int h, int w, dpt_layout layout,
                          int cols, int pad, float lo, float hi) {
    DPT_TRY(check_grid_args(path, n, c, h, w, layout, cols, pad, lo, hi));
    int gw, gh;
    png_grid_size(n, h, w, cols, pad, &gw, &gh);
    uint8_t *grid = dpt_xmalloc((size_t)gw * gh * c);
    memset(grid, PNG_GRID_PAD_VALUE, (size_t)gw * gh * c);
    for (int i = 0; i < n; i++) place_image(grid, gw, images, i, c, h, w, layout, DPT_MIN(cols, n), pad, lo, hi);
    dpt_status st = png_write_u8(path, grid, gw, gh, c);
    free(grid);
    return st;
}
