/* (being written) */
#include "parity.h"

void parity_optim(void) {}
