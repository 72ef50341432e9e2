/* BigGAN builders: parameter counts equal BigGAN-PyTorch's (BigGAN.py's Generator and
 * Discriminator instantiated with the same arguments and counted with
 * sum(p.numel() for p in m.parameters()); spectral-norm vectors are buffers there as here),
 * unique names, output shapes, a forward pass of the 32 px pair (image in [-1, 1], finite
 * logits), D's input gradient reaching G's output shape, and spec errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/models/models.h"
#include "testutil.h"

typedef struct count_case {
    gan_spec s;
    int64_t g_params, d_params; /* BigGAN-PyTorch's */
    const char *what;
} count_case;

static const count_case cases[] = {
    {{128, 96, 120, 128, true, 1000, 64, 3}, 70433988, 87982370, "BigGAN-128, ch 96, hier, attention at 64"},
    {{64, 64, 120, 128, true, 1000, 32, 3}, 31969540, 20571842, "64 px, ch 64, hier, attention at 32"},
    {{32, 64, 128, 128, false, 10, 0, 3}, 4668163, 4207361, "32 px, ch 64, no attention"},
    {{32, 32, 128, 128, false, 10, 0, 3}, 1400835, 1055105, "32 px, ch 32, no attention"},
    {{32, 32, 120, 64, true, 10, 16, 3}, 1167748, 1137029, "32 px, ch 32, hier, attention at 16 (4 in D)"},
};

static void check_unique_names(const nn_graph *g, const char *what) {
    bool unique = true;
    for (int i = 0; i < g->nparams; i++)
        for (int j = i + 1; j < g->nparams; j++) unique = unique && strcmp(g->params[i].name, g->params[j].name);
    for (int i = 0; i < g->nbuffers; i++)
        for (int j = i + 1; j < g->nbuffers; j++) unique = unique && strcmp(g->buffers[i].name, g->buffers[j].name);
    TU_CHECK(unique, "%s: parameter or buffer names repeat", what);
}

static void test_counts(const dpt_backend *be) {
    for (size_t k = 0; k < DPT_ARRAY_LEN(cases); k++) {
        const count_case *c = &cases[k];
        gan_io io;
        nn_graph *g = nn_graph_create(be, 1);
        TU_CHECK(biggan_generator(g, &c->s, &io) == DPT_OK, "%s: G: %s", c->what, dpt_error_message());
        TU_CHECK(nn_param_count(g) == c->g_params, "%s: G has %lld parameters, BigGAN-PyTorch %lld", c->what,
                 (long long)nn_param_count(g), (long long)c->g_params);
        check_unique_names(g, c->what);
        const dpt_tensor *t = nn_value_tensor(g, io.out);
        TU_CHECK(t->shape[1] == 3 && t->shape[2] == c->s.resolution && t->shape[3] == c->s.resolution,
                 "%s: G's output (%lld, %lld, %lld)", c->what, (long long)t->shape[1], (long long)t->shape[2],
                 (long long)t->shape[3]);
        nn_graph_destroy(g);
        g = nn_graph_create(be, 1);
        TU_CHECK(biggan_discriminator(g, &c->s, &io) == DPT_OK, "%s: D: %s", c->what, dpt_error_message());
        TU_CHECK(nn_param_count(g) == c->d_params, "%s: D has %lld parameters, BigGAN-PyTorch %lld", c->what,
                 (long long)nn_param_count(g), (long long)c->d_params);
        check_unique_names(g, c->what);
        t = nn_value_tensor(g, io.out);
        TU_CHECK(t->shape[0] == 1 && t->shape[1] == 1, "%s: D's output has %lld features", c->what,
                 (long long)t->shape[1]);
        nn_graph_destroy(g);
    }
}

/* The Fashion-sized pair: G's images feed D, D's input gradient has G's output shape. */
static void test_forward(const dpt_backend *be) {
    const gan_spec s = {32, 16, 64, 32, true, 10, 16, 1};
    enum { N = 4 };
    gan_io gi, di;
    nn_graph *G = nn_graph_create(be, N), *D = nn_graph_create(be, N);
    TU_CHECK(biggan_generator(G, &s, &gi) == DPT_OK, "G: %s", dpt_error_message());
    TU_CHECK(biggan_discriminator(D, &s, &di) == DPT_OK, "D: %s", dpt_error_message());
    nn_input_requires_grad(D, di.x);
    TU_CHECK(nn_graph_finalize(G, gi.out) == DPT_OK && nn_graph_finalize(D, di.out) == DPT_OK, "finalize: %s",
             dpt_error_message());
    nn_init_params(G, 1);
    nn_init_params(D, 2);
    float z[N * 64];
    tu_fill_uniform(z, N * 64, -1.0f, 1.0f, 7);
    int32_t y[N] = {0, 3, 9, 3};
    nn_set_input(G, gi.z, z);
    nn_set_input(G, gi.labels, y);
    nn_forward(G, NULL, true);
    const dpt_tensor *img = nn_value_tensor(G, gi.out);
    const float *p = img->data;
    bool in_range = true;
    for (int64_t i = 0; i < tensor_numel(img); i++) in_range = in_range && isfinite(p[i]) && fabsf(p[i]) <= 1.0f;
    TU_CHECK(img->shape[1] == 1 && img->shape[2] == 32 && in_range, "G's image: (%lld, %lld), values in [-1, 1]: %d",
             (long long)img->shape[1], (long long)img->shape[2], in_range);
    nn_set_input(D, di.labels, y);
    nn_forward(D, img->data, true);
    const float *logit = nn_value_tensor(D, di.out)->data;
    bool finite = true;
    for (int i = 0; i < N; i++) finite = finite && isfinite(logit[i]);
    TU_CHECK(finite, "D's logits are not finite");
    float *dout = nn_output_grad(D)->data;
    for (int i = 0; i < N; i++) dout[i] = 1.0f;
    nn_backward(D, false, NULL, NULL);
    const dpt_tensor *dx = nn_value_grad(D, di.x);
    TU_CHECK(dx->data && tensor_numel(dx) == tensor_numel(img), "D's input gradient: %lld values for %lld",
             (long long)tensor_numel(dx), (long long)tensor_numel(img));
    double norm = 0.0;
    for (int64_t i = 0; i < tensor_numel(dx); i++) norm += (double)((float *)dx->data)[i] * ((float *)dx->data)[i];
    TU_CHECK(isfinite(norm) && norm > 0.0, "D's input gradient: squared norm %g", norm);
    nn_graph_destroy(G);
    nn_graph_destroy(D);
}

static void expect_error(const dpt_backend *be, gan_spec s, const char *want) {
    gan_io io;
    nn_graph *g = nn_graph_create(be, 1);
    dpt_status st = biggan_generator(g, &s, &io);
    TU_CHECK(st != DPT_OK && tu_contains(dpt_error_message(), want), "want an error with \"%s\", got %s", want,
             st == DPT_OK ? "none" : dpt_error_message());
    nn_graph_destroy(g);
}

int main(void) {
    const dpt_backend *be = backend_cpu();
    test_counts(be);
    test_forward(be);
    const gan_spec ok = {32, 32, 120, 64, true, 10, 16, 3};
    gan_spec s = ok;
    s.resolution = 48;
    expect_error(be, s, "gan.resolution = 48");
    s = ok;
    s.ch = 20;
    expect_error(be, s, "gan.ch = 20");
    s = ok;
    s.dim_z = 121;
    expect_error(be, s, "gan.dim_z = 121");
    s = ok;
    s.attention = 12;
    expect_error(be, s, "gan.attention = 12");
    return tu_finish("test_biggan");
}
