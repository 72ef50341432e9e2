/* Configuration: INI files with sections, overridable with `--set section.key=value`.
 * Every key is declared once in the schema (config_schema.c) with its type, default and
 * allowed range; an unknown key, a bad type or an out-of-range value is an error that names
 * the file and line (or the --set argument), the key and what is allowed. */
#ifndef DPT_CORE_CONFIG_H
#define DPT_CORE_CONFIG_H

#include <stdio.h>

#include "dpt/core/error.h"

#define CFG_STR_MAX 512
#define CFG_LIST_MAX 16

typedef struct cfg_list {
    int n;
    double v[CFG_LIST_MAX];
} cfg_list;

/* A value that changes at given epochs: "V" or "V,E:V,E:V" (value V from epoch E on). The first
 * phase starts at epoch 0 and epochs increase. n == 0: unset (only where the default is empty). */
typedef struct cfg_phases {
    int n;
    int64_t epoch[CFG_LIST_MAX];
    int64_t value[CFG_LIST_MAX];
} cfg_phases;

/* The phase that contains `epoch` (0-based); 0 when unset. */
static inline int cfg_phase_index(const cfg_phases *p, int64_t epoch) {
    int k = 0;
    while (k + 1 < p->n && p->epoch[k + 1] <= epoch) k++;
    return k;
}

/* The value of the phase that contains `epoch`; `dflt` when unset. */
static inline int64_t cfg_phase_value(const cfg_phases *p, int64_t epoch, int64_t dflt) {
    return p->n == 0 ? dflt : p->value[cfg_phase_index(p, epoch)];
}

typedef struct dpt_config {
    struct {
        char name[32];          /* resnet9 | resnet18 | resnet50 | biggan (a GAN: the [gan] section) */
        int64_t bn_group;       /* ranks per BatchNorm statistics group: 1 local, 0 all */
        int64_t width;          /* resnet9: channels of the prep layer (x2, x4, x8 after) */
        int64_t in_channels;    /* 0: from the training data */
        int64_t num_classes;    /* 0: from the training data */
        char norm[16];          /* batch | none */
        bool zero_init_residual;
    } model;
    struct {
        char train[CFG_STR_MAX];
        char test[CFG_STR_MAX];
        int64_t crop_padding;
        bool flip;
        int64_t max_memory_mb;
        int64_t train_subset;
        int64_t test_subset;
        int64_t workers;
        int64_t prefetch;
        cfg_phases image_size; /* unset: the stored size */
        bool random_resized_crop;
        cfg_list rrc_scale;
        cfg_list rrc_ratio;
        double eval_crop;
        bool decode_scaled;
        int64_t cache_mb;
    } data;
    struct {
        char name[16]; /* sgd | lars */
        double lr;
        double momentum;
        bool nesterov;
        double weight_decay;
        bool decay_bn_bias;
        double lars_trust;
        double lars_eps;
        bool lars_exclude_bn_bias;
    } optim;
    struct {
        char name[16]; /* constant | step | cosine | onecycle | poly */
        bool scale_lr;
        double reference_batch;
        double warmup_epochs;
        double warmup_start_factor;
        cfg_list milestones;
        double gamma;
        double final_lr_factor;
        double peak_fraction;
        bool cycle_momentum;
        double momentum_min;
        double momentum_max;
        double poly_power;
    } schedule;
    struct {
        int64_t epochs;
        cfg_phases batch_size; /* global batch, per epoch phase */
        int64_t seed;
        double target_accuracy;
        double label_smoothing;
        int64_t log_every;
        int64_t eval_every;
        int64_t max_steps;
        int64_t threads;
        bool verify_replicas;
        bool profile;
        int64_t accum_steps;
        bool save_weights;
        char progress[16]; /* auto | bar | lines | off */
        char init_weights[CFG_STR_MAX];
        bool tensorboard;
        int64_t checkpoint_every;  /* steps; 0: each epoch end; -1: only on a stop signal */
        int64_t keep_checkpoints;  /* newest step_*.h5 kept */
        int64_t max_skipped_steps; /* consecutive non-finite steps that stop the run */
        char device[16];           /* auto | cpu | cuda */
        char precision[16];        /* auto | fp32 | tf32 | bf16 | fp16 */
        char loss_scale[16];       /* auto | dynamic | off */
        double loss_scale_init;
        int64_t loss_scale_window;
    } train;
    struct { /* who and what a run reports, for dawnbench.json and mllog.txt */
        char author[128];
        char author_email[128];
        char hardware[256];
        double cost_per_hour;
        char code_url[256];
        char org[128];
        char division[16]; /* open | closed */
        char status[16];   /* onprem | cloud | research | preview */
        char benchmark[32];
    } submission;
    struct { /* BigGAN training (model.name = biggan) */
        int64_t resolution;
        int64_t ch;
        int64_t dim_z;
        int64_t shared_dim;
        bool hier;
        int64_t attention;
        double g_lr, d_lr, beta1, beta2, adam_eps;
        int64_t d_steps;
        double ortho;
        double ema_decay;
        int64_t ema_start;
        int64_t standing_batches;
        int64_t sample_every;
        int64_t fid_every;
        int64_t fid_samples;
        int64_t fid_real_samples;
        char fid_weights[CFG_STR_MAX];
        char fid_config[CFG_STR_MAX];
        char fid_name[64];
    } gan;
    struct {
        double bucket_mb;
        char backend[16];    /* auto|nccl|mpi: collectives on GPU buffers */
        char grad_dtype[16]; /* fp32|bf16: the gradient allreduce's wire type */
        double timeout_s;    /* 0: wait forever */
    } comm;
} dpt_config;

typedef enum cfg_type { CFG_INT, CFG_FLOAT, CFG_BOOL, CFG_STRING, CFG_ENUM, CFG_FLOAT_LIST, CFG_PHASES } cfg_type;

typedef struct cfg_key {
    const char *section;
    const char *key;
    cfg_type type;
    size_t offset;       /* into dpt_config */
    size_t size;         /* string capacity */
    const char *def;     /* default, as text */
    double min, max;     /* numeric range (each element for lists and phases) */
    bool min_open;       /* min itself not allowed */
    const char *choices; /* enum: "a|b|c" */
    const char *help;
} cfg_key;

const cfg_key *config_schema(size_t *count);

/* Fills every key with its default. */
void config_defaults(dpt_config *c);
dpt_status config_load_file(dpt_config *c, const char *path);
/* "section.key=value" */
dpt_status config_apply_override(dpt_config *c, const char *assignment);
/* Sets one key from text; `where` names the source for messages ("file.ini:12", "--set"). */
dpt_status config_set(dpt_config *c, const char *section, const char *key, const char *value,
                      const char *where);
/* Writes every key, resolved, as an INI file. */
dpt_status config_write(const dpt_config *c, const char *path);
void config_write_stream(const dpt_config *c, FILE *f);
/* The same text in a malloc'ed string (checkpoints store it as an attribute). */
char *config_write_string(const dpt_config *c);
/* "512,10:1024" */
void config_phases_text(const cfg_phases *p, char *buf, size_t size);
/* Prints the schema: every key, its type, default, range and help. */
void config_print_schema(FILE *f);

#endif
