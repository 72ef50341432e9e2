/* Precision names, shared by every build. */
#include <stdio.h>
#include <string.h>

#include "dpt/backend/backend.h"

static const char *const precision_names[] = {"fp32", "tf32", "bf16", "fp16"};

const char *precision_name(dpt_precision p) {
    return p >= PREC_FP32 && p <= PREC_FP16 ? precision_names[p] : "?";
}

bool precision_parse(const char *s, dpt_precision *p) {
    for (int i = 0; i < 4; i++)
        if (strcmp(s, precision_names[i]) == 0) {
            *p = (dpt_precision)i;
            return true;
        }
    return false;
}
