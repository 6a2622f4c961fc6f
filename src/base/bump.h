/*
 * bump.h — carve typed arrays out of one block (the arenas of STYLE.md).
 *
 * With base == NULL a walk only counts, so the same walk sizes an arena and
 * then, with base set, points into it. Every array starts 64-byte aligned.
 */
#ifndef DC_BUMP_H
#define DC_BUMP_H
#include <stddef.h>

typedef struct bump {
    char *base; /* the block (borrowed), or NULL to count */
    size_t off; /* bytes used so far */
} bump;

static inline void *bump_take(bump *b, size_t bytes) {
    size_t at = (b->off + 63) & ~(size_t)63;
    b->off = at + bytes;
    return b->base ? b->base + at : NULL;
}
#define BUMP(b, n, type) ((type *)bump_take((b), sizeof(type) * (size_t)(n)))
#endif
