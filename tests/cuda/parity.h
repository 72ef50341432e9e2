/* CUDA vs CPU parity: each op of the CUDA back end (real on a GPU, or emulated on the CPU) against
 * the CPU back end on the same random inputs. A case builds its inputs on the host in float32,
 * rounds them to the activation dtype under test (pt_round), runs the CPU op on the rounded
 * values and the CUDA op on device copies (pt_up), and compares (pt_check): what differs is then
 * the op's own arithmetic and its output rounding. Every device buffer is freed by pt_free_all
 * after each case. */
#ifndef DPT_TESTS_PARITY_H
#define DPT_TESTS_PARITY_H

#include "dpt/backend/backend.h"
#include "testutil.h"

extern const dpt_backend *P_CPU; /* the reference */
extern const dpt_backend *P_GPU; /* the CUDA table under test */
extern dpt_dtype P_DT;           /* its activation dtype: F32, BF16 or F16 */

/* Rounds x[0..n) to what dtype dt can hold (no-op for F32). */
void pt_round(float *x, int64_t n, dpt_dtype dt);
/* A random host buffer (uniform in [lo, hi), next stream) already rounded to P_DT. */
float *pt_rand(int64_t n, float lo, float hi);
/* A random float32 host buffer, not rounded (parameters, gradients, optimizer state). */
float *pt_rand_f32(int64_t n, float lo, float hi);
/* A device copy of host floats as dtype dt (F32, BF16, F16) or of host int32 / other raw data
 * (dt DT_I32: bytes copied as they are). Returns the device pointer. */
void *pt_up(const void *host, int64_t n, dpt_dtype dt);
/* A device buffer of n values of dtype dt filled with NaN bytes (for outputs that the op must
 * overwrite) or, for accumulate cases, pt_up a known prefill instead. */
void *pt_nan(int64_t n, dpt_dtype dt);
/* Host float copy of n device values of dtype dt (new buffer, freed with the case). */
float *pt_down(const void *dev, int64_t n, dpt_dtype dt);
/* A host float buffer freed with the case. */
float *pt_host(int64_t n);
/* Tensor views: host ones for the CPU back end, device ones for the CUDA back end. The 4-d
 * forms take (N, C, H, W) and the layout of the back end (NHWC for both). */
dpt_tensor pt_t4(void *p, dpt_dtype dt, int n, int c, int h, int w, bool dev);
dpt_tensor pt_t2(void *p, dpt_dtype dt, int64_t n, int64_t c, bool dev);
dpt_tensor pt_t1(void *p, dpt_dtype dt, int64_t c, bool dev);

/* Relative 2-norm error of got against want, which must be <= tol_f32 for F32 activations and
 * the dtype's tolerance otherwise (BF16 2e-2, F16 4e-3: a few units of the last place after
 * output rounding), or <= tol_f32 always when `always_f32` (the value is float32 in every
 * precision: parameter gradients, statistics, optimizer state). Also checks every value is finite.
 * Prints one line per check with the error. */
void pt_check(const char *what, const float *got, const float *want, int64_t n, double tol_f32);
void pt_check32(const char *what, const float *got, const float *want, int64_t n, double tol);
/* Exact equality (integer results, copies). */
void pt_check_exact(const char *what, const float *got, const float *want, int64_t n);

/* Frees every buffer of the case. */
void pt_free_all(void);

/* The groups of cases, one file each (parity_<group>.c); each runs all its cases for the table
 * in P_GPU. */
void parity_basic(void);
void parity_elementwise(void);
void parity_pool(void);
void parity_norm(void);
void parity_loss(void);
void parity_optim(void);
void parity_gan(void);
void parity_linear(void);
void parity_conv(void);

#endif
