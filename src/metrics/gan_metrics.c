/* Frechet distance and Inception Score statistics (see gan_metrics.h).
 *
 * The covariance comes from raw sums: (sum x x^T - count mu mu^T) / (count - 1). In double this
 * loses about log10(|mu|^2 / var) digits to cancellation, a few at most for network features
 * (whose means and standard deviations are of one order), and raw sums are what lets ranks
 * merge by a plain allreduce. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/metrics/gan_metrics.h"
#include "dpt/metrics/symeig.h"

/* Samples converted to double and added to the outer products together: each row of the sums
 * then stays in L1 while a block of samples passes over it, instead of streaming the whole d x d
 * matrix from memory once per sample. */
#define FID_BLOCK 64

dpt_status fid_stats_init(fid_stats *s, int d) {
    memset(s, 0, sizeof *s);
    if (d < 1 || d > 65536) return dpt_error(DPT_ERR_ARG, "FID statistics: feature size %d (must be 1 .. 65536)", d);
    s->d = d;
    s->buf_len = 1 + d + (int64_t)d * d;
    s->buf = dpt_xcalloc((size_t)s->buf_len, sizeof *s->buf);
    return DPT_OK;
}

void fid_stats_free(fid_stats *s) {
    free(s->buf);
    memset(s, 0, sizeof *s);
}

static dpt_status check_features(const float *x, int64_t n, int d) {
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++)
            if (!isfinite(x[i * d + j]))
                return dpt_error(DPT_ERR_ARG, "FID statistics: feature %d of row %lld in this batch is %g", j,
                                 (long long)i, (double)x[i * d + j]);
    return DPT_OK;
}

/* sum += rows of xb (nb, d); upper triangle of outer += xb^T xb. */
static void add_block(double *sum, double *outer, const double *xb, int nb, int d) {
    for (int i = 0; i < d; i++) {
        double *row = outer + (size_t)i * d;
        for (int b = 0; b < nb; b++) {
            const double *x = xb + (size_t)b * d;
            double xi = x[i];
            for (int j = i; j < d; j++) row[j] += xi * x[j];
        }
    }
    for (int b = 0; b < nb; b++)
        for (int j = 0; j < d; j++) sum[j] += xb[(size_t)b * d + j];
}

dpt_status fid_stats_add(fid_stats *s, const float *x, int64_t n) {
    if (n < 0) return dpt_error(DPT_ERR_ARG, "FID statistics: negative batch size %lld", (long long)n);
    DPT_TRY(check_features(x, n, s->d));
    int d = s->d;
    double *xb = dpt_xmalloc((size_t)FID_BLOCK * d * sizeof *xb);
    for (int64_t start = 0; start < n; start += FID_BLOCK) {
        int nb = (int)DPT_MIN((int64_t)FID_BLOCK, n - start);
        for (int64_t e = 0; e < (int64_t)nb * d; e++) xb[e] = x[start * d + e];
        add_block(s->buf + 1, s->buf + 1 + d, xb, nb, d);
    }
    s->buf[0] += (double)n;
    free(xb);
    return DPT_OK;
}

void fid_stats_reduce(fid_stats *s, gm_reduce r) { r.fn(r.ctx, s->buf, s->buf_len); }

dpt_status fid_stats_finalize(const fid_stats *s, double *mu, double *sigma) {
    int d = s->d;
    double count = s->buf[0];
    if (count < 2)
        return dpt_error(DPT_ERR_ARG, "FID statistics: %.0f feature vector(s), a covariance needs at least 2", count);
    const double *sum = s->buf + 1, *outer = s->buf + 1 + d;
    for (int i = 0; i < d; i++) mu[i] = sum[i] / count;
    for (int i = 0; i < d; i++)
        for (int j = i; j < d; j++) {
            double c = (outer[(size_t)i * d + j] - count * mu[i] * mu[j]) / (count - 1);
            sigma[(size_t)i * d + j] = sigma[(size_t)j * d + i] = c;
        }
    return DPT_OK;
}

static dpt_status check_gaussian(const double *mu, const double *sigma, int d, const char *name) {
    for (int i = 0; i < d; i++)
        if (!isfinite(mu[i])) return dpt_error(DPT_ERR_ARG, "Frechet distance: mu%s[%d] is %g", name, i, mu[i]);
    for (int64_t e = 0; e < (int64_t)d * d; e++)
        if (!isfinite(sigma[e]))
            return dpt_error(DPT_ERR_ARG, "Frechet distance: sigma%s[%lld, %lld] is %g", name, (long long)(e / d),
                             (long long)(e % d), sigma[e]);
    return DPT_OK;
}

/* c = a b^T for (d, d) row-major matrices: every entry is a dot product of two rows. */
static void matmul_abt(double *c, const double *a, const double *b, int d) {
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            const double *ai = a + (size_t)i * d, *bj = b + (size_t)j * d;
            double acc = 0;
            for (int k = 0; k < d; k++) acc += ai[k] * bj[k];
            c[(size_t)i * d + j] = acc;
        }
}

/* l <- sqrt(l) for the eigenvalues (ascending) of a positive semi-definite matrix. A covariance of
 * fewer samples than dimensions is singular: its zero eigenvalues come out of the solver as
 * rounding noise of either sign, up to about d * eps * max(l) (the solver's backward error), and
 * so do M's below. Negative ones would make sqrt NaN, and the square roots of positive ones
 * (1e-8 each for noise of 1e-16) would add up to a visible error, so everything below that
 * bound counts as 0; that moves the trace by at most d * sqrt(tol), the size of the noise's own
 * contribution. */
static void sqrt_eigenvalues(double *l, int d) {
    double tol = d * DBL_EPSILON * DPT_MAX(fabs(l[0]), fabs(l[d - 1]));
    for (int i = 0; i < d; i++) l[i] = l[i] > tol ? sqrt(l[i]) : 0.0;
}

/* tr((s1 s2)^(1/2)). With s1 = V^T diag(l) V (rows of V are eigenvectors), s1 s2 is similar to the
 * symmetric positive semi-definite M = diag(sqrt l) V s2 V^T diag(sqrt l), so the wanted trace is
 * the sum of the square roots of M's eigenvalues; no non-symmetric matrix square root (scipy's
 * sqrtm and its complex round-off) is needed. */
static dpt_status trace_sqrt_product(const double *s1, const double *s2, int d, double *out) {
    size_t dd = (size_t)d * d;
    double *v = dpt_xmalloc(dd * sizeof *v), *t = dpt_xmalloc(dd * sizeof *t), *m = dpt_xmalloc(dd * sizeof *m);
    double *l = dpt_xmalloc((size_t)d * sizeof *l);
    memcpy(v, s1, dd * sizeof *v);
    dpt_status st = symeig_solve(v, l, d, true, "Frechet distance: eigenvectors of sigma1");
    if (st == DPT_OK) {
        sqrt_eigenvalues(l, d);
        matmul_abt(t, v, s2, d); /* t = V s2 (s2 is symmetric) */
        matmul_abt(m, t, v, d);  /* m = V s2 V^T */
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) m[(size_t)i * d + j] *= l[i] * l[j];
        st = symeig_solve(m, l, d, false, "Frechet distance: eigenvalues of sqrt(sigma1) sigma2 sqrt(sigma1)");
    }
    double tr = 0;
    if (st == DPT_OK) sqrt_eigenvalues(l, d);
    for (int i = 0; st == DPT_OK && i < d; i++) tr += l[i];
    *out = tr;
    free(v);
    free(t);
    free(m);
    free(l);
    return st;
}

dpt_status fid_distance(const double *mu1, const double *sigma1, const double *mu2, const double *sigma2, int d,
                        double *out) {
    if (d < 1) return dpt_error(DPT_ERR_ARG, "Frechet distance: dimension %d (must be at least 1)", d);
    DPT_TRY(check_gaussian(mu1, sigma1, d, "1"));
    DPT_TRY(check_gaussian(mu2, sigma2, d, "2"));
    double tr_sqrt;
    DPT_TRY(trace_sqrt_product(sigma1, sigma2, d, &tr_sqrt));
    double dist = 0;
    for (int i = 0; i < d; i++) {
        double diff = mu1[i] - mu2[i];
        dist += diff * diff + sigma1[(size_t)i * d + i] + sigma2[(size_t)i * d + i];
    }
    *out = dist - 2 * tr_sqrt;
    return DPT_OK;
}

/* ---- Inception Score ---- */

static int64_t iscore_split_size(const iscore_stats *s) { return s->total / s->splits; }
static double *iscore_split(const iscore_stats *s, int split) { return s->buf + (size_t)split * (s->k + 2); }

dpt_status iscore_init(iscore_stats *s, int k, int splits, int64_t total) {
    memset(s, 0, sizeof *s);
    if (k < 2) return dpt_error(DPT_ERR_ARG, "Inception Score: %d classes (need at least 2)", k);
    if (splits < 1 || total < splits)
        return dpt_error(DPT_ERR_ARG, "Inception Score: %lld samples in %d splits (need splits >= 1 and at least one "
                         "sample per split)", (long long)total, splits);
    s->k = k;
    s->splits = splits;
    s->total = total;
    s->buf_len = (int64_t)splits * (k + 2);
    s->buf = dpt_xcalloc((size_t)s->buf_len, sizeof *s->buf);
    return DPT_OK;
}

void iscore_free(iscore_stats *s) {
    free(s->buf);
    memset(s, 0, sizeof *s);
}

static dpt_status check_probs(const iscore_stats *s, const float *p, int64_t n, int64_t first) {
    if (n < 0 || first < 0 || first + n > s->total)
        return dpt_error(DPT_ERR_ARG, "Inception Score: samples %lld .. %lld lie outside 0 .. %lld", (long long)first,
                         (long long)(first + n - 1), (long long)(s->total - 1));
    for (int64_t i = 0; i < n; i++) {
        double row = 0;
        for (int j = 0; j < s->k; j++) {
            float v = p[i * s->k + j];
            if (!(v >= 0.0f && v <= 1.0f))
                return dpt_error(DPT_ERR_ARG, "Inception Score: probability of class %d for sample %lld is %g", j,
                                 (long long)(first + i), (double)v);
            row += v;
        }
        if (fabs(row - 1.0) > 1e-3)
            return dpt_error(DPT_ERR_ARG, "Inception Score: class probabilities of sample %lld sum to %g, not 1",
                             (long long)(first + i), row);
    }
    return DPT_OK;
}

dpt_status iscore_add(iscore_stats *s, const float *p, int64_t n, int64_t first) {
    DPT_TRY(check_probs(s, p, n, first));
    int64_t m = iscore_split_size(s);
    for (int64_t i = 0; i < n; i++) {
        int64_t split = (first + i) / m;
        if (split >= s->splits) continue; /* the remainder, not scored (see gan_metrics.h) */
        double *acc = iscore_split(s, (int)split), plogp = 0;
        const float *row = p + i * s->k;
        for (int j = 0; j < s->k; j++) {
            acc[j] += row[j];
            if (row[j] > 0) plogp += row[j] * log((double)row[j]);
        }
        acc[s->k] += plogp;
        acc[s->k + 1] += 1;
    }
    return DPT_OK;
}

void iscore_reduce(iscore_stats *s, gm_reduce r) { r.fn(r.ctx, s->buf, s->buf_len); }

/* exp(mean KL(p(y|x) || p(y))) of one split: with S_j = sum of p_j over its m samples and
 * p(y)_j = S_j / m, the summed KL is sum p log p - sum_j S_j log(S_j / m). */
static double split_score(const double *acc, int k, double m) {
    double kl = acc[k];
    for (int j = 0; j < k; j++)
        if (acc[j] > 0) kl -= acc[j] * log(acc[j] / m);
    return exp(kl / m);
}

dpt_status iscore_finalize(const iscore_stats *s, double *mean, double *std) {
    int64_t m = iscore_split_size(s);
    for (int split = 0; split < s->splits; split++) {
        double got = iscore_split(s, split)[s->k + 1];
        if (got != (double)m)
            return dpt_error(DPT_ERR_ARG, "Inception Score: split %d holds %.0f samples, expected %lld (every index "
                             "0 .. %lld must be added exactly once across ranks)", split, got, (long long)m,
                             (long long)(s->splits * m - 1));
    }
    double sum = 0, sum_sq = 0;
    for (int split = 0; split < s->splits; split++) sum += split_score(iscore_split(s, split), s->k, (double)m);
    *mean = sum / s->splits;
    for (int split = 0; split < s->splits; split++) {
        double dev = split_score(iscore_split(s, split), s->k, (double)m) - *mean;
        sum_sq += dev * dev;
    }
    *std = sqrt(sum_sq / s->splits); /* population std, like numpy.std in the reference */
    return DPT_OK;
}
