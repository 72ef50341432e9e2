/* Precision names and the choice of a rank's GPU: plain C shared by every build, so that the
 * arithmetic is tested on machines without a GPU. */
#include <stdio.h>
#include <string.h>

#include "dpt/backend/cuda.h"

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

int cuda_pick_device(int local_rank, int local_size, int visible, bool allow_sharing, char *why, size_t size) {
    if (visible <= 0) {
        snprintf(why, size, "no GPU visible");
        return -1;
    }
    if (local_rank < 0 || local_size < 1 || local_rank >= local_size) {
        snprintf(why, size, "local rank %d of %d is not a place on a node", local_rank, local_size);
        return -1;
    }
    /* One device visible: either one per task (Slurm's --gpus-per-task, or CUDA_VISIBLE_DEVICES
     * set per rank by a wrapper) or one GPU that the node's ranks share. A rank cannot tell the
     * two apart; both mean device 0, and the NCCL set-up refuses two ranks on one GPU. */
    if (visible == 1) return 0;
    if (local_size <= visible) return local_rank;
    if (allow_sharing) return local_rank % visible;
    snprintf(why, size,
             "%d ranks on this node but %d GPUs visible: start one rank per GPU, or set "
             "train.gpu_sharing = true (ranks on one GPU then communicate over MPI, not NCCL)",
             local_size, visible);
    return -1;
}
