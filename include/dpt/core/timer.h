#ifndef DPT_CORE_TIMER_H
#define DPT_CORE_TIMER_H

#include <stdint.h>

/* Seconds from a monotonic clock. */
double timer_now(void);
/* Seconds since the Unix epoch (wall clock), for logs that need a date. */
double timer_wall(void);
/* The median of n timings (0 when n <= 0); v is left as it is. */
double timer_median(const double *v, int64_t n);

#endif
