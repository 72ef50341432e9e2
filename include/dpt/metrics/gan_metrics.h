/* GAN sample metrics from a feature network's outputs: the Frechet distance between Gaussians
 * fitted to two sets of feature vectors (FID when the features are Inception's; with another
 * network the number must carry that network's name, e.g. FID-fashion-resnet9) and the Inception
 * Score from class probabilities (again named after the classifier that gives them).
 *
 * Pure arithmetic in double precision: no MPI, no network. Sharding: every rank adds its own
 * samples, then calls *_reduce with a gm_reduce that sums a buffer of doubles across ranks (the
 * caller provides it through comm/); after that every rank holds the statistics of all samples.
 * Each statistic lives in one contiguous buffer, so one reduction call suffices. */
#ifndef DPT_METRICS_GAN_METRICS_H
#define DPT_METRICS_GAN_METRICS_H

#include "dpt/core/error.h"

/* Sums n doubles in place across ranks. Every rank must call it with the same n. */
typedef struct gm_reduce {
    void (*fn)(void *ctx, double *buf, int64_t n);
    void *ctx;
} gm_reduce;

/* Running sums of d-dimensional feature vectors. buf = [count, sum (d), outer (d, d)]; only the
 * upper triangle (j >= i) of outer, the sum of x x^T, is accumulated. */
typedef struct fid_stats {
    int d;
    double *buf;
    int64_t buf_len;
} fid_stats;

dpt_status fid_stats_init(fid_stats *s, int d);
void fid_stats_free(fid_stats *s);
/* Adds n feature vectors x (n, d). A NaN or infinite feature is an error naming its row and
 * column, and leaves the sums unchanged. */
dpt_status fid_stats_add(fid_stats *s, const float *x, int64_t n);
/* Sums the statistics of all ranks (collective: every rank calls it once). */
void fid_stats_reduce(fid_stats *s, gm_reduce r);
/* mu (d) = mean; sigma (d, d) = covariance with the unbiased 1 / (count - 1), like numpy.cov and
 * the reference FID code. Needs count >= 2. */
dpt_status fid_stats_finalize(const fid_stats *s, double *mu, double *sigma);

/* Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), all (d) and (d, d) symmetric:
 * ||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2)). Not clamped at 0:
 * identical statistics give 0 up to rounding, which may be slightly negative. */
dpt_status fid_distance(const double *mu1, const double *sigma1, const double *mu2, const double *sigma2, int d,
                        double *out);

/* Inception Score, computed like the reference (openai/improved-gan, BigGAN-PyTorch): the `total`
 * samples are cut into `splits` parts; per part, exp(mean over its samples of
 * KL(p(y|x) || p(y))) with p(y) the part's mean; the score is the mean and the (population)
 * standard deviation of those values over the parts.
 * Split assignment, independent of ranks: the sample with global index g (0 <= g < total, the
 * position in the one sequence of generated samples that the ranks share out) belongs to split
 * g / m with m = total / splits; the last total - splits * m samples are not scored, exactly as
 * the reference drops them. Ranks may hold any disjoint sets of indices that cover 0 .. total-1;
 * the result is the same for any number of ranks up to the order of floating-point sums.
 * buf = per split [sum of p (k), sum of p log p (0 log 0 = 0), count]. */
typedef struct iscore_stats {
    int k, splits;
    int64_t total;
    double *buf;
    int64_t buf_len;
} iscore_stats;

#define ISCORE_DEFAULT_SPLITS 10

dpt_status iscore_init(iscore_stats *s, int k, int splits, int64_t total);
void iscore_free(iscore_stats *s);
/* Adds n rows of class probabilities p (n, k), the samples with global indices first .. first +
 * n - 1. Each row must be finite, non-negative and sum to 1 within 1e-3; an index outside
 * 0 .. total-1 is an error. On error the sums are unchanged. */
dpt_status iscore_add(iscore_stats *s, const float *p, int64_t n, int64_t first);
/* Sums the statistics of all ranks (collective: every rank calls it once). */
void iscore_reduce(iscore_stats *s, gm_reduce r);
/* The score's mean and standard deviation over splits. Every split must have received exactly
 * total / splits samples (a missed or twice-added index is an error saying which split). */
dpt_status iscore_finalize(const iscore_stats *s, double *mean, double *std);

#endif
