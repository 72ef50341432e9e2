/* The feature network of FID and IS: a dptrain classifier (its config and weights), since
 * Inception-v3 weights are not available here. Its features are the input of its last linear
 * layer; its class probabilities the softmax of its logits. Metrics carry its name. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dpt/core/log.h"
#include "dpt/data/image.h"
#include "dpt/data/png.h"
#include "gan_internal.h"

static dpt_status open_classifier(featnet *f, const dpt_config *cfg, int batch, int channels) {
    if (access(cfg->gan.fid_weights, R_OK) != 0)
        return dpt_error(DPT_ERR_IO, "gan.fid_weights = %s: %s (the feature network of FID and IS: a classifier's "
                                     "weights.h5; leave it empty for no metrics)", cfg->gan.fid_weights, strerror(errno));
    char cfg_path[CFG_STR_MAX + 16];
    if (cfg->gan.fid_config[0]) {
        snprintf(cfg_path, sizeof cfg_path, "%s", cfg->gan.fid_config);
    } else {
        /* config.ini of the run directory: beside weights.h5, or one level up from checkpoints/. */
        char dir[CFG_STR_MAX];
        snprintf(dir, sizeof dir, "%s", cfg->gan.fid_weights);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        else snprintf(dir, sizeof dir, ".");
        const size_t n = strlen(dir);
        if (n >= 11 && !strcmp(dir + n - 11, "checkpoints")) {
            slash = strrchr(dir, '/');
            if (slash) *slash = '\0';
            else snprintf(dir, sizeof dir, ".");
        }
        snprintf(cfg_path, sizeof cfg_path, "%s/config.ini", dir);
    }
    dpt_config cc;
    config_defaults(&cc);
    dpt_status st = config_load_file(&cc, cfg_path);
    if (st != DPT_OK)
        return dpt_error(st, "gan.fid_config: %s (the feature network's config; set gan.fid_config)", dpt_error_message());
    if (!strcmp(cc.model.name, "biggan"))
        return dpt_error(DPT_ERR_CONFIG, "gan.fid_config %s: the feature network must be a classifier, not biggan",
                         cfg_path);
    dpt_dataset d;
    memset(&d, 0, sizeof d);
    /* The classifier's training split gives its input shape, classes and normalisation. */
    st = dataset_open(&d, cc.data.train, 1, 0);
    if (st != DPT_OK) return dpt_error(st, "%s (data.train of the feature network's config %s)", dpt_error_message(), cfg_path);
    const int c = d.c, classes = cc.model.num_classes ? (int)cc.model.num_classes : d.num_classes;
    int h = d.h, w = d.w;
    if (cc.data.image_size.n > 0) h = w = (int)cc.data.image_size.value[cc.data.image_size.n - 1];
    for (int k = 0; k < c && k < DATASET_MAX_CHANNELS; k++) {
        f->scale[k] = 1.0f / (255.0f * d.std[k]);
        f->shift[k] = -d.mean[k] / d.std[k];
    }
    const bool jpeg = d.storage == DS_JPEG;
    dataset_close(&d);
    if (jpeg && cc.data.image_size.n == 0)
        return dpt_error(DPT_ERR_CONFIG, "%s: data.image_size must be set for a JPEG split", cfg_path);
    if (c != channels)
        return dpt_error(DPT_ERR_CONFIG, "gan.fid_weights: the feature network takes %d-channel images, the GAN makes %d",
                         c, channels);
    model_spec spec = {.name = cc.model.name,
                       .in_channels = c,
                       .height = h,
                       .width = w,
                       .num_classes = classes,
                       .width_base = (int)cc.model.width,
                       .batchnorm = !strcmp(cc.model.norm, "batch"),
                       .zero_init_residual = cc.model.zero_init_residual};
    f->g = nn_graph_create(backend_cpu(), batch);
    int logits = -1;
    DPT_TRY(model_build(f->g, &spec, &logits));
    DPT_TRY(nn_graph_finalize(f->g, logits));
    st = weights_load(f->g, cfg->gan.fid_weights);
    if (st != DPT_OK) return dpt_error(st, "gan.fid_weights: %s", dpt_error_message());
    f->feat_value = -1;
    for (int i = f->g->nnodes - 1; i >= 0 && f->feat_value < 0; i--)
        if (f->g->nodes[i].kind == NN_LINEAR) f->feat_value = f->g->nodes[i].in[0];
    if (f->feat_value < 0) return dpt_error(DPT_ERR_CONFIG, "%s: the feature network has no linear layer", cfg_path);
    const dpt_tensor *ft = nn_value_tensor(f->g, f->feat_value);
    f->features = (int)(ft->shape[1] * ft->shape[2] * ft->shape[3]);
    f->c = c;
    f->h = h;
    f->w = w;
    f->classes = classes;
    if (cfg->gan.fid_name[0]) snprintf(f->name, sizeof f->name, "%s", cfg->gan.fid_name);
    else snprintf(f->name, sizeof f->name, "%s", cc.model.name);
    return DPT_OK;
}

bool featnet_open(featnet *f, const dpt_config *cfg, int batch, int channels) {
    memset(f, 0, sizeof *f);
    if (!run_agree(open_classifier(f, cfg, batch, channels))) {
        featnet_close(f);
        return false;
    }
    f->input = dpt_xmalloc((size_t)batch * f->c * f->h * f->w * sizeof(float));
    f->feat = dpt_xmalloc((size_t)batch * f->features * sizeof(float));
    f->prob = dpt_xmalloc((size_t)batch * f->classes * sizeof(float));
    return true;
}

void featnet_close(featnet *f) {
    nn_graph_destroy(f->g);
    free(f->input);
    free(f->feat);
    free(f->prob);
    free(f->pix);
    memset(f, 0, sizeof *f);
}

void featnet_run(featnet *f, const float *images, int n, int res, dpt_layout layout) {
    nn_graph *g = f->g;
    DPT_CHECK(n <= g->batch);
    const int c = f->c;
    const int64_t in_px = (int64_t)c * res * res, out_px = (int64_t)c * f->h * f->w;
    f->pix = dpt_xrealloc(f->pix, (size_t)in_px);
    img_scratch scratch = {0};
    const bool nhwc = g->layout == LAYOUT_NHWC;
    memset(f->input, 0, (size_t)g->batch * (size_t)out_px * sizeof(float));
    for (int i = 0; i < n; i++) {
        const float *src = images + (int64_t)i * in_px;
        for (int64_t k = 0; k < in_px; k++) f->pix[k] = png_quantize(src[k], -1.0f, 1.0f);
        img_view v = layout == LAYOUT_NHWC ? img_view_hwc(f->pix, res, res, c) : img_view_chw(f->pix, res, res, c);
        img_resample_norm(&v, 0, 0, res, res, f->w, f->h, false, f->scale, f->shift, nhwc, f->input + i * out_px,
                          &scratch);
    }
    img_scratch_free(&scratch);
    nn_forward(g, f->input, false);
    const dpt_tensor *ft = nn_value_tensor(g, f->feat_value), *lt = nn_value_tensor(g, g->logits);
    g->be->copy_to_host(f->feat, ft->data, (size_t)n * f->features * sizeof(float));
    float *logits = f->prob;
    g->be->copy_to_host(logits, lt->data, (size_t)n * f->classes * sizeof(float));
    for (int i = 0; i < n; i++) {
        float *p = logits + (int64_t)i * f->classes, mx = p[0];
        for (int k = 1; k < f->classes; k++) mx = fmaxf(mx, p[k]);
        double sum = 0;
        for (int k = 0; k < f->classes; k++) sum += p[k] = expf(p[k] - mx);
        for (int k = 0; k < f->classes; k++) p[k] = (float)(p[k] / sum);
    }
}
