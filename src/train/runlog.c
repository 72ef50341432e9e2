/* Run-directory outputs on rank 0: metrics.jsonl (one JSON object per line) and dawnbench.tsv
 * (DAWNBench's time-to-accuracy format: epoch, hours, top-1 and top-5 accuracy in percent). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dpt/core/timer.h"
#include "train_internal.h"

dpt_status runlog_open(run_ctx *r) {
    if (r->ci->rank != 0) return DPT_OK;
    char path[1200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", r->out_dir);
    r->metrics = fopen(path, "w");
    if (!r->metrics) return dpt_error(DPT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/dawnbench.tsv", r->out_dir);
    r->dawnbench = fopen(path, "w");
    if (!r->dawnbench) return dpt_error(DPT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    fprintf(r->dawnbench, "epoch\thours\ttop1Accuracy\ttop5Accuracy\n");
    fflush(r->dawnbench);
    return DPT_OK;
}

void runlog_close(run_ctx *r) {
    if (r->metrics) fclose(r->metrics);
    if (r->dawnbench) fclose(r->dawnbench);
    r->metrics = r->dawnbench = NULL;
}

void runlog_train(run_ctx *r, int64_t step, double epoch, double loss, double lr, double momentum, double img_s,
                  double comm_exposed_ms, double elapsed_s) {
    if (!r->metrics) return;
    fprintf(r->metrics,
            "{\"type\": \"train\", \"step\": %lld, \"epoch\": %.4f, \"loss\": %.6f, \"lr\": %.6g, \"momentum\": %.4f, "
            "\"img_per_s\": %.1f, \"comm_exposed_ms\": %.3f, \"time_s\": %.3f}\n",
            (long long)step, epoch, loss, lr, momentum, img_s, comm_exposed_ms, elapsed_s);
    fflush(r->metrics);
}

void runlog_eval(run_ctx *r, int64_t step, int64_t epoch, const eval_result *e, double elapsed_s) {
    if (!r->metrics) return;
    fprintf(r->metrics,
            "{\"type\": \"eval\", \"step\": %lld, \"epoch\": %lld, \"top1\": %.6f, \"top5\": %.6f, \"loss\": %.6f, "
            "\"samples\": %lld, \"eval_s\": %.3f, \"time_s\": %.3f}\n",
            (long long)step, (long long)epoch, e->top1, e->top5, e->loss, (long long)e->count, e->seconds, elapsed_s);
    fflush(r->metrics);
    fprintf(r->dawnbench, "%lld\t%.6f\t%.2f\t%.2f\n", (long long)epoch, elapsed_s / 3600.0, 100.0 * e->top1,
            100.0 * e->top5);
    fflush(r->dawnbench);
}

void runlog_summary(run_ctx *r, const char *json_fields) {
    if (!r->metrics) return;
    fprintf(r->metrics, "{\"type\": \"summary\", %s}\n", json_fields);
    fflush(r->metrics);
}
