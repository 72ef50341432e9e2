/* Helpers shared by the op tests (see ophelp.h). */
#include "ophelp.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static const char *test_name = "ophelp";
static dpt_layout act_layout = LAYOUT_NCHW;
static uint32_t next_stream = 1;

void oh_init(const char *name, dpt_layout layout, uint32_t first_stream) {
    test_name = name;
    act_layout = layout;
    next_stream = first_stream;
}

uint32_t oh_next_stream(void) { return next_stream++; }

/* ---- buffers freed per test case, random fills, conversions, labels ---- */

static void *tmp_ptrs[256];
static int tmp_count;

void *tmp_alloc(size_t bytes) {
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p || tmp_count == (int)DPT_ARRAY_LEN(tmp_ptrs)) {
        fprintf(stderr, "%s: out of memory or too many buffers in one case\n", test_name);
        exit(1);
    }
    return tmp_ptrs[tmp_count++] = p;
}

void tmp_free_all(void) {
    while (tmp_count > 0) free(tmp_ptrs[--tmp_count]);
}

float *fbuf(int64_t n) { return tmp_alloc((size_t)n * sizeof(float)); }
double *dbuf(int64_t n) { return tmp_alloc((size_t)n * sizeof(double)); }

float *frand(int64_t n, float lo, float hi) {
    float *p = fbuf(n);
    tu_fill_uniform(p, n, lo, hi, next_stream++);
    return p;
}

double *f2d(const float *p, int64_t n) {
    if (!p) return NULL;
    double *d = dbuf(n);
    tu_f2d(d, p, n);
    return d;
}

float *d2f(const double *p, int64_t n) {
    float *f = fbuf(n);
    tu_d2f(f, p, n);
    return f;
}

float *fcopy(const float *p, int64_t n) {
    float *q = fbuf(n);
    memcpy(q, p, (size_t)n * sizeof(float));
    return q;
}

const char *lbl(const char *fmt, ...) {
    static char bufs[4][160];
    static int slot;
    char *b = bufs[slot++ % 4];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof bufs[0], fmt, ap);
    va_end(ap);
    return b;
}

/* ---- layouts ---- */

float *to_act(const float *nchw, int n, int c, int h, int w) {
    float *p = fbuf((int64_t)n * c * h * w);
    if (act_layout == LAYOUT_NHWC) tu_nchw_to_nhwc(p, nchw, n, c, h, w);
    else memcpy(p, nchw, (size_t)n * c * h * w * sizeof(float));
    return p;
}

float *from_act(const float *act, int n, int c, int h, int w) {
    float *p = fbuf((int64_t)n * c * h * w);
    if (act_layout == LAYOUT_NHWC) tu_nhwc_to_nchw(p, act, n, c, h, w);
    else memcpy(p, act, (size_t)n * c * h * w * sizeof(float));
    return p;
}

dpt_tensor act_tensor(float *p, int n, int c, int h, int w) { return tensor_4d(p, DT_F32, n, c, h, w, act_layout); }

/* ---- largest errors ---- */

static struct {
    char op[24], kind[8];
    double worst;
} notes[32];
static int note_count;

void note(const char *what, const char *kind, double e) {
    char op[24];
    size_t len = strcspn(what, " :");
    snprintf(op, sizeof op, "%.*s", (int)(len < sizeof op ? len : sizeof op - 1), what);
    int i = 0;
    while (i < note_count && (strcmp(notes[i].op, op) || strcmp(notes[i].kind, kind))) i++;
    if (i == note_count && note_count < (int)DPT_ARRAY_LEN(notes)) {
        snprintf(notes[i].op, sizeof notes[i].op, "%s", op);
        snprintf(notes[i].kind, sizeof notes[i].kind, "%s", kind);
        notes[note_count++].worst = 0.0;
    }
    if (i < note_count && e > notes[i].worst) notes[i].worst = e;
}

void oh_print_notes(void) {
    for (int i = 0; i < note_count; i++)
        printf("  %-24s %-4s largest error %.2g\n", notes[i].op, notes[i].kind, notes[i].worst);
}

/* ---- checks ---- */

void check_finite(const char *what, const float *p, int64_t n) {
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(p[i])) {
            if (first < 0) first = i;
            bad++;
        }
    TU_CHECK(bad == 0, "%s: %lld of %lld values not finite (first at %lld: %g)", what, (long long)bad,
             (long long)n, (long long)first, first >= 0 ? (double)p[first] : 0.0);
}

void check_rel(const char *what, const float *got, const double *want, int64_t n, double tol) {
    check_finite(what, got, n);
    double e = tu_rel_error(got, want, n);
    note(what, tol == TOL_FWD ? "fwd" : "bwd", e);
    TU_CHECK(e <= tol, "%s: relative error %.3g > tol %.0e (max abs diff %.3g)", what, e, tol,
             tu_max_abs_diff(got, want, n));
}

void check_exact(const char *what, const float *got, const float *want, int64_t n) {
    check_finite(what, got, n);
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++)
        if (!(got[i] == want[i])) {
            if (first < 0) first = i;
            bad++;
        }
    TU_CHECK(bad == 0, "%s: %lld of %lld values differ (first at %lld: got %.9g want %.9g)", what, (long long)bad,
             (long long)n, (long long)first, first >= 0 ? (double)got[first] : 0.0,
             first >= 0 ? (double)want[first] : 0.0);
}

float *grad_dest(double *expect, const double *grad, int64_t n, bool acc) {
    float *p = acc ? frand(n, -1.0f, 1.0f) : fbuf(n);
    for (int64_t i = 0; i < n; i++) {
        if (!acc) p[i] = NAN;
        expect[i] = (acc ? (double)p[i] : 0.0) + grad[i];
    }
    return p;
}

/* ---- finite differences ---- */

double dot(const double *a, const double *b, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

void fd_check(const char *what, loss_fn f, void *ctx, double *x, int64_t n, const double *grad) {
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double save = x[i];
        x[i] = save + FD_STEP;
        const double lp = f(ctx);
        x[i] = save - FD_STEP;
        const double lm = f(ctx);
        x[i] = save;
        const double g = (lp - lm) / (2.0 * FD_STEP);
        num += (g - grad[i]) * (g - grad[i]);
        den += g * g;
    }
    const double e = sqrt(num) / fmax(sqrt(den), 1e-30);
    note(what, "fd", e);
    TU_CHECK(e <= TOL_FD, "%s: reference gradient vs finite differences: relative error %.3g > tol %.0e", what, e,
             TOL_FD);
}
