/* The GAN metrics on raw float32 input from stdin, for the numpy/scipy comparison:
 *   gan_metrics_tool fid D N1 N2      < features (N1, D) then (N2, D)  -> prints the distance
 *   gan_metrics_tool is K N SPLITS    < probabilities (N, K)           -> prints mean and std
 * Each set is fed in batches of 100, as a trainer would. */
#include <stdio.h>
#include <stdlib.h>

#include "dpt/metrics/gan_metrics.h"

static float *read_floats(size_t n) {
    float *x = malloc(n * sizeof *x);
    if (fread(x, sizeof *x, n, stdin) != n) {
        fprintf(stderr, "gan_metrics_tool: short input\n");
        exit(1);
    }
    return x;
}

static int fail(void) {
    fprintf(stderr, "gan_metrics_tool: %s\n", dpt_error_message());
    return 1;
}

/* Mean and covariance of n feature vectors read from stdin. */
static dpt_status gaussian(int d, int n, double *mu, double *sigma) {
    float *x = read_floats((size_t)n * d);
    fid_stats s;
    dpt_status st = fid_stats_init(&s, d);
    for (int i = 0; st == DPT_OK && i < n; i += 100) st = fid_stats_add(&s, x + (size_t)i * d, DPT_MIN(100, n - i));
    if (st == DPT_OK) st = fid_stats_finalize(&s, mu, sigma);
    fid_stats_free(&s);
    free(x);
    return st;
}

static int run_fid(int d, int n1, int n2) {
    double *mu1 = malloc(d * sizeof(double)), *mu2 = malloc(d * sizeof(double));
    double *s1 = malloc((size_t)d * d * sizeof(double)), *s2 = malloc((size_t)d * d * sizeof(double)), f;
    if (gaussian(d, n1, mu1, s1) != DPT_OK || gaussian(d, n2, mu2, s2) != DPT_OK ||
        fid_distance(mu1, s1, mu2, s2, d, &f) != DPT_OK)
        return fail();
    printf("%.17g\n", f);
    free(mu1), free(mu2), free(s1), free(s2);
    return 0;
}

static int run_is(int k, int n, int splits) {
    float *p = read_floats((size_t)n * k);
    iscore_stats s;
    double mean, std;
    if (iscore_init(&s, k, splits, n) != DPT_OK) return fail();
    for (int i = 0; i < n; i += 100)
        if (iscore_add(&s, p + (size_t)i * k, DPT_MIN(100, n - i), i) != DPT_OK) return fail();
    if (iscore_finalize(&s, &mean, &std) != DPT_OK) return fail();
    printf("%.17g %.17g\n", mean, std);
    iscore_free(&s);
    free(p);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && argv[1][0] == 'f') return run_fid(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
    if (argc == 5 && argv[1][0] == 'i') return run_is(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
    fprintf(stderr, "usage: gan_metrics_tool fid D N1 N2 | is K N SPLITS  < float32 data\n");
    return 2;
}
