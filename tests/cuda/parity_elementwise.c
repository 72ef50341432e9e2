/* (being written) */
#include "parity.h"

void parity_elementwise(void) {}
