#ifndef DPT_CORE_TIMER_H
#define DPT_CORE_TIMER_H

/* Seconds from a monotonic clock. */
double timer_now(void);
/* Seconds since the Unix epoch (wall clock), for logs that need a date. */
double timer_wall(void);

#endif
