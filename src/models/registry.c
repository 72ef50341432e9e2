/* Model selection by name. */
#include <string.h>

#include "dpt/models/models.h"

typedef struct model_entry {
    const char *name;
    int (*build)(nn_graph *g, const model_spec *s);
    int min_size; /* smallest input side the architecture accepts */
} model_entry;

static const model_entry models[] = {
    {"resnet9", model_resnet9, 8},
    {"resnet18", model_resnet18_cifar, 8},
    {"resnet50", model_resnet50, 17},
};

dpt_status model_build(nn_graph *g, const model_spec *s, int *logits) {
    for (size_t i = 0; i < DPT_ARRAY_LEN(models); i++) {
        if (strcmp(models[i].name, s->name) != 0) continue;
        if (s->height < models[i].min_size || s->width < models[i].min_size)
            return dpt_error(DPT_ERR_CONFIG, "model %s needs images of at least %dx%d, the data has %dx%d", s->name,
                             models[i].min_size, models[i].min_size, s->height, s->width);
        if (s->num_classes < 1 || s->in_channels < 1)
            return dpt_error(DPT_ERR_CONFIG, "model %s: need at least 1 class and 1 input channel", s->name);
        *logits = models[i].build(g, s);
        return DPT_OK;
    }
    return dpt_error(DPT_ERR_CONFIG, "unknown model '%s' (models: resnet9, resnet18, resnet50)", s->name);
}
