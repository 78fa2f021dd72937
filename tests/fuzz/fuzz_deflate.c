/* Fuzz the compressing side: per-message contexts (shared window) and
 * streaming deflate with mixed flushes, at every level and window size; the
 * inflating twin must give back exactly what went in. */
#include <stdlib.h>
#include <string.h>

#include "gzip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int level = data[0] % 10;
    int wbits = 9 + (data[0] / 10) % 7;
    const uint8_t *p = data + 2;
    size_t left = size - 2;

    /* Message mode: the input, cut into messages at bytes equal to data[1]. */
    sb_z *d = sb_z_create(SB_Z_DEFLATE, SB_Z_RAW, level, wbits, 0);
    sb_z *i = sb_z_create(SB_Z_INFLATE, SB_Z_RAW, 0, 15, 0);
    size_t start = 0;
    for (size_t k = 0; k <= left; k++) {
        if (k < left && p[k] != data[1])
            continue;
        size_t n = k - start;
        int cl = sb_z_message(d, p + start, n);
        if (cl < 0)
            abort();
        uint8_t *c = malloc((size_t)cl + 1);
        memcpy(c, sb_z_out(d), (size_t)cl);
        if (sb_z_message(i, c, (size_t)cl) != (int)n || (n && memcmp(sb_z_out(i), p + start, n) != 0))
            abort();
        free(c);
        start = k + 1;
    }
    sb_z_destroy(d);
    sb_z_destroy(i);

    /* Streaming gzip with a flush chosen per chunk. */
    d = sb_z_create(SB_Z_DEFLATE, SB_Z_GZIP, level, wbits, 0);
    i = sb_z_create(SB_Z_INFLATE, SB_Z_GZIP, 0, 0, 0);
    uint8_t *back = malloc(left + 1);
    size_t got = 0;
    for (size_t off = 0;;) {
        size_t n = left - off < 97 ? left - off : 97;
        int last = off + n == left;
        int flush = last ? SB_Z_FINISH : (p[off] & 1 ? SB_Z_SYNC_FLUSH : SB_Z_NO_FLUSH);
        int cl = sb_z_push(d, p + off, n, flush);
        if (cl < 0)
            abort();
        if (cl) {
            uint8_t *c = malloc((size_t)cl);
            memcpy(c, sb_z_out(d), (size_t)cl);
            int r = sb_z_push(i, c, (size_t)cl, last ? SB_Z_FINISH : SB_Z_NO_FLUSH);
            if (r < 0 || got + (size_t)r > left)
                abort();
            memcpy(back + got, sb_z_out(i), (size_t)r);
            got += (size_t)r;
            free(c);
        } else if (last && sb_z_push(i, NULL, 0, SB_Z_FINISH) < 0) {
            abort();
        }
        off += n;
        if (last)
            break;
    }
    if (got != left || (left && memcmp(back, p, left) != 0))
        abort();
    free(back);
    sb_z_destroy(d);
    sb_z_destroy(i);
    return 0;
}
