#include "dpt/core/arena.h"

#include <stdlib.h>
#include <string.h>

#include "dpt/core/error.h"

void arena_init(dpt_arena *a, const char *name) {
    memset(a, 0, sizeof *a);
    a->name = name;
}

size_t arena_reserve(dpt_arena *a, size_t bytes) {
    DPT_CHECK(a->base == NULL);
    size_t off = a->used;
    a->used += dpt_align_up(bytes, DPT_ALIGN);
    return off;
}

void arena_allocate(dpt_arena *a) {
    DPT_CHECK(a->base == NULL);
    size_t bytes = dpt_align_up(a->used ? a->used : DPT_ALIGN, DPT_ALIGN);
    a->base = aligned_alloc(DPT_ALIGN, bytes);
    DPT_CHECK_LIB("libc", a->base != NULL, "aligned_alloc", "arena %s: cannot allocate %zu bytes",
                  a->name, bytes);
    memset(a->base, 0, bytes);
    a->size = bytes;
}

void arena_free(dpt_arena *a) {
    free(a->base);
    a->base = NULL;
    a->size = a->used = 0;
}
