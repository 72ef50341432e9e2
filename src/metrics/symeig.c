/* Symmetric eigen-decomposition through LAPACK's dsyevd (see symeig.h). Debian's liblapack-dev
 * ships no C header for it (lapacke is a separate package), so its Fortran prototype is declared
 * here; the trailing lengths are gfortran's hidden arguments for the two character arguments. */
#include <math.h>
#include <stdlib.h>

#include "dpt/metrics/symeig.h"

void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w, double *work,
             const int *lwork, int *iwork, const int *liwork, int *info, size_t jobz_len, size_t uplo_len);

static dpt_status check_finite(const double *a, int n, const char *what) {
    for (int i = 0; i < n; i++)
        for (int j = i; j < n; j++)
            if (!isfinite(a[(size_t)i * n + j]))
                return dpt_error(DPT_ERR_ARG, "%s: matrix entry (%d, %d) is %g", what, i, j, a[(size_t)i * n + j]);
    return DPT_OK;
}

dpt_status symeig_solve(double *a, double *w, int n, bool vectors, const char *what) {
    if (n < 1) return dpt_error(DPT_ERR_ARG, "%s: matrix size %d (must be at least 1)", what, n);
    DPT_TRY(check_finite(a, n, what));
    /* LAPACK is column-major: our upper triangle is its lower one, and its eigenvector columns
     * are our rows. */
    const char jobz = vectors ? 'V' : 'N', uplo = 'L';
    int lwork = -1, liwork = -1, info = 0, iwork_size = 0;
    double work_size = 0;
    dsyevd_(&jobz, &uplo, &n, a, &n, w, &work_size, &lwork, &iwork_size, &liwork, &info, 1, 1);
    if (info != 0) return dpt_error(DPT_ERR_INTERNAL, "%s: dsyevd workspace query failed (info %d)", what, info);
    lwork = (int)work_size;
    liwork = iwork_size;
    double *work = dpt_xmalloc((size_t)lwork * sizeof *work);
    int *iwork = dpt_xmalloc((size_t)liwork * sizeof *iwork);
    dsyevd_(&jobz, &uplo, &n, a, &n, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work);
    free(iwork);
    if (info != 0)
        return dpt_error(DPT_ERR_INTERNAL, "%s: LAPACK dsyevd failed on a %d x %d matrix (info %d: %s)", what, n, n,
                         info, info < 0 ? "bad argument" : "no convergence");
    return DPT_OK;
}
