/* Model builders. They only wire layers into a graph. */
#ifndef DPT_MODELS_MODELS_H
#define DPT_MODELS_MODELS_H

#include "dpt/nn/graph.h"

typedef struct model_spec {
    const char *name;  /* resnet9 | resnet18 | resnet50 */
    int in_channels, height, width;
    int num_classes;
    int width_base;    /* resnet9: channels of the prep layer */
    bool batchnorm;    /* false: no normalisation, convolutions with bias */
    bool zero_init_residual;
} model_spec;

/* Records the model into g (not yet finalized) and returns the logits value in *logits. */
dpt_status model_build(nn_graph *g, const model_spec *s, int *logits);

/* Individual builders. */
int model_resnet9(nn_graph *g, const model_spec *s);
int model_resnet18_cifar(nn_graph *g, const model_spec *s);
int model_resnet50(nn_graph *g, const model_spec *s);

/* BigGAN (src/models/biggan.c), as BigGAN-PyTorch defines it (its parameter counts, checked in
 * test_biggan): G with a shared class embedding feeding every conditional BatchNorm (with
 * the hierarchical latent, z is split into blocks + 1 chunks: the first feeds the linear layer,
 * chunk i + 1 joins the embedding as block i's condition), residual up blocks, self-attention
 * after the block of the given resolution, BatchNorm + ReLU + conv + tanh; D with wide residual
 * down blocks, ReLU, sum over positions and a linear + class-projection head (output (N, 1)).
 * Every weight is spectrally normalised. */
typedef struct gan_spec {
    int resolution;    /* 32, 64 or 128 */
    int ch;            /* channel multiplier (96 for BigGAN-128), a multiple of 8 */
    int dim_z;         /* latent size (120 for BigGAN-128 with hier) */
    int shared_dim;    /* the shared class embedding's size (128) */
    bool hier;         /* hierarchical latent */
    int num_classes;
    int attention;     /* the resolution after which a self-attention block sits; 0: none */
    int image_channels; /* of G's output and D's input (3; 1 for Fashion-MNIST) */
} gan_spec;

/* The values a GAN graph exposes: inputs z (G), x (D) and labels; the output (G: the image in
 * [-1, 1]; D: the logit). */
typedef struct gan_io {
    int z, x, labels, out;
} gan_io;

/* Record G or D into g (not finalized); errors name the gan_spec field. */
dpt_status biggan_generator(nn_graph *g, const gan_spec *s, gan_io *io);
dpt_status biggan_discriminator(nn_graph *g, const gan_spec *s, gan_io *io);

#endif
