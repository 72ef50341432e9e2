/* Logging. Rank 0 writes to the console; every rank writes its own file in the run directory
 * (logs/rank_<r>.txt), and rank 0 also mirrors the console into log.txt. Before the run
 * directory exists, messages go to the console only. */
#ifndef DPT_CORE_LOG_H
#define DPT_CORE_LOG_H

#include "dpt/core/error.h"

void log_init(int rank);
/* Opens <dir>/log.txt (rank 0) and <dir>/logs/rank_<r>.txt (every rank). */
dpt_status log_open_files(const char *run_dir);
void log_close_files(void);

/* Console (rank 0) + log.txt + rank file. */
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Like log_info, prefixed "warning: ". */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* stderr on whichever rank calls it + its rank file. */
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The rank file only, on any rank. */
void log_rank(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A transient console line on rank 0 (progress bar on a TTY); never written to files. */
void log_status_line(const char *line);
/* Ends a pending status line so that the next message starts on a fresh line. */
void log_status_clear(void);
/* True when rank 0's stdout is a terminal. */
bool log_is_tty(void);

#endif
