/* TensorBoard event files without a protobuf library. The file is a sequence of TFRecords:
 *   uint64 length (little endian), uint32 masked_crc32c(length), data, uint32 masked_crc32c(data)
 * and each record's data is a serialized tensorboard.Event. Field numbers and wire types, checked
 * against tensorboard 2.21's event_pb2 / summary_pb2 descriptors:
 *   Event:         wall_time = 1 (double, fixed64), step = 2 (int64, varint),
 *                  file_version = 3 (string), summary = 5 (Summary)
 *   Summary:       repeated Value value = 1
 *   Summary.Value: tag = 1 (string), simple_value = 2 (float, fixed32)
 * A write error never stops training: the writer warns once and drops everything after. */
#include "tbevents.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dpt/core/error.h"
#include "dpt/core/log.h"
#include "dpt/core/timer.h"

struct tb_writer {
    FILE *f;
    bool failed; /* after the first I/O error nothing more is written */
    uint8_t *buf; /* one encoded record, reused */
    size_t cap;
    char path[4352];
};

/* Reflected polynomial 0x82F63B78 processed four bits at a time: a 16-entry table needs no
 * initialisation (so no thread-safety question) and is fast enough for a few records a step. */
static const uint32_t crc32c_nibble[16] = {
    0x00000000, 0x105ec76f, 0x20bd8ede, 0x30e349b1, 0x417b1dbc, 0x5125dad3, 0x61c69362, 0x7198540d,
    0x82f63b78, 0x92a8fc17, 0xa24bb5a6, 0xb21572c9, 0xc38d26c4, 0xd3d3e1ab, 0xe330a81a, 0xf36e6f75};

uint32_t tb_crc32c(const void *data, size_t n) {
    const uint8_t *p = data;
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        crc = crc32c_nibble[crc & 15] ^ (crc >> 4);
        crc = crc32c_nibble[crc & 15] ^ (crc >> 4);
    }
    return crc ^ 0xffffffffu;
}

/* TFRecord masks the CRC because a CRC stored next to the data it covers is a weak check. */
static uint32_t masked_crc(const void *data, size_t n) {
    uint32_t crc = tb_crc32c(data, n);
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

/* Protobuf encoding helpers: each writes at p and returns the advanced pointer. */
static size_t varint_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static uint8_t *put_le(uint8_t *p, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * i));
    return p + bytes;
}

enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_LEN = 2, WIRE_FIXED32 = 5 };

static uint8_t *put_key(uint8_t *p, int field, int wire) { return put_varint(p, (uint64_t)(field << 3 | wire)); }

static uint8_t *put_double(uint8_t *p, int field, double v) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return put_le(put_key(p, field, WIRE_FIXED64), bits, 8);
}

static uint8_t *put_bytes(uint8_t *p, int field, const void *s, size_t n) {
    p = put_varint(put_key(p, field, WIRE_LEN), n);
    memcpy(p, s, n);
    return p + n;
}

static void writer_fail(tb_writer *w, const char *what) {
    if (w->failed) return;
    w->failed = true;
    log_warn("tensorboard: %s %s failed (%s); no more events will be written", what, w->path, strerror(errno));
}

/* Frames the event in w->buf[12 .. 12+n) as a TFRecord (the 12-byte header goes in front of it). */
static void write_record(tb_writer *w, size_t n) {
    if (w->failed) return;
    uint8_t *p = w->buf;
    put_le(p, n, 8);
    put_le(p + 8, masked_crc(p, 8), 4);
    put_le(p + 12 + n, masked_crc(p + 12, n), 4);
    if (fwrite(p, 1, n + 16, w->f) != n + 16) writer_fail(w, "writing");
}

/* Room for the record header, an Event's fixed fields and the nested lengths, plus `extra`. */
static uint8_t *event_buffer(tb_writer *w, size_t extra) { return dpt_xgrow(&w->buf, &w->cap, 128 + extra); }

tb_writer *tb_open(const char *dir) {
    char host[256] = "localhost";
    if (gethostname(host, sizeof host) != 0) strcpy(host, "localhost");
    host[sizeof host - 1] = '\0';
    tb_writer *w = dpt_xcalloc(1, sizeof *w);
    /* TensorBoard finds the file by "tfevents" in its name and orders files by the timestamp;
     * the process id keeps two writers in one second apart (TensorFlow's naming does the same). */
    int len = snprintf(w->path, sizeof w->path, "%s/events.out.tfevents.%lld.%s.%d", dir, (long long)time(NULL), host,
                       (int)getpid());
    if (len < 0 || (size_t)len >= sizeof w->path) {
        dpt_error(DPT_ERR_IO, "TensorBoard directory name too long: %s", dir);
        free(w);
        return NULL;
    }
    w->f = fopen(w->path, "wb");
    if (!w->f) {
        dpt_error(DPT_ERR_IO, "cannot create TensorBoard event file %s: %s", w->path, strerror(errno));
        free(w);
        return NULL;
    }
    static const char version[] = "brain.Event:2";
    uint8_t *p = event_buffer(w, sizeof version) + 12, *start = p;
    p = put_double(p, 1, timer_wall());
    p = put_bytes(p, 3, version, sizeof version - 1);
    write_record(w, (size_t)(p - start));
    tb_flush(w);
    return w;
}

void tb_scalar(tb_writer *w, const char *tag, int64_t step, double wall_time, float value) {
    if (!w || w->failed) return;
    size_t tag_len = strlen(tag);
    size_t value_len = 1 + varint_size(tag_len) + tag_len + 5; /* Value{tag, simple_value} */
    size_t summary_len = 1 + varint_size(value_len) + value_len; /* Summary{value} */
    uint8_t *p = event_buffer(w, tag_len) + 12, *start = p;
    p = put_double(p, 1, wall_time);
    p = put_varint(put_key(p, 2, WIRE_VARINT), (uint64_t)step); /* int64: negatives take 10 bytes */
    p = put_varint(put_key(p, 5, WIRE_LEN), summary_len);
    p = put_varint(put_key(p, 1, WIRE_LEN), value_len);
    p = put_bytes(p, 1, tag, tag_len);
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    p = put_le(put_key(p, 2, WIRE_FIXED32), bits, 4);
    write_record(w, (size_t)(p - start));
}

void tb_flush(tb_writer *w) {
    if (!w || w->failed) return;
    if (fflush(w->f) != 0) writer_fail(w, "flushing");
}

void tb_close(tb_writer *w) {
    if (!w) return;
    tb_flush(w);
    if (fclose(w->f) != 0) writer_fail(w, "closing");
    free(w->buf);
    free(w);
}
