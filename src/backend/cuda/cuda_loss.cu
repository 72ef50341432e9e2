/* (being written) */
#include "cuda_internal.h"

void cu_fill_loss(dpt_backend *be) { (void)be; }
