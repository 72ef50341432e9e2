/* (being written) */
#include "cuda_internal.h"

void cu_gemm(dpt_dtype ab, dpt_dtype c, bool ta, bool tb, int m, int n, int k, float alpha, const void *a, int lda,
             int64_t sa, const void *b, int ldb, int64_t sb, float beta, void *cm, int ldc, int64_t sc, int batch) {
    DPT_CHECK(!"cu_gemm not written yet");
}
