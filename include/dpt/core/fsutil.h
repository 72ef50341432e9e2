#ifndef DPT_CORE_FSUTIL_H
#define DPT_CORE_FSUTIL_H

#include "dpt/core/error.h"

/* mkdir -p */
dpt_status fs_mkdirs(const char *path);

#endif
