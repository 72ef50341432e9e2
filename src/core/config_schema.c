/* Every configuration key, declared once. README's key table is printed from this by
 * `dptrain info --config-keys`. */
#include <float.h>
#include <stddef.h>

#include "dpt/core/config.h"

#define F(sec, fld) offsetof(dpt_config, sec.fld), sizeof(((dpt_config *)0)->sec.fld)
#define BIG 1e18

static const cfg_key schema[] = {
    {"model", "name", CFG_ENUM, F(model, name), "resnet9", 0, 0, false, "resnet9|resnet18|resnet50",
     "network builder"},
    {"model", "width", CFG_INT, F(model, width), "64", 1, 4096, false, NULL,
     "resnet9: channels of the prep layer; the stages use 2x, 4x and 8x"},
    {"model", "in_channels", CFG_INT, F(model, in_channels), "0", 0, 64, false, NULL,
     "input channels; 0 takes them from the training data"},
    {"model", "num_classes", CFG_INT, F(model, num_classes), "0", 0, 1000000, false, NULL,
     "classes; 0 takes num_classes from the training data"},
    {"model", "norm", CFG_ENUM, F(model, norm), "batch", 0, 0, false, "batch|none",
     "normalisation after each convolution (none: no BatchNorm, convolutions get a bias)"},
    {"model", "zero_init_residual", CFG_BOOL, F(model, zero_init_residual), "true", 0, 0, false, NULL,
     "start the last BatchNorm gamma of each residual branch at zero (Goyal et al.)"},

    {"data", "train", CFG_STRING, F(data, train), "data/fashion-train.h5", 0, 0, false, NULL,
     "training split (HDF5, see README)"},
    {"data", "test", CFG_STRING, F(data, test), "data/fashion-test.h5", 0, 0, false, NULL,
     "evaluation split (HDF5)"},
    {"data", "crop_padding", CFG_INT, F(data, crop_padding), "4", 0, 64, false, NULL,
     "random crop: pad each side by this many pixels, then crop back to the image size (0: off)"},
    {"data", "flip", CFG_BOOL, F(data, flip), "true", 0, 0, false, NULL, "random horizontal flip"},
    {"data", "max_memory_mb", CFG_INT, F(data, max_memory_mb), "16384", 1, BIG, false, NULL,
     "largest split (images) held in memory per rank"},
    {"data", "train_subset", CFG_INT, F(data, train_subset), "0", 0, BIG, false, NULL,
     "use only the first N training samples (0: all)"},
    {"data", "test_subset", CFG_INT, F(data, test_subset), "0", 0, BIG, false, NULL,
     "evaluate only the first N test samples (0: all)"},

    {"optim", "name", CFG_ENUM, F(optim, name), "sgd", 0, 0, false, "sgd", "optimizer"},
    {"optim", "lr", CFG_FLOAT, F(optim, lr), "0.1", 0, 1000, true, NULL,
     "base learning rate (per schedule.reference_batch images when schedule.scale_lr)"},
    {"optim", "momentum", CFG_FLOAT, F(optim, momentum), "0.9", 0, 1, false, NULL,
     "momentum (the base value when the schedule cycles momentum)"},
    {"optim", "nesterov", CFG_BOOL, F(optim, nesterov), "true", 0, 0, false, NULL, "Nesterov momentum"},
    {"optim", "weight_decay", CFG_FLOAT, F(optim, weight_decay), "5e-4", 0, 1, false, NULL,
     "L2 weight decay, added to the gradient"},
    {"optim", "decay_bn_bias", CFG_BOOL, F(optim, decay_bn_bias), "false", 0, 0, false, NULL,
     "apply weight decay to BatchNorm parameters and biases too"},

    {"schedule", "name", CFG_ENUM, F(schedule, name), "onecycle", 0, 0, false,
     "constant|step|cosine|onecycle", "learning-rate schedule after warmup"},
    {"schedule", "scale_lr", CFG_BOOL, F(schedule, scale_lr), "true", 0, 0, false, NULL,
     "linear scaling rule: lr = optim.lr * global_batch / reference_batch"},
    {"schedule", "reference_batch", CFG_FLOAT, F(schedule, reference_batch), "256", 1, BIG, false, NULL,
     "batch size that optim.lr refers to"},
    {"schedule", "warmup_epochs", CFG_FLOAT, F(schedule, warmup_epochs), "0", 0, 10000, false, NULL,
     "gradual linear warmup (step, cosine, constant)"},
    {"schedule", "warmup_start_factor", CFG_FLOAT, F(schedule, warmup_start_factor), "0", 0, 1, false, NULL,
     "warmup starts at this fraction of the scaled lr"},
    {"schedule", "milestones", CFG_FLOAT_LIST, F(schedule, milestones), "30,60,80", 0, 1e6, false, NULL,
     "step: epochs at which lr is multiplied by gamma"},
    {"schedule", "gamma", CFG_FLOAT, F(schedule, gamma), "0.1", 0, 1, true, NULL, "step: decay factor"},
    {"schedule", "final_lr_factor", CFG_FLOAT, F(schedule, final_lr_factor), "0", 0, 1, false, NULL,
     "cosine and onecycle: final lr as a fraction of the peak"},
    {"schedule", "peak_fraction", CFG_FLOAT, F(schedule, peak_fraction), "0.25", 0, 1, true, NULL,
     "onecycle: the lr peaks after this fraction of the training steps"},
    {"schedule", "cycle_momentum", CFG_BOOL, F(schedule, cycle_momentum), "false", 0, 0, false, NULL,
     "onecycle: move momentum opposite to lr between momentum_max and momentum_min"},
    {"schedule", "momentum_min", CFG_FLOAT, F(schedule, momentum_min), "0.85", 0, 1, false, NULL,
     "onecycle: momentum at the lr peak"},
    {"schedule", "momentum_max", CFG_FLOAT, F(schedule, momentum_max), "0.95", 0, 1, false, NULL,
     "onecycle: momentum at the start and end"},

    {"train", "epochs", CFG_INT, F(train, epochs), "10", 1, 1000000, false, NULL, "training epochs"},
    {"train", "batch_size", CFG_INT, F(train, batch_size), "512", 1, 1 << 24, false, NULL,
     "global batch (all ranks); must be divisible by the number of ranks"},
    {"train", "seed", CFG_INT, F(train, seed), "0", 0, BIG, false, NULL,
     "seed for initialisation, shuffling and augmentation"},
    {"train", "target_accuracy", CFG_FLOAT, F(train, target_accuracy), "0", 0, 1, false, NULL,
     "stop when test top-1 reaches this fraction (0: off)"},
    {"train", "label_smoothing", CFG_FLOAT, F(train, label_smoothing), "0", 0, 1, false, NULL,
     "label smoothing of the softmax cross-entropy"},
    {"train", "log_every", CFG_INT, F(train, log_every), "50", 1, BIG, false, NULL,
     "steps between metrics lines"},
    {"train", "eval_every", CFG_INT, F(train, eval_every), "1", 1, 1000000, false, NULL,
     "epochs between evaluations (the last epoch is always evaluated)"},
    {"train", "max_steps", CFG_INT, F(train, max_steps), "0", 0, BIG, false, NULL,
     "stop after this many steps (0: no limit)"},
    {"train", "threads", CFG_INT, F(train, threads), "0", 0, 4096, false, NULL,
     "compute threads per rank (0: OMP_NUM_THREADS, else the cores of this node / ranks on it)"},
    {"train", "verify_replicas", CFG_BOOL, F(train, verify_replicas), "false", 0, 0, false, NULL,
     "after every step, check that all ranks hold bit-identical weights (costs an allgather)"},
    {"train", "profile", CFG_BOOL, F(train, profile), "false", 0, 0, false, NULL,
     "time every layer's forward and backward (from step 5) and log a per-layer table at the end"},
    {"train", "save_weights", CFG_BOOL, F(train, save_weights), "true", 0, 0, false, NULL,
     "write the final parameters and buffers to <out>/weights.h5"},
    {"train", "progress", CFG_ENUM, F(train, progress), "auto", 0, 0, false, "auto|bar|lines|off",
     "console progress: auto is a bar on a terminal, plain lines otherwise and under mpirun/srun"},

    {"train", "init_weights", CFG_STRING, F(train, init_weights), "", 0, 0, false, NULL,
     "start from the parameters and buffers of this weight file instead of a random initialisation"},

    {"comm", "bucket_mb", CFG_FLOAT, F(comm, bucket_mb), "25", 0, 4096, false, NULL,
     "gradient bucket size for the overlapped allreduce (0: one bucket per parameter)"},
};

const cfg_key *config_schema(size_t *count) {
    *count = sizeof schema / sizeof schema[0];
    return schema;
}
