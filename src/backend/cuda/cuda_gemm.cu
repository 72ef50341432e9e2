/* cu_gemm (cuda_internal.h) on cuBLAS: the row-major product computed as the column-major one of
 * the transposes, C^T (n, m) = op(B)^T (n, k) op(A)^T (k, m). A row-major matrix with row stride
 * ld is the column-major matrix of its transpose with leading dimension ld, so B's buffer goes
 * first (transposed for cuBLAS exactly when tb), A's second (when ta), and C's buffer receives
 * C^T column-major, which is C row-major. Real build only; the emulated back end has loops
 * (cuda_emu_dnn.cpp). The handle is bound to the context's stream and workspace (cuda_device.cu;
 * ops that grow the workspace re-bind it). */
#include "cuda_libs.h"

static cudaDataType blas_type(dpt_dtype dt) {
    switch (dt) {
    case DT_F32: return CUDA_R_32F;
    case DT_BF16: return CUDA_R_16BF;
    case DT_F16: return CUDA_R_16F;
    default: cu_bad_dtype("cu_gemm", dt);
    }
}

void cu_gemm(dpt_dtype ab, dpt_dtype c, bool ta, bool tb, int m, int n, int k, float alpha, const void *a, int lda,
             int64_t sa, const void *b, int ldb, int64_t sb, float beta, void *cm, int ldc, int64_t sc, int batch) {
    DPT_CHECK_LIB("cu_gemm", c == ab || c == DT_F32, "cu_gemm", "C dtype %s with A, B dtype %s", dtype_name(c),
                  dtype_name(ab));
    if (m <= 0 || n <= 0 || batch <= 0) return;
    cublasHandle_t h = (cublasHandle_t)cu_ctx_get()->blas;
    const cudaDataType tab = blas_type(ab), tc = blas_type(c);
    /* F32: TF32 tensor cores only in TF32 mode; strict float32 FMA otherwise (the handle keeps
     * CUBLAS_DEFAULT_MATH, so CUBLAS_COMPUTE_32F does not down-convert). 16-bit inputs: float
     * accumulation. */
    const cublasComputeType_t ct =
        ab == DT_F32 && cu_precision() == PREC_TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    const cublasOperation_t opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N, opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    /* k == 0 is an empty sum: cuBLAS then scales C by beta (beta 0: zeros), as the loop version;
     * its leading dimensions must still be >= 1. */
    if (lda < 1) lda = 1;
    if (ldb < 1) ldb = 1;
    if (batch == 1)
        CUBLAS_CHECK(cublasGemmEx(h, opb, opa, n, m, k, &alpha, b, tab, ldb, a, tab, lda, &beta, cm, tc, ldc, ct,
                                  CUBLAS_GEMM_DEFAULT));
    else
        CUBLAS_CHECK(cublasGemmStridedBatchedEx(h, opb, opa, n, m, k, &alpha, b, tab, ldb, (long long)sb, a, tab, lda,
                                                (long long)sa, &beta, cm, tc, ldc, (long long)sc, batch, ct,
                                                CUBLAS_GEMM_DEFAULT));
}
