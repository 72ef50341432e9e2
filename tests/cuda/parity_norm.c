/* (being written) */
#include "parity.h"

void parity_norm(void) {}
