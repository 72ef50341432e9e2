/* GAN metrics: the symmetric eigen solver (reconstruction, orthogonality, time at n = 512); the
 * Frechet distance against closed forms (identical, diagonal, commuting and non-commuting
 * covariances, singular ones); feature statistics against a direct two-pass computation and
 * merged from simulated shards; the Inception Score on known cases, against a direct computation
 * and split across shards; and the error messages for bad input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dpt/metrics/gan_metrics.h"
#include "dpt/metrics/symeig.h"
#include "testutil.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static double *random_symmetric(int n, uint32_t stream) {
    double *a = malloc((size_t)n * n * sizeof *a);
    tu_fill_uniform_d(a, (int64_t)n * n, -1, 1, stream);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++) a[(size_t)i * n + j] = a[(size_t)j * n + i];
    return a;
}

/* Frobenius norm of a - b. */
static double frob_diff(const double *a, const double *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (a[i] - b[i]) * (a[i] - b[i]);
    return sqrt(s);
}

static double norm(const double *a, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * a[i];
    return sqrt(s);
}

/* ---- (a) eigen solver ---- */

static void check_symeig(int n, uint32_t stream) {
    double *a = random_symmetric(n, stream), *v = malloc((size_t)n * n * sizeof *v), *w = malloc(n * sizeof *w);
    double *rec = calloc((size_t)n * n, sizeof *rec), *vvt = calloc((size_t)n * n, sizeof *vvt);
    memcpy(v, a, (size_t)n * n * sizeof *v);
    double t0 = now();
    dpt_status st = symeig_solve(v, w, n, true, "test");
    double secs = now() - t0;
    TU_CHECK(st == DPT_OK, "symeig n=%d: %s", n, dpt_error_message());
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double r = 0, o = 0;
            for (int k = 0; k < n; k++) {
                r += v[(size_t)k * n + i] * w[k] * v[(size_t)k * n + j]; /* V^T diag(w) V */
                o += v[(size_t)i * n + k] * v[(size_t)j * n + k];        /* V V^T */
            }
            rec[(size_t)i * n + j] = r;
            vvt[(size_t)i * n + j] = o - (i == j);
        }
    double anorm = norm(a, (int64_t)n * n), orth_err = 0;
    double rec_err = frob_diff(rec, a, (int64_t)n * n) / anorm;
    for (int64_t e = 0; e < (int64_t)n * n; e++) orth_err = fmax(orth_err, fabs(vvt[e]));
    bool ascending = true;
    for (int k = 1; k < n; k++) ascending = ascending && w[k - 1] <= w[k];
    printf("symeig n=%d: %.4f s, reconstruction %.2e (relative Frobenius), max |V V^T - I| %.2e\n", n, secs, rec_err,
           orth_err);
    TU_CHECK(rec_err < 1e-12 && orth_err < 1e-12 && ascending, "symeig n=%d: reconstruction %.2e, orthogonality %.2e",
             n, rec_err, orth_err);
    /* Eigenvalues alone agree with those computed with the vectors. */
    memcpy(v, a, (size_t)n * n * sizeof *v);
    double *w2 = malloc(n * sizeof *w2);
    TU_CHECK(symeig_solve(v, w2, n, false, "test") == DPT_OK, "values only: %s", dpt_error_message());
    TU_CHECK(frob_diff(w, w2, n) < 1e-12 * anorm, "values only differ by %.2e", frob_diff(w, w2, n));
    free(a), free(v), free(w), free(w2), free(rec), free(vvt);
}

/* ---- (b) Frechet distance ---- */

/* q = a product of Householder reflections: a dense orthogonal matrix built without the solver. */
static void random_orthogonal(double *q, int d, uint32_t stream) {
    memset(q, 0, (size_t)d * d * sizeof *q);
    for (int i = 0; i < d; i++) q[(size_t)i * d + i] = 1;
    double *v = malloc(d * sizeof *v);
    for (int r = 0; r < 4; r++) {
        tu_fill_uniform_d(v, d, -1, 1, stream + r);
        double vv = 0;
        for (int i = 0; i < d; i++) vv += v[i] * v[i];
        for (int i = 0; i < d; i++) { /* row i of q -= 2 (q_i . v) v^T / (v . v) */
            double dot = 0;
            for (int k = 0; k < d; k++) dot += q[(size_t)i * d + k] * v[k];
            for (int k = 0; k < d; k++) q[(size_t)i * d + k] -= 2 * dot / vv * v[k];
        }
    }
    free(v);
}

/* s <- q s q^T */
static void rotate(double *s, const double *q, int d) {
    double *t = calloc((size_t)d * d, sizeof *t);
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++)
            for (int k = 0; k < d; k++) t[(size_t)i * d + j] += q[(size_t)i * d + k] * s[(size_t)k * d + j];
    memset(s, 0, (size_t)d * d * sizeof *s);
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++)
            for (int k = 0; k < d; k++) s[(size_t)i * d + j] += t[(size_t)i * d + k] * q[(size_t)j * d + k];
    free(t);
}

static double trace(const double *s, int d) {
    double t = 0;
    for (int i = 0; i < d; i++) t += s[(size_t)i * d + i];
    return t;
}

static double fid_or_nan(const double *mu1, const double *s1, const double *mu2, const double *s2, int d) {
    double f = NAN;
    dpt_status st = fid_distance(mu1, s1, mu2, s2, d, &f);
    TU_CHECK(st == DPT_OK, "fid_distance d=%d: %s", d, dpt_error_message());
    return f;
}

/* Covariance of n random features (singular when n <= d). */
static void feature_cov(double *mu, double *s, int d, int n, uint32_t stream) {
    float *x = malloc((size_t)n * d * sizeof *x);
    tu_fill_uniform(x, (int64_t)n * d, 0, 2, stream);
    fid_stats st;
    TU_CHECK(fid_stats_init(&st, d) == DPT_OK && fid_stats_add(&st, x, n) == DPT_OK &&
             fid_stats_finalize(&st, mu, s) == DPT_OK, "feature_cov: %s", dpt_error_message());
    fid_stats_free(&st);
    free(x);
}

static void check_fid_identical(int d, int n) {
    double *mu = malloc(d * sizeof *mu), *s = malloc((size_t)d * d * sizeof *s);
    feature_cov(mu, s, d, n, 10 + d);
    double t0 = now();
    double f = fid_or_nan(mu, s, mu, s, d);
    double secs = now() - t0;
    printf("FID identical d=%d n=%d: %.3e (trace %.3e), %.4f s\n", d, n, f, trace(s, d), secs);
    TU_CHECK(fabs(f) <= 1e-10 * trace(s, d), "identical statistics d=%d n=%d: FID %.3e", d, n, f);
    free(mu), free(s);
}

/* Diagonal, then both rotated by one orthogonal q (commuting full matrices): the distance is
 * |mu1 - mu2|^2 + sum (sqrt a - sqrt b)^2 in either case. */
static void check_fid_commuting(int d) {
    double *mu1 = malloc(d * sizeof *mu1), *mu2 = malloc(d * sizeof *mu2), *a = malloc(d * sizeof *a);
    double *b = malloc(d * sizeof *b), *s1 = calloc((size_t)d * d, sizeof *s1), *s2 = calloc((size_t)d * d, sizeof *s2);
    double *q = malloc((size_t)d * d * sizeof *q);
    tu_fill_uniform_d(mu1, d, -1, 1, 20), tu_fill_uniform_d(mu2, d, -1, 1, 21);
    tu_fill_uniform_d(a, d, 0.01, 4, 22), tu_fill_uniform_d(b, d, 0.01, 4, 23);
    a[0] = 0; /* a singular covariance */
    double want = 0;
    for (int i = 0; i < d; i++) {
        s1[(size_t)i * d + i] = a[i], s2[(size_t)i * d + i] = b[i];
        want += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]) + (sqrt(a[i]) - sqrt(b[i])) * (sqrt(a[i]) - sqrt(b[i]));
    }
    double f = fid_or_nan(mu1, s1, mu2, s2, d);
    printf("FID diagonal d=%d: relative error %.2e\n", d, fabs(f - want) / want);
    TU_CHECK(fabs(f - want) <= 1e-9 * want, "diagonal d=%d: %.15g, want %.15g", d, f, want);
    random_orthogonal(q, d, 30);
    rotate(s1, q, d), rotate(s2, q, d);
    f = fid_or_nan(mu1, s1, mu2, s2, d);
    printf("FID commuting full d=%d: relative error %.2e\n", d, fabs(f - want) / want);
    TU_CHECK(fabs(f - want) <= 1e-9 * want, "commuting full d=%d: %.15g, want %.15g", d, f, want);
    free(mu1), free(mu2), free(a), free(b), free(s1), free(s2), free(q);
}

/* A random 2 x 2 symmetric positive definite block. */
static void spd2(double *m, uint32_t stream) {
    double r[4];
    tu_fill_uniform_d(r, 4, -1, 1, stream);
    m[0] = r[0] * r[0] + r[1] * r[1] + 0.1, m[3] = r[2] * r[2] + r[3] * r[3] + 0.1;
    m[1] = m[2] = r[0] * r[2] + r[1] * r[3];
}

/* Non-commuting: block-diagonal 2 x 2 blocks, then rotated. For 2 x 2 matrices whose product M
 * has non-negative eigenvalues, tr(M^(1/2)) = sqrt(tr M + 2 sqrt(det M)), a closed form that
 * uses no eigen solver. */
static void check_fid_noncommuting(int d) {
    double *s1 = calloc((size_t)d * d, sizeof *s1), *s2 = calloc((size_t)d * d, sizeof *s2);
    double *mu = calloc(d, sizeof *mu), *q = malloc((size_t)d * d * sizeof *q), want = 0;
    double max_commutator = 0;
    for (int blk = 0; blk < d / 2; blk++) {
        double x[4], y[4];
        spd2(x, 100 + 2 * blk), spd2(y, 101 + 2 * blk);
        double p[4] = {x[0] * y[0] + x[1] * y[2], x[0] * y[1] + x[1] * y[3], x[2] * y[0] + x[3] * y[2],
                       x[2] * y[1] + x[3] * y[3]};
        double tr_sqrt = sqrt(p[0] + p[3] + 2 * sqrt(p[0] * p[3] - p[1] * p[2]));
        want += x[0] + x[3] + y[0] + y[3] - 2 * tr_sqrt;
        max_commutator = fmax(max_commutator, fabs(p[1] - p[2])); /* xy - yx off-diagonal is p1 - p2 */
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++) {
                s1[(size_t)(2 * blk + i) * d + 2 * blk + j] = x[2 * i + j];
                s2[(size_t)(2 * blk + i) * d + 2 * blk + j] = y[2 * i + j];
            }
    }
    TU_CHECK(max_commutator > 0.1, "the blocks commute (%.3g): the test would not test", max_commutator);
    random_orthogonal(q, d, 40);
    rotate(s1, q, d), rotate(s2, q, d);
    double f = fid_or_nan(mu, s1, mu, s2, d);
    printf("FID non-commuting full d=%d: %.10g, closed form %.10g, relative error %.2e\n", d, f, want,
           fabs(f - want) / want);
    TU_CHECK(fabs(f - want) <= 1e-9 * want, "non-commuting d=%d: %.15g, want %.15g", d, f, want);
    free(s1), free(s2), free(mu), free(q);
}

/* ---- (c) feature statistics: direct computation and shards ---- */

/* A simulated allreduce over `ranks` buffers: the first call sums them all (before any is
 * overwritten), every call copies the sum into its caller's buffer. */
typedef struct sim_group {
    double **bufs;
    int ranks;
    double *result;
} sim_group;

static void sim_reduce(void *ctx, double *buf, int64_t n) {
    sim_group *g = ctx;
    if (!g->result) {
        g->result = calloc(n, sizeof *g->result);
        for (int r = 0; r < g->ranks; r++)
            for (int64_t i = 0; i < n; i++) g->result[i] += g->bufs[r][i];
    }
    memcpy(buf, g->result, n * sizeof *buf);
}

static void check_stats_shards(void) {
    enum { N = 1000, D = 24, RANKS = 3 };
    float *x = malloc((size_t)N * D * sizeof *x);
    tu_fill_uniform(x, (int64_t)N * D, -1, 3, 50); /* mean 1, var 4/3 */
    double mu[D], cov[D * D], mu_ref[D] = {0}, cov_ref[D * D] = {0}, mu_s[D], cov_s[D * D];
    /* Two-pass reference in double. */
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++) mu_ref[j] += x[i * D + j] / (double)N;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++)
            for (int k = 0; k < D; k++)
                cov_ref[j * D + k] += (x[i * D + j] - mu_ref[j]) * (x[i * D + k] - mu_ref[k]) / (N - 1);
    fid_stats one;
    TU_CHECK(fid_stats_init(&one, D) == DPT_OK && fid_stats_add(&one, x, N) == DPT_OK &&
             fid_stats_finalize(&one, mu, cov) == DPT_OK, "one shard: %s", dpt_error_message());
    double e_mu = frob_diff(mu, mu_ref, D) / norm(mu_ref, D);
    double e_cov = frob_diff(cov, cov_ref, D * D) / norm(cov_ref, D * D);
    printf("feature statistics vs two-pass: mean %.2e, covariance %.2e (relative)\n", e_mu, e_cov);
    TU_CHECK(e_mu < 1e-12 && e_cov < 1e-12, "vs two-pass: mean %.2e, covariance %.2e", e_mu, e_cov);
    /* Three uneven shards, one of them fed in odd batch sizes. */
    fid_stats sh[RANKS];
    int bounds[RANKS + 1] = {0, 333, 700, N};
    double *bufs[RANKS];
    for (int r = 0; r < RANKS; r++) {
        TU_CHECK(fid_stats_init(&sh[r], D) == DPT_OK, "init");
        for (int i = bounds[r]; i < bounds[r + 1]; i += 17)
            TU_CHECK(fid_stats_add(&sh[r], x + (size_t)i * D, DPT_MIN(17, bounds[r + 1] - i)) == DPT_OK, "add");
        bufs[r] = sh[r].buf;
    }
    sim_group g = {bufs, RANKS, NULL};
    for (int r = 0; r < RANKS; r++) fid_stats_reduce(&sh[r], (gm_reduce){sim_reduce, &g});
    for (int r = 0; r < RANKS; r++) {
        TU_CHECK(fid_stats_finalize(&sh[r], mu_s, cov_s) == DPT_OK, "finalize shard %d", r);
        double em = frob_diff(mu_s, mu, D) / norm(mu, D);
        double ec = frob_diff(cov_s, cov, D * D) / norm(cov, D * D);
        TU_CHECK(em < 1e-13 && ec < 1e-13, "rank %d of 3 vs 1: mean %.2e, covariance %.2e", r, em, ec);
        if (r == 0) printf("3 shards vs 1: mean %.2e, covariance %.2e (relative)\n", em, ec);
        fid_stats_free(&sh[r]);
    }
    free(g.result);
    fid_stats_free(&one);
    free(x);
}

/* ---- (d) Inception Score ---- */

static void iscore_of(const float *p, int k, int splits, int64_t total, int ranks, double *mean, double *std) {
    iscore_stats s[8];
    double *bufs[8];
    /* Rank r takes the batches of 7 samples whose batch number is r modulo ranks. */
    for (int r = 0; r < ranks; r++) {
        TU_CHECK(iscore_init(&s[r], k, splits, total) == DPT_OK, "iscore_init: %s", dpt_error_message());
        for (int64_t b = r; b * 7 < total; b += ranks) {
            int64_t n = DPT_MIN((int64_t)7, total - b * 7);
            TU_CHECK(iscore_add(&s[r], p + b * 7 * k, n, b * 7) == DPT_OK, "iscore_add: %s", dpt_error_message());
        }
        bufs[r] = s[r].buf;
    }
    sim_group g = {bufs, ranks, NULL};
    for (int r = 0; r < ranks; r++) iscore_reduce(&s[r], (gm_reduce){sim_reduce, &g});
    TU_CHECK(iscore_finalize(&s[ranks - 1], mean, std) == DPT_OK, "iscore_finalize: %s", dpt_error_message());
    for (int r = 0; r < ranks; r++) iscore_free(&s[r]);
    free(g.result);
}

/* The reference's arithmetic, directly: per split p(y), then the mean over samples of the KL. */
static void iscore_direct(const float *p, int k, int splits, int64_t total, double *mean, double *std) {
    int64_t m = total / splits;
    double scores[64], sum = 0, sq = 0;
    double *py = calloc(k, sizeof *py);
    for (int s = 0; s < splits; s++) {
        memset(py, 0, k * sizeof *py);
        for (int64_t i = s * m; i < (s + 1) * m; i++)
            for (int j = 0; j < k; j++) py[j] += p[i * k + j] / (double)m;
        double kl = 0;
        for (int64_t i = s * m; i < (s + 1) * m; i++)
            for (int j = 0; j < k; j++)
                if (p[i * k + j] > 0) kl += p[i * k + j] * (log(p[i * k + j]) - log(py[j])) / m;
        scores[s] = exp(kl);
        sum += scores[s];
    }
    *mean = sum / splits;
    for (int s = 0; s < splits; s++) sq += (scores[s] - *mean) * (scores[s] - *mean);
    *std = sqrt(sq / splits);
    free(py);
}

static void check_iscore(void) {
    enum { K = 10, TOTAL = 1003 };
    float *p = malloc((size_t)TOTAL * K * sizeof *p);
    double mean, std;
    for (int i = 0; i < TOTAL * K; i++) p[i] = 1.0f / K;
    iscore_of(p, K, 10, TOTAL, 1, &mean, &std);
    TU_CHECK(fabs(mean - 1) < 1e-12 && std < 1e-12, "uniform: %.15g +- %.3g, want 1", mean, std);
    for (int i = 0; i < TOTAL; i++) /* one-hot, classes in turn: every split of 100 sees each 10 times */
        for (int j = 0; j < K; j++) p[i * K + j] = (i % K == j);
    iscore_of(p, K, 10, TOTAL, 3, &mean, &std);
    TU_CHECK(fabs(mean - K) < 1e-9 && std < 1e-9, "one-hot over %d classes: %.15g +- %.3g", K, mean, std);
    /* Random peaked probabilities: direct computation, and 1, 3, 8 shards. */
    for (int i = 0; i < TOTAL; i++) {
        double row = 0;
        tu_fill_uniform(p + i * K, K, 0, 1, 60 + i);
        for (int j = 0; j < K; j++) row += p[i * K + j] = powf(p[i * K + j], 4.0f);
        for (int j = 0; j < K; j++) p[i * K + j] = (float)(p[i * K + j] / row);
    }
    double dm, ds, m1, s1, m3, s3, m8, s8;
    iscore_direct(p, K, 10, TOTAL, &dm, &ds);
    iscore_of(p, K, 10, TOTAL, 1, &m1, &s1);
    iscore_of(p, K, 10, TOTAL, 3, &m3, &s3);
    iscore_of(p, K, 10, TOTAL, 8, &m8, &s8);
    printf("IS random: %.12f +- %.12f; direct %.12f +- %.12f; 3 shards %.2e, 8 shards %.2e (|diff|)\n", m1, s1, dm, ds,
           fabs(m3 - m1), fabs(m8 - m1));
    TU_CHECK(fabs(m1 - dm) < 1e-10 * dm && fabs(s1 - ds) < 1e-8 * dm, "vs direct: %.15g +- %.15g, %.15g +- %.15g", m1,
             s1, dm, ds);
    TU_CHECK(fabs(m3 - m1) < 1e-12 * m1 && fabs(m8 - m1) < 1e-12 * m1 && fabs(s3 - s1) < 1e-10 &&
             fabs(s8 - s1) < 1e-10, "shards: 1 %.15g, 3 %.15g, 8 %.15g", m1, m3, m8);
    TU_CHECK(s1 > 1e-3, "the splits' scores do not vary (%.3g): the std is not tested", s1);
    free(p);
}

/* ---- (e) errors ---- */

static void check_message(dpt_status st, const char *part, const char *what) {
    TU_CHECK(st != DPT_OK && tu_contains(dpt_error_message(), part), "%s: status %d, message \"%s\", want \"%s\"",
             what, (int)st, dpt_error_message(), part);
}

static void check_errors(void) {
    fid_stats s;
    check_message(fid_stats_init(&s, 0), "feature size 0", "d = 0");
    TU_CHECK(fid_stats_init(&s, 3) == DPT_OK, "init");
    float x[6] = {1, 2, 3, 4, NAN, 6};
    double mu[3], cov[9];
    check_message(fid_stats_add(&s, x, 2), "feature 1 of row 1 in this batch is nan", "NaN feature");
    TU_CHECK(s.buf[0] == 0, "a refused batch was counted");
    TU_CHECK(fid_stats_add(&s, x, 1) == DPT_OK, "first row");
    check_message(fid_stats_finalize(&s, mu, cov), "1 feature vector(s), a covariance needs at least 2", "count 1");
    fid_stats_free(&s);
    double m2[2] = {0, 0}, c2[4] = {1, 0, 0, 1}, bad[4] = {1, INFINITY, INFINITY, 1}, f;
    check_message(fid_distance(m2, c2, m2, bad, 2, &f), "sigma2[0, 1] is inf", "infinite sigma");
    check_message(fid_distance(m2, c2, m2, c2, 0, &f), "dimension 0", "fid d = 0");
    iscore_stats is;
    check_message(iscore_init(&is, 10, 10, 5), "5 samples in 10 splits", "too few samples");
    TU_CHECK(iscore_init(&is, 2, 2, 4) == DPT_OK, "init");
    float p[8] = {0.5f, 0.5f, 0.7f, 0.2f, 1.0f, 0.0f, -0.1f, 1.1f};
    check_message(iscore_add(&is, p, 2, 0), "sample 1 sum to 0.9", "row sum");
    check_message(iscore_add(&is, p + 6, 1, 3), "class 0 for sample 3 is -0.1", "negative probability");
    check_message(iscore_add(&is, p, 1, 4), "samples 4 .. 4 lie outside 0 .. 3", "index out of range");
    TU_CHECK(iscore_add(&is, p, 1, 0) == DPT_OK && iscore_add(&is, p + 4, 1, 2) == DPT_OK &&
             iscore_add(&is, p + 4, 1, 3) == DPT_OK, "adds");
    double mean, std;
    check_message(iscore_finalize(&is, &mean, &std), "split 0 holds 1 samples, expected 2", "missed sample");
    iscore_free(&is);
    double a[4] = {1, NAN, NAN, 1}, w[2];
    check_message(symeig_solve(a, w, 2, true, "what"), "what: matrix entry (0, 1) is nan", "symeig NaN");
}

int main(void) {
    check_symeig(5, 1);
    check_symeig(100, 2);
    check_symeig(512, 3);
    check_fid_identical(64, 1000);
    check_fid_identical(64, 20); /* singular covariance */
    check_fid_identical(512, 2000);
    check_fid_commuting(40);
    check_fid_noncommuting(2);
    check_fid_noncommuting(64);
    check_stats_shards();
    check_iscore();
    check_errors();
    return tu_finish("test_gan_metrics");
}
