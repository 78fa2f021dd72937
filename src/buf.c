/* buf — see buf.h. */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

int sb_buf_reserve(sb_buf *b, size_t extra)
{
    size_t need = b->len + extra, cap;
    uint8_t *p;
    if (need < b->len)
        return SB_E_TOO_LARGE;
    if (need <= b->cap)
        return SB_OK;
    cap = b->cap ? b->cap * 2 : 256;
    if (cap < need)
        cap = need;
    p = realloc(b->p, cap);
    if (!p)
        return SB_E_NO_MEMORY;
    b->p = p;
    b->cap = cap;
    return SB_OK;
}

int sb_buf_put(sb_buf *b, const uint8_t *src, size_t n)
{
    int rc = sb_buf_reserve(b, n);
    if (rc < 0)
        return rc;
    if (n)
        memcpy(b->p + b->len, src, n);
    b->len += n;
    return SB_OK;
}

void sb_buf_clear(sb_buf *b, size_t keep)
{
    if (b->cap > keep)
        sb_buf_free(b);
    b->len = 0;
}

void sb_buf_free(sb_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
