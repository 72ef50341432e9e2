/* Schedules (hand-computed values) and weight-decay exclusions. */
#include <math.h>
#include <string.h>

#include "dpt/models/models.h"
#include "dpt/optim/schedule.h"
#include "dpt/optim/optimizer.h"
#include "testutil.h"

static bool near(double a, double b) { return fabs(a - b) <= 1e-9 * fmax(1.0, fabs(b)); }

/* lr and momentum of global step k when every epoch has spe steps of `batch`. */
static void at(const dpt_schedule *s, int64_t k, int64_t spe, int64_t batch, double *lr, double *mom) {
    schedule_at(s, (double)k / (double)spe, 1.0 / (double)spe, batch, lr, mom);
}

/* LARS on a tiny linear layer: fc.weight (3, 2) and fc.bias (3). */
static void test_lars(void) {
    nn_graph *g = nn_graph_create(backend_cpu(), 2);
    int x = nn_input(g, 2, 1, 1);
    int y = nn_linear(g, "fc", x, 3, true);
    TU_CHECK(nn_graph_finalize(g, y) == DPT_OK, "tiny graph: %s", dpt_error_message());
    dpt_config c;
    config_defaults(&c);
    config_apply_override(&c, "optim.name=lars");
    config_apply_override(&c, "optim.nesterov=false");
    config_apply_override(&c, "optim.weight_decay=0.01");
    config_apply_override(&c, "optim.lars_trust=0.001");
    dpt_optimizer o;
    optimizer_init(&o, g, &c);
    nn_param *w = &g->params[nn_find_param(g, "fc.weight")], *b = &g->params[nn_find_param(g, "fc.bias")];
    TU_CHECK(optimizer_lars_adapts(&o, w) && !optimizer_lars_adapts(&o, b), "LARS excludes the bias only");
    float *wv = w->value.data, *wg = w->grad.data, *bv = b->value.data, *bg = b->grad.data;
    const float w0[6] = {3, 4, 0, 0, 0, 0}, g0[6] = {0.6f, 0.8f, 0, 0, 0, 0};
    memcpy(wv, w0, sizeof w0);
    memcpy(wg, g0, sizeof g0);
    for (int i = 0; i < 3; i++) {
        bv[i] = 1.0f;
        bg[i] = 0.5f;
    }
    /* |w| = 5, |g| = 1: trust = 0.001 * 5 / (1 + 0.01 * 5) = 0.005 / 1.05;
     * v = 0.1 * trust * (g + 0.01 w) = (0.0005 / 1.05) * (0.63, 0.84) = (0.0003, 0.0004). */
    optimizer_step(&o, g, 0.1f, 0.9f, 1.0f);
    TU_CHECK(fabs(o.trust[nn_find_param(g, "fc.weight")] - 0.005 / 1.05) < 1e-9, "trust ratio %.9g",
             o.trust[nn_find_param(g, "fc.weight")]);
    TU_CHECK(fabsf(wv[0] - 2.9997f) < 1e-6f && fabsf(wv[1] - 3.9996f) < 1e-6f && wv[2] == 0.0f,
             "LARS step 1: w = %.7g %.7g %g", wv[0], wv[1], wv[2]);
    /* The bias: trust 1, no decay: v = 0.1 * 0.5, b = 0.95. */
    TU_CHECK(fabsf(bv[0] - 0.95f) < 1e-7f, "excluded bias step 1: %.8g", bv[0]);
    /* Step 2, same gradient: reference in double from the formula. */
    double v[2] = {0.0003, 0.0004}, ww[2] = {2.9997, 3.9996};
    double wn = sqrt(ww[0] * ww[0] + ww[1] * ww[1]);
    double t = 0.001 * wn / (1.0 + 0.01 * wn);
    for (int i = 0; i < 2; i++) {
        v[i] = 0.9 * v[i] + 0.05 * t * (g0[i] + 0.01 * ww[i]);
        ww[i] -= v[i];
    }
    optimizer_step(&o, g, 0.05f, 0.9f, 1.0f);
    TU_CHECK(fabs(wv[0] - ww[0]) < 2e-6 && fabs(wv[1] - ww[1]) < 2e-6, "LARS step 2: %.7g %.7g vs %.7g %.7g", wv[0],
             wv[1], ww[0], ww[1]);
    TU_CHECK(fabsf(bv[0] - (0.95f - (0.9f * 0.05f + 0.05f * 0.5f))) < 1e-7f, "bias step 2: %.8g", bv[0]);
    /* Zero weights: trust 1 (a freshly zeroed tensor still moves). */
    memset(wv, 0, sizeof w0);
    optimizer_step(&o, g, 0.1f, 0.0f, 1.0f);
    TU_CHECK(o.trust[nn_find_param(g, "fc.weight")] == 1.0f, "zero weights: trust %g",
             o.trust[nn_find_param(g, "fc.weight")]);
    /* grad_scale enters the gradient norm: |s*g| with s = 2 halves the trust ratio's numerator share. */
    memcpy(wv, w0, sizeof w0);
    optimizer_step(&o, g, 0.1f, 0.0f, 2.0f);
    TU_CHECK(fabs(o.trust[nn_find_param(g, "fc.weight")] - 0.005 / 2.05) < 1e-9, "trust with grad_scale %.9g",
             o.trust[nn_find_param(g, "fc.weight")]);
    optimizer_free(&o);
    nn_graph_destroy(g);
}

int main(void) {
    dpt_config c;
    dpt_schedule s;
    double lr, mom;

    /* Linear scaling + warmup + step decay (Goyal et al.): base 0.1 per 256, batch 1024, 100
     * steps per epoch, 90 epochs. */
    config_defaults(&c);
    config_apply_override(&c, "schedule.name=step");
    config_apply_override(&c, "optim.lr=0.1");
    config_apply_override(&c, "schedule.warmup_epochs=5");
    config_apply_override(&c, "schedule.warmup_start_factor=0.25");
    config_apply_override(&c, "schedule.milestones=30,60,80");
    schedule_init(&s, &c, 90);
    TU_CHECK(near(schedule_peak_lr(&s, 1024), 0.4), "scaled lr %g", schedule_peak_lr(&s, 1024));
    at(&s, 0, 100, 1024, &lr, &mom);
    TU_CHECK(near(lr, 0.4 * (0.25 + 0.75 * 1.0 / 500)), "warmup step 0: %g", lr);
    at(&s, 249, 100, 1024, &lr, &mom);
    TU_CHECK(near(lr, 0.4 * (0.25 + 0.75 * 250.0 / 500)), "warmup middle: %g", lr);
    at(&s, 499, 100, 1024, &lr, &mom);
    TU_CHECK(near(lr, 0.4), "warmup end: %g", lr);
    at(&s, 2999, 100, 1024, &lr, &mom);
    TU_CHECK(near(lr, 0.4), "before 30: %g", lr);
    at(&s, 3000, 100, 1024, &lr, &mom);
    TU_CHECK(near(lr, 0.04), "epoch 30: %g", lr);
    at(&s, 8500, 100, 1024, &lr, &mom);
    TU_CHECK(near(lr, 0.0004), "epoch 85: %g", lr);
    TU_CHECK(near(mom, 0.9), "momentum %g", mom);
    /* A batch-size phase: from epoch 30 the batch doubles to 2048 (50 steps per epoch); the
     * linear rule doubles the lr at the same position. */
    schedule_at(&s, 30.0, 1.0 / 50, 2048, &lr, &mom);
    TU_CHECK(near(lr, 0.08), "epoch 30 at batch 2048: %g", lr);
    schedule_at(&s, 2.0, 1.0 / 50, 2048, &lr, &mom);
    TU_CHECK(near(lr, 0.8 * (0.25 + 0.75 * (2.0 + 1.0 / 50) / 5)), "warmup at batch 2048: %g", lr);

    /* Cosine after warmup, without scaling. */
    config_defaults(&c);
    config_apply_override(&c, "schedule.name=cosine");
    config_apply_override(&c, "schedule.scale_lr=false");
    config_apply_override(&c, "optim.lr=1");
    config_apply_override(&c, "schedule.warmup_epochs=1");
    config_apply_override(&c, "schedule.final_lr_factor=0.1");
    schedule_init(&s, &c, 11);
    at(&s, 10, 10, 512, &lr, &mom);
    TU_CHECK(near(lr, 1.0), "cosine start %g", lr);
    at(&s, 60, 10, 512, &lr, &mom);
    TU_CHECK(near(lr, 0.1 + 0.9 * 0.5), "cosine middle %g", lr);
    at(&s, 110, 10, 512, &lr, &mom);
    TU_CHECK(near(lr, 0.1), "cosine end %g", lr);

    /* Polynomial decay (power 2) after 2 warmup epochs of 10, as LARS runs use. */
    config_defaults(&c);
    config_apply_override(&c, "schedule.name=poly");
    config_apply_override(&c, "schedule.scale_lr=false");
    config_apply_override(&c, "optim.lr=2");
    config_apply_override(&c, "schedule.warmup_epochs=2");
    config_apply_override(&c, "schedule.final_lr_factor=0.001");
    schedule_init(&s, &c, 10);
    at(&s, 19, 10, 512, &lr, &mom);
    TU_CHECK(near(lr, 2.0), "poly: end of warmup %g", lr);
    at(&s, 20, 10, 512, &lr, &mom);
    TU_CHECK(near(lr, 2.0), "poly: start of decay %g", lr);
    at(&s, 60, 10, 512, &lr, &mom); /* t = 0.5: 0.002 + 1.998 * 0.25 */
    TU_CHECK(near(lr, 0.002 + 1.998 * 0.25), "poly: middle %g", lr);
    at(&s, 80, 10, 512, &lr, &mom); /* t = 0.75: (0.25)^2 */
    TU_CHECK(near(lr, 0.002 + 1.998 * 0.0625), "poly: three quarters %g", lr);
    at(&s, 100, 10, 512, &lr, &mom);
    TU_CHECK(near(lr, 0.002), "poly: end %g", lr);
    config_apply_override(&c, "schedule.poly_power=1");
    schedule_init(&s, &c, 10);
    at(&s, 60, 10, 512, &lr, &mom);
    TU_CHECK(near(lr, 0.002 + 1.998 * 0.5), "poly power 1: middle %g", lr);

    /* One-cycle with momentum cycling. */
    config_defaults(&c);
    config_apply_override(&c, "schedule.name=onecycle");
    config_apply_override(&c, "optim.lr=0.2");
    config_apply_override(&c, "schedule.peak_fraction=0.25");
    config_apply_override(&c, "schedule.cycle_momentum=true");
    schedule_init(&s, &c, 4);
    TU_CHECK(near(schedule_peak_lr(&s, 512), 0.4) && near(s.peak_epoch, 1.0), "onecycle peak %g at %g",
             schedule_peak_lr(&s, 512), s.peak_epoch);
    at(&s, 0, 100, 512, &lr, &mom);
    TU_CHECK(near(lr, 0.004) && near(mom, 0.95 - 0.1 * 0.01), "onecycle step 0: %g %g", lr, mom);
    at(&s, 99, 100, 512, &lr, &mom);
    TU_CHECK(near(lr, 0.4) && near(mom, 0.85), "onecycle peak: %g %g", lr, mom);
    at(&s, 250, 100, 512, &lr, &mom);
    TU_CHECK(near(lr, 0.2) && near(mom, 0.90), "onecycle down half: %g %g", lr, mom);
    at(&s, 400, 100, 512, &lr, &mom);
    TU_CHECK(near(lr, 0.0) && near(mom, 0.95), "onecycle end: %g %g", lr, mom);

    /* Constant. */
    config_defaults(&c);
    config_apply_override(&c, "schedule.name=constant");
    schedule_init(&s, &c, 10);
    at(&s, 57, 10, 256, &lr, &mom);
    TU_CHECK(near(lr, 0.1), "constant %g", lr);

    test_lars();

    /* No weight decay on BatchNorm parameters and biases, unless asked. */
    nn_graph *g = nn_graph_create(backend_cpu(), 2);
    model_spec m = {"resnet18", 3, 8, 8, 4, 64, true, false};
    int logits;
    model_build(g, &m, &logits);
    nn_graph_finalize(g, logits);
    config_defaults(&c);
    dpt_optimizer o;
    optimizer_init(&o, g, &c);
    int conv = nn_find_param(g, "layer1.0.conv1.weight"), gamma = nn_find_param(g, "layer1.0.bn1.weight"),
        bias = nn_find_param(g, "fc.bias"), fc = nn_find_param(g, "fc.weight");
    TU_CHECK(optimizer_param_decay(&o, &g->params[conv]) == 5e-4f && optimizer_param_decay(&o, &g->params[fc]) == 5e-4f,
             "weights decay");
    TU_CHECK(optimizer_param_decay(&o, &g->params[gamma]) == 0.0f && optimizer_param_decay(&o, &g->params[bias]) == 0.0f,
             "BN and bias must not decay");
    optimizer_free(&o);
    config_apply_override(&c, "optim.decay_bn_bias=true");
    optimizer_init(&o, g, &c);
    TU_CHECK(optimizer_param_decay(&o, &g->params[gamma]) == 5e-4f, "decay_bn_bias");
    /* One SGD step through the optimizer: w -= lr * (g + wd w) for the first step (v = g). */
    float *w = g->params[fc].value.data, *gr = g->params[fc].grad.data;
    w[0] = 2.0f;
    gr[0] = 0.5f;
    config_defaults(&c);
    config_apply_override(&c, "optim.nesterov=false");
    optimizer_free(&o);
    optimizer_init(&o, g, &c);
    optimizer_step(&o, g, 0.1f, 0.9f, 1.0f);
    TU_CHECK(fabsf(w[0] - (2.0f - 0.1f * (0.5f + 5e-4f * 2.0f))) < 1e-6f, "sgd step gives %g", w[0]);
    optimizer_free(&o);
    nn_graph_destroy(g);
    return tu_finish("test_optim");
}
