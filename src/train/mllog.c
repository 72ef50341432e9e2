#include "mllog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/core/log.h"
#include "dpt/core/timer.h"

struct mllog {
    FILE *f;
    char path[1024];
    bool failed;
};

mllog *mllog_open(const char *path, bool append) {
    FILE *f = fopen(path, append ? "a" : "w");
    if (!f) {
        dpt_error(DPT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        return NULL;
    }
    mllog *m = dpt_xcalloc(1, sizeof *m);
    m->f = f;
    snprintf(m->path, sizeof m->path, "%s", path);
    return m;
}

void mllog_close(mllog *m) {
    if (!m) return;
    if (fclose(m->f) != 0 && !m->failed) log_warn("mllog: cannot write %s: %s", m->path, strerror(errno));
    free(m);
}

void json_string(char *buf, size_t size, const char *s) {
    size_t o = 0;
    if (size < 3) {
        if (size) buf[0] = '\0';
        return;
    }
    buf[o++] = '"';
    for (; *s && o + 8 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(buf + o, size - o, "\\u%04x", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
}

static void line(mllog *m, const char *type, const char *key, const char *value, const char *metadata) {
    if (!m || m->failed) return;
    /* Milliseconds since the Unix epoch, as mlperf_logging writes them. */
    long long ms = (long long)(timer_wall() * 1e3);
    fprintf(m->f,
            ":::MLLOG {\"namespace\": \"\", \"time_ms\": %lld, \"event_type\": \"%s\", \"key\": \"%s\", "
            "\"value\": %s, \"metadata\": {%s}}\n",
            ms, type, key, value ? value : "null", metadata ? metadata : "");
    if (fflush(m->f) != 0) {
        log_warn("mllog: cannot write %s: %s; no more MLPerf lines", m->path, strerror(errno));
        m->failed = true;
    }
}

void mllog_event(mllog *m, const char *key, const char *value, const char *metadata) {
    line(m, "POINT_IN_TIME", key, value, metadata);
}
void mllog_start(mllog *m, const char *key, const char *metadata) { line(m, "INTERVAL_START", key, NULL, metadata); }
void mllog_end(mllog *m, const char *key, const char *metadata) { line(m, "INTERVAL_END", key, NULL, metadata); }

void mllog_num(mllog *m, const char *key, double value) {
    char v[64];
    snprintf(v, sizeof v, "%.10g", value);
    line(m, "POINT_IN_TIME", key, v, NULL);
}

void mllog_int(mllog *m, const char *key, int64_t value) {
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long)value);
    line(m, "POINT_IN_TIME", key, v, NULL);
}

void mllog_str(mllog *m, const char *key, const char *value) {
    char v[1200];
    json_string(v, sizeof v, value);
    line(m, "POINT_IN_TIME", key, v, NULL);
}
