/* Run-directory outputs, written by rank 0:
 *   metrics.jsonl   one JSON object per line (train intervals, evaluations, the summary)
 *   dawnbench.tsv   DAWNBench's time-to-accuracy rows: epoch, hours, top-1 and top-5 in percent
 *   dawnbench.json  the DAWNBench entry (author, model, hardware, ...) with the result in misc
 *   mllog.txt       MLPerf :::MLLOG lines (image classification keys), see mllog.h
 *   events.out.tfevents.*  TensorBoard scalars (train.tensorboard) */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dpt/core/log.h"
#include "dpt/core/timer.h"
#include "mllog.h"
#include "tbevents.h"
#include "train_internal.h"

/* "AMD EPYC 7B13" from /proc/cpuinfo, else "CPU". */
static void cpu_model(char *buf, size_t size) {
    snprintf(buf, size, "CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        char *colon = strchr(line, ':');
        if (!colon) break;
        colon++;
        while (*colon == ' ') colon++;
        colon[strcspn(colon, "\n")] = '\0';
        snprintf(buf, size, "%s", colon);
        break;
    }
    fclose(f);
}

/* submission.hardware, else "2 x 1 threads, AMD EPYC ..., 1 node" from what the run sees. */
static void hardware(const run_ctx *r, char *buf, size_t size) {
    if (r->cfg->submission.hardware[0]) {
        snprintf(buf, size, "%s", r->cfg->submission.hardware);
        return;
    }
    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    snprintf(buf, size, "%d rank(s) x %d thread(s), %s, %d node(s), CPU back end", r->ci->world, r->threads, cpu,
             r->ci->num_nodes);
}

dpt_status runlog_open(run_ctx *r, bool append) {
    if (r->ci->rank != 0) return DPT_OK;
    const char *mode = append ? "a" : "w";
    char path[1200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", r->out_dir);
    r->metrics = fopen(path, mode);
    if (!r->metrics) return dpt_error(DPT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/dawnbench.tsv", r->out_dir);
    r->dawnbench = fopen(path, mode);
    if (!r->dawnbench) return dpt_error(DPT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    fseek(r->dawnbench, 0, SEEK_END);
    if (ftell(r->dawnbench) == 0) fprintf(r->dawnbench, "epoch\thours\ttop1Accuracy\ttop5Accuracy\n");
    fflush(r->dawnbench);
    snprintf(path, sizeof path, "%s/mllog.txt", r->out_dir);
    r->mllog = mllog_open(path, append);
    if (!r->mllog) return DPT_ERR_IO;
    if (r->cfg->train.tensorboard) {
        r->tb = tb_open(r->out_dir);
        if (!r->tb) return DPT_ERR_IO;
    }
    return DPT_OK;
}

void runlog_resume(run_ctx *r, int64_t step, const char *path) {
    if (!r->metrics) return;
    char p[1400];
    json_string(p, sizeof p, path);
    fprintf(r->metrics, "{\"type\": \"resume\", \"step\": %lld, \"checkpoint\": %s, \"world\": %d}\n", (long long)step,
            p, r->ci->world);
    fflush(r->metrics);
}

void runlog_close(run_ctx *r) {
    if (r->metrics) fclose(r->metrics);
    if (r->dawnbench) fclose(r->dawnbench);
    mllog_close(r->mllog);
    tb_close(r->tb);
    r->metrics = r->dawnbench = NULL;
    r->mllog = NULL;
    r->tb = NULL;
}

void runlog_init_start(run_ctx *r) {
    if (!r->mllog) return;
    /* dptrain does not drop the page cache before a run; the key says so. */
    mllog_event(r->mllog, "cache_clear", "false", NULL);
    mllog_start(r->mllog, "init_start", NULL);
}

/* The hyperparameters MLPerf's image-classification rules name, then init_stop and run_start. */
void runlog_run_start(run_ctx *r) {
    if (!r->mllog) return;
    const dpt_config *cfg = r->cfg;
    mllog *m = r->mllog;
    const bool lars = r->opt.kind == OPT_LARS;
    const char *p = lars ? "lars_opt_" : "sgd_opt_";
    char key[96], hw[512];
    double peak = schedule_peak_lr(&r->sched, r->global_batch);
    hardware(r, hw, sizeof hw);
    mllog_str(m, "submission_benchmark", cfg->submission.benchmark);
    mllog_str(m, "submission_org", cfg->submission.org);
    mllog_str(m, "submission_division", cfg->submission.division);
    mllog_str(m, "submission_status", cfg->submission.status);
    mllog_str(m, "submission_platform", hw);
    mllog_int(m, "seed", cfg->train.seed);
    mllog_int(m, "global_batch_size", r->global_batch);
    mllog_int(m, "gradient_accumulation_steps", r->accum);
    mllog_int(m, "train_samples", r->train.n);
    mllog_int(m, "eval_samples", r->test.n);
    mllog_int(m, "model_bn_span", (int64_t)r->micro_batch * (r->bn_group > 1 ? r->bn_group : 1));
    mllog_str(m, "opt_name", lars ? "lars" : "sgd");
    mllog_num(m, "opt_base_learning_rate", peak);
    mllog_num(m, "opt_learning_rate_warmup_epochs", cfg->schedule.warmup_epochs);
    snprintf(key, sizeof key, "%sbase_learning_rate", p);
    mllog_num(m, key, peak);
    /* End lr and decay steps describe the schedules that decay to a final value. */
    const bool decays = r->sched.kind == SCHED_POLY || r->sched.kind == SCHED_COSINE || r->sched.kind == SCHED_ONECYCLE;
    snprintf(key, sizeof key, "%send_learning_rate", p);
    mllog_num(m, key, decays ? peak * cfg->schedule.final_lr_factor : peak);
    if (r->sched.kind == SCHED_POLY) {
        snprintf(key, sizeof key, "%slearning_rate_decay_poly_power", p);
        mllog_num(m, key, cfg->schedule.poly_power);
    }
    snprintf(key, sizeof key, "%slearning_rate_decay_steps", p);
    mllog_int(m, key, r->total_steps - r->warmup_steps);
    snprintf(key, sizeof key, "%sweight_decay", p);
    mllog_num(m, key, cfg->optim.weight_decay);
    snprintf(key, sizeof key, "%smomentum", p);
    mllog_num(m, key, cfg->optim.momentum);
    if (lars) {
        mllog_num(m, "lars_epsilon", cfg->optim.lars_eps);
        mllog_num(m, "lars_opt_learning_rate_warmup_epochs", cfg->schedule.warmup_epochs);
        mllog_num(m, "lars_opt_trust_coefficient", cfg->optim.lars_trust);
    }
    mllog_end(m, "init_stop", NULL);
    mllog_start(m, "run_start", NULL);
}

void runlog_epoch(run_ctx *r, int64_t epoch, bool start) {
    if (!r->mllog) return;
    char md[64];
    snprintf(md, sizeof md, "\"epoch_num\": %lld", (long long)epoch + 1);
    if (start) mllog_start(r->mllog, "epoch_start", md);
    else mllog_end(r->mllog, "epoch_stop", md);
}

void runlog_eval_start(run_ctx *r, int64_t epoch) {
    if (!r->mllog) return;
    char md[64];
    snprintf(md, sizeof md, "\"epoch_num\": %lld", (long long)epoch);
    mllog_start(r->mllog, "eval_start", md);
}

void runlog_train(run_ctx *r, int64_t step, double epoch, double loss, double lr, double momentum, double img_s,
                  double comm_exposed_ms, double elapsed_s) {
    if (!r->metrics) return;
    fprintf(r->metrics,
            "{\"type\": \"train\", \"step\": %lld, \"epoch\": %.4f, \"loss\": %.6f, \"lr\": %.6g, \"momentum\": %.4f, "
            "\"img_per_s\": %.1f, \"comm_exposed_ms\": %.3f, \"batch\": %d, \"time_s\": %.3f}\n",
            (long long)step, epoch, loss, lr, momentum, img_s, comm_exposed_ms, r->global_batch, elapsed_s);
    fflush(r->metrics);
    if (r->tb) {
        double now = timer_wall();
        tb_scalar(r->tb, "train/loss", step, now, (float)loss);
        tb_scalar(r->tb, "train/lr", step, now, (float)lr);
        tb_scalar(r->tb, "train/momentum", step, now, (float)momentum);
        tb_scalar(r->tb, "train/img_per_s", step, now, (float)img_s);
        tb_scalar(r->tb, "train/batch", step, now, (float)r->global_batch);
        tb_flush(r->tb);
    }
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
    char md[64], v[64];
    snprintf(md, sizeof md, "\"epoch_num\": %lld", (long long)epoch);
    mllog_end(r->mllog, "eval_stop", md);
    snprintf(v, sizeof v, "%.6f", e->top1);
    mllog_event(r->mllog, "eval_accuracy", v, md);
    if (r->tb) {
        double now = timer_wall();
        tb_scalar(r->tb, "eval/top1", step, now, (float)e->top1);
        tb_scalar(r->tb, "eval/top5", step, now, (float)e->top5);
        tb_scalar(r->tb, "eval/loss", step, now, (float)e->loss);
        tb_flush(r->tb);
    }
}

/* dawnbench.json: the entry format of DAWNBench's submission instructions; the numbers a reader
 * needs to check the TSV against go into misc. */
static void write_dawnbench_json(run_ctx *r, const run_result *res) {
    const dpt_config *cfg = r->cfg;
    char path[1200], s[1200], hw[512], date[32];
    snprintf(path, sizeof path, "%s/dawnbench.json", r->out_dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        log_warn("cannot write %s: %s", path, strerror(errno));
        return;
    }
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y-%m-%d", &tm);
    fprintf(f, "{\n    \"version\": \"v1.0\",\n");
    json_string(s, sizeof s, cfg->submission.author);
    fprintf(f, "    \"author\": %s,\n", s);
    json_string(s, sizeof s, cfg->submission.author_email);
    fprintf(f, "    \"authorEmail\": %s,\n", s);
    fprintf(f, "    \"framework\": \"dptrain %s\",\n", DPT_VERSION);
    if (cfg->submission.code_url[0]) {
        json_string(s, sizeof s, cfg->submission.code_url);
        fprintf(f, "    \"codeURL\": %s,\n", s);
    }
    char model[128];
    snprintf(model, sizeof model, "%s (%lld parameters)", r->spec.name, (long long)nn_param_count(r->g));
    json_string(s, sizeof s, model);
    fprintf(f, "    \"model\": %s,\n", s);
    hardware(r, hw, sizeof hw);
    json_string(s, sizeof s, hw);
    fprintf(f, "    \"hardware\": %s,\n", s);
    if (cfg->submission.cost_per_hour > 0) fprintf(f, "    \"costPerHour\": %.4f,\n", cfg->submission.cost_per_hour);
    fprintf(f, "    \"timestamp\": \"%s\",\n", date);
    fprintf(f, "    \"logFilename\": \"log.txt\",\n");
    char batches[256];
    config_phases_text(&cfg->train.batch_size, batches, sizeof batches);
    fprintf(f, "    \"misc\": {\n");
    json_string(s, sizeof s, cfg->data.train);
    fprintf(f, "        \"train_data\": %s,\n", s);
    fprintf(f, "        \"optimizer\": \"%s\",\n        \"schedule\": \"%s\",\n", cfg->optim.name, cfg->schedule.name);
    fprintf(f, "        \"global_batch\": \"%s\",\n        \"ranks\": %d,\n        \"threads_per_rank\": %d,\n", batches,
            r->ci->world, r->threads);
    fprintf(f, "        \"epochs\": %lld,\n        \"target_top1\": %.4f,\n        \"reached\": %s,\n",
            (long long)res->epochs, 100.0 * cfg->train.target_accuracy, res->reached ? "true" : "false");
    if (res->reached) fprintf(f, "        \"time_to_target_hours\": %.6f,\n", res->reached_at_s / 3600.0);
    fprintf(f, "        \"final_top1\": %.2f,\n        \"final_top5\": %.2f,\n        \"best_top1\": %.2f\n    }\n}\n",
            100.0 * res->final_top1, 100.0 * res->final_top5, 100.0 * res->best_top1);
    if (fclose(f) != 0) log_warn("cannot write %s: %s", path, strerror(errno));
}

void runlog_summary(run_ctx *r, const run_result *res, const char *json_fields) {
    if (!r->metrics) return;
    fprintf(r->metrics, "{\"type\": \"summary\", %s}\n", json_fields);
    fflush(r->metrics);
    write_dawnbench_json(r, res);
    /* MLPerf: success when the target was reached, aborted otherwise. */
    char md[96];
    snprintf(md, sizeof md, "\"status\": \"%s\"", res->reached ? "success" : "aborted");
    mllog_end(r->mllog, "run_stop", md);
}
