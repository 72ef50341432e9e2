#include "dpt/core/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

dpt_status fs_mkdirs(const char *path) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return dpt_error(DPT_ERR_IO, "path too long: %s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return dpt_error(DPT_ERR_IO, "cannot create directory %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return dpt_error(DPT_ERR_IO, "cannot create directory %s: %s", buf, strerror(errno));
    struct stat st;
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) return dpt_error(DPT_ERR_IO, "%s is not a directory", buf);
    return DPT_OK;
}

static dpt_status sync_path(const char *path, int flags) {
    int fd = open(path, flags);
    if (fd < 0) return dpt_error(DPT_ERR_IO, "cannot open %s for sync: %s", path, strerror(errno));
    int rc = fsync(fd);
    close(fd);
    if (rc != 0) return dpt_error(DPT_ERR_IO, "cannot sync %s: %s", path, strerror(errno));
    return DPT_OK;
}

dpt_status fs_commit_tmp(const char *tmp, const char *path) {
    dpt_status st = sync_path(tmp, O_RDONLY);
    if (st == DPT_OK && rename(tmp, path) != 0)
        st = dpt_error(DPT_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (st != DPT_OK) {
        unlink(tmp);
        return st;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    return sync_path(dirname(dir), O_RDONLY | O_DIRECTORY);
}
