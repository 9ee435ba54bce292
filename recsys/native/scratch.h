/* Scratch buffers that live as long as the thread, grown to the largest request seen, so that
 * a kernel allocates nothing per request. Each kernel (one translation unit) has its own. */
#ifndef RECSYS_SCRATCH_H
#define RECSYS_SCRATCH_H
#include <stdlib.h>

#define SCRATCH_SLOTS 10
static _Thread_local void *scratch[SCRATCH_SLOTS];
static _Thread_local size_t capacity[SCRATCH_SLOTS];

/* Slot `slot` with room for `bytes` (its old contents may be lost), NULL when memory ran out. */
static void *grow(int slot, size_t bytes) {
    if (bytes > capacity[slot]) {
        void *more = realloc(scratch[slot], bytes);
        if (!more) return NULL;
        scratch[slot] = more;
        capacity[slot] = bytes;
    }
    return scratch[slot];
}
#endif
