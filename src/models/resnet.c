/* ResNets. Parameter names follow torchvision where the architectures coincide, so weights are
 * easy to compare with PyTorch. */
#include <stdio.h>

#include "dpt/models/models.h"

/* conv -> BatchNorm (+ReLU), or conv with bias (+ReLU) when the model has no normalisation. */
static int conv_norm(nn_graph *g, const model_spec *s, const char *conv_name, const char *bn_name, int x, int ch,
                     int k, int stride, int pad, bool relu, bool zero_gamma) {
    x = nn_conv2d(g, conv_name, x, ch, k, stride, pad, !s->batchnorm);
    if (s->batchnorm) return nn_batchnorm(g, bn_name, x, relu, zero_gamma);
    return relu ? nn_relu(g, x) : x;
}

/* ResNet-9: the DAWNBench CIFAR-10 network (Page, "How to train your ResNet"): prep conv; three
 * stages of conv + max-pool, the first and last followed by a residual block of two convs;
 * global max-pool; linear without bias; output scaled by 0.125. */
static int r9_block(nn_graph *g, const model_spec *s, const char *name, int x, int ch, bool zero_gamma) {
    nn_scope_push(g, name);
    x = conv_norm(g, s, "conv", "bn", x, ch, 3, 1, 1, true, zero_gamma);
    nn_scope_pop(g);
    return x;
}

int model_resnet9(nn_graph *g, const model_spec *s) {
    int w = s->width_base;
    int x = nn_input(g, s->in_channels, s->height, s->width);
    x = r9_block(g, s, "prep", x, w, false);
    static const char *stages[3] = {"layer1", "layer2", "layer3"};
    for (int i = 0; i < 3; i++) {
        int ch = w << (i + 1);
        nn_scope_push(g, stages[i]);
        x = conv_norm(g, s, "conv", "bn", x, ch, 3, 1, 1, true, false);
        x = nn_maxpool(g, x, 2, 2, 0);
        if (i != 1) {
            int r = r9_block(g, s, "res1", x, ch, false);
            r = r9_block(g, s, "res2", r, ch, s->zero_init_residual);
            x = nn_add(g, x, r, false);
        }
        nn_scope_pop(g);
    }
    x = nn_global_pool(g, x, POOL_MAX);
    x = nn_linear(g, "fc", x, s->num_classes, false);
    return nn_scale(g, x, 0.125f);
}

/* torchvision's BasicBlock (ResNet-18/34). */
static int basic_block(nn_graph *g, const model_spec *s, int x, int in_ch, int ch, int stride) {
    int r = conv_norm(g, s, "conv1", "bn1", x, ch, 3, stride, 1, true, false);
    r = conv_norm(g, s, "conv2", "bn2", r, ch, 3, 1, 1, false, s->zero_init_residual);
    int shortcut = x;
    if (stride != 1 || in_ch != ch)
        shortcut = conv_norm(g, s, "downsample.0", "downsample.1", x, ch, 1, stride, 0, false, false);
    return nn_add(g, r, shortcut, true);
}

/* ResNet-18 for 32x32 images (He et al. 2016 CIFAR variant as commonly used): 3x3 stem, no
 * max-pool, four stages of two BasicBlocks (64-128-256-512), global average pool, linear. */
int model_resnet18_cifar(nn_graph *g, const model_spec *s) {
    int x = nn_input(g, s->in_channels, s->height, s->width);
    x = conv_norm(g, s, "conv1", "bn1", x, 64, 3, 1, 1, true, false);
    int in_ch = 64;
    for (int stage = 0; stage < 4; stage++) {
        int ch = 64 << stage;
        for (int b = 0; b < 2; b++) {
            char name[32];
            snprintf(name, sizeof name, "layer%d.%d", stage + 1, b);
            nn_scope_push(g, name);
            x = basic_block(g, s, x, in_ch, ch, (stage > 0 && b == 0) ? 2 : 1);
            nn_scope_pop(g);
            in_ch = ch;
        }
    }
    x = nn_global_pool(g, x, POOL_AVG);
    return nn_linear(g, "fc", x, s->num_classes, true);
}

/* torchvision's Bottleneck, v1.5: the stride sits on the 3x3 convolution. */
static int bottleneck(nn_graph *g, const model_spec *s, int x, int in_ch, int planes, int stride) {
    int out_ch = planes * 4;
    int r = conv_norm(g, s, "conv1", "bn1", x, planes, 1, 1, 0, true, false);
    r = conv_norm(g, s, "conv2", "bn2", r, planes, 3, stride, 1, true, false);
    r = conv_norm(g, s, "conv3", "bn3", r, out_ch, 1, 1, 0, false, s->zero_init_residual);
    int shortcut = x;
    if (stride != 1 || in_ch != out_ch)
        shortcut = conv_norm(g, s, "downsample.0", "downsample.1", x, out_ch, 1, stride, 0, false, false);
    return nn_add(g, r, shortcut, true);
}

/* ResNet-50 v1.5 (25,557,032 parameters at 1000 classes). */
int model_resnet50(nn_graph *g, const model_spec *s) {
    static const int blocks[4] = {3, 4, 6, 3};
    int x = nn_input(g, s->in_channels, s->height, s->width);
    x = conv_norm(g, s, "conv1", "bn1", x, 64, 7, 2, 3, true, false);
    x = nn_maxpool(g, x, 3, 2, 1);
    int in_ch = 64;
    for (int stage = 0; stage < 4; stage++) {
        int planes = 64 << stage;
        for (int b = 0; b < blocks[stage]; b++) {
            char name[32];
            snprintf(name, sizeof name, "layer%d.%d", stage + 1, b);
            nn_scope_push(g, name);
            x = bottleneck(g, s, x, in_ch, planes, (stage > 0 && b == 0) ? 2 : 1);
            nn_scope_pop(g);
            in_ch = planes * 4;
        }
    }
    x = nn_global_pool(g, x, POOL_AVG);
    return nn_linear(g, "fc", x, s->num_classes, true);
}
