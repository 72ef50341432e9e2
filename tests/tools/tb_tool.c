/* Writes a known set of scalars with the TensorBoard event writer, for check_tensorboard.py:
 *   tb_tool DIR
 * train/loss = 1/step and train/lr = 0.01*step for steps 1..50, eval/top1 = 0.5, 0.75 at 10, 20. */
#include <stdio.h>

#include "../../src/train/tbevents.h"
#include "dpt/core/error.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: tb_tool DIR\n");
        return 2;
    }
    tb_writer *w = tb_open(argv[1]);
    if (!w) {
        fprintf(stderr, "tb_tool: %s\n", dpt_error_message());
        return 1;
    }
    const double t0 = 1700000000.0;
    for (int step = 1; step <= 50; step++) {
        tb_scalar(w, "train/loss", step, t0 + step, 1.0f / (float)step);
        tb_scalar(w, "train/lr", step, t0 + step, 0.01f * (float)step);
        if (step == 10) tb_scalar(w, "eval/top1", step, t0 + step, 0.5f);
        if (step == 20) tb_scalar(w, "eval/top1", step, t0 + step, 0.75f);
    }
    tb_close(w);
    return 0;
}
