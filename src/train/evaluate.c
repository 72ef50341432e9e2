/* Evaluation: each rank takes a contiguous range of the test split; the last batch is padded
 * with zeros that are never counted, so every sample counts exactly once. */
#include "dpt/core/timer.h"
#include "dpt/data/sampler.h"
#include "train_internal.h"

eval_result run_evaluate(run_ctx *r) {
    double t0 = timer_now();
    int64_t begin, end;
    sampler_eval_range(r->test.n, r->ci->rank, r->ci->world, &begin, &end);
    loader_start_eval(r->eval_loader, begin, end);
    int64_t counts[3] = {0, 0, 0}; /* top1, top5, samples */
    double loss = 0.0;
    const loader_batch *b;
    /* The loader's batches are the per-rank batch; the graph's is a micro-batch (train.accum_steps). */
    const int m = r->micro_batch;
    const int64_t sample = (int64_t)r->spec.in_channels * r->spec.height * r->spec.width;
    while ((b = loader_next(r->eval_loader)) != NULL) {
        for (int off = 0; off < b->n; off += m) {
            const int n = DPT_MIN(m, b->n - off);
            nn_forward(r->g, b->x + off * sample, false);
            loss += nn_loss(r->g, b->y + off, 0.0f, 0.0f, n);
            int64_t t1, t5;
            nn_accuracy(r->g, b->y + off, n, &t1, &t5);
            counts[0] += t1;
            counts[1] += t5;
            counts[2] += n;
        }
    }
    comm_allreduce_sum_i64(counts, 3);
    comm_allreduce_sum_f64(&loss, 1);
    eval_result e = {0};
    e.count = counts[2];
    if (e.count > 0) {
        e.top1 = (double)counts[0] / (double)e.count;
        e.top5 = (double)counts[1] / (double)e.count;
        e.loss = loss / (double)e.count;
    }
    e.seconds = timer_now() - t0;
    return e;
}
