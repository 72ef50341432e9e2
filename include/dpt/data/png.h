/* PNG output through libpng: GAN sample grids (the PNGs in a run's samples/, `dptrain sample -o`)
 * and any other 8-bit image the trainer writes. Files are written atomically (a temporary file
 * in the same directory, fsynced and renamed), so a reader or a kill never sees half a PNG. */
#ifndef DPT_DATA_PNG_H
#define DPT_DATA_PNG_H

#include <math.h>

#include "dpt/core/error.h"
#include "dpt/core/tensor.h"

/* Grid padding and empty cells are white: visible between dark Fashion-MNIST images and between
 * colour samples alike. */
#define PNG_GRID_PAD_VALUE 255

/* Maps a float in [lo, hi] to 0..255: floor((x - lo) * 255 / (hi - lo) + 0.5) computed in
 * double, clamped to 0..255 (so out-of-range values and infinities saturate); NaN maps to 0.
 * The grid writer uses exactly this, and tests compare against it. */
static inline uint8_t png_quantize(float x, float lo, float hi) {
    if (isnan(x)) return 0;
    double v = ((double)x - lo) * 255.0 / ((double)hi - lo) + 0.5;
    if (!(v > 0.0)) return 0;
    if (v >= 255.0) return 255;
    return (uint8_t)v; /* truncation of a positive value: the floor */
}

/* Writes an 8-bit PNG of interleaved pixels (h, w, c): c = 1 grey, 3 RGB. */
dpt_status png_write_u8(const char *path, const uint8_t *pix, int w, int h, int c);

/* The size of the grid png_write_grid makes: cols' = min(cols, n) images per row,
 * rows = ceil(n / cols'), and `pad` pixels around every image (borders included, like
 * torchvision's make_grid): width = cols' * (w + pad) + pad, height = rows * (h + pad) + pad. */
void png_grid_size(int n, int h, int w, int cols, int pad, int *grid_w, int *grid_h);

/* Tiles n images (N, C, H, W) lying in memory as `layout` (LAYOUT_NCHW or LAYOUT_NHWC), values in
 * [lo, hi] (e.g. [-1, 1] from tanh), into a grid (see png_grid_size), image i at row i / cols',
 * column i % cols', each value mapped by png_quantize; padding and empty cells are
 * PNG_GRID_PAD_VALUE. c = 1 gives a grey PNG, c = 3 an RGB one. Bad arguments and I/O failures
 * return a status whose message names `path`; no file is left behind on failure. */
dpt_status png_write_grid(const char *path, const float *images, int n, int c, int h, int w, dpt_layout layout,
                          int cols, int pad, float lo, float hi);

#endif
