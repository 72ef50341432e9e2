#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "dptrain " DPT_VERSION " - data-parallel trainer\n"
            "\n"
            "usage: dptrain <command> [arguments]\n"
            "\n"
            "  train CONFIG --out DIR [--resume auto|CHECKPOINT] [--set section.key=value ...]\n"
            "        train a classifier, or a BigGAN when model.name = biggan; run under mpirun/srun for several ranks; --resume auto goes on from the\n"
            "        newest valid checkpoint in DIR/checkpoints (any number of ranks)\n"
            "  eval CONFIG --weights FILE | --checkpoint FILE [--set section.key=value ...]\n"
            "        evaluate saved weights or a checkpoint on the config's test split\n"
            "  sample CONFIG --checkpoint CK -o GRID.png [--classes 0,1,2] [--per-class 8] [--truncation 0.5]\n"
            "         [--seed S] [--interp] [--set section.key=value ...]\n"
            "        a PNG grid from a BigGAN checkpoint's EMA generator: a row per class; --interp: z interpolated\n"
            "        along each row\n"
            "  prep idx IMAGES LABELS -o OUT.h5 [--num-classes N] [--class-names a,b,...]\n"
            "        convert IDX files (MNIST, Fashion-MNIST; gzip or raw) to dptrain's HDF5 format\n"
            "  prep imagenet DIR -o OUT.h5 --size N [--jpeg [--quality Q]] [--classes TRAIN.h5] [--labels FILE]\n"
            "               [--threads N] [--skip-bad] [--strict-channels] [--limit N]\n"
            "        JPEG folders (DIR/<class>/*.JPEG, or flat with --labels) to N x N images, or JPEGs of shorter side N\n"
            "  prep cifar10 DIR -o OUT.h5 [--test] [--limit N]\n"
            "        CIFAR-10 binary batches (data_batch_*.bin, test_batch.bin) to dptrain's HDF5 format\n"
            "  data inspect FILE.h5\n"
            "        counts, shapes, classes, storage and chunking of a split\n"
            "  bench loader CONFIG [--batches N] [--repeats R] [--set ...]\n"
            "        images/s the loader delivers from the config's training split\n"
            "  bench step CONFIG [--size 224] [--channels 3] [--classes 1000] [--steps 20] [--warmup 5] [--profile]\n"
            "             [--no-comm] [--set ...]\n"
            "        timed training steps on synthetic images; on several ranks with the gradient allreduce, or without\n"
            "  bench allreduce [--backend mpi|nccl] [--buffers host|device] [--min 8] [--max 256M] [--dtype fp32|bf16]\n"
            "                  [--warmup 5] [--iters 20]\n"
            "        size, time, algbw and busbw of the gradient allreduce, like nccl-tests; every size verified exactly\n"
            "  info [--config-keys]\n"
            "        version and build features; --config-keys lists every config key\n"
            "  help\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "train")) return cmd_train(argc - 2, argv + 2);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 2, argv + 2);
    if (!strcmp(cmd, "sample")) return cmd_sample(argc - 2, argv + 2);
    if (!strcmp(cmd, "prep")) return cmd_prep(argc - 2, argv + 2);
    if (!strcmp(cmd, "info")) return cmd_info(argc - 2, argv + 2);
    if (!strcmp(cmd, "data")) return cmd_data(argc - 2, argv + 2);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc - 2, argv + 2);
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "dptrain: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
