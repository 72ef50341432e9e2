#ifndef DPT_CORE_FSUTIL_H
#define DPT_CORE_FSUTIL_H

#include "dpt/core/error.h"

/* mkdir -p */
dpt_status fs_mkdirs(const char *path);

/* The last step of an atomic write: fsyncs the finished temporary file `tmp` (written and closed
 * by the caller, in the same directory as `path`), renames it to `path` and fsyncs the directory,
 * so that a crash leaves the old file or the new one, never half of one. On failure `tmp` is
 * removed and the message names both files. */
dpt_status fs_commit_tmp(const char *tmp, const char *path);

#endif
