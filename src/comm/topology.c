/* Node layout and device choice: pure functions over what comm_init gathers (topology.h). */
#include "dpt/comm/topology.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int comm_layout(const int *key, int world, comm_place *out) {
    int nodes = 0;
    for (int r = 0; r < world; r++) {
        int first = r; /* the lowest rank with this key */
        for (int q = 0; q < r; q++)
            if (key[q] == key[r]) {
                first = q;
                break;
            }
        if (first == r) {
            out[r].node = nodes++;
            out[r].local_rank = 0;
            out[r].local_size = 0;
        } else {
            out[r].node = out[first].node;
            out[r].local_rank = out[first].local_size;
        }
        out[first].local_size++;
    }
    /* local_size was counted on each node's first rank; copy it to the others. */
    for (int r = 0; r < world; r++)
        for (int q = 0; q <= r; q++)
            if (out[q].node == out[r].node) {
                out[r].local_size = out[q].local_size;
                break;
            }
    return nodes;
}

static void say(char *why, size_t size, const char *fmt, ...) {
    if (!why || size == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
}

int comm_pick_device(int local_rank, int local_size, int visible, char *why, size_t why_size) {
    if (visible <= 0) {
        say(why, why_size, "no device visible");
        return -1;
    }
    if (visible == 1) {
        if (local_size > 1)
            say(why, why_size, "the one visible device, shared by %d ranks on this node", local_size);
        else
            say(why, why_size, "the one visible device");
        return 0;
    }
    if (visible >= local_size) {
        say(why, why_size, "local rank %d of %d, %d devices visible", local_rank, local_size, visible);
        return local_rank;
    }
    say(why, why_size, "local rank %d mod %d devices: %d ranks on this node share them", local_rank, visible,
        local_size);
    return local_rank % visible;
}

/* Appends to buf (size bytes, NUL-terminated, truncating). */
static void append(char *buf, size_t size, const char *fmt, ...) {
    size_t len = strlen(buf);
    if (len + 1 >= size) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
}

void comm_describe_layout(const comm_place *p, const char *hosts, size_t host_len, int world, int max_nodes,
                          char *buf, size_t size) {
    if (size == 0) return;
    buf[0] = '\0';
    int nodes = 0;
    for (int r = 0; r < world; r++)
        if (p[r].node + 1 > nodes) nodes = p[r].node + 1;
    int shown = nodes < max_nodes ? nodes : max_nodes;
    for (int n = 0; n < shown; n++) {
        int first = -1;
        for (int r = 0; r < world && first < 0; r++)
            if (p[r].node == n) first = r;
        append(buf, size, "%s%.*s: rank%s ", n ? "; " : "", (int)host_len, hosts + (size_t)first * host_len,
               p[first].local_size > 1 ? "s" : "");
        /* The node's ranks as ranges of consecutive ranks. */
        bool any = false;
        for (int r = first; r < world;) {
            if (p[r].node != n) {
                r++;
                continue;
            }
            int end = r;
            while (end + 1 < world && p[end + 1].node == n) end++;
            if (end > r)
                append(buf, size, "%s%d-%d", any ? "," : "", r, end);
            else
                append(buf, size, "%s%d", any ? "," : "", r);
            any = true;
            r = end + 1;
        }
    }
    if (nodes > shown) append(buf, size, "; ... (%d more nodes)", nodes - shown);
}

int comm_parse_node_keys(const char *text, int world, int *key, char *err, size_t err_size) {
    const char *s = text;
    for (int r = 0; r < world; r++) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v > 1000000) {
            say(err, err_size, "entry %d ('%.16s') is not a node number", r, s);
            return -1;
        }
        key[r] = (int)v;
        s = end;
        if (r + 1 < world) {
            if (*s != ',') {
                say(err, err_size, "%d entries for %d ranks", r + 1, world);
                return -1;
            }
            s++;
        }
    }
    if (*s != '\0') {
        say(err, err_size, "more entries than the %d ranks", world);
        return -1;
    }
    return 0;
}
