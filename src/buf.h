/* buf — the growable byte buffer the core modules build their outputs in.
 * A plain value type (embedded in the owning struct, zero-initialised =
 * empty); the owner bounds its size with its own caps. Not exported. */
#ifndef SB_BUF_H
#define SB_BUF_H

#include "switchboard.h"

typedef struct sb_buf {
    uint8_t *p;
    size_t len, cap;
} sb_buf;

/* Room for `extra` more bytes after len (capacity doubles, so appends are
 * amortised O(1)). SB_E_TOO_LARGE if len + extra overflows, SB_E_NO_MEMORY. */
int sb_buf_reserve(sb_buf *b, size_t extra);
/* Append n bytes. */
int sb_buf_put(sb_buf *b, const uint8_t *src, size_t n);
/* Release the memory; the buffer is empty and reusable afterwards. */
void sb_buf_free(sb_buf *b);

/* A buffer emptied after it held more than this gives its memory back: a
 * large message is rare, and an idle connection should hold little. */
#define SB_BUF_KEEP ((size_t)64 << 10)
/* Empty the buffer; one grown past keep bytes is freed. */
void sb_buf_clear(sb_buf *b, size_t keep);

#endif
