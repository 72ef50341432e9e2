/* Errors. Two kinds:
 *  - recoverable: parsers, file readers and setup code return a dpt_status and leave a message
 *    (naming the file, key or index) that the caller reports;
 *  - fatal: a library call that must not fail (oneDNN, MPI, HDF5 in the step loop, CUDA) fails.
 *    The check macros of every library are built on DPT_CHECK_LIB below: they print rank, host,
 *    the expression, file:line and the library's message, then abort all ranks. */
#ifndef DPT_CORE_ERROR_H
#define DPT_CORE_ERROR_H

#include "dpt/core/common.h"

typedef enum dpt_status {
    DPT_OK = 0,
    DPT_ERR_IO,       /* a file is missing, unreadable or unwritable */
    DPT_ERR_FORMAT,   /* a file has the wrong layout or content */
    DPT_ERR_CONFIG,   /* a config key or value is invalid */
    DPT_ERR_ARG,      /* a command-line argument is invalid */
    DPT_ERR_COMM,     /* a collective failed or ranks disagree */
    DPT_ERR_NOMEM,
    DPT_ERR_INTERNAL,
} dpt_status;

/* Sets this thread's error message and returns s, so that `return dpt_error(...)` reads well. */
dpt_status dpt_error(dpt_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *dpt_error_message(void);
const char *dpt_status_name(dpt_status s);

/* The CUDA back end's files are C++ (nvcc), which spells noreturn differently. */
#ifdef __cplusplus
#define DPT_NORETURN [[noreturn]]
#else
#define DPT_NORETURN _Noreturn
#endif

/* Who we are, for fatal messages; set by comm_init. */
void dpt_error_set_identity(int rank, const char *host);
/* Called by dpt_fatal after printing; comm installs one that aborts every rank. */
void dpt_error_set_abort_hook(void (*hook)(int code));

DPT_NORETURN void dpt_fatal(const char *lib, const char *expr, const char *file, int line,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The one generic check. `...` is a printf format and arguments for the library's message. */
#define DPT_CHECK_LIB(lib, ok, expr_text, ...)                                  \
    do {                                                                        \
        if (!(ok)) dpt_fatal((lib), (expr_text), __FILE__, __LINE__, __VA_ARGS__); \
    } while (0)

/* An internal invariant. Evaluates cond exactly once (no side effects are hidden in it). */
#define DPT_CHECK(cond) DPT_CHECK_LIB("dptrain", (cond), #cond, "internal invariant violated")

/* Propagates a non-OK status to the caller. */
#define DPT_TRY(expr)                         \
    do {                                      \
        dpt_status try_s_ = (expr);           \
        if (try_s_ != DPT_OK) return try_s_;  \
    } while (0)

/* Allocation that cannot fail quietly. */
void *dpt_xmalloc(size_t bytes);
void *dpt_xcalloc(size_t n, size_t size);
void *dpt_xrealloc(void *p, size_t bytes);
char *dpt_xstrdup(const char *s);
/* A reusable byte buffer: grows *buf (keeping its contents) to at least `need` bytes, with
 * headroom so that repeated growth is amortised; returns *buf. */
uint8_t *dpt_xgrow(uint8_t **buf, size_t *cap, size_t need);

#endif
