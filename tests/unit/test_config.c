/* INI parsing, overrides and validation messages. */
#include <string.h>

#include "dpt/core/config.h"
#include "testutil.h"

static dpt_status load_text(dpt_config *c, const char *name, const char *text) {
    config_defaults(c);
    return config_load_file(c, tu_write_temp(name, text));
}

int main(void) {
    dpt_config c;
    config_defaults(&c);
    TU_CHECK(!strcmp(c.model.name, "resnet9"), "default model %s", c.model.name);
    TU_CHECK(c.train.batch_size.n == 1 && c.train.batch_size.value[0] == 512, "default batch %lld",
             (long long)c.train.batch_size.value[0]);
    TU_CHECK(c.data.image_size.n == 0, "image_size unset by default");

    /* Phases: a value per epoch range. */
    TU_CHECK(config_apply_override(&c, "train.batch_size=256, 10:1024,20:4096") == DPT_OK, "phases: %s",
             dpt_error_message());
    TU_CHECK(c.train.batch_size.n == 3 && c.train.batch_size.epoch[1] == 10 && c.train.batch_size.value[2] == 4096,
             "phases parsed");
    TU_CHECK(cfg_phase_value(&c.train.batch_size, 0, 0) == 256 && cfg_phase_value(&c.train.batch_size, 9, 0) == 256 &&
                 cfg_phase_value(&c.train.batch_size, 10, 0) == 1024 && cfg_phase_value(&c.train.batch_size, 99, 0) == 4096,
             "phase lookup");
    char text[128];
    config_phases_text(&c.train.batch_size, text, sizeof text);
    TU_CHECK(!strcmp(text, "256,10:1024,20:4096"), "phases written back as %s", text);
    TU_CHECK(config_apply_override(&c, "train.batch_size=256,10:1024,5:2048") == DPT_ERR_CONFIG &&
                 tu_contains(dpt_error_message(), "phase epochs must increase (5 after 10)"),
             "phases out of order: %s", dpt_error_message());
    TU_CHECK(config_apply_override(&c, "train.batch_size=3:256") == DPT_ERR_CONFIG &&
                 tu_contains(dpt_error_message(), "first phase must start at epoch 0"),
             "first phase: %s", dpt_error_message());
    TU_CHECK(config_apply_override(&c, "train.batch_size=256,x:5") == DPT_ERR_CONFIG &&
                 tu_contains(dpt_error_message(), "train.batch_size = '256,x:5'"),
             "malformed phases: %s", dpt_error_message());
    TU_CHECK(config_apply_override(&c, "train.batch_size=256,4:0") == DPT_ERR_CONFIG &&
                 tu_contains(dpt_error_message(), "value 0 out of range"),
             "phase value range: %s", dpt_error_message());
    TU_CHECK(config_apply_override(&c, "train.batch_size=") == DPT_ERR_CONFIG, "empty batch accepted");
    TU_CHECK(config_apply_override(&c, "data.image_size=") == DPT_OK && c.data.image_size.n == 0,
             "empty image_size (stored size) rejected");
    config_defaults(&c);
    TU_CHECK(c.schedule.milestones.n == 3 && c.schedule.milestones.v[2] == 80, "default milestones");

    /* A valid file with comments, whitespace and every type. */
    dpt_status st = load_text(&c, "ok.ini",
                              "; comment\n# another\n[model]\n  name = resnet50  ; trailing comment\nwidth=32\n"
                              "[optim]\nlr = 0.25\nnesterov = false\n[schedule]\nmilestones = 10, 20.5\n"
                              "[data]\ntrain = /a/b#c.h5\n");
    TU_CHECK(st == DPT_OK, "valid file rejected: %s", dpt_error_message());
    TU_CHECK(!strcmp(c.model.name, "resnet50"), "name %s", c.model.name);
    TU_CHECK(c.model.width == 32, "width %lld", (long long)c.model.width);
    TU_CHECK(c.optim.lr == 0.25, "lr %g", c.optim.lr);
    TU_CHECK(!c.optim.nesterov, "nesterov");
    TU_CHECK(c.schedule.milestones.n == 2 && c.schedule.milestones.v[1] == 20.5, "milestones");
    TU_CHECK(!strcmp(c.data.train, "/a/b#c.h5"), "'#' inside a value is not a comment: %s", c.data.train);

    /* Overrides. */
    TU_CHECK(config_apply_override(&c, "optim.lr=0.5") == DPT_OK && c.optim.lr == 0.5, "override lr");
    TU_CHECK(config_apply_override(&c, "train.epochs = 3") == DPT_OK && c.train.epochs == 3, "override epochs");

    /* Errors name the place, the key and what is allowed. */
    st = load_text(&c, "unknown.ini", "[optim]\nlr = 0.1\nlrr = 0.2\n");
    TU_CHECK(st == DPT_ERR_CONFIG, "unknown key accepted");
    TU_CHECK(tu_contains(dpt_error_message(), "unknown.ini:3") && tu_contains(dpt_error_message(), "'lrr'") &&
                 tu_contains(dpt_error_message(), "[optim]"),
             "message: %s", dpt_error_message());
    st = load_text(&c, "neg.ini", "[optim]\nlr = -0.1\n");
    TU_CHECK(st == DPT_ERR_CONFIG && tu_contains(dpt_error_message(), "neg.ini:2") &&
                 tu_contains(dpt_error_message(), "optim.lr") && tu_contains(dpt_error_message(), "(0, 1000]"),
             "negative lr: %s", dpt_error_message());
    st = load_text(&c, "zero.ini", "[optim]\nlr = 0\n");
    TU_CHECK(st == DPT_ERR_CONFIG, "lr = 0 accepted (range is open at 0)");
    st = load_text(&c, "type.ini", "[train]\nepochs = ten\n");
    TU_CHECK(st == DPT_ERR_CONFIG && tu_contains(dpt_error_message(), "not an integer"), "bad int: %s",
             dpt_error_message());
    st = load_text(&c, "frac.ini", "[train]\nepochs = 2.5\n");
    TU_CHECK(st == DPT_ERR_CONFIG, "fractional int accepted");
    st = load_text(&c, "bool.ini", "[optim]\nnesterov = maybe\n");
    TU_CHECK(st == DPT_ERR_CONFIG && tu_contains(dpt_error_message(), "boolean"), "bad bool: %s", dpt_error_message());
    st = load_text(&c, "enum.ini", "[model]\nname = vgg\n");
    TU_CHECK(st == DPT_ERR_CONFIG && tu_contains(dpt_error_message(), "resnet9|resnet18|resnet50"), "bad enum: %s",
             dpt_error_message());
    st = load_text(&c, "section.ini", "[optimizer]\nlr = 0.1\n");
    TU_CHECK(st == DPT_ERR_CONFIG && tu_contains(dpt_error_message(), "unknown section [optimizer]"),
             "bad section: %s", dpt_error_message());
    st = load_text(&c, "dup.ini", "[optim]\nlr = 0.1\nlr = 0.2\n");
    TU_CHECK(st == DPT_ERR_CONFIG && tu_contains(dpt_error_message(), "set twice"), "duplicate: %s",
             dpt_error_message());
    st = load_text(&c, "nosec.ini", "lr = 0.1\n");
    TU_CHECK(st == DPT_ERR_CONFIG && tu_contains(dpt_error_message(), "outside any [section]"), "no section: %s",
             dpt_error_message());
    st = load_text(&c, "noeq.ini", "[optim]\nlr 0.1\n");
    TU_CHECK(st == DPT_ERR_CONFIG && tu_contains(dpt_error_message(), "key = value"), "no '=': %s",
             dpt_error_message());
    st = load_text(&c, "list.ini", "[schedule]\nmilestones = 10, x\n");
    TU_CHECK(st == DPT_ERR_CONFIG && tu_contains(dpt_error_message(), "not a number"), "bad list: %s",
             dpt_error_message());
    config_defaults(&c);
    st = config_load_file(&c, "/nonexistent/dir/x.ini");
    TU_CHECK(st == DPT_ERR_IO && tu_contains(dpt_error_message(), "/nonexistent/dir/x.ini"), "missing file: %s",
             dpt_error_message());
    st = config_apply_override(&c, "optim.momentum=1.5");
    TU_CHECK(st == DPT_ERR_CONFIG && tu_contains(dpt_error_message(), "--set optim.momentum=1.5") &&
                 tu_contains(dpt_error_message(), "[0, 1]"),
             "override range: %s", dpt_error_message());
    st = config_apply_override(&c, "lr=0.1");
    TU_CHECK(st == DPT_ERR_CONFIG && tu_contains(dpt_error_message(), "section.key=value"), "override form: %s",
             dpt_error_message());

    /* The resolved config reads back to the same values. */
    config_defaults(&c);
    config_apply_override(&c, "optim.lr=0.123456789");
    config_apply_override(&c, "schedule.milestones=1,2,3.5");
    config_apply_override(&c, "data.train=x y.h5");
    const char *path = tu_write_temp("resolved.ini", "");
    TU_CHECK(config_write(&c, path) == DPT_OK, "write: %s", dpt_error_message());
    dpt_config back;
    config_defaults(&back);
    st = config_load_file(&back, path);
    TU_CHECK(st == DPT_OK, "reload: %s", dpt_error_message());
    TU_CHECK(memcmp(&back, &c, sizeof c) == 0, "resolved config does not round-trip");
    return tu_finish("test_config");
}
