/* BigGAN generator and discriminator (Brock et al. 2018), wired as BigGAN-PyTorch's BigGAN.py
 * and layers.py define them (G_arch, D_arch, GBlock, DBlock, Attention, ccbn with a shared class
 * embedding, the projection head), so that parameter counts match it exactly: every weight
 * spectrally normalised, N(0, 0.02^2) initialisation (BigGAN-PyTorch's 'N02'). */
#include <stdio.h>
#include <string.h>

#include "dpt/models/models.h"

/* Channel multipliers of each block (x ch) and where blocks change resolution. */
typedef struct gan_arch {
    int nblocks;
    int in[7], out[7];  /* D: in[0] is the image's channels, not a multiplier */
    bool resample[7];   /* G: upsample (always); D: downsample */
    int resolution[7];  /* after the block: where attention may follow it */
} gan_arch;

static bool g_arch(int res, gan_arch *a) {
    static const gan_arch g32 = {3, {4, 4, 4}, {4, 4, 4}, {1, 1, 1}, {8, 16, 32}};
    static const gan_arch g64 = {4, {16, 16, 8, 4}, {16, 8, 4, 2}, {1, 1, 1, 1}, {8, 16, 32, 64}};
    static const gan_arch g128 = {5, {16, 16, 8, 4, 2}, {16, 8, 4, 2, 1}, {1, 1, 1, 1, 1}, {8, 16, 32, 64, 128}};
    *a = res == 32 ? g32 : res == 64 ? g64 : g128;
    return res == 32 || res == 64 || res == 128;
}

static bool d_arch(int res, gan_arch *a) {
    static const gan_arch d32 = {4, {3, 4, 4, 4}, {4, 4, 4, 4}, {1, 1, 0, 0}, {16, 16, 16, 16}};
    static const gan_arch d64 = {5, {3, 1, 2, 4, 8}, {1, 2, 4, 8, 16}, {1, 1, 1, 1, 0}, {32, 16, 8, 4, 4}};
    static const gan_arch d128 = {6, {3, 1, 2, 4, 8, 16}, {1, 2, 4, 8, 16, 16}, {1, 1, 1, 1, 1, 0},
                                  {64, 32, 16, 8, 4, 4}};
    *a = res == 32 ? d32 : res == 64 ? d64 : d128;
    return res == 32 || res == 64 || res == 128;
}

static dpt_status check_spec(const gan_spec *s) {
    gan_arch a;
    if (!g_arch(s->resolution, &a))
        return dpt_error(DPT_ERR_CONFIG, "gan.resolution = %d: BigGAN is defined for 32, 64 and 128", s->resolution);
    if (s->ch < 8 || s->ch % 8 != 0)
        return dpt_error(DPT_ERR_CONFIG, "gan.ch = %d: needs a positive multiple of 8 (attention takes ch/8)", s->ch);
    if (s->num_classes < 1) return dpt_error(DPT_ERR_CONFIG, "gan: %d classes", s->num_classes);
    const int slots = s->hier ? a.nblocks + 1 : 1;
    if (s->dim_z < slots || s->dim_z % slots != 0)
        return dpt_error(DPT_ERR_CONFIG, "gan.dim_z = %d: %s", s->dim_z,
                         s->hier ? "the hierarchical latent needs a multiple of (blocks + 1)" : "must be positive");
    if (s->shared_dim < 1) return dpt_error(DPT_ERR_CONFIG, "gan.shared_dim = %d must be positive", s->shared_dim);
    if (s->image_channels != 1 && s->image_channels != 3)
        return dpt_error(DPT_ERR_CONFIG, "gan: images of %d channels (1 or 3)", s->image_channels);
    if (s->attention != 0 && s->attention != 4 && s->attention != 8 && s->attention != 16 && s->attention != 32 &&
        s->attention != 64 && s->attention != 128)
        return dpt_error(DPT_ERR_CONFIG, "gan.attention = %d: a resolution (8 ... 128) or 0 for none", s->attention);
    return DPT_OK;
}

/* GBlock: h = conv2(relu(bn2(conv1(up(relu(bn1(x, y)))), y))); out = h + conv_sc(up(x)). */
static int g_block(nn_graph *g, int x, int cond, int out_ch) {
    int h = nn_cbn(g, "bn1", x, cond, true);
    h = nn_upsample2x(g, h);
    h = nn_conv2d_sn(g, "conv1", h, out_ch, 3, 1, 1, true);
    h = nn_cbn(g, "bn2", h, cond, true);
    h = nn_conv2d_sn(g, "conv2", h, out_ch, 3, 1, 1, true);
    int sc = nn_conv2d_sn(g, "conv_sc", nn_upsample2x(g, x), out_ch, 1, 1, 0, true);
    return nn_add(g, h, sc, false);
}

static void scoped(nn_graph *g, const char *what, int index) {
    char name[32];
    snprintf(name, sizeof name, "%s.%d", what, index);
    nn_scope_push(g, name);
}

dpt_status biggan_generator(nn_graph *g, const gan_spec *s, gan_io *io) {
    DPT_TRY(check_spec(s));
    gan_arch a;
    g_arch(s->resolution, &a);
    const int slots = s->hier ? a.nblocks + 1 : 1, chunk = s->dim_z / slots;
    io->x = -1;
    io->z = nn_input_vec(g, "z", s->dim_z);
    io->labels = nn_input_labels(g, "y");
    const int shared = nn_embedding(g, "shared", io->labels, s->num_classes, s->shared_dim, false);
    int h = nn_linear_sn(g, "linear", s->hier ? nn_slice(g, io->z, 0, chunk) : io->z, a.in[0] * s->ch * 16, true);
    h = nn_view_image(g, h, a.in[0] * s->ch, 4, 4);
    for (int i = 0; i < a.nblocks; i++) {
        /* Block i's conditioning: the shared embedding, and with the hierarchical latent z's
         * chunk i + 1 (chunk 0 fed the linear layer). */
        const int cond = s->hier ? nn_concat(g, shared, nn_slice(g, io->z, (i + 1) * chunk, chunk)) : shared;
        scoped(g, "blocks", i);
        h = g_block(g, h, cond, a.out[i] * s->ch);
        if (a.resolution[i] == s->attention) h = nn_attention(g, "attention", h);
        nn_scope_pop(g);
    }
    nn_scope_push(g, "output");
    h = nn_batchnorm(g, "bn", h, true, false);
    h = nn_conv2d_sn(g, "conv", h, s->image_channels, 3, 1, 1, true);
    nn_scope_pop(g);
    io->out = nn_tanh(g, h);
    return DPT_OK;
}

/* DBlock (wide): h = conv2(relu(conv1(pre(x)))), pre = ReLU except in the first block; then
 * 2x2 average pooling where the block downsamples. The shortcut is a 1x1 conv when channels
 * change or the block downsamples, applied before the pooling except in the first block. */
static int d_block(nn_graph *g, int x, int in_ch, int out_ch, bool first, bool down) {
    int h = nn_conv2d_sn(g, "conv1", first ? x : nn_relu(g, x), out_ch, 3, 1, 1, true);
    h = nn_conv2d_sn(g, "conv2", nn_relu(g, h), out_ch, 3, 1, 1, true);
    if (down) h = nn_avgpool(g, h, 2, 2, 0);
    int sc = x;
    const bool learnable = in_ch != out_ch || down;
    if (first && down) sc = nn_avgpool(g, sc, 2, 2, 0);
    if (learnable) sc = nn_conv2d_sn(g, "conv_sc", sc, out_ch, 1, 1, 0, true);
    if (!first && down) sc = nn_avgpool(g, sc, 2, 2, 0);
    return nn_add(g, h, sc, false);
}

dpt_status biggan_discriminator(nn_graph *g, const gan_spec *s, gan_io *io) {
    DPT_TRY(check_spec(s));
    gan_arch a;
    d_arch(s->resolution, &a);
    io->z = -1;
    io->x = nn_input(g, s->image_channels, s->resolution, s->resolution);
    io->labels = nn_input_labels(g, "y");
    int h = io->x, ch = s->image_channels;
    for (int i = 0; i < a.nblocks; i++) {
        const int out_ch = a.out[i] * s->ch;
        scoped(g, "blocks", i);
        h = d_block(g, h, ch, out_ch, i == 0, a.resample[i]);
        if (a.resolution[i] == s->attention) h = nn_attention(g, "attention", h);
        nn_scope_pop(g);
        ch = out_ch;
    }
    /* ReLU, sum over positions, linear + projection onto the class embedding. */
    const dpt_tensor *t = nn_value_tensor(g, h);
    const int hw = (int)(t->shape[2] * t->shape[3]);
    h = nn_scale(g, nn_global_pool(g, nn_relu(g, h), POOL_AVG), (float)hw);
    const int lin = nn_linear_sn(g, "linear", h, 1, true);
    const int emb = nn_embedding(g, "embed", io->labels, s->num_classes, ch, true);
    io->out = nn_add(g, lin, nn_rowdot(g, emb, h), false);
    return DPT_OK;
}
