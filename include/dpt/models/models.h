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

#endif
