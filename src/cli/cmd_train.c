/* dptrain train / eval: parse arguments, start MPI, load the config on every rank. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dpt/comm/comm.h"
#include "dpt/core/config.h"
#include "dpt/core/log.h"
#include "dpt/train/train.h"

typedef struct run_args {
    const char *config;
    const char *out;
    const char *weights;
    const char *resume;
    const char *sets[256];
    int nsets;
    int batches, repeats; /* bench loader */
    bench_step_opts step; /* bench step */
    char *rest[64];       /* sample: the options after CONFIG */
    int nrest;
} run_args;

static dpt_status parse(int argc, char **argv, run_args *a, const char *cmd) {
    memset(a, 0, sizeof *a);
    a->step = (bench_step_opts){.steps = 20, .warmup = 5, .size = 224, .channels = 3, .classes = 1000};
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        bool has_value = i + 1 < argc;
        if (!strcmp(s, "--set")) {
            if (!has_value) return dpt_error(DPT_ERR_ARG, "--set needs section.key=value");
            if (a->nsets == 256) return dpt_error(DPT_ERR_ARG, "too many --set arguments");
            a->sets[a->nsets++] = argv[++i];
        } else if (!strcmp(s, "--out") && !strcmp(cmd, "train")) {
            if (!has_value) return dpt_error(DPT_ERR_ARG, "--out needs a directory");
            a->out = argv[++i];
        } else if (!strcmp(s, "--resume") && !strcmp(cmd, "train")) {
            if (!has_value) return dpt_error(DPT_ERR_ARG, "--resume needs 'auto' or a checkpoint file");
            a->resume = argv[++i];
        } else if ((!strcmp(s, "--weights") || !strcmp(s, "--checkpoint")) && !strcmp(cmd, "eval")) {
            if (!has_value) return dpt_error(DPT_ERR_ARG, "%s needs a file", s);
            if (a->weights) return dpt_error(DPT_ERR_ARG, "eval: give one of --weights and --checkpoint");
            a->weights = argv[++i];
        } else if ((!strcmp(s, "--batches") || !strcmp(s, "--repeats")) && !strcmp(cmd, "bench loader")) {
            int v = has_value ? atoi(argv[i + 1]) : 0;
            if (v < 1 || v > 1000000) return dpt_error(DPT_ERR_ARG, "%s needs a count in [1, 1000000]", s);
            *(!strcmp(s, "--batches") ? &a->batches : &a->repeats) = v;
            i++;
        } else if (!strcmp(cmd, "bench step") && !strcmp(s, "--profile")) {
            a->step.profile = true;
        } else if (!strcmp(cmd, "bench step") && !strcmp(s, "--no-comm")) {
            a->step.no_comm = true;
        } else if (!strcmp(cmd, "bench step") && (!strcmp(s, "--steps") || !strcmp(s, "--warmup") ||
                                                  !strcmp(s, "--size") || !strcmp(s, "--channels") ||
                                                  !strcmp(s, "--classes"))) {
            const int v = has_value ? atoi(argv[i + 1]) : -1, lo = !strcmp(s, "--warmup") ? 0 : 1;
            if (v < lo || v > 100000) return dpt_error(DPT_ERR_ARG, "bench step: %s needs a count in [%d, 100000]", s, lo);
            int *f[] = {&a->step.steps, &a->step.warmup, &a->step.size, &a->step.channels, &a->step.classes};
            const char *names[] = {"--steps", "--warmup", "--size", "--channels", "--classes"};
            for (int k = 0; k < 5; k++)
                if (!strcmp(s, names[k])) *f[k] = v;
            i++;
        } else if (!strcmp(cmd, "sample") && a->config) {
            if (a->nrest == 64) return dpt_error(DPT_ERR_ARG, "sample: too many arguments");
            a->rest[a->nrest++] = argv[i]; /* sample's own options, parsed by sample_gan */
        } else if (s[0] == '-') {
            return dpt_error(DPT_ERR_ARG, "%s: unknown option '%s' (see dptrain help)", cmd, s);
        } else if (!a->config) {
            a->config = s;
        } else {
            return dpt_error(DPT_ERR_ARG, "%s: unexpected argument '%s'", cmd, s);
        }
    }
    if (!a->config)
        return dpt_error(DPT_ERR_ARG, "%s: missing CONFIG file (e.g. configs/%s.ini)", cmd,
                         !strcmp(cmd, "sample") ? "fashion-gan32" : "fashion-resnet9");
    if (!strcmp(cmd, "train") && !a->out) return dpt_error(DPT_ERR_ARG, "train: missing --out DIR (the run directory)");
    if (!strcmp(cmd, "eval") && !a->weights)
        return dpt_error(DPT_ERR_ARG, "eval: missing --weights FILE or --checkpoint FILE");
    return DPT_OK;
}

static dpt_status load(const run_args *a, dpt_config *cfg) {
    config_defaults(cfg);
    /* DPT_DEVICE sets the default of train.device (the test suite pins its runs to the CPU with
     * it on machines that have a GPU); the config file and --set still override it. */
    const char *dev = getenv("DPT_DEVICE");
    if (dev && *dev) {
        char set[64];
        snprintf(set, sizeof set, "train.device=%s", dev);
        if (config_apply_override(cfg, set) != DPT_OK)
            return dpt_error(DPT_ERR_CONFIG, "DPT_DEVICE='%s': train.device is one of auto|cpu|cuda", dev);
    }
    DPT_TRY(config_load_file(cfg, a->config));
    for (int i = 0; i < a->nsets; i++) DPT_TRY(config_apply_override(cfg, a->sets[i]));
    return DPT_OK;
}

static int run(int argc, char **argv, const char *cmd) {
    comm_init(&argc, &argv);
    run_args a;
    dpt_config cfg;
    dpt_status st = parse(argc, argv, &a, cmd);
    if (st == DPT_OK) st = load(&a, &cfg);
    /* Every rank parsed the same input; the lowest failing rank reports. */
    int bad = comm_agree(st);
    int rc;
    if (bad >= 0) {
        if (bad == comm_get()->rank) log_error("%s", dpt_error_message());
        rc = st == DPT_ERR_ARG ? 2 : 1;
    } else if (!strcmp(cmd, "train")) {
        comm_set_timeout(cfg.comm.timeout_s);
        rc = !strcmp(cfg.model.name, "biggan") ? train_gan(&cfg, a.out, a.resume)
                                               : train_classifier(&cfg, a.out, a.resume);
    } else if (!strcmp(cmd, "sample")) {
        rc = sample_gan(&cfg, a.nrest, a.rest);
    } else if (!strcmp(cmd, "bench step")) {
        rc = bench_step(&cfg, &a.step);
    } else if (!strcmp(cmd, "bench loader")) {
        rc = bench_loader(&cfg, a.batches ? a.batches : 40, a.repeats ? a.repeats : 3);
    } else if (!strcmp(cfg.model.name, "biggan")) {
        if (comm_get()->rank == 0)
            log_error("eval: model.name = biggan is a GAN; `dptrain sample` draws from it, and training logs its FID");
        rc = 2;
    } else {
        comm_set_timeout(cfg.comm.timeout_s);
        rc = eval_classifier(&cfg, a.weights);
    }
    comm_finalize();
    return rc;
}

int cmd_train(int argc, char **argv) { return run(argc, argv, "train"); }
int cmd_eval(int argc, char **argv) { return run(argc, argv, "eval"); }
int cmd_sample(int argc, char **argv) { return run(argc, argv, "sample"); }

int cmd_bench(int argc, char **argv) {
    if (argc >= 1 && !strcmp(argv[0], "loader")) return run(argc - 1, argv + 1, "bench loader");
    if (argc >= 1 && !strcmp(argv[0], "allreduce")) return cmd_bench_allreduce(argc - 1, argv + 1);
    if (argc >= 1 && !strcmp(argv[0], "step")) return run(argc - 1, argv + 1, "bench step");
    fprintf(stderr, "usage: dptrain bench loader CONFIG [--batches N] [--repeats R] [--set section.key=value ...]\n"
                    "       dptrain bench step CONFIG [--size 224] [--channels 3] [--classes 1000] [--steps 20] "
                    "[--warmup 5] [--profile] [--set ...]\n"
                    "       dptrain bench allreduce [--backend mpi] [--min 8] [--max 256M] [--dtype fp32|bf16] "
                    "[--warmup 5] [--iters 20]\n");
    return 2;
}
