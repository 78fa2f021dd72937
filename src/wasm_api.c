/* The wasm boundary. Every other file in src/ is plain C11; the exported
 * functions are listed by their SB_EXPORT markers (see CMakeLists.txt). This
 * file holds what only the wasm build needs. */
#include <emscripten.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "switchboard.h"

EMSCRIPTEN_KEEPALIVE int sb_wasm_abi(void);

int sb_wasm_abi(void)
{
    return SB_WASM_ABI;
}

/* libc's memcpy and memset are word loops, about 0.3 KB gzipped in every
 * core; the bulk-memory instructions do the same in one, at native speed
 * (memory.copy is a memmove). Every engine of README's list has them. */
void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
    __builtin_memmove(dst, src, n);
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    __builtin_memmove(dst, src, n);
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    __builtin_memset(dst, c, n);
    return dst;
}

/* emmalloc's realloc tries to grow a block in place: 0.2 to 0.3 KB gzipped
 * in every core that grows a buffer. Ours moves it: the callers grow by
 * doubling (the session's event list to the largest batch yet), so a byte
 * is copied about once; none shrinks. */
void *realloc(void *p, size_t n)
{
    size_t have;
    void *q;
    if (!p)
        return malloc(n);
    have = malloc_usable_size(p);
    if (n <= have)
        return p;
    q = malloc(n);
    if (q) {
        memcpy(q, p, have);
        free(p);
    }
    return q;
}
