/* (being written) */
#include "parity.h"

void parity_conv(void) {}
