/* PNG sample grids: grey and RGB, both layouts, padding, empty cells, values out of range and
 * NaN; every pixel read back with libpng and compared with the documented mapping (and the
 * mapping itself against hand-computed levels). Bad arguments and unwritable paths give errors
 * naming the file and leave nothing behind. */
#include <dirent.h>
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dpt/data/png.h"
#include "testutil.h"

static char dir[256];

/* Reads a PNG as 8-bit pixels; *c is 1 for grey files, 3 for colour ones. Caller frees. */
static uint8_t *read_png(const char *path, int *w, int *h, int *c) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) {
        fprintf(stderr, "cannot read %s: %s\n", path, img.message);
        return NULL;
    }
    *c = (img.format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1;
    img.format = *c == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    *w = (int)img.width;
    *h = (int)img.height;
    uint8_t *pix = malloc(PNG_IMAGE_SIZE(img));
    if (!png_image_finish_read(&img, NULL, pix, 0, NULL)) {
        fprintf(stderr, "cannot decode %s: %s\n", path, img.message);
        free(pix);
        return NULL;
    }
    return pix;
}

/* The pixel the grid must hold at (x, y) channel ch. */
static int expected(const float *images, int n, int c, int h, int w, dpt_layout layout, int cols, int pad, float lo,
                    float hi, int x, int y, int ch) {
    cols = DPT_MIN(cols, n);
    int col = x / (w + pad), row = y / (h + pad), ix = x % (w + pad) - pad, iy = y % (h + pad) - pad;
    int i = row * cols + col;
    if (ix < 0 || iy < 0 || col >= cols || i >= n) return PNG_GRID_PAD_VALUE;
    size_t at = layout == LAYOUT_NHWC ? (((size_t)i * h + iy) * w + ix) * c + ch
                                      : (((size_t)i * c + ch) * h + iy) * w + ix;
    return png_quantize(images[at], lo, hi);
}

static void check_grid(const char *name, int n, int c, int h, int w, dpt_layout layout, int cols, int pad, float lo,
                       float hi, uint32_t stream) {
    int64_t count = (int64_t)n * c * h * w;
    float *images = malloc((size_t)count * sizeof *images);
    /* A quarter of the values out of [lo, hi] on either side. */
    float span = hi - lo;
    tu_fill_uniform(images, count, lo - 0.25f * span, hi + 0.25f * span, stream);
    images[0] = NAN;
    images[count / 2] = INFINITY;
    images[count - 1] = -INFINITY;
    char path[512];
    snprintf(path, sizeof path, "%s/%s.png", dir, name);
    dpt_status st = png_write_grid(path, images, n, c, h, w, layout, cols, pad, lo, hi);
    TU_CHECK(st == DPT_OK, "%s: %s", name, dpt_error_message());
    int gw = 0, gh = 0, gc = 0, want_w, want_h;
    uint8_t *pix = read_png(path, &gw, &gh, &gc);
    png_grid_size(n, h, w, cols, pad, &want_w, &want_h);
    TU_CHECK(pix != NULL && gw == want_w && gh == want_h && gc == c, "%s: read %dx%dx%d, want %dx%dx%d", name, gw, gh,
             gc, want_w, want_h, c);
    int64_t wrong = 0;
    for (int y = 0; pix && y < gh; y++)
        for (int x = 0; x < gw; x++)
            for (int ch = 0; ch < c; ch++) {
                int want = expected(images, n, c, h, w, layout, cols, pad, lo, hi, x, y, ch);
                if (pix[((size_t)y * gw + x) * c + ch] != want && wrong++ < 3)
                    fprintf(stderr, "%s: pixel (%d, %d, %d) = %d, want %d\n", name, x, y, ch,
                            pix[((size_t)y * gw + x) * c + ch], want);
            }
    TU_CHECK(wrong == 0, "%s: %lld wrong pixels", name, (long long)wrong);
    free(pix);
    free(images);
}

static void check_quantize(void) {
    TU_CHECK(png_quantize(-1.0f, -1, 1) == 0 && png_quantize(1.0f, -1, 1) == 255, "range ends");
    TU_CHECK(png_quantize(0.0f, -1, 1) == 128, "midpoint 127.5 rounds up: %d", png_quantize(0.0f, -1, 1));
    TU_CHECK(png_quantize(-3.0f, -1, 1) == 0 && png_quantize(7.0f, -1, 1) == 255, "clamping");
    TU_CHECK(png_quantize(NAN, -1, 1) == 0 && png_quantize(INFINITY, -1, 1) == 255 &&
             png_quantize(-INFINITY, -1, 1) == 0, "NaN and infinities");
    /* 0.1 on [0, 1]: 25.5 + 0.5 -> 26; 0.098 -> 24.99 + 0.5 -> 25. */
    TU_CHECK(png_quantize(0.1f, 0, 1) == 26 && png_quantize(0.098f, 0, 1) == 25, "rounding %d %d",
             png_quantize(0.1f, 0, 1), png_quantize(0.098f, 0, 1));
    for (int v = 0; v < 256; v++) /* every level is reachable and exact */
        TU_CHECK(png_quantize((float)v, 0, 255) == v, "level %d -> %d", v, png_quantize((float)v, 0, 255));
}

/* Files in dir other than the ones the grid tests wrote. */
static int stray_files(void) {
    DIR *d = opendir(dir);
    int count = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strstr(e->d_name, ".tmp.") || strstr(e->d_name, "bad")) count++;
    if (d) closedir(d);
    return count;
}

static void check_errors(void) {
    float img[2 * 3 * 4 * 5] = {0};
    char path[512];
    snprintf(path, sizeof path, "%s/no/such/dir/grid.png", dir);
    TU_CHECK(png_write_grid(path, img, 2, 3, 4, 5, LAYOUT_NCHW, 2, 1, -1, 1) == DPT_ERR_IO &&
             tu_contains(dpt_error_message(), path), "missing directory: %s", dpt_error_message());
    snprintf(path, sizeof path, "%s/bad_c.png", dir);
    TU_CHECK(png_write_grid(path, img, 2, 2, 4, 5, LAYOUT_NCHW, 2, 1, -1, 1) == DPT_ERR_ARG &&
             tu_contains(dpt_error_message(), path) && tu_contains(dpt_error_message(), "c = 1 or 3"),
             "two channels: %s", dpt_error_message());
    snprintf(path, sizeof path, "%s/bad_range.png", dir);
    TU_CHECK(png_write_grid(path, img, 2, 3, 4, 5, LAYOUT_NCHW, 2, 1, 1, 1) == DPT_ERR_ARG &&
             tu_contains(dpt_error_message(), path), "empty range: %s", dpt_error_message());
    snprintf(path, sizeof path, "%s/bad_cols.png", dir);
    TU_CHECK(png_write_grid(path, img, 2, 3, 4, 5, LAYOUT_NCHW, 0, 1, -1, 1) == DPT_ERR_ARG &&
             tu_contains(dpt_error_message(), path), "cols 0: %s", dpt_error_message());
    /* A read-only directory: the temporary file cannot be created (root ignores the mode). */
    char ro[300];
    snprintf(ro, sizeof ro, "%s/readonly", dir);
    mkdir(ro, 0555);
    snprintf(path, sizeof path, "%s/grid.png", ro);
    if (geteuid() != 0) {
        TU_CHECK(png_write_grid(path, img, 2, 3, 4, 5, LAYOUT_NCHW, 2, 1, -1, 1) == DPT_ERR_IO &&
                 tu_contains(dpt_error_message(), path), "read-only directory: %s", dpt_error_message());
        TU_CHECK(access(path, F_OK) != 0, "%s exists after a failed write", path);
    }
    /* The path is a directory: rename fails after the PNG was encoded; the temporary goes. */
    snprintf(path, sizeof path, "%s/adir.png", dir);
    mkdir(path, 0755);
    TU_CHECK(png_write_grid(path, img, 2, 3, 4, 5, LAYOUT_NCHW, 2, 1, -1, 1) == DPT_ERR_IO &&
             tu_contains(dpt_error_message(), path), "path is a directory: %s", dpt_error_message());
    TU_CHECK(stray_files() == 0, "%d temporary or bad_* files left in %s", stray_files(), dir);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/dpt_test_png.%d", (int)getpid());
    TU_CHECK(mkdir(dir, 0755) == 0, "cannot create %s", dir);
    check_quantize();
    check_grid("grey_nchw", 7, 1, 6, 5, LAYOUT_NCHW, 3, 2, -1, 1, 1);    /* 2 empty cells */
    check_grid("grey_nhwc", 7, 1, 6, 5, LAYOUT_NHWC, 3, 0, -1, 1, 2);    /* no padding */
    check_grid("rgb_nchw", 10, 3, 9, 11, LAYOUT_NCHW, 4, 1, 0, 1, 3);
    check_grid("rgb_nhwc", 10, 3, 9, 11, LAYOUT_NHWC, 4, 3, -2, 5, 4);
    check_grid("one_row", 3, 3, 4, 4, LAYOUT_NHWC, 8, 2, -1, 1, 5);     /* cols > n: one row of 3 */
    check_grid("single", 1, 1, 1, 1, LAYOUT_NCHW, 1, 0, -1, 1, 6);
    check_errors();
    if (tu_failures == 0) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    }
    return tu_finish("test_png");
}
