/* Schedules (hand-computed values) and weight-decay exclusions. */
#include <math.h>
#include <string.h>

#include "dpt/models/models.h"
#include "dpt/optim/schedule.h"
#include "dpt/optim/sgd.h"
#include "testutil.h"

static bool near(double a, double b) { return fabs(a - b) <= 1e-9 * fmax(1.0, fabs(b)); }

int main(void) {
    dpt_config c;
    dpt_schedule s;
    double lr, mom;

    /* Linear scaling + warmup + step decay (Goyal et al.): base 0.1 per 256, batch 1024. */
    config_defaults(&c);
    config_apply_override(&c, "schedule.name=step");
    config_apply_override(&c, "optim.lr=0.1");
    config_apply_override(&c, "schedule.warmup_epochs=5");
    config_apply_override(&c, "schedule.warmup_start_factor=0.25");
    config_apply_override(&c, "schedule.milestones=30,60,80");
    schedule_init(&s, &c, 1024, 100, 9000);
    TU_CHECK(near(s.peak_lr, 0.4), "scaled lr %g", s.peak_lr);
    schedule_at(&s, 0, &lr, &mom);
    TU_CHECK(near(lr, 0.4 * (0.25 + 0.75 * 1.0 / 500)), "warmup step 0: %g", lr);
    schedule_at(&s, 249, &lr, &mom);
    TU_CHECK(near(lr, 0.4 * (0.25 + 0.75 * 250.0 / 500)), "warmup middle: %g", lr);
    schedule_at(&s, 499, &lr, &mom);
    TU_CHECK(near(lr, 0.4), "warmup end: %g", lr);
    schedule_at(&s, 2999, &lr, &mom);
    TU_CHECK(near(lr, 0.4), "before 30: %g", lr);
    schedule_at(&s, 3000, &lr, &mom);
    TU_CHECK(near(lr, 0.04), "epoch 30: %g", lr);
    schedule_at(&s, 8500, &lr, &mom);
    TU_CHECK(near(lr, 0.0004), "epoch 85: %g", lr);
    TU_CHECK(near(mom, 0.9), "momentum %g", mom);

    /* Cosine after warmup, without scaling. */
    config_defaults(&c);
    config_apply_override(&c, "schedule.name=cosine");
    config_apply_override(&c, "schedule.scale_lr=false");
    config_apply_override(&c, "optim.lr=1");
    config_apply_override(&c, "schedule.warmup_epochs=1");
    config_apply_override(&c, "schedule.final_lr_factor=0.1");
    schedule_init(&s, &c, 512, 10, 110);
    schedule_at(&s, 10, &lr, &mom);
    TU_CHECK(near(lr, 1.0), "cosine start %g", lr);
    schedule_at(&s, 60, &lr, &mom);
    TU_CHECK(near(lr, 0.1 + 0.9 * 0.5), "cosine middle %g", lr);
    schedule_at(&s, 110, &lr, &mom);
    TU_CHECK(near(lr, 0.1), "cosine end %g", lr);

    /* One-cycle with momentum cycling. */
    config_defaults(&c);
    config_apply_override(&c, "schedule.name=onecycle");
    config_apply_override(&c, "optim.lr=0.2");
    config_apply_override(&c, "schedule.peak_fraction=0.25");
    config_apply_override(&c, "schedule.cycle_momentum=true");
    schedule_init(&s, &c, 512, 100, 400);
    TU_CHECK(near(s.peak_lr, 0.4) && s.peak_step == 100, "onecycle peak %g at %lld", s.peak_lr, (long long)s.peak_step);
    schedule_at(&s, 0, &lr, &mom);
    TU_CHECK(near(lr, 0.004) && near(mom, 0.95 - 0.1 * 0.01), "onecycle step 0: %g %g", lr, mom);
    schedule_at(&s, 99, &lr, &mom);
    TU_CHECK(near(lr, 0.4) && near(mom, 0.85), "onecycle peak: %g %g", lr, mom);
    schedule_at(&s, 250, &lr, &mom);
    TU_CHECK(near(lr, 0.2) && near(mom, 0.90), "onecycle down half: %g %g", lr, mom);
    schedule_at(&s, 400, &lr, &mom);
    TU_CHECK(near(lr, 0.0) && near(mom, 0.95), "onecycle end: %g %g", lr, mom);

    /* Constant. */
    config_defaults(&c);
    config_apply_override(&c, "schedule.name=constant");
    schedule_init(&s, &c, 256, 10, 100);
    schedule_at(&s, 57, &lr, &mom);
    TU_CHECK(near(lr, 0.1), "constant %g", lr);

    /* No weight decay on BatchNorm parameters and biases, unless asked. */
    nn_graph *g = nn_graph_create(backend_cpu(), 2);
    model_spec m = {"resnet18", 3, 8, 8, 4, 64, true, false};
    int logits;
    model_build(g, &m, &logits);
    nn_graph_finalize(g, logits);
    config_defaults(&c);
    dpt_sgd o;
    sgd_init(&o, g, &c);
    int conv = nn_find_param(g, "layer1.0.conv1.weight"), gamma = nn_find_param(g, "layer1.0.bn1.weight"),
        bias = nn_find_param(g, "fc.bias"), fc = nn_find_param(g, "fc.weight");
    TU_CHECK(sgd_param_decay(&o, &g->params[conv]) == 5e-4f && sgd_param_decay(&o, &g->params[fc]) == 5e-4f,
             "weights decay");
    TU_CHECK(sgd_param_decay(&o, &g->params[gamma]) == 0.0f && sgd_param_decay(&o, &g->params[bias]) == 0.0f,
             "BN and bias must not decay");
    sgd_free(&o);
    config_apply_override(&c, "optim.decay_bn_bias=true");
    sgd_init(&o, g, &c);
    TU_CHECK(sgd_param_decay(&o, &g->params[gamma]) == 5e-4f, "decay_bn_bias");
    /* One SGD step through the optimizer: w -= lr * (g + wd w) for the first step (v = g). */
    float *w = g->params[fc].value.data, *gr = g->params[fc].grad.data;
    w[0] = 2.0f;
    gr[0] = 0.5f;
    config_defaults(&c);
    config_apply_override(&c, "optim.nesterov=false");
    sgd_free(&o);
    sgd_init(&o, g, &c);
    sgd_step(&o, g, 0.1f, 0.9f, 1.0f);
    TU_CHECK(fabsf(w[0] - (2.0f - 0.1f * (0.5f + 5e-4f * 2.0f))) < 1e-6f, "sgd step gives %g", w[0]);
    sgd_free(&o);
    nn_graph_destroy(g);
    return tu_finish("test_optim");
}
