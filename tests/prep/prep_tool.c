/* Inputs for the importer tests, and the checks of what `dptrain prep` made of them.
 *
 *   prep_tool make-tree DIR [--only C1,C2]     JPEG folders DIR/<class>/<name> (the table below)
 *   prep_tool make-flat DIR LABELS names|ints  the same images in one folder (names prefixed), and labels
 *   prep_tool check-raw OUT.h5 S [--only ...]  raw split against the synthetic content
 *   prep_tool check-jpeg OUT.h5 S [--chunked]  JPEG split against the synthetic content
 *   prep_tool compare A.h5 B.h5 [--first N]    same labels, classes and image bytes (A: B's first N)
 *   prep_tool make-cifar DIR RECORDS [--meta]  data_batch_1..5.bin, test_batch.bin
 *   prep_tool check-cifar OUT.h5 DIR [--test] [--limit N] [--meta]
 *   prep_tool make-biggan OUT.h5 / check-biggan OUT.h5   BigGAN-PyTorch layout through dataset_open
 *   prep_tool make-bench DIR CLASSES PER_CLASS W H       noisy photo-sized JPEGs, for timing
 *
 * The images are smooth synthetic functions of the normalised position, so the expected output
 * of any resize is known: the function sampled at the output pixel's centre, mapped back into
 * the source. Tolerances (sources are quality 95, 4:2:0):
 *   against the function: mean |error| < 2 and max < 20 per image (JPEG and resampling; seen:
 *   at most 1.1 and 10);
 *   raw images whose geometry is a pure crop (no scaling): within 1 of the source as decoded. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>

#include "dpt/data/dataset.h"
#include "dpt/data/h5io.h"

typedef enum { K_RGB, K_GREY, K_CMYK } kind;
typedef struct spec {
    const char *cls, *name;
    int w, h;
    kind k;
    bool crop_only; /* raw at S = 48: a pure crop, so equal to the decoded source */
} spec;

/* In the expected output order: by class, then by file name (byte order: "10" < "2"). */
static const spec table[] = {
    {"n01", "n01_10.JPEG", 48, 48, K_RGB, true},
    {"n01", "n01_2.JpEg", 64, 48, K_RGB, true},   /* raw: crop x 8..56 */
    {"n01", "n01_4.JPEG", 240, 48, K_RGB, true},  /* raw: crop x 96..144; jpeg: long side capped at 4 S */
    {"n01", "n01_9.jpg", 48, 48, K_RGB, true},
    {"n02", "n02_1.JPEG", 48, 48, K_RGB, true},
    {"n02", "n02_3.JPEG", 48, 80, K_RGB, true},   /* raw: crop y 16..64 */
    {"n02", "n02_7.JPEG", 48, 48, K_GREY, true},  /* grey-scale JPEG */
    {"n03", "n03_5.JPEG", 200, 160, K_RGB, false}, /* >= 2 S: scaled decode (3/8), then resampled */
    {"n03", "n03_6.JPEG", 48, 48, K_CMYK, true},  /* Adobe CMYK, K = 200 */
    {"n03", "n03_8.jpeg", 48, 40, K_RGB, false},  /* enlarged */
};
enum { NIMG = sizeof table / sizeof table[0], NCLS = 3, CMYK_K = 200 };
static const char *const classes[NCLS] = {"n01", "n02", "n03"};

static int failures = 0;
#define CHECK(cond, ...)                                               \
    do {                                                               \
        if (!(cond)) {                                                 \
            failures++;                                                \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                              \
            fputc('\n', stderr);                                       \
        }                                                              \
    } while (0)

static int class_index(const char *c) {
    for (int i = 0; i < NCLS; i++)
        if (!strcmp(classes[i], c)) return i;
    return -1;
}

/* The content of image `img`, channel c, at normalised position (u, v) in [0, 1]. */
static double synth(int img, int c, double u, double v) {
    double ph = 0.37 * img + 0.29 * c;
    return 128 + 80 * sin(2 * M_PI * (0.6 * u + ph)) * cos(2 * M_PI * (0.4 * v - 0.5 * ph)) + 20 * (u - v);
}

/* What the importer should produce there, in RGB. */
static double expected(int img, int c, double u, double v) {
    switch (table[img].k) {
    case K_GREY: return synth(img, 0, u, v);
    case K_CMYK: return synth(img, c, u, v) * CMYK_K / 255.0;
    default: return synth(img, c, u, v);
    }
}

static uint8_t hash8(uint32_t a, uint32_t b, uint32_t c) {
    uint32_t x = a * 0x9E3779B1u ^ (b + 0x7F4A7C15u) * 0x85EBCA77u ^ c * 0xC2B2AE3Du;
    x ^= x >> 15;
    x *= 0x2C1B3C6Du;
    x ^= x >> 12;
    return (uint8_t)(x >> 8);
}

static uint8_t u8(double x) { return (uint8_t)(x < 0 ? 0 : x > 255 ? 255 : lround(x)); }

static bool selected(const char *only, const char *cls) {
    if (!only) return true;
    char buf[256];
    snprintf(buf, sizeof buf, ",%s,", only);
    char key[64];
    snprintf(key, sizeof key, ",%s,", cls);
    return strstr(buf, key) != NULL;
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) {
        fprintf(stderr, "prep_tool: cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

/* table[img] encoded at quality 95 (free with tjFree). Deterministic: the checks re-encode to
 * get the very bytes that are in the tree. */
static unsigned char *encode_jpeg(int img, unsigned long *len) {
    const spec *s = &table[img];
    int comps = s->k == K_GREY ? 1 : s->k == K_CMYK ? 4 : 3;
    uint8_t *pix = malloc((size_t)s->w * s->h * comps);
    for (int y = 0; y < s->h; y++)
        for (int x = 0; x < s->w; x++)
            for (int c = 0; c < comps; c++)
                pix[((size_t)y * s->w + x) * comps + c] =
                    c == 3 ? CMYK_K : u8(synth(img, c, (x + 0.5) / s->w, (y + 0.5) / s->h));
    tjhandle tj = tjInitCompress();
    unsigned char *jpg = NULL;
    *len = 0;
    int pf = comps == 1 ? TJPF_GRAY : comps == 4 ? TJPF_CMYK : TJPF_RGB;
    int sub = comps == 1 ? TJSAMP_GRAY : comps == 4 ? TJSAMP_444 : TJSAMP_420;
    if (tjCompress2(tj, pix, s->w, 0, s->h, pf, &jpg, len, sub, 95, 0) != 0) {
        fprintf(stderr, "prep_tool: encode %s: %s\n", s->name, tjGetErrorStr2(tj));
        exit(1);
    }
    tjDestroy(tj);
    free(pix);
    return jpg;
}

static void write_jpeg(int img, const char *path) {
    unsigned long len;
    unsigned char *jpg = encode_jpeg(img, &len);
    write_file(path, jpg, len);
    tjFree(jpg);
}

/* Written in reverse table order, so that a listing in creation order is not the sorted one. */
static int make_tree(const char *dir, const char *only) {
    char path[4096];
    mkdir(dir, 0755);
    for (int i = NIMG - 1; i >= 0; i--) {
        if (!selected(only, table[i].cls)) continue;
        snprintf(path, sizeof path, "%s/%s", dir, table[i].cls);
        mkdir(path, 0755);
        snprintf(path, sizeof path, "%s/%s/%s", dir, table[i].cls, table[i].name);
        write_jpeg(i, path);
    }
    snprintf(path, sizeof path, "%s/README.txt", dir);
    write_file(path, "not an image\n", 13);
    return 0;
}

/* The same images in one folder, named with a prefix that reverses the class order (n01 -> "z",
 * n03 -> "x") while keeping the order within a class, so that sorting by name alone would
 * misplace them. names: a Kaggle-style CSV (header, names without extension, boxes after the
 * class, a blank line); ints: "NAME.ext<TAB>INDEX" lines in another order, for --classes. */
static int make_flat(const char *dir, const char *labels, const char *mode) {
    char path[4096], name[256];
    mkdir(dir, 0755);
    FILE *f = fopen(labels, "w");
    if (!f) return 1;
    bool ints = !strcmp(mode, "ints");
    if (!ints) fprintf(f, "ImageId,PredictionString\n");
    for (int k = 0; k < NIMG; k++) {
        int i = ints ? (k * 3) % NIMG : NIMG - 1 - k, ci = class_index(table[i].cls);
        snprintf(name, sizeof name, "%c%s", 'z' - ci, table[i].name);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        write_jpeg(i, path);
        if (ints) {
            fprintf(f, "%s\t%d\n", name, ci);
        } else {
            int stem = (int)(strrchr(name, '.') - name);
            if (k % 2) fprintf(f, "%.*s,%s 10 20 30 40 %s 1 2 3 4\n", stem, name, table[i].cls, table[i].cls);
            else fprintf(f, "%s,%s\n", name, table[i].cls);
            if (k == 4) fprintf(f, "\n");
        }
    }
    fclose(f);
    return 0;
}

/* Photo-sized images for timing (not used by the tests): the synthetic content plus pixel noise
 * of +-24, which makes the files about as large as ImageNet's (~100 KB at 500 x 375, q90). */
static int make_bench(const char *dir, int ncls, int per, int w, int h) {
    char path[4096];
    mkdir(dir, 0755);
    uint8_t *pix = malloc((size_t)w * h * 3);
    tjhandle tj = tjInitCompress();
    for (int c = 0; c < ncls; c++) {
        snprintf(path, sizeof path, "%s/c%03d", dir, c);
        mkdir(path, 0755);
        for (int k = 0; k < per; k++) {
            int img = c * per + k;
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    for (int ch = 0; ch < 3; ch++)
                        pix[((size_t)y * w + x) * 3 + ch] =
                            u8(synth(img, ch, (x + 0.5) / w, (y + 0.5) / h) +
                               (hash8((uint32_t)img, (uint32_t)(y * w + x), (uint32_t)ch) % 49) - 24);
            unsigned char *jpg = NULL;
            unsigned long len = 0;
            if (tjCompress2(tj, pix, w, 0, h, TJPF_RGB, &jpg, &len, TJSAMP_420, 90, 0) != 0) return 1;
            snprintf(path, sizeof path, "%s/c%03d/img_%05d.JPEG", dir, c, k);
            write_file(path, jpg, len);
            tjFree(jpg);
        }
    }
    tjDestroy(tj);
    free(pix);
    return 0;
}

/* ---- reading splits ---- */

/* The whole dataset as `mem` (elem bytes each), or in its own native type when mem < 0. */
static void *read_all(hid_t f, const char *name, hid_t mem, size_t elem, int *rank, hsize_t *dims) {
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0) {
        CHECK(ds >= 0, "dataset '%s' missing", name);
        return NULL;
    }
    hid_t native = -1;
    if (mem < 0) {
        hid_t t = H5Dget_type(ds);
        mem = native = H5Tget_native_type(t, H5T_DIR_DEFAULT);
        elem = H5Tget_size(native);
        H5Tclose(t);
    }
    hid_t sp = H5Dget_space(ds);
    *rank = H5Sget_simple_extent_ndims(sp);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    size_t n = (size_t)H5Sget_simple_extent_npoints(sp);
    void *buf = malloc(n * elem + 1);
    CHECK(H5Dread(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0, "read %s", name);
    if (native >= 0) H5Tclose(native);
    H5Sclose(sp);
    H5Dclose(ds);
    return buf;
}

/* Unfiltered storage (the loader preads it); chunk[] receives the chunk shape when chunked. */
static bool unfiltered(hid_t f, const char *name, int *layout, hsize_t *chunk) {
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t pl = H5Dget_create_plist(ds);
    *layout = H5Pget_layout(pl);
    if (*layout == H5D_CHUNKED) H5Pget_chunk(pl, 4, chunk);
    int nf = H5Pget_nfilters(pl);
    H5Pclose(pl);
    H5Dclose(ds);
    return nf == 0;
}

/* The stored type: class, size in bytes, signedness. */
static bool type_is(hid_t f, const char *name, H5T_class_t cls, size_t size, H5T_sign_t sign) {
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0) return false;
    hid_t t = H5Dget_type(ds);
    bool ok = H5Tget_class(t) == cls && H5Tget_size(t) == size && H5Tget_sign(t) == sign;
    H5Tclose(t);
    H5Dclose(ds);
    return ok;
}

static int64_t attr_i64(hid_t f, const char *name) {
    int64_t v = -1;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    CHECK(a >= 0, "attribute %s missing", name);
    if (a >= 0) {
        H5Aread(a, H5T_NATIVE_INT64, &v);
        H5Aclose(a);
    }
    return v;
}

static void attr_f64(hid_t f, const char *name, double *v, int n) {
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    CHECK(a >= 0, "attribute %s missing", name);
    if (a < 0) return;
    hid_t sp = H5Aget_space(a);
    CHECK(H5Sget_simple_extent_npoints(sp) == n, "%s has %lld values", name,
          (long long)H5Sget_simple_extent_npoints(sp));
    H5Sclose(sp);
    H5Aread(a, H5T_NATIVE_DOUBLE, v);
    H5Aclose(a);
}

/* class_names, as variable-length strings; *n receives the count. */
static char **attr_strings(hid_t f, int *n) {
    hid_t a = H5Aopen(f, "class_names", H5P_DEFAULT);
    CHECK(a >= 0, "attribute class_names missing");
    if (a < 0) return NULL;
    hid_t sp = H5Aget_space(a);
    *n = (int)H5Sget_simple_extent_npoints(sp);
    char **s = calloc((size_t)*n, sizeof(char *));
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    CHECK(H5Aread(a, t, s) >= 0, "read class_names");
    H5Tclose(t);
    H5Sclose(sp);
    H5Aclose(a);
    return s;
}

static void free_strings(char **s, int n) {
    for (int i = 0; s && i < n; i++) free(s[i]); /* H5Aread's variable-length strings are malloc'ed */
    free(s);
}

static void check_classes(hid_t f, const char *const *want, int nwant) {
    CHECK(attr_i64(f, "num_classes") == nwant, "num_classes %lld, want %d", (long long)attr_i64(f, "num_classes"),
          nwant);
    int n = 0;
    char **names = attr_strings(f, &n);
    CHECK(n == nwant, "%d class names, want %d", n, nwant);
    for (int i = 0; names && i < n && i < nwant; i++)
        CHECK(!strcmp(names[i], want[i]), "class_names[%d] = '%s', want '%s'", i, names[i], want[i]);
    free_strings(names, n);
}

/* Per-channel mean and std of (pixels at p[k * ps + c * cs]) against the stored attributes. */
typedef struct stats {
    double s[3], s2[3], n;
} stats;
static void stats_add(stats *st, const uint8_t *p, size_t npix, ptrdiff_t ps, ptrdiff_t cs) {
    for (int c = 0; c < 3; c++)
        for (size_t k = 0; k < npix; k++) {
            double v = p[(ptrdiff_t)k * ps + c * cs];
            st->s[c] += v;
            st->s2[c] += v * v;
        }
    st->n += (double)npix;
}
static void stats_check(hid_t f, const stats *st) {
    double mean[3], std[3];
    attr_f64(f, "mean", mean, 3);
    attr_f64(f, "std", std, 3);
    for (int c = 0; c < 3; c++) {
        double m = st->s[c] / st->n, sd = sqrt(st->s2[c] / st->n - m * m);
        CHECK(fabs(mean[c] - m / 255) < 1e-9 && fabs(std[c] - sd / 255) < 1e-9,
              "channel %d: mean %.9f std %.9f stored, %.9f %.9f computed", c, mean[c], std[c], m / 255, sd / 255);
    }
}

/* Source pixels as TurboJPEG decodes them, converted like the importer (RGB, 3 channels). */
static uint8_t *decode_source(int img) {
    const spec *s = &table[img];
    unsigned long len;
    unsigned char *buf = encode_jpeg(img, &len);
    tjhandle tj = tjInitDecompress();
    int comps = s->k == K_GREY ? 1 : s->k == K_CMYK ? 4 : 3;
    uint8_t *raw = malloc((size_t)s->w * s->h * comps), *rgb = malloc((size_t)s->w * s->h * 3);
    int pf = comps == 1 ? TJPF_GRAY : comps == 4 ? TJPF_CMYK : TJPF_RGB;
    CHECK(tjDecompress2(tj, buf, len, raw, s->w, 0, s->h, pf, 0) == 0, "decode source %d", img);
    tjDestroy(tj);
    tjFree(buf);
    for (int k = 0; k < s->w * s->h; k++)
        for (int c = 0; c < 3; c++)
            rgb[3 * k + c] = comps == 1   ? raw[k]
                             : comps == 4 ? (uint8_t)((raw[4 * k + c] * raw[4 * k + 3] + 127) / 255)
                                          : raw[3 * k + c];
    free(raw);
    return rgb;
}

/* Compares an output image (pixel (x, y, c) at p[y*ys + x*xs + c*cs]) with the function,
 * output pixel centres mapped through the source box (x0, y0, bw, bh). */
static void compare_content(int img, const uint8_t *p, int ow, int oh, ptrdiff_t xs, ptrdiff_t ys, ptrdiff_t cs,
                            double x0, double y0, double bw, double bh, const char *what) {
    const spec *s = &table[img];
    double sum = 0;
    int max = 0;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++)
            for (int c = 0; c < 3; c++) {
                double u = (x0 + (x + 0.5) * bw / ow) / s->w, v = (y0 + (y + 0.5) * bh / oh) / s->h;
                int d = abs((int)p[y * ys + x * xs + c * cs] - (int)u8(expected(img, c, u, v)));
                sum += d;
                max = d > max ? d : max;
            }
    double mean = sum / (3.0 * ow * oh);
    CHECK(mean < 2.0 && max < 20, "%s %s: mean |error| %.2f (< 2), max %d (< 20)", what, s->name, mean, max);
    if (getenv("PREP_TOOL_VERBOSE")) printf("%s %s: mean |error| %.2f, max %d\n", what, s->name, mean, max);
}

static int check_raw(const char *path, int S, const char *only) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return fprintf(stderr, "cannot open %s\n", path), 1;
    int rank = 0, lrank = 0;
    hsize_t dims[4] = {0}, ldims[4] = {0}, chunk[4] = {0};
    uint8_t *img = read_all(f, "images", H5T_NATIVE_UINT8, 1, &rank, dims);
    int64_t *lab = read_all(f, "labels", H5T_NATIVE_INT64, 8, &lrank, ldims);
    int want_n = 0;
    for (int i = 0; i < NIMG; i++) want_n += selected(only, table[i].cls);
    CHECK(rank == 4 && dims[0] == (hsize_t)want_n && dims[1] == 3 && dims[2] == (hsize_t)S && dims[3] == (hsize_t)S,
          "images shape (%llu, %llu, %llu, %llu), want (%d, 3, %d, %d)", (unsigned long long)dims[0],
          (unsigned long long)dims[1], (unsigned long long)dims[2], (unsigned long long)dims[3], want_n, S, S);
    CHECK(lrank == 1 && ldims[0] == (hsize_t)want_n, "labels shape");
    CHECK(type_is(f, "images", H5T_INTEGER, 1, H5T_SGN_NONE) && type_is(f, "labels", H5T_INTEGER, 8, H5T_SGN_2),
          "images must be uint8, labels int64");
    int layout = -1;
    CHECK(unfiltered(f, "images", &layout, chunk), "images has a filter");
    CHECK(layout == H5D_CHUNKED && chunk[1] == 3 && chunk[2] == (hsize_t)S && chunk[3] == (hsize_t)S &&
              chunk[0] >= 1 && chunk[0] * 3 * (hsize_t)S * S <= (1u << 20) + 3 * (hsize_t)S * S,
          "images chunks (%llu, %llu, %llu, %llu): want whole images, about 1 MiB", (unsigned long long)chunk[0],
          (unsigned long long)chunk[1], (unsigned long long)chunk[2], (unsigned long long)chunk[3]);
    check_classes(f, classes, NCLS);
    if (failures) return 1;
    const size_t plane = (size_t)S * S;
    stats st = {0};
    for (int i = 0, k = 0; i < NIMG; i++) {
        if (!selected(only, table[i].cls)) continue;
        const spec *s = &table[i];
        const uint8_t *p = img + (size_t)k * 3 * plane;
        CHECK(lab[k] == class_index(s->cls), "labels[%d] = %lld, want %d (%s)", k, (long long)lab[k],
              class_index(s->cls), s->name);
        double side = s->w < s->h ? s->w : s->h, x0 = (s->w - side) / 2, y0 = (s->h - side) / 2;
        compare_content(i, p, S, S, 1, S, (ptrdiff_t)plane, x0, y0, side, side, "raw");
        if (s->crop_only && side == S) {
            uint8_t *src = decode_source(i);
            int max = 0;
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++)
                    for (int c = 0; c < 3; c++) {
                        int d = abs((int)p[c * plane + (size_t)y * S + x] -
                                    (int)src[(((size_t)y + (size_t)y0) * s->w + x + (size_t)x0) * 3 + c]);
                        max = d > max ? d : max;
                    }
            CHECK(max <= 1, "raw %s: differs from the decoded source by %d (a crop must copy pixels)", s->name, max);
            free(src);
        }
        stats_add(&st, p, plane, 1, (ptrdiff_t)plane);
        k++;
    }
    stats_check(f, &st);
    free(img);
    free(lab);
    H5Fclose(f);
    return failures ? 1 : 0;
}

/* The importer's JPEG-mode geometry: shorter side S, longer side capped at 4 S. */
static void jpeg_geometry(const spec *s, int S, int *ow, int *oh, double *x0, double *y0, double *bw, double *bh) {
    *x0 = *y0 = 0;
    *bw = s->w;
    *bh = s->h;
    if (s->w <= s->h) {
        *ow = S;
        *oh = (int)lround((double)s->h * S / s->w);
        if (*oh > 4 * S) *oh = 4 * S, *bh = 4.0 * s->w, *y0 = (s->h - *bh) / 2;
    } else {
        *oh = S;
        *ow = (int)lround((double)s->w * S / s->h);
        if (*ow > 4 * S) *ow = 4 * S, *bw = 4.0 * s->h, *x0 = (s->w - *bw) / 2;
    }
}

static int check_jpeg(const char *path, int S, bool want_chunked) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return fprintf(stderr, "cannot open %s\n", path), 1;
    int rank = 0, orank = 0, lrank = 0, layout = -1;
    hsize_t dims[4] = {0}, odims[4] = {0}, ldims[4] = {0}, chunk[4] = {0};
    uint8_t *bytes = read_all(f, "jpeg", H5T_NATIVE_UINT8, 1, &rank, dims);
    int64_t *off = read_all(f, "jpeg_offsets", H5T_NATIVE_INT64, 8, &orank, odims);
    int64_t *lab = read_all(f, "labels", H5T_NATIVE_INT64, 8, &lrank, ldims);
    CHECK(rank == 1 && orank == 1 && odims[0] == NIMG + 1 && lrank == 1 && ldims[0] == NIMG,
          "jpeg rank %d, jpeg_offsets %llu entries, labels %llu", rank, (unsigned long long)odims[0],
          (unsigned long long)ldims[0]);
    CHECK(unfiltered(f, "jpeg", &layout, chunk), "jpeg has a filter");
    CHECK((layout == H5D_CHUNKED) == want_chunked, "jpeg layout %d, want %s", layout,
          want_chunked ? "chunked" : "contiguous");
    CHECK(type_is(f, "jpeg", H5T_INTEGER, 1, H5T_SGN_NONE) && type_is(f, "jpeg_offsets", H5T_INTEGER, 8, H5T_SGN_2) &&
              type_is(f, "labels", H5T_INTEGER, 8, H5T_SGN_2),
          "jpeg must be uint8, jpeg_offsets and labels int64");
    CHECK(attr_i64(f, "channels") == 3 && attr_i64(f, "size") == S, "channels/size attributes");
    check_classes(f, classes, NCLS);
    if (failures) return 1;
    CHECK(off[0] == 0 && off[NIMG] == (int64_t)dims[0], "offsets run from %lld to %lld over %llu bytes",
          (long long)off[0], (long long)off[NIMG], (unsigned long long)dims[0]);
    stats st = {0};
    tjhandle tj = tjInitDecompress();
    for (int i = 0; i < NIMG && !failures; i++) {
        const spec *s = &table[i];
        CHECK(off[i + 1] > off[i], "image %d is empty", i);
        CHECK(lab[i] == class_index(s->cls), "labels[%d] = %lld, want %d", i, (long long)lab[i], class_index(s->cls));
        int w = 0, h = 0, sub = 0, cs = 0, ow, oh;
        double x0, y0, bw, bh;
        jpeg_geometry(s, S, &ow, &oh, &x0, &y0, &bw, &bh);
        const uint8_t *jp = bytes + off[i];
        unsigned long len = (unsigned long)(off[i + 1] - off[i]);
        CHECK(tjDecompressHeader3(tj, jp, len, &w, &h, &sub, &cs) == 0 && w == ow && h == oh && cs == TJCS_YCbCr,
              "%s: stored %dx%d colour space %d, want %dx%d YCbCr", s->name, w, h, cs, ow, oh);
        if (failures) break;
        uint8_t *pix = malloc((size_t)w * h * 3);
        CHECK(tjDecompress2(tj, jp, len, pix, w, 0, h, TJPF_RGB, TJFLAG_STOPONWARNING) == 0, "%s: %s", s->name,
              tjGetErrorStr2(tj));
        compare_content(i, pix, w, h, 3, (ptrdiff_t)w * 3, 1, x0, y0, bw, bh, "jpeg");
        stats_add(&st, pix, (size_t)w * h, 3, 1);
        free(pix);
    }
    tjDestroy(tj);
    if (!failures) stats_check(f, &st);
    free(bytes);
    free(off);
    free(lab);
    H5Fclose(f);
    return failures ? 1 : 0;
}

/* Two splits hold the same classes, labels and image bytes; with first > 0, A holds the first
 * `first` images of B (raw splits). */
static int compare(const char *pa, const char *pb, long first) {
    hid_t a = H5Fopen(pa, H5F_ACC_RDONLY, H5P_DEFAULT), b = H5Fopen(pb, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (a < 0 || b < 0) return fprintf(stderr, "cannot open %s or %s\n", pa, pb), 1;
    int na = 0, nb = 0;
    char **ca = attr_strings(a, &na), **cb = attr_strings(b, &nb);
    CHECK(ca && cb && na == nb, "class counts %d and %d", na, nb);
    for (int i = 0; !failures && i < na; i++) CHECK(!strcmp(ca[i], cb[i]), "class %d: %s vs %s", i, ca[i], cb[i]);
    free_strings(ca, na);
    free_strings(cb, nb);
    CHECK(attr_i64(a, "num_classes") == attr_i64(b, "num_classes"), "num_classes differ");
    const char *sets[] = {"labels", "images", "jpeg", "jpeg_offsets"};
    int compared = 0;
    for (int k = 0; k < 4; k++) {
        bool ea = H5Lexists(a, sets[k], H5P_DEFAULT) > 0, eb = H5Lexists(b, sets[k], H5P_DEFAULT) > 0;
        CHECK(ea == eb, "%s exists in only one file", sets[k]);
        if (!ea || !eb) continue;
        int ra, rb;
        hsize_t da[4] = {0}, db[4] = {0};
        uint8_t *x = read_all(a, sets[k], -1, 0, &ra, da);
        uint8_t *y = read_all(b, sets[k], -1, 0, &rb, db);
        if (first > 0 && ra == rb) {
            CHECK(da[0] == (hsize_t)first, "%s has %llu rows, want %ld", sets[k], (unsigned long long)da[0], first);
            db[0] = da[0];
        }
        bool same = ra == rb && !memcmp(da, db, sizeof da);
        size_t n = k == 0 || k == 3 ? 8 : 1;
        for (int d = 0; d < ra; d++) n *= da[d];
        CHECK(same && !memcmp(x, y, n), "%s differs", sets[k]);
        compared++;
        free(x);
        free(y);
    }
    CHECK(compared >= 2, "nothing to compare");
    H5Fclose(a);
    H5Fclose(b);
    return failures ? 1 : 0;
}

/* ---- CIFAR-10 and BigGAN-PyTorch ---- */

static const char *cifar_file(char *buf, size_t n, const char *dir, int k) {
    if (k == 5) snprintf(buf, n, "%s/test_batch.bin", dir);
    else snprintf(buf, n, "%s/data_batch_%d.bin", dir, k + 1);
    return buf;
}

static int make_cifar(const char *dir, int records, bool meta) {
    mkdir(dir, 0755);
    char path[4096];
    uint8_t *buf = malloc((size_t)records * 3073);
    for (int k = 0; k < 6; k++) {
        for (int r = 0; r < records; r++) {
            uint8_t *rec = buf + (size_t)r * 3073;
            rec[0] = (uint8_t)((k * 7 + r * 3) % 10);
            for (int p = 0; p < 3072; p++) rec[1 + p] = hash8((uint32_t)k, (uint32_t)r, (uint32_t)p);
        }
        write_file(cifar_file(path, sizeof path, dir, k), buf, (size_t)records * 3073);
    }
    if (meta) {
        snprintf(path, sizeof path, "%s/batches.meta.txt", dir);
        const char *names = "plane\ncar\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
        write_file(path, names, strlen(names));
    }
    free(buf);
    return 0;
}

static int check_cifar(const char *path, const char *dir, bool test, long limit, bool meta) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return fprintf(stderr, "cannot open %s\n", path), 1;
    int rank = 0, lrank = 0, layout = -1;
    hsize_t dims[4] = {0}, ldims[4] = {0}, chunk[4] = {0};
    uint8_t *img = read_all(f, "images", H5T_NATIVE_UINT8, 1, &rank, dims);
    int64_t *lab = read_all(f, "labels", H5T_NATIVE_INT64, 8, &lrank, ldims);
    CHECK(unfiltered(f, "images", &layout, chunk) && layout == H5D_CHUNKED && chunk[1] == 3 && chunk[2] == 32 &&
              chunk[3] == 32,
          "images must be chunked along N without filters");
    static const char *const standard[10] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                             "dog",      "frog",       "horse", "ship", "truck"};
    static const char *const custom[10] = {"plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                                           "truck"};
    check_classes(f, meta ? custom : standard, 10);
    /* Expected: the records of the .bin files, in file order. */
    size_t n = 0, cap = 0;
    uint8_t *want = NULL;
    char fp[4096];
    for (int k = test ? 5 : 0; k < (test ? 6 : 5); k++) {
        FILE *bf = fopen(cifar_file(fp, sizeof fp, dir, k), "rb");
        if (!bf) continue;
        uint8_t rec[3073];
        while (fread(rec, 1, 3073, bf) == 3073 && (limit <= 0 || n < (size_t)limit)) {
            if (n == cap) want = realloc(want, (cap = cap ? 2 * cap : 64) * 3073);
            memcpy(want + n * 3073, rec, 3073);
            n++;
        }
        fclose(bf);
    }
    CHECK(rank == 4 && dims[0] == n && dims[1] == 3 && dims[2] == 32 && dims[3] == 32 && lrank == 1 && ldims[0] == n,
          "shape (%llu, %llu, %llu, %llu), want (%zu, 3, 32, 32)", (unsigned long long)dims[0],
          (unsigned long long)dims[1], (unsigned long long)dims[2], (unsigned long long)dims[3], n);
    size_t bad_pix = 0, bad_lab = 0;
    stats st = {0};
    for (size_t i = 0; !failures && i < n; i++) {
        bad_lab += lab[i] != want[i * 3073];
        bad_pix += memcmp(img + i * 3072, want + i * 3073 + 1, 3072) != 0;
        stats_add(&st, img + i * 3072, 1024, 1, 1024);
    }
    CHECK(bad_pix == 0 && bad_lab == 0, "%zu images and %zu labels differ from the records", bad_pix, bad_lab);
    if (!failures) stats_check(f, &st);
    free(want);
    free(img);
    free(lab);
    H5Fclose(f);
    return failures ? 1 : 0;
}

enum { BG_N = 12, BG_C = 3, BG_H = 16, BG_W = 20, BG_CLASSES = 5 };

static int make_biggan(const char *path) {
    static uint8_t img[BG_N * BG_C * BG_H * BG_W];
    int64_t lab[BG_N];
    for (int i = 0; i < BG_N; i++) {
        lab[i] = (i * 2) % BG_CLASSES;
        for (int p = 0; p < BG_C * BG_H * BG_W; p++) img[i * BG_C * BG_H * BG_W + p] = hash8(99, (uint32_t)i, (uint32_t)p);
    }
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    h5_write_array(f, "imgs", H5T_STD_U8LE, H5T_NATIVE_UINT8, img, 4, (int64_t[]){BG_N, BG_C, BG_H, BG_W});
    h5_write_array(f, "labels", H5T_STD_I64LE, H5T_NATIVE_INT64, lab, 1, (int64_t[]){BG_N});
    return H5Fclose(f) < 0;
}

/* Reads the file back through dataset_open, in memory and (max_bytes 1) on demand. */
static int check_biggan(const char *path) {
    for (int pass = 0; pass < 2; pass++) {
        dpt_dataset d;
        dpt_status st = dataset_open(&d, path, 0, pass == 0 ? ((int64_t)1 << 30) : 1);
        CHECK(st == DPT_OK, "pass %d: dataset_open: %s", pass, dpt_error_message());
        if (st != DPT_OK) continue;
        CHECK(!strcmp(d.images_key, "imgs") && d.n == BG_N && d.c == BG_C && d.h == BG_H && d.w == BG_W &&
                  d.num_classes == BG_CLASSES,
              "pass %d: key %s, n %lld, shape (%d, %d, %d), %d classes", pass, d.images_key, (long long)d.n, d.c, d.h,
              d.w, d.num_classes);
        uint8_t *buf = NULL;
        size_t cap = 0;
        for (int i = 0; i < BG_N && !failures; i++) {
            CHECK(d.labels[i] == (i * 2) % BG_CLASSES, "pass %d: labels[%d] = %d", pass, i, d.labels[i]);
            const uint8_t *px = NULL;
            size_t size = 0;
            st = dataset_sample(&d, i, &buf, &cap, &px, &size);
            CHECK(st == DPT_OK && size == BG_C * BG_H * BG_W, "pass %d: sample %d: %s", pass, i,
                  st == DPT_OK ? "wrong size" : dpt_error_message());
            int bad = 0;
            for (int p = 0; st == DPT_OK && p < BG_C * BG_H * BG_W; p++) bad += px[p] != hash8(99, (uint32_t)i, (uint32_t)p);
            CHECK(bad == 0, "pass %d: image %d: %d pixels differ", pass, i, bad);
        }
        free(buf);
        dataset_close(&d);
    }
    return failures ? 1 : 0;
}

static const char *opt(int argc, char **argv, const char *name) {
    for (int i = 0; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return argv[i + 1];
    return NULL;
}
static bool flag(int argc, char **argv, const char *name) {
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], name)) return true;
    return false;
}

int main(int argc, char **argv) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const char *cmd = argc > 1 ? argv[1] : "";
    int rc = 2;
    if (!strcmp(cmd, "make-tree") && argc >= 3) rc = make_tree(argv[2], opt(argc, argv, "--only"));
    else if (!strcmp(cmd, "make-flat") && argc >= 5) rc = make_flat(argv[2], argv[3], argv[4]);
    else if (!strcmp(cmd, "check-raw") && argc >= 4) rc = check_raw(argv[2], atoi(argv[3]), opt(argc, argv, "--only"));
    else if (!strcmp(cmd, "check-jpeg") && argc >= 4) rc = check_jpeg(argv[2], atoi(argv[3]), flag(argc, argv, "--chunked"));
    else if (!strcmp(cmd, "compare") && argc >= 4) {
        const char *fst = opt(argc, argv, "--first");
        rc = compare(argv[2], argv[3], fst ? atol(fst) : 0);
    }
    else if (!strcmp(cmd, "make-cifar") && argc >= 4) rc = make_cifar(argv[2], atoi(argv[3]), flag(argc, argv, "--meta"));
    else if (!strcmp(cmd, "check-cifar") && argc >= 4) {
        const char *l = opt(argc, argv, "--limit");
        rc = check_cifar(argv[2], argv[3], flag(argc, argv, "--test"), l ? atol(l) : 0, flag(argc, argv, "--meta"));
    } else if (!strcmp(cmd, "make-bench") && argc >= 7) {
        rc = make_bench(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]));
    } else if (!strcmp(cmd, "make-biggan") && argc >= 3) rc = make_biggan(argv[2]);
    else if (!strcmp(cmd, "check-biggan") && argc >= 3) rc = check_biggan(argv[2]);
    else fprintf(stderr, "prep_tool: unknown or incomplete command (see the comment at the top of prep_tool.c)\n");
    if (rc == 0 && failures) rc = 1;
    if (!strncmp(cmd, "check", 5) || !strcmp(cmd, "compare")) printf("prep_tool %s: %s\n", cmd, rc ? "FAILED" : "ok");
    return rc;
}
