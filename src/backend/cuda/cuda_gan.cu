/* GAN ops of the CUDA back end written here: class embedding, spectral normalisation and BigGAN's
 * orthogonal regularisation (Adam and the weights' EMA: cuda_optim.cu; bmm: cuda_linear.cu).
 * Formulas and conventions: backend.h; the CPU reference: cpu_gan.c.
 *
 * Sums that the CPU does in double are done in double here too, by a deterministic two-stage
 * reduction (partials per block into this file's buffer, then one block adds them in a fixed
 * order): no atomics, so a result does not change between runs. */
#include <stdlib.h>

#include "cuda_internal.h"

#define RED_BLOCKS 1024
static double *g_partial; /* (RED_BLOCKS) device doubles, allocated with the first table */

static unsigned red_blocks(int64_t n) {
    unsigned b = cu_blocks(n, CU_THREADS);
    return b > RED_BLOCKS ? RED_BLOCKS : b;
}

/* Blocks for kernels that take `per` rows per block at a time (grid-stride over rows). */
static unsigned row_blocks(int rows, int per) { return red_blocks(((int64_t)rows + per - 1) / per * CU_THREADS); }

/* out[0] = sum of partial[0..nb) in a fixed order. */
static __global__ void gan_finish_sum_kernel(double *out, const double *partial, int nb) {
    double acc = 0.0;
    for (int b = (int)threadIdx.x; b < nb; b += (int)blockDim.x) acc += partial[b];
    acc = cu_block_sum(acc);
    if (threadIdx.x == 0) *out = acc;
}

/* ---- class embedding ---- */

/* A bad label sets flag[0] (to 1.0: every writer stores the same value, so the race is benign). */
static __global__ void labels_check_kernel(double *flag, const int32_t *labels, int64_t n, int64_t k) {
    CU_FOR(i, n) {
        const int32_t y = labels[i];
        if (y < 0 || y >= k) *flag = 1.0;
    }
}

/* Gather with the label check fused in: a row with a bad label is flagged and left unwritten. */
template <typename T>
static __global__ void embedding_fwd_kernel(T *out, double *flag, const float *table, const int32_t *labels, int64_t n,
                                            int64_t d, int64_t k) {
    CU_FOR(i, n * d) {
        const int64_t r = i / d, j = i - r * d;
        const int32_t y = labels[r];
        if (y < 0 || y >= k) {
            *flag = 1.0;
            continue;
        }
        out[i] = cu_t<T>(table[(int64_t)y * d + j]);
    }
}

/* Scatter-add of dout's rows into their labels' rows of dtable. Rows hit by several samples add up
 * through atomics (in any order: the last bits of such rows may differ between runs). */
template <typename T>
static __global__ void embedding_bwd_kernel(float *dtable, const T *dout, const int32_t *labels, int64_t n, int64_t d) {
    CU_FOR(i, n * d) {
        const int64_t r = i / d, j = i - r * d;
        atomicAdd(&dtable[(int64_t)labels[r] * d + j], cu_f(dout[i]));
    }
}

/* Fatal when the device flagged a label outside [0, k): the labels come back to the host (only on
 * this path) to name the first bad sample, as the CPU back end does. Costs one sync per call. */
static void labels_verdict(const char *op, const double *flag, const int32_t *labels, int64_t n, int64_t k) {
    double bad = 0.0;
    cu_read_doubles(&bad, flag, 1);
    if (bad == 0.0) return;
    int32_t *h = (int32_t *)malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
    DPT_CHECK(h != NULL);
    CUDA_CHECK(cudaMemcpyAsync(h, labels, (size_t)n * sizeof(int32_t), cudaMemcpyDeviceToHost, cu_stream()));
    CUDA_CHECK(cudaStreamSynchronize(cu_stream()));
    for (int64_t i = 0; i < n; i++)
        DPT_CHECK_LIB("cuda", h[i] >= 0 && h[i] < k, op, "label %d of sample %lld is outside the embedding's [0, %lld)",
                      (int)h[i], (long long)i, (long long)k);
    free(h);
    DPT_CHECK_LIB("cuda", false, op, "a label is outside the embedding's [0, %lld)", (long long)k);
}

static void embedding_forward(dpt_tensor *out, const dpt_tensor *table, const dpt_tensor *labels) {
    const int64_t n = out->shape[0], d = out->shape[1], k = table->shape[0];
    DPT_CHECK(out->ndim == 2 && table->shape[1] == d && labels->dtype == DT_I32 && tensor_numel(labels) == n);
    DPT_CHECK(table->dtype == DT_F32);
    double *flag = cu_ctx_get()->dscratch;
    CUDA_CHECK(cudaMemsetAsync(flag, 0, sizeof(double), cu_stream()));
    if (n * d > 0)
        CU_DISPATCH(out->dtype, "embedding_forward",
                    CU_LAUNCH(embedding_fwd_kernel<T>, cu_blocks(n * d, CU_THREADS), CU_THREADS, cu_stream(),
                              (T *)out->data, flag, (const float *)table->data, (const int32_t *)labels->data, n, d,
                              k));
    labels_verdict("embedding_forward", flag, (const int32_t *)labels->data, n, k);
}

static void embedding_backward(dpt_tensor *dtable, bool param_accumulate, const dpt_tensor *dout,
                               const dpt_tensor *labels) {
    const int64_t n = dout->shape[0], d = dout->shape[1], k = dtable->shape[0];
    DPT_CHECK(dout->ndim == 2 && dtable->shape[1] == d && labels->dtype == DT_I32 && tensor_numel(labels) == n);
    DPT_CHECK(dtable->dtype == DT_F32);
    /* Checked before the scatter: a bad label would write outside dtable. */
    double *flag = cu_ctx_get()->dscratch;
    CUDA_CHECK(cudaMemsetAsync(flag, 0, sizeof(double), cu_stream()));
    if (n > 0)
        CU_LAUNCH(labels_check_kernel, cu_blocks(n, CU_THREADS), CU_THREADS, cu_stream(), flag,
                  (const int32_t *)labels->data, n, k);
    labels_verdict("embedding_backward", flag, (const int32_t *)labels->data, n, k);
    if (!param_accumulate) CUDA_CHECK(cudaMemsetAsync(dtable->data, 0, (size_t)(k * d) * sizeof(float), cu_stream()));
    if (n * d > 0)
        CU_DISPATCH(dout->dtype, "embedding_backward",
                    CU_LAUNCH(embedding_bwd_kernel<T>, cu_blocks(n * d, CU_THREADS), CU_THREADS, cu_stream(),
                              (float *)dtable->data, (const T *)dout->data, (const int32_t *)labels->data, n, d));
}

/* ---- spectral normalisation ---- */

/* v = w^T u. A block takes tiles of 32 columns; its 8 row lanes stream every 8th row over the tile
 * (a warp reads 32 consecutive floats of one row), then lane sums are added in a fixed order. */
#define COL_TILE 32
#define ROW_LANES (CU_THREADS / COL_TILE)

static __global__ void sn_wt_u_kernel(float *v, const float *w, const float *u, int rows, int cols) {
    __shared__ float part[ROW_LANES][COL_TILE];
    const int tx = (int)threadIdx.x % COL_TILE, ty = (int)threadIdx.x / COL_TILE;
    for (int j0 = (int)blockIdx.x * COL_TILE; j0 < cols; j0 += (int)gridDim.x * COL_TILE) { /* uniform */
        const int j = j0 + tx;
        float acc = 0.0f;
        if (j < cols)
            for (int i = ty; i < rows; i += ROW_LANES) acc += w[(int64_t)i * cols + j] * u[i];
        part[ty][tx] = acc;
        __syncthreads();
        if (ty == 0 && j < cols) {
            float sum = 0.0f;
            for (int l = 0; l < ROW_LANES; l++) sum += part[l][tx];
            v[j] = sum;
        }
        __syncthreads();
    }
}

/* t = w v, each row's dot product in double; t[i] = (float)dot. A block takes 8 rows at a time,
 * 32 threads per row (a warp reads 32 consecutive floats of its row); the 32 lane sums of a row are
 * added in a fixed order. With partial != NULL (evaluation's sigma = u^T w v), t is left alone
 * (it may be NULL) and the block's sum of u[i] * dot goes to partial[blockIdx.x]. */
static __global__ void sn_w_v_kernel(float *t, double *partial, const float *w, const float *v, const float *u,
                                     int rows, int cols) {
    __shared__ double part[ROW_LANES][COL_TILE];
    const int lane = (int)threadIdx.x % COL_TILE, r = (int)threadIdx.x / COL_TILE;
    double mine = 0.0;
    for (int i0 = (int)blockIdx.x * ROW_LANES; i0 < rows; i0 += (int)gridDim.x * ROW_LANES) { /* uniform */
        const int i = i0 + r;
        double acc = 0.0;
        if (i < rows) {
            const float *row = w + (int64_t)i * cols;
            for (int j = lane; j < cols; j += COL_TILE) acc += (double)row[j] * v[j];
        }
        part[r][lane] = acc;
        __syncthreads();
        if (lane == 0 && i < rows) {
            double dot = 0.0;
            for (int l = 0; l < COL_TILE; l++) dot += part[r][l];
            if (partial) mine += (double)u[i] * dot;
            else t[i] = (float)dot;
        }
        __syncthreads();
    }
    if (partial) {
        mine = cu_block_sum(mine);
        if (threadIdx.x == 0) partial[blockIdx.x] = mine;
    }
}

/* One block: x /= max(|x|, eps) with |x| in double. With sigma != NULL, *sigma = |x|^2 / max(|x|, eps)
 * (u^T w v after the update, see cpu_gan.c). */
static __global__ void sn_normalize_kernel(float *x, double *sigma, int n, float eps) {
    double sq = 0.0;
    for (int i = (int)threadIdx.x; i < n; i += (int)blockDim.x) sq += (double)x[i] * x[i];
    sq = cu_block_sum(sq);
    const double nrm = sqrt(sq);
    const float den = (float)fmax(nrm, (double)eps);
    for (int i = (int)threadIdx.x; i < n; i += (int)blockDim.x) x[i] /= den;
    if (sigma && threadIdx.x == 0) *sigma = nrm * nrm / fmax(nrm, (double)eps);
}

/* w_sn = w / s with s = (float)sigma read on the device (no round trip before it). */
static __global__ void sn_scale_kernel(float *w_sn, const float *w, const double *sigma, int64_t n) {
    const float s = (float)*sigma;
    CU_FOR(i, n) w_sn[i] = w[i] / s;
}

static void spectral_norm_forward(float *w_sn, float *u, float *v, float *sigma, const float *w, int rows, int cols,
                                  int power_iterations, float eps) {
    DPT_CHECK(rows > 0 && cols > 0 && power_iterations >= 0);
    double *sg = cu_ctx_get()->dscratch;
    const unsigned rb = row_blocks(rows, ROW_LANES);
    for (int it = 0; it < power_iterations; it++) {
        CU_LAUNCH_SYNC(sn_wt_u_kernel, cu_blocks(cols, COL_TILE), CU_THREADS, cu_stream(), v, w, u, rows, cols);
        CU_LAUNCH_SYNC(sn_normalize_kernel, 1, CU_THREADS, cu_stream(), v, (double *)NULL, cols, eps);
        CU_LAUNCH_SYNC(sn_w_v_kernel, rb, CU_THREADS, cu_stream(), u, (double *)NULL, w, v, (const float *)NULL, rows,
                       cols);
        CU_LAUNCH_SYNC(sn_normalize_kernel, 1, CU_THREADS, cu_stream(), u, sg, rows, eps);
    }
    if (power_iterations == 0) {
        CU_LAUNCH_SYNC(sn_w_v_kernel, rb, CU_THREADS, cu_stream(), (float *)NULL, g_partial, w, v, (const float *)u,
                       rows, cols);
        CU_LAUNCH_SYNC(gan_finish_sum_kernel, 1, CU_THREADS, cu_stream(), sg, g_partial, (int)rb);
    }
    const int64_t n = (int64_t)rows * cols;
    CU_LAUNCH(sn_scale_kernel, cu_blocks(n, CU_THREADS), CU_THREADS, cu_stream(), w_sn, w, (const double *)sg, n);
    double s = 0.0;
    cu_read_doubles(&s, sg, 1);
    *sigma = (float)s;
}

/* partial[block] = sum of a[i] * b[i] over the block's share, in double. */
static __global__ void dot_kernel(double *partial, const float *a, const float *b, int64_t n) {
    double acc = 0.0;
    CU_FOR(i, n) acc += (double)a[i] * b[i];
    acc = cu_block_sum(acc);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

/* dw (+)= (dw_sn - k u v^T) * inv, k = (float)(dot / sigma), dot read on the device. */
static __global__ void sn_bwd_kernel(float *dw, bool acc, const float *dw_sn, const float *u, const float *v,
                                     const double *dot, float sigma, int rows, int cols) {
    const float k = (float)(*dot / sigma), inv = 1.0f / sigma;
    for (int i = (int)blockIdx.x; i < rows; i += (int)gridDim.x) { /* a row per block: no index division */
        const float ku = k * u[i];
        const float *gr = dw_sn + (int64_t)i * cols;
        float *dr = dw + (int64_t)i * cols;
        for (int j = (int)threadIdx.x; j < cols; j += (int)blockDim.x) {
            const float g = (gr[j] - ku * v[j]) * inv;
            dr[j] = acc ? dr[j] + g : g;
        }
    }
}

static void spectral_norm_backward(float *dw, bool param_accumulate, const float *dw_sn, const float *w,
                                   const float *u, const float *v, float sigma, int rows, int cols) {
    const int64_t n = (int64_t)rows * cols;
    if (n <= 0) return;
    double *dot = cu_ctx_get()->dscratch;
    const unsigned blocks = red_blocks(n);
    CU_LAUNCH_SYNC(dot_kernel, blocks, CU_THREADS, cu_stream(), g_partial, dw_sn, w, n);
    CU_LAUNCH_SYNC(gan_finish_sum_kernel, 1, CU_THREADS, cu_stream(), dot, g_partial, (int)blocks);
    CU_LAUNCH(sn_bwd_kernel, cu_blocks((int64_t)rows * CU_THREADS, CU_THREADS), CU_THREADS, cu_stream(), dw,
              param_accumulate, dw_sn, u, v, (const double *)dot, sigma, rows, cols);
}

/* ---- orthogonal regularisation ---- */

/* work (rows, rows): zero the diagonal and sum the squares of the rest into partial[block]. */
static __global__ void ortho_mask_kernel(double *partial, float *work, int rows) {
    double acc = 0.0;
    for (int i = (int)blockIdx.x; i < rows; i += (int)gridDim.x) { /* a row per block */
        float *row = work + (int64_t)i * rows;
        for (int j = (int)threadIdx.x; j < rows; j += (int)blockDim.x) {
            if (i == j) {
                row[j] = 0.0f;
            } else {
                const double x = (double)row[j];
                acc += x * x;
            }
        }
    }
    acc = cu_block_sum(acc);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

/* M = (w w^T) * (1 - I) in work; dw += 2 strength M w; returns (strength / 2) |M|_F^2. The GEMMs
 * are float32 (TF32 in the tf32 table, as every float32 product there). */
static double ortho_reg(float *dw, float *work, const float *w, int rows, int cols, float strength) {
    DPT_CHECK(rows > 0 && cols > 0);
    cu_gemm(DT_F32, DT_F32, false, true, rows, rows, cols, 1.0f, w, cols, 0, w, cols, 0, 0.0f, work, rows, 0, 1);
    const unsigned blocks = row_blocks(rows, 1);
    double *sq = cu_ctx_get()->dscratch;
    CU_LAUNCH_SYNC(ortho_mask_kernel, blocks, CU_THREADS, cu_stream(), g_partial, work, rows);
    CU_LAUNCH_SYNC(gan_finish_sum_kernel, 1, CU_THREADS, cu_stream(), sq, g_partial, (int)blocks);
    cu_gemm(DT_F32, DT_F32, false, false, rows, cols, rows, 2.0f * strength, work, rows, 0, w, cols, 0, 1.0f, dw, cols,
            0, 1);
    double s = 0.0;
    cu_read_doubles(&s, sq, 1);
    return 0.5 * (double)strength * s;
}

void cu_fill_gan(dpt_backend *be) {
    if (!g_partial) g_partial = (double *)cu_buffer(RED_BLOCKS * sizeof(double));
    be->embedding_forward = embedding_forward;
    be->embedding_backward = embedding_backward;
    be->spectral_norm_forward = spectral_norm_forward;
    be->spectral_norm_backward = spectral_norm_backward;
    be->ortho_reg = ortho_reg;
}
