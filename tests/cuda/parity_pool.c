/* (being written) */
#include "parity.h"

void parity_pool(void) {}
