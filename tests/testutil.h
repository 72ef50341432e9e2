/* A minimal test harness: checks count failures, and tu_finish returns the exit code, so a test
 * that finds a problem always exits non-zero. */
#ifndef DPT_TESTUTIL_H
#define DPT_TESTUTIL_H

#include <stdio.h>

#include "dpt/core/common.h"
#include "dpt/core/tensor.h"

extern int tu_checks, tu_failures;

#define TU_CHECK(cond, ...)                                                       \
    do {                                                                          \
        tu_checks++;                                                              \
        if (!(cond)) {                                                            \
            tu_failures++;                                                        \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);       \
            fprintf(stderr, __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                  \
        }                                                                         \
    } while (0)

/* Prints a summary line and returns the process exit code. */
int tu_finish(const char *name);

/* Deterministic pseudo-random fill (uniform in [lo, hi)). */
void tu_fill_uniform(float *x, int64_t n, float lo, float hi, uint32_t stream);
void tu_fill_uniform_d(double *x, int64_t n, double lo, double hi, uint32_t stream);

/* Relative error ||a - b|| / max(||b||, tiny) (2-norm). */
double tu_rel_error(const float *a, const double *b, int64_t n);
double tu_rel_error_ff(const float *a, const float *b, int64_t n);
double tu_max_abs_diff(const float *a, const double *b, int64_t n);

/* Layout conversions of an (N, C, H, W) tensor. */
void tu_nchw_to_nhwc(float *dst, const float *src, int n, int c, int h, int w);
void tu_nhwc_to_nchw(float *dst, const float *src, int n, int c, int h, int w);
void tu_f2d(double *dst, const float *src, int64_t n);
void tu_d2f(float *dst, const double *src, int64_t n);

/* Writes a temporary file with the given text; returns its path (static buffer per call slot). */
const char *tu_write_temp(const char *name, const char *text);
/* Runs fn(ctx) in a child process with its stderr captured into msg (size bytes, NUL-terminated).
 * Returns true when the child exited non-zero or was killed (the call failed as it should). */
bool tu_expect_death(void (*fn)(void *ctx), void *ctx, char *msg, size_t size);

/* True when haystack contains needle. */
bool tu_contains(const char *haystack, const char *needle);

#endif
