/* Fuzz gunzip/inflate on foreign bytes: one-shot and streaming (split where
 * the input says) must agree on success and output; the output never passes
 * the cap; a compress→decompress round trip of the input is exact. */
#include <stdlib.h>
#include <string.h>

#include "gzip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    int format = data[0] % 3;
    size_t cap = 1 + ((size_t)data[1] << 8);
    size_t split = size > 3 ? data[2] % (size - 3 + 1) : 0;
    const uint8_t *in = data + 3;
    size_t n = size - 3;

    sb_gzip *g = sb_gzip_create();
    int one = sb_gzip_decompress(g, in, n, format, (double)cap);
    if (one > (int)cap)
        abort();

    sb_z *z = sb_z_create(SB_Z_INFLATE, format, 0, 0, (double)cap);
    uint8_t *acc = malloc(cap + 1);
    size_t got = 0;
    int r1 = sb_z_push(z, in, split, SB_Z_NO_FLUSH);
    if (r1 >= 0) {
        memcpy(acc, sb_z_out(z), (size_t)r1);
        got = (size_t)r1;
        int r2 = sb_z_push(z, in + split, n - split, SB_Z_FINISH);
        if (r2 >= 0) {
            memcpy(acc + got, sb_z_out(z), (size_t)r2);
            got += (size_t)r2;
        }
        r1 = r2 < 0 ? r2 : (int)got;
    }
    /* Success and its output must not depend on how the input was cut. */
    if ((one >= 0) != (r1 >= 0))
        abort();
    if (one >= 0 && (got != (size_t)one || memcmp(acc, sb_gzip_out(g), got) != 0))
        abort();

    /* Round trip of the raw input through the same format. */
    int c = sb_gzip_compress(g, in, n, data[1] % 10, format);
    if (c < 0)
        abort();
    uint8_t *comp = malloc((size_t)c);
    memcpy(comp, sb_gzip_out(g), (size_t)c);
    if (sb_gzip_decompress(g, comp, (size_t)c, format, 0) != (int)n ||
        (n && memcmp(sb_gzip_out(g), in, n) != 0))
        abort();

    free(comp);
    free(acc);
    sb_z_destroy(z);
    sb_gzip_destroy(g);
    return 0;
}
