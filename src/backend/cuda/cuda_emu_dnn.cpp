/* Stand-ins for cuDNN and cuBLAS in the emulated back end (see cuda_internal.h): plain loops on
 * the host with the same contracts, so that the ops built on them (linear, bmm, the orthogonal
 * regulariser, convolution) and whole graphs run in CI. They check the callers' strides and
 * operand order, not cuDNN's or cuBLAS's own behaviour, which only a GPU run checks. */
#include "cuda_internal.h"

static float load(const void *p, dpt_dtype dt, int64_t i) {
    switch (dt) {
    case DT_F32: return ((const float *)p)[i];
    case DT_BF16: return cu_f(((const bf16_t *)p)[i]);
    case DT_F16: return cu_f(((const f16_t *)p)[i]);
    default: cu_bad_dtype("cu_gemm operand", dt);
    }
}

static void store(void *p, dpt_dtype dt, int64_t i, float v) {
    switch (dt) {
    case DT_F32: ((float *)p)[i] = v; break;
    case DT_BF16: ((bf16_t *)p)[i] = cu_t<bf16_t>(v); break;
    case DT_F16: ((f16_t *)p)[i] = cu_t<f16_t>(v); break;
    default: cu_bad_dtype("cu_gemm result", dt);
    }
}

void cu_gemm(dpt_dtype ab, dpt_dtype c, bool ta, bool tb, int m, int n, int k, float alpha, const void *a, int lda,
             int64_t sa, const void *b, int ldb, int64_t sb, float beta, void *cm, int ldc, int64_t sc, int batch) {
    for (int bt = 0; bt < batch; bt++)
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                float acc = 0.0f;
                for (int p = 0; p < k; p++) {
                    const int64_t ia = bt * sa + (ta ? (int64_t)p * lda + i : (int64_t)i * lda + p);
                    const int64_t ib = bt * sb + (tb ? (int64_t)j * ldb + p : (int64_t)p * ldb + j);
                    acc += load(a, ab, ia) * load(b, ab, ib);
                }
                const int64_t ic = bt * sc + (int64_t)i * ldc + j;
                /* beta 0 ignores C (it may hold NaN), as cuBLAS does. */
                store(cm, c, ic, beta == 0.0f ? alpha * acc : alpha * acc + beta * load(cm, c, ic));
            }
}

void cu_fill_conv(dpt_backend *be) { (void)be; }
