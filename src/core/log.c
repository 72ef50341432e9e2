#include "dpt/core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int log_rank_id;
static FILE *log_console_file; /* log.txt, rank 0 */
static FILE *log_rank_file;    /* logs/rank_<r>.txt */
static bool status_pending;

void log_init(int rank) { log_rank_id = rank; }

bool log_is_tty(void) { return isatty(STDOUT_FILENO) != 0; }

dpt_status log_open_files(const char *run_dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/logs", run_dir);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return dpt_error(DPT_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/logs/rank_%d.txt", run_dir, log_rank_id);
    log_rank_file = fopen(path, "a");
    if (!log_rank_file) return dpt_error(DPT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    if (log_rank_id == 0) {
        snprintf(path, sizeof path, "%s/log.txt", run_dir);
        log_console_file = fopen(path, "a");
        if (!log_console_file) return dpt_error(DPT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    }
    return DPT_OK;
}

void log_close_files(void) {
    if (log_console_file) fclose(log_console_file);
    if (log_rank_file) fclose(log_rank_file);
    log_console_file = log_rank_file = NULL;
}

void log_status_clear(void) {
    if (status_pending) {
        fputc('\n', stdout);
        fflush(stdout);
        status_pending = false;
    }
}

static void log_emit(const char *prefix, const char *fmt, va_list ap) {
    char msg[4096];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (log_rank_id == 0) {
        log_status_clear();
        fprintf(stdout, "%s%s\n", prefix, msg);
        fflush(stdout);
        if (log_console_file) {
            fprintf(log_console_file, "%s%s\n", prefix, msg);
            fflush(log_console_file);
        }
    }
    if (log_rank_file) {
        fprintf(log_rank_file, "%s%s\n", prefix, msg);
        fflush(log_rank_file);
    }
}

void log_info(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_emit("", fmt, ap);
    va_end(ap);
}

void log_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_emit("warning: ", fmt, ap);
    va_end(ap);
}

void log_error(const char *fmt, ...) {
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (log_rank_id == 0) log_status_clear();
    fprintf(stderr, "dptrain: error: %s\n", msg);
    fflush(stderr);
    if (log_rank_file) {
        fprintf(log_rank_file, "error: %s\n", msg);
        fflush(log_rank_file);
    }
    if (log_console_file) {
        fprintf(log_console_file, "error: %s\n", msg);
        fflush(log_console_file);
    }
}

void log_rank(const char *fmt, ...) {
    if (!log_rank_file) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(log_rank_file, fmt, ap);
    va_end(ap);
    fputc('\n', log_rank_file);
    fflush(log_rank_file);
}

void log_status_line(const char *line) {
    if (log_rank_id != 0) return;
    fprintf(stdout, "\r%s\033[K", line);
    fflush(stdout);
    status_pending = true;
}
