#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dpt/core/rng.h"

int tu_checks, tu_failures;

int tu_finish(const char *name) {
    printf("%s: %d checks, %d failed\n", name, tu_checks, tu_failures);
    return tu_failures == 0 && tu_checks > 0 ? 0 : 1;
}

void tu_fill_uniform(float *x, int64_t n, float lo, float hi, uint32_t stream) {
    for (int64_t i = 0; i < n; i += 4) {
        uint32_t r[4];
        rng_block(12345, RNG_TEST, (uint64_t)i / 4, stream, r);
        for (int k = 0; k < 4 && i + k < n; k++) x[i + k] = lo + (hi - lo) * rng_u01(r[k]);
    }
}

void tu_fill_uniform_d(double *x, int64_t n, double lo, double hi, uint32_t stream) {
    float *tmp = malloc((size_t)n * sizeof(float));
    tu_fill_uniform(tmp, n, (float)lo, (float)hi, stream);
    for (int64_t i = 0; i < n; i++) x[i] = tmp[i];
    free(tmp);
}

double tu_rel_error(const float *a, const double *b, int64_t n) {
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += b[i] * b[i];
    }
    if (isnan(num)) return INFINITY;
    return sqrt(num) / (sqrt(den) > 1e-30 ? sqrt(den) : 1e-30);
}

double tu_rel_error_ff(const float *a, const float *b, int64_t n) {
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    if (isnan(num)) return INFINITY;
    return sqrt(num) / (sqrt(den) > 1e-30 ? sqrt(den) : 1e-30);
}

double tu_max_abs_diff(const float *a, const double *b, int64_t n) {
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (isnan(d)) return INFINITY;
        m = d > m ? d : m;
    }
    return m;
}

void tu_nchw_to_nhwc(float *dst, const float *src, int n, int c, int h, int w) {
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    dst[(((int64_t)i * h + y) * w + x) * c + ch] = src[(((int64_t)i * c + ch) * h + y) * w + x];
}

void tu_nhwc_to_nchw(float *dst, const float *src, int n, int c, int h, int w) {
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    dst[(((int64_t)i * c + ch) * h + y) * w + x] = src[(((int64_t)i * h + y) * w + x) * c + ch];
}

void tu_f2d(double *dst, const float *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = src[i];
}

void tu_d2f(float *dst, const double *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = (float)src[i];
}

const char *tu_write_temp(const char *name, const char *text) {
    static char paths[8][512];
    static int slot;
    char *p = paths[slot++ % 8];
    snprintf(p, 512, "/tmp/dpt_test_%d_%s", (int)getpid(), name);
    FILE *f = fopen(p, "w");
    if (!f) {
        perror(p);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
    return p;
}

bool tu_contains(const char *haystack, const char *needle) { return strstr(haystack, needle) != NULL; }

bool tu_expect_death(void (*fn)(void *ctx), void *ctx, char *msg, size_t size) {
    int fds[2];
    msg[0] = '\0';
    if (pipe(fds) != 0) return false;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        fn(ctx);
        _exit(0);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t r;
    while (got < size - 1 && (r = read(fds[0], msg + got, size - 1 - got)) > 0) got += (size_t)r;
    msg[got] = '\0';
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
