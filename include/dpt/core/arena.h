/* Arenas: one allocation carved by a size table. Planning first (reserve returns offsets),
 * then one allocation; pointers are base + offset. No allocation happens in the step loop. */
#ifndef DPT_CORE_ARENA_H
#define DPT_CORE_ARENA_H

#include "dpt/core/common.h"

typedef struct dpt_arena {
    const char *name;
    char *base;   /* NULL while planning */
    size_t used;  /* bytes reserved so far (aligned) */
    size_t size;  /* bytes allocated */
} dpt_arena;

void arena_init(dpt_arena *a, const char *name);
/* Reserves bytes (aligned to DPT_ALIGN) and returns the offset. Only while planning. */
size_t arena_reserve(dpt_arena *a, size_t bytes);
/* Allocates the planned size, zero-filled. */
void arena_allocate(dpt_arena *a);
static inline void *arena_at(const dpt_arena *a, size_t offset) { return a->base + offset; }
void arena_free(dpt_arena *a);

#endif
