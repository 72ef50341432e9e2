/* Dynamic loss scaling (mixed precision with fp16 activations, whose range is small): the loss
 * gradient is multiplied by a scale S so that small gradients stay representable, and the update
 * divides by S. A step whose summed gradient is not finite is skipped and halves S; `window` good
 * steps in a row double it (the policy of Micikevicius et al., "Mixed Precision Training", and of
 * torch.cuda.amp.GradScaler, with its growth interval as the window). */
#ifndef DPT_OPTIM_LOSS_SCALE_H
#define DPT_OPTIM_LOSS_SCALE_H

#include "dpt/core/common.h"

typedef struct loss_scaler {
    bool on;          /* off: scale stays 1 */
    double scale;     /* S */
    int64_t window;   /* good steps in a row before S doubles */
    int64_t good;     /* good steps since the last change */
    int64_t overflows; /* steps skipped for an overflow, in all */
} loss_scaler;

/* Below this the scale does not go: a gradient that overflows at S = 1 is not the scale's doing. */
#define LOSS_SCALE_MIN 1.0
/* Nor above this (2^127 x 2 would be infinite in float32). */
#define LOSS_SCALE_MAX 1.7014118346046923e38

void loss_scaler_init(loss_scaler *s, bool on, double init, int64_t window);
/* Multiplier of the loss gradient (S, or 1 when off). */
static inline double loss_scaler_scale(const loss_scaler *s) { return s->on ? s->scale : 1.0; }
/* True when a step whose summed gradient is not finite (with a finite loss) is the scale's
 * overflow: scaling is on and S can still be halved. Such a step is skipped without counting as
 * a bad step. */
bool loss_scaler_is_overflow(const loss_scaler *s, bool grad_finite);
/* After a step: an overflow halves S (and resets the count), a good step counts and doubles S
 * after `window` in a row. Returns true when S changed. */
bool loss_scaler_update(loss_scaler *s, bool overflow);

#endif
