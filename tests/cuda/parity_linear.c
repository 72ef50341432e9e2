/* (being written) */
#include "parity.h"

void parity_linear(void) {}
