/* Helpers shared by the op tests (unit/test_ops.c, unit/test_gan_ops.c): buffers freed per test
 * case, deterministic random fills, conversions, labels, activation layouts, checks against the
 * double reference, central finite differences of a reference loss, and the largest error seen per
 * op. Short names, as the tests use them; the set-up functions carry the oh_ prefix. Call oh_init
 * before anything else. */
#ifndef DPT_OPHELP_H
#define DPT_OPHELP_H

#include "dpt/core/common.h"
#include "dpt/core/tensor.h"

/* Tolerances, relative 2-norm error (each test's comment gives the reasoning for its ops):
 * TOL_FD: the double reference vs central differences with step FD_STEP; TOL_FWD: float32 forward
 * vs double; TOL_BWD: float32 backward vs double. */
#define TOL_FD 1e-6
#define TOL_FWD 1e-5
#define TOL_BWD 1e-4
#define FD_STEP 1e-6

/* Names the test in fatal messages ("test_ops: ..."), sets the activation layout of the back end
 * under test (for to_act, from_act, act_tensor) and the stream of frand's first fill: each fill
 * takes the next stream, so a test's random inputs depend only on this value and its call order. */
void oh_init(const char *test_name, dpt_layout act_layout, uint32_t first_stream);
/* The next random stream (the one frand would use), for fills of other kinds. */
uint32_t oh_next_stream(void);

/* Zeroed buffers (at most 256 per case; exits on failure), all freed by tmp_free_all. */
void *tmp_alloc(size_t bytes);
void tmp_free_all(void);
float *fbuf(int64_t n);
double *dbuf(int64_t n);
/* A buffer filled uniformly in [lo, hi) from the next random stream. */
float *frand(int64_t n, float lo, float hi);
/* New buffers converted to double (NULL for NULL) or float, and a float copy. */
double *f2d(const float *p, int64_t n);
float *d2f(const double *p, int64_t n);
float *fcopy(const float *p, int64_t n);
/* printf into one of four rotating static buffers, so that a call can build several labels. */
const char *lbl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* (N, C, H, W) activations to and from the back end's layout (new buffers), and a tensor of p. */
float *to_act(const float *nchw, int n, int c, int h, int w);
float *from_act(const float *act, int n, int c, int h, int w);
dpt_tensor act_tensor(float *p, int n, int c, int h, int w);

/* Checks (TU_CHECK) that every value is finite. */
void check_finite(const char *what, const float *p, int64_t n);
/* Back-end output vs reference: finite, and relative error <= tol; the error is noted under the
 * kind "fwd" when tol is TOL_FWD, "bwd" otherwise. */
void check_rel(const char *what, const float *got, const double *want, int64_t n, double tol);
/* Finite and equal element by element. */
void check_exact(const char *what, const float *got, const float *want, int64_t n);
/* A gradient destination in NCHW order: pre-filled from the next random stream when the op is to
 * add into it (expect = prefill + grad), with NaN when it is to overwrite (expect = grad). */
float *grad_dest(double *expect, const double *grad, int64_t n, bool acc);

/* A reference forward wrapped as L(ctx) = sum(out * R), R fixed and random. */
typedef double (*loss_fn)(void *ctx);
/* sum a[i] * b[i], in index order. */
double dot(const double *a, const double *b, int64_t n);
/* The reference's gradient grad of f with respect to x[0..n) vs central differences (step
 * FD_STEP, relative error <= TOL_FD); the error is noted under the kind "fd". */
void fd_check(const char *what, loss_fn f, void *ctx, double *x, int64_t n, const double *grad);

/* Keeps the largest error e per op (what up to its first space or colon) and kind. */
void note(const char *what, const char *kind, double e);
/* Prints the noted errors, one line per op and kind, in the order first noted. */
void oh_print_notes(void);

#endif
