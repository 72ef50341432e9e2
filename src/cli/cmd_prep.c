/* dptrain prep: dataset importers. Runs without MPI. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dpt/data/prep.h"

#define USAGE_IDX "usage: dptrain prep idx IMAGES LABELS -o OUT.h5 [--num-classes N] [--class-names a,b,...]\n"
#define USAGE_IMAGENET                                                                                        \
    "usage: dptrain prep imagenet DIR -o OUT.h5 --size N [--jpeg [--quality Q]] [--classes TRAIN.h5]\n"      \
    "                             [--labels FILE] [--threads N] [--skip-bad] [--strict-channels] [--limit N]\n"
#define USAGE_CIFAR10 "usage: dptrain prep cifar10 DIR -o OUT.h5 [--test] [--limit N]\n"

/* A whole decimal number in [lo, hi], or a message and false. */
static bool parse_int(const char *opt, const char *s, long long lo, long long hi, long long *out) {
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno != 0 || v < lo || v > hi) {
        fprintf(stderr, "dptrain: error: %s '%s': expected an integer in [%lld, %lld]\n", opt, s, lo, hi);
        return false;
    }
    *out = v;
    return true;
}

static int run(dpt_status st, const char *summary) {
    if (st != DPT_OK) {
        fprintf(stderr, "dptrain: error: %s\n", dpt_error_message());
        return 1;
    }
    printf("wrote %s\n", summary);
    return 0;
}

static int prep_idx_cmd(int argc, char **argv) {
    prep_idx_args a = {0};
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    for (int i = 0; i < argc; i++) {
        bool has_value = i + 1 < argc;
        if ((!strcmp(argv[i], "-o") || !strcmp(argv[i], "--out")) && has_value) a.out_path = argv[++i];
        else if (!strcmp(argv[i], "--num-classes") && has_value) a.num_classes = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--class-names") && has_value) a.class_names = argv[++i];
        else if (argv[i][0] == '-') {
            fprintf(stderr, "dptrain: error: prep idx: unknown or incomplete option '%s'\n", argv[i]);
            return 2;
        } else if (npos < 2) pos[npos++] = argv[i];
        else {
            fprintf(stderr, "dptrain: error: prep idx: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (npos != 2 || !a.out_path) {
        fprintf(stderr, USAGE_IDX);
        return 2;
    }
    if (a.num_classes < 0 || a.num_classes > 256) {
        fprintf(stderr, "dptrain: error: --num-classes must be in [1, 256] for IDX labels\n");
        return 2;
    }
    a.images_path = pos[0];
    a.labels_path = pos[1];
    char summary[1024];
    return run(prep_idx(&a, summary, sizeof summary), summary);
}

static int prep_imagenet_cmd(int argc, char **argv) {
    prep_imagenet_args a = {.quality = 90};
    bool quality_given = false;
    long long v;
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i];
        bool has_value = i + 1 < argc;
        if ((!strcmp(o, "-o") || !strcmp(o, "--out")) && has_value) a.out_path = argv[++i];
        else if (!strcmp(o, "--size") && has_value) {
            if (!parse_int(o, argv[++i], 1, 8192, &v)) return 2;
            a.size = (int)v;
        } else if (!strcmp(o, "--jpeg")) a.jpeg = true;
        else if (!strcmp(o, "--quality") && has_value) {
            if (!parse_int(o, argv[++i], 1, 100, &v)) return 2;
            a.quality = (int)v;
            quality_given = true;
        } else if (!strcmp(o, "--classes") && has_value) a.classes_path = argv[++i];
        else if (!strcmp(o, "--labels") && has_value) a.labels_path = argv[++i];
        else if (!strcmp(o, "--threads") && has_value) {
            if (!parse_int(o, argv[++i], 1, 1024, &v)) return 2;
            a.threads = (int)v;
        } else if (!strcmp(o, "--skip-bad")) a.skip_bad = true;
        else if (!strcmp(o, "--strict-channels")) a.strict_channels = true;
        else if (!strcmp(o, "--limit") && has_value) {
            if (!parse_int(o, argv[++i], 1, INT64_MAX, &v)) return 2;
            a.limit = v;
        } else if (o[0] == '-') {
            fprintf(stderr, "dptrain: error: prep imagenet: unknown or incomplete option '%s'\n" USAGE_IMAGENET, o);
            return 2;
        } else if (!a.dir) a.dir = o;
        else {
            fprintf(stderr, "dptrain: error: prep imagenet: unexpected argument '%s'\n" USAGE_IMAGENET, o);
            return 2;
        }
    }
    if (!a.dir || !a.out_path || !a.size) {
        fprintf(stderr, "dptrain: error: prep imagenet: missing %s\n" USAGE_IMAGENET,
                !a.dir ? "DIR" : !a.out_path ? "-o OUT.h5" : "--size N");
        return 2;
    }
    if (quality_given && !a.jpeg) {
        fprintf(stderr, "dptrain: error: prep imagenet: --quality applies only with --jpeg\n");
        return 2;
    }
    char summary[4096];
    return run(prep_imagenet(&a, summary, sizeof summary), summary);
}

static int prep_cifar10_cmd(int argc, char **argv) {
    prep_cifar10_args a = {0};
    long long v;
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i];
        bool has_value = i + 1 < argc;
        if ((!strcmp(o, "-o") || !strcmp(o, "--out")) && has_value) a.out_path = argv[++i];
        else if (!strcmp(o, "--test")) a.test = true;
        else if (!strcmp(o, "--limit") && has_value) {
            if (!parse_int(o, argv[++i], 1, INT64_MAX, &v)) return 2;
            a.limit = v;
        } else if (o[0] == '-') {
            fprintf(stderr, "dptrain: error: prep cifar10: unknown or incomplete option '%s'\n" USAGE_CIFAR10, o);
            return 2;
        } else if (!a.dir) a.dir = o;
        else {
            fprintf(stderr, "dptrain: error: prep cifar10: unexpected argument '%s'\n" USAGE_CIFAR10, o);
            return 2;
        }
    }
    if (!a.dir || !a.out_path) {
        fprintf(stderr, "dptrain: error: prep cifar10: missing %s\n" USAGE_CIFAR10, !a.dir ? "DIR" : "-o OUT.h5");
        return 2;
    }
    char summary[1024];
    return run(prep_cifar10(&a, summary, sizeof summary), summary);
}

int cmd_prep(int argc, char **argv) {
    if (argc >= 1 && !strcmp(argv[0], "idx")) return prep_idx_cmd(argc - 1, argv + 1);
    if (argc >= 1 && !strcmp(argv[0], "imagenet")) return prep_imagenet_cmd(argc - 1, argv + 1);
    if (argc >= 1 && !strcmp(argv[0], "cifar10")) return prep_cifar10_cmd(argc - 1, argv + 1);
    if (argc >= 1) fprintf(stderr, "dptrain: error: prep: unknown format '%s' (idx, imagenet, cifar10)\n", argv[0]);
    fprintf(stderr, USAGE_IDX USAGE_IMAGENET USAGE_CIFAR10);
    return 2;
}
