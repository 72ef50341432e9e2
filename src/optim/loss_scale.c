#include "dpt/optim/loss_scale.h"

void loss_scaler_init(loss_scaler *s, bool on, double init, int64_t window) {
    s->on = on;
    s->scale = on ? init : 1.0;
    s->window = window > 0 ? window : 1;
    s->good = 0;
    s->overflows = 0;
}

bool loss_scaler_is_overflow(const loss_scaler *s, bool grad_finite) {
    return s->on && !grad_finite && s->scale > LOSS_SCALE_MIN;
}

bool loss_scaler_update(loss_scaler *s, bool overflow) {
    if (!s->on) return false;
    if (overflow) {
        s->overflows++;
        s->good = 0;
        const double next = s->scale / 2.0;
        s->scale = next < LOSS_SCALE_MIN ? LOSS_SCALE_MIN : next;
        return true;
    }
    if (++s->good < s->window) return false;
    s->good = 0;
    if (s->scale * 2.0 > LOSS_SCALE_MAX) return false;
    s->scale *= 2.0;
    return true;
}
