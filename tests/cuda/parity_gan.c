/* (being written) */
#include "parity.h"

void parity_gan(void) {}
