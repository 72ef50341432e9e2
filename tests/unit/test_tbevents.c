/* TensorBoard event writer: CRC-32C vectors, and the written file read back by an independent
 * TFRecord + protobuf reader (both CRCs checked, every field decoded). tests/py/check_tensorboard.py
 * checks the same kind of file with TensorBoard's own reader. */
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/train/tbevents.h"
#include "dpt/core/error.h"
#include "testutil.h"

/* One decoded Event; fields that were absent stay 0 / empty (proto3 defaults). */
typedef struct {
    double wall_time;
    int64_t step;
    char file_version[64];
    char tag[512];
    float value;
    int n_values; /* Summary.value entries seen */
} event;

static uint64_t get_le(const uint8_t *p, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint32_t unmasked_check(const uint8_t *p, size_t n) {
    uint32_t crc = tb_crc32c(p, n);
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

/* Reads a varint at *p (< end); false when it runs past end or is longer than 10 bytes. */
static bool get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
    *v = 0;
    for (int shift = 0; shift < 70 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return true;
    }
    return false;
}

/* Walks the fields of one message. For each field calls back with its number, wire type and
 * either the varint / fixed value or the length-delimited bytes. False on malformed input. */
typedef bool (*field_fn)(void *ctx, int field, int wire, uint64_t num, const uint8_t *s, size_t n);

static bool parse_message(const uint8_t *p, size_t size, field_fn fn, void *ctx) {
    const uint8_t *end = p + size;
    while (p < end) {
        uint64_t key, num = 0, n = 0;
        const uint8_t *s = NULL;
        if (!get_varint(&p, end, &key)) return false;
        int field = (int)(key >> 3), wire = (int)(key & 7);
        if (wire == 0) {
            if (!get_varint(&p, end, &num)) return false;
        } else if (wire == 1 || wire == 5) {
            int bytes = wire == 1 ? 8 : 4;
            if (end - p < bytes) return false;
            num = get_le(p, bytes);
            p += bytes;
        } else if (wire == 2) {
            if (!get_varint(&p, end, &n) || n > (uint64_t)(end - p)) return false;
            s = p;
            p += n;
        } else {
            return false;
        }
        if (!fn(ctx, field, wire, num, s, (size_t)n)) return false;
    }
    return true;
}

static bool value_field(void *ctx, int field, int wire, uint64_t num, const uint8_t *s, size_t n) {
    event *e = ctx;
    if (field == 1 && wire == 2 && n < sizeof e->tag) {
        memcpy(e->tag, s, n);
        e->tag[n] = '\0';
    } else if (field == 2 && wire == 5) {
        uint32_t bits = (uint32_t)num;
        memcpy(&e->value, &bits, sizeof bits);
    } else {
        fprintf(stderr, "unexpected Summary.Value field %d (wire %d)\n", field, wire);
        return false;
    }
    return true;
}

static bool summary_field(void *ctx, int field, int wire, uint64_t num, const uint8_t *s, size_t n) {
    (void)num;
    event *e = ctx;
    if (field != 1 || wire != 2) return false;
    e->n_values++;
    return parse_message(s, n, value_field, e);
}

static bool event_field(void *ctx, int field, int wire, uint64_t num, const uint8_t *s, size_t n) {
    event *e = ctx;
    if (field == 1 && wire == 1) {
        memcpy(&e->wall_time, &num, sizeof num);
    } else if (field == 2 && wire == 0) {
        e->step = (int64_t)num;
    } else if (field == 3 && wire == 2 && n < sizeof e->file_version) {
        memcpy(e->file_version, s, n);
        e->file_version[n] = '\0';
    } else if (field == 5 && wire == 2) {
        return parse_message(s, n, summary_field, e);
    } else {
        fprintf(stderr, "unexpected Event field %d (wire %d)\n", field, wire);
        return false;
    }
    return true;
}

/* Reads every complete record of a file; returns the number decoded into ev[0..cap), or -1 when a
 * CRC or a proto is wrong. A truncated last record (a write cut short) ends the file quietly and
 * sets *truncated. */
static int read_events(const char *path, event *ev, int cap, bool *truncated) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    int count = 0;
    *truncated = false;
    uint8_t head[12], *data = NULL;
    size_t got;
    while ((got = fread(head, 1, 12, f)) > 0) {
        if (got < 12) {
            *truncated = true;
            break;
        }
        uint64_t n = get_le(head, 8);
        if (get_le(head + 8, 4) != unmasked_check(head, 8) || n > (1u << 20) || count >= cap) {
            fprintf(stderr, "record %d: bad length CRC or length %llu\n", count, (unsigned long long)n);
            count = -1;
            break;
        }
        data = realloc(data, n + 4);
        if (fread(data, 1, n + 4, f) != n + 4) {
            *truncated = true;
            break;
        }
        event *e = &ev[count];
        memset(e, 0, sizeof *e);
        if (get_le(data + n, 4) != unmasked_check(data, n) || !parse_message(data, n, event_field, e)) {
            fprintf(stderr, "record %d: bad data CRC or proto\n", count);
            count = -1;
            break;
        }
        count++;
    }
    free(data);
    fclose(f);
    return count;
}

/* The one events.out.tfevents.* file in dir, or false when there is not exactly one. */
static bool find_event_file(const char *dir, char *path, size_t cap) {
    DIR *d = opendir(dir);
    if (!d) return false;
    int found = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "events.out.tfevents.", 20) != 0) continue;
        snprintf(path, cap, "%s/%s", dir, de->d_name);
        found++;
    }
    closedir(d);
    return found == 1;
}

static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    char path[1024];
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static void test_crc(void) {
    uint8_t zeros[32] = {0}, ones[32], inc[32];
    memset(ones, 0xff, sizeof ones);
    for (int i = 0; i < 32; i++) inc[i] = (uint8_t)i;
    TU_CHECK(tb_crc32c("123456789", 9) == 0xE3069283u, "check value %08x", tb_crc32c("123456789", 9));
    /* The iSCSI test vectors of RFC 3720, B.4. */
    TU_CHECK(tb_crc32c(zeros, 32) == 0x8A9136AAu, "32 zeros %08x", tb_crc32c(zeros, 32));
    TU_CHECK(tb_crc32c(ones, 32) == 0x62A8AB43u, "32 0xff %08x", tb_crc32c(ones, 32));
    TU_CHECK(tb_crc32c(inc, 32) == 0x46DD794Eu, "0..31 %08x", tb_crc32c(inc, 32));
    TU_CHECK(tb_crc32c("", 0) == 0, "empty %08x", tb_crc32c("", 0));
}

typedef struct {
    const char *tag;
    int64_t step;
    double wall_time;
    float value;
} scalar;

static void test_roundtrip(void) {
    char dir[] = "/tmp/dpt_test_tb_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
    /* A long tag takes two-byte lengths at every nesting level; large and negative steps take
     * long varints; NaN and -0 must survive bit for bit. */
    char long_tag[301];
    memset(long_tag, 'x', 300);
    memcpy(long_tag, "long/", 5);
    long_tag[300] = '\0';
    const scalar in[] = {
        {"train/loss", 1, 1700000000.25, 2.5f},
        {"train/loss", 2, 1700000001.5, 0.125f},
        {"train/lr", 0, 1700000001.75, -0.0f},
        {"eval/top1", (int64_t)1 << 40, 1700000002.0, 0.75f},
        {"neg", -3, 0.0, NAN},
        {long_tag, 300, 1e9, 3.0e38f},
    };
    const int n_in = (int)DPT_ARRAY_LEN(in);
    tb_writer *w = tb_open(dir);
    TU_CHECK(w != NULL, "tb_open(%s): %s", dir, dpt_error_message());
    if (!w) return;
    for (int i = 0; i < n_in; i++) tb_scalar(w, in[i].tag, in[i].step, in[i].wall_time, in[i].value);
    tb_flush(w);

    /* Flushed records are complete before close: TensorBoard reads the file while training runs. */
    char path[1024];
    event ev[16];
    bool truncated;
    TU_CHECK(find_event_file(dir, path, sizeof path), "no single event file in %s", dir);
    int count = read_events(path, ev, 16, &truncated);
    TU_CHECK(count == n_in + 1 && !truncated, "after flush: %d records, truncated %d", count, truncated);
    tb_close(w);
    tb_close(NULL);

    count = read_events(path, ev, 16, &truncated);
    TU_CHECK(count == n_in + 1 && !truncated, "%d records (want %d), truncated %d", count, n_in + 1, truncated);
    if (count == n_in + 1) {
        char host[256] = "";
        gethostname(host, sizeof host);
        TU_CHECK(tu_contains(path, "/events.out.tfevents.") && tu_contains(path, host), "file name %s", path);
        TU_CHECK(!strcmp(ev[0].file_version, "brain.Event:2"), "file_version '%s'", ev[0].file_version);
        TU_CHECK(ev[0].wall_time > 1.6e9 && ev[0].n_values == 0 && ev[0].step == 0, "version event wall %f",
                 ev[0].wall_time);
        for (int i = 0; i < n_in; i++) {
            const event *e = &ev[i + 1];
            TU_CHECK(!strcmp(e->tag, in[i].tag), "record %d tag '%s'", i + 1, e->tag);
            TU_CHECK(e->step == in[i].step, "record %d step %lld", i + 1, (long long)e->step);
            TU_CHECK(e->wall_time == in[i].wall_time, "record %d wall_time %.17g", i + 1, e->wall_time);
            TU_CHECK(!memcmp(&e->value, &in[i].value, sizeof(float)), "record %d value %g", i + 1, e->value);
            TU_CHECK(e->n_values == 1 && e->file_version[0] == '\0', "record %d shape", i + 1);
        }
    }
    remove_dir(dir);
}

static void test_open_errors(void) {
    TU_CHECK(tb_open("/nonexistent/dpt_tb_dir") == NULL, "missing directory accepted");
    TU_CHECK(tu_contains(dpt_error_message(), "/nonexistent/dpt_tb_dir/events.out.tfevents."), "message: %s",
             dpt_error_message());
    /* A regular file in place of the directory fails even for root, who ignores permissions. */
    const char *file = tu_write_temp("tb_not_a_dir", "x");
    TU_CHECK(tb_open(file) == NULL, "a regular file accepted as directory");
    unlink(file);
    char dir[] = "/tmp/dpt_test_tb_ro_XXXXXX";
    if (geteuid() != 0 && mkdtemp(dir)) {
        chmod(dir, 0555);
        tb_writer *w = tb_open(dir);
        TU_CHECK(w == NULL, "read-only directory accepted");
        tb_close(w);
        chmod(dir, 0755);
        remove_dir(dir);
    }
}

/* A full disk, imitated by a file-size limit: writing must stop without crashing and leave the
 * records written before the failure readable. */
static void test_write_failure(void) {
    char dir[] = "/tmp/dpt_test_tb_full_XXXXXX";
    if (!mkdtemp(dir)) return;
    struct rlimit old, small;
    getrlimit(RLIMIT_FSIZE, &old);
    small = old;
    small.rlim_cur = 2000;
    signal(SIGXFSZ, SIG_IGN);
    tb_writer *w = tb_open(dir);
    TU_CHECK(w != NULL, "tb_open: %s", dpt_error_message());
    if (!w) return;
    setrlimit(RLIMIT_FSIZE, &small);
    for (int i = 0; i < 500; i++) {
        tb_scalar(w, "train/loss", i, 1.0 * i, 1.0f / (float)(i + 1));
        if (i % 10 == 0) tb_flush(w);
    }
    tb_close(w);
    setrlimit(RLIMIT_FSIZE, &old);
    char path[1024];
    struct stat st;
    bool truncated;
    event ev[600];
    TU_CHECK(find_event_file(dir, path, sizeof path) && stat(path, &st) == 0 && st.st_size <= 2000,
             "file not limited");
    int count = read_events(path, ev, 600, &truncated);
    TU_CHECK(count > 1 && count < 501, "%d readable records before the failure", count);
    for (int i = 1; i < count; i++)
        TU_CHECK(ev[i].step == i - 1 && ev[i].value == 1.0f / (float)i, "record %d", i);
    remove_dir(dir);
}

int main(void) {
    test_crc();
    test_roundtrip();
    test_open_errors();
    test_write_failure();
    return tu_finish("test_tbevents");
}
