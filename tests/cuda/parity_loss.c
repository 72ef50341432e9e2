/* (being written) */
#include "parity.h"

void parity_loss(void) {}
