/* dptrain prep: dataset importers. Runs without MPI. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dpt/data/prep.h"

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
        fprintf(stderr, "usage: dptrain prep idx IMAGES LABELS -o OUT.h5 [--num-classes N] [--class-names a,b,...]\n");
        return 2;
    }
    if (a.num_classes < 0 || a.num_classes > 256) {
        fprintf(stderr, "dptrain: error: --num-classes must be in [1, 256] for IDX labels\n");
        return 2;
    }
    a.images_path = pos[0];
    a.labels_path = pos[1];
    char summary[1024];
    dpt_status st = prep_idx(&a, summary, sizeof summary);
    if (st != DPT_OK) {
        fprintf(stderr, "dptrain: error: %s\n", dpt_error_message());
        return 1;
    }
    printf("wrote %s\n", summary);
    return 0;
}

int cmd_prep(int argc, char **argv) {
    if (argc >= 1 && !strcmp(argv[0], "idx")) return prep_idx_cmd(argc - 1, argv + 1);
    fprintf(stderr, "usage: dptrain prep idx IMAGES LABELS -o OUT.h5 [--num-classes N] [--class-names a,b,...]\n");
    return 2;
}
