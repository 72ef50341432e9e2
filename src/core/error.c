#include "dpt/core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char err_msg[2048];
static int err_rank = -1;
static char err_host[256] = "?";
static void (*abort_hook)(int code);

dpt_status dpt_error(dpt_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    va_end(ap);
    return s;
}

const char *dpt_error_message(void) { return err_msg[0] ? err_msg : "(no message)"; }

const char *dpt_status_name(dpt_status s) {
    switch (s) {
    case DPT_OK: return "ok";
    case DPT_ERR_IO: return "I/O error";
    case DPT_ERR_FORMAT: return "format error";
    case DPT_ERR_CONFIG: return "config error";
    case DPT_ERR_ARG: return "argument error";
    case DPT_ERR_COMM: return "communication error";
    case DPT_ERR_NOMEM: return "out of memory";
    case DPT_ERR_INTERNAL: return "internal error";
    }
    return "unknown error";
}

void dpt_error_set_identity(int rank, const char *host) {
    err_rank = rank;
    snprintf(err_host, sizeof err_host, "%s", host);
}

void dpt_error_set_abort_hook(void (*hook)(int code)) { abort_hook = hook; }

void dpt_fatal(const char *lib, const char *expr, const char *file, int line, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "dptrain: fatal [rank %d on %s] %s:%d: %s: `%s` failed: %s\n", err_rank, err_host,
            file, line, lib, expr, msg);
    fflush(stderr);
    if (abort_hook) abort_hook(1);
    exit(1);
}

void *dpt_xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    DPT_CHECK_LIB("libc", p != NULL, "malloc", "cannot allocate %zu bytes", bytes);
    return p;
}

void *dpt_xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    DPT_CHECK_LIB("libc", p != NULL, "calloc", "cannot allocate %zu x %zu bytes", n, size);
    return p;
}

void *dpt_xrealloc(void *old, size_t bytes) {
    void *p = realloc(old, bytes ? bytes : 1);
    DPT_CHECK_LIB("libc", p != NULL, "realloc", "cannot allocate %zu bytes", bytes);
    return p;
}

uint8_t *dpt_xgrow(uint8_t **buf, size_t *cap, size_t need) {
    if (*cap < need) {
        *cap = need + need / 8;
        *buf = dpt_xrealloc(*buf, *cap);
    }
    return *buf;
}

char *dpt_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = dpt_xmalloc(n);
    memcpy(p, s, n);
    return p;
}
