/* Model builders: parameter counts, output shapes, unique names, a forward pass. */
#include <string.h>

#include "dpt/models/models.h"
#include "testutil.h"

static int find_node(const nn_graph *g, const char *name, nn_op_kind kind) {
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i].kind == kind && !strcmp(g->nodes[i].name, name)) return i;
    return -1;
}

static void check_shape(const nn_graph *g, int v, int64_t n, int64_t c, int64_t h, int64_t w, const char *what) {
    const dpt_tensor *t = nn_value_tensor(g, v);
    TU_CHECK(t->shape[0] == n && t->shape[1] == c && t->shape[2] == h && t->shape[3] == w,
             "%s: (%lld, %lld, %lld, %lld), want (%lld, %lld, %lld, %lld)", what, (long long)t->shape[0],
             (long long)t->shape[1], (long long)t->shape[2], (long long)t->shape[3], (long long)n, (long long)c,
             (long long)h, (long long)w);
}

/* Output value of the pooling node that follows the stage's conv/bn. */
static int stage_pool_out(const nn_graph *g, const char *stage) {
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i].kind == NN_POOL && !strcmp(g->nodes[i].name, stage)) return g->nodes[i].out;
    return -1;
}

static void check_unique_names(const nn_graph *g, const char *model) {
    bool unique = true;
    for (int i = 0; i < g->nparams; i++)
        for (int j = i + 1; j < g->nparams; j++) unique = unique && strcmp(g->params[i].name, g->params[j].name);
    for (int i = 0; i < g->nbuffers; i++)
        for (int j = i + 1; j < g->nbuffers; j++) unique = unique && strcmp(g->buffers[i].name, g->buffers[j].name);
    TU_CHECK(unique, "%s: parameter or buffer names repeat", model);
}

int main(void) {
    const dpt_backend *be = backend_cpu();

    /* ResNet-50 v1.5 at 1000 classes: torchvision's count. */
    nn_graph *g = nn_graph_create(be, 1);
    model_spec r50 = {"resnet50", 3, 224, 224, 1000, 64, true, true};
    int logits;
    TU_CHECK(model_build(g, &r50, &logits) == DPT_OK, "resnet50 build: %s", dpt_error_message());
    TU_CHECK(nn_param_count(g) == 25557032, "resnet50 has %lld parameters, want 25557032", (long long)nn_param_count(g));
    check_shape(g, logits, 1, 1000, 1, 1, "resnet50 logits");
    TU_CHECK(g->nbuffers == 2 * 53, "resnet50 has %d BN buffers, want 106", g->nbuffers);
    /* v1.5: the stride sits on the 3x3 conv of the first block of stages 2-4. */
    int n3 = find_node(g, "layer2.0.conv2", NN_CONV), n1 = find_node(g, "layer2.0.conv1", NN_CONV);
    TU_CHECK(n3 >= 0 && g->nodes[n3].a.conv.stride == 2 && g->nodes[n1].a.conv.stride == 1, "resnet50 v1.5 stride");
    TU_CHECK(nn_find_param(g, "layer4.2.bn3.weight") >= 0 && nn_find_param(g, "fc.bias") >= 0 &&
                 nn_find_buffer(g, "layer1.0.downsample.1.running_var") >= 0,
             "resnet50 torchvision names");
    check_unique_names(g, "resnet50");
    nn_graph_destroy(g);

    /* ResNet-18, CIFAR style, 10 classes. */
    g = nn_graph_create(be, 2);
    model_spec r18 = {"resnet18", 3, 32, 32, 10, 64, true, true};
    TU_CHECK(model_build(g, &r18, &logits) == DPT_OK, "resnet18 build");
    TU_CHECK(nn_param_count(g) == 11173962, "resnet18 has %lld parameters, want 11173962", (long long)nn_param_count(g));
    check_unique_names(g, "resnet18");
    nn_graph_destroy(g);

    /* ResNet-9 stage shapes, Fashion-MNIST 28x28 at width 16 and CIFAR 32x32 at width 64. */
    struct { int c, hw, width, classes; int64_t s1, s2, s3; int64_t params; } cases[] = {
        {1, 28, 16, 10, 14, 7, 3, 412656},
        {3, 32, 64, 10, 16, 8, 4, 6573120},
    };
    for (size_t k = 0; k < DPT_ARRAY_LEN(cases); k++) {
        int B = 4;
        g = nn_graph_create(be, B);
        model_spec r9 = {"resnet9", cases[k].c, cases[k].hw, cases[k].hw, cases[k].classes, cases[k].width, true, true};
        TU_CHECK(model_build(g, &r9, &logits) == DPT_OK, "resnet9 build");
        int w = cases[k].width;
        check_shape(g, g->nodes[find_node(g, "prep.bn", NN_BATCHNORM)].out, B, w, cases[k].hw, cases[k].hw, "prep");
        check_shape(g, stage_pool_out(g, "layer1"), B, 2 * w, cases[k].s1, cases[k].s1, "layer1 pool");
        check_shape(g, stage_pool_out(g, "layer2"), B, 4 * w, cases[k].s2, cases[k].s2, "layer2 pool");
        check_shape(g, stage_pool_out(g, "layer3"), B, 8 * w, cases[k].s3, cases[k].s3, "layer3 pool");
        check_shape(g, logits, B, cases[k].classes, 1, 1, "logits");
        TU_CHECK(nn_param_count(g) == cases[k].params, "resnet9 width %d: %lld parameters, want %lld", w,
                 (long long)nn_param_count(g), (long long)cases[k].params);
        check_unique_names(g, "resnet9");
        /* Zero-init residual: the last BN of each residual branch starts with gamma 0. */
        TU_CHECK(nn_graph_finalize(g, logits) == DPT_OK, "finalize");
        nn_init_params(g, 1);
        int p = nn_find_param(g, "layer1.res2.bn.weight"), q = nn_find_param(g, "layer1.res1.bn.weight");
        TU_CHECK(p >= 0 && ((float *)g->params[p].value.data)[0] == 0.0f, "res2 gamma not zero");
        TU_CHECK(q >= 0 && ((float *)g->params[q].value.data)[0] == 1.0f, "res1 gamma not one");
        nn_graph_destroy(g);
    }

    /* A ResNet-50 forward on small images runs and gives finite logits. */
    g = nn_graph_create(be, 2);
    model_spec small = {"resnet50", 3, 32, 32, 10, 64, true, false};
    TU_CHECK(model_build(g, &small, &logits) == DPT_OK && nn_graph_finalize(g, logits) == DPT_OK, "resnet50 32px");
    nn_init_params(g, 3);
    float x[2 * 3 * 32 * 32];
    tu_fill_uniform(x, 2 * 3 * 32 * 32, -1, 1, 1);
    nn_forward(g, x, true);
    const float *y = nn_value_tensor(g, logits)->data;
    bool finite = true;
    for (int i = 0; i < 20; i++) finite = finite && y[i] == y[i] && y[i] < 1e30f && y[i] > -1e30f;
    TU_CHECK(finite, "resnet50 logits not finite");
    nn_graph_destroy(g);

    /* Input too small for the architecture: a clear error. */
    g = nn_graph_create(be, 1);
    model_spec tiny = {"resnet50", 3, 8, 8, 10, 64, true, false};
    TU_CHECK(model_build(g, &tiny, &logits) == DPT_ERR_CONFIG && tu_contains(dpt_error_message(), "at least"),
             "tiny input: %s", dpt_error_message());
    nn_graph_destroy(g);
    g = nn_graph_create(be, 1);
    model_spec unknown = {"vgg", 3, 32, 32, 10, 64, true, false};
    TU_CHECK(model_build(g, &unknown, &logits) == DPT_ERR_CONFIG, "unknown model accepted");
    nn_graph_destroy(g);
    return tu_finish("test_models");
}
