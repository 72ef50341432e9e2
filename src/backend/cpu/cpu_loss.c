/* Softmax cross-entropy (with label smoothing) and top-k accuracy. */
#include "cpu_internal.h"
#include "dpt/backend/math.h"

static void softmax_xent(dpt_tensor *losses, dpt_tensor *dlogits, const dpt_tensor *logits,
                         const dpt_tensor *labels, float smoothing, float grad_scale) {
    const int n = (int)logits->shape[0], k = (int)logits->shape[1];
    const float *x = logits->data;
    const int32_t *y = labels->data;
    float *l = losses->data;
    float *dx = dlogits ? dlogits->data : NULL;
#pragma omp parallel for schedule(static) if (n * k > 65536)
    for (int i = 0; i < n; i++)
        l[i] = math_softmax_xent_row(dx ? dx + (int64_t)i * k : NULL, x + (int64_t)i * k, k, y[i], smoothing,
                                     grad_scale);
}

static void topk_correct(int64_t *top1, int64_t *top5, const dpt_tensor *logits, const dpt_tensor *labels,
                         int n) {
    const int k = (int)logits->shape[1];
    const float *x = logits->data;
    const int32_t *y = labels->data;
    int64_t c1 = 0, c5 = 0;
    for (int i = 0; i < n; i++) {
        const float *row = x + (int64_t)i * k;
        float target = row[y[i]];
        /* Rank of the label: classes scoring higher, ties broken towards the lower index. */
        int rank = 0;
        for (int j = 0; j < k; j++) rank += row[j] > target || (row[j] == target && j < y[i]);
        c1 += rank < 1;
        c5 += rank < 5;
    }
    *top1 = c1;
    *top5 = c5;
}

void cpu_fill_loss(dpt_backend *be) {
    be->softmax_xent = softmax_xent;
    be->topk_correct = topk_correct;
}
