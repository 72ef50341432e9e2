/* MLPerf logging: ":::MLLOG {json}" lines in the format of mlperf_logging.mllog, which the MLPerf
 * compliance checker (python3 -m mlperf_logging.compliance_checker) reads. Rank 0 writes. */
#ifndef DPT_TRAIN_MLLOG_H
#define DPT_TRAIN_MLLOG_H

#include <stdint.h>

#include "dpt/core/error.h"

typedef struct mllog mllog;

/* NULL with dpt_error() set when the file cannot be created. */
mllog *mllog_open(const char *path, bool append);
void mllog_close(mllog *m); /* NULL is fine */

/* `value` is JSON text ("0.9", "true", "null", or a string made with mllog_str);
 * `metadata` is the members of the metadata object without braces ("\"epoch_num\": 3"), or NULL. */
void mllog_event(mllog *m, const char *key, const char *value, const char *metadata);
void mllog_start(mllog *m, const char *key, const char *metadata);
void mllog_end(mllog *m, const char *key, const char *metadata);
/* Shorthands for point events with a number or a string value. */
void mllog_num(mllog *m, const char *key, double value);
void mllog_int(mllog *m, const char *key, int64_t value);
void mllog_str(mllog *m, const char *key, const char *value);

/* Writes s as a JSON string literal (quotes and escapes) into buf. */
void json_string(char *buf, size_t size, const char *s);

#endif
