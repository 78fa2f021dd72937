/* Frame decode: never crashes, and whatever decodes re-encodes to the same
 * bytes (one encoding per frame). */
#include <stdlib.h>
#include <string.h>

#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sb_frame f;
    size_t cap = size > 2 ? data[0] * 7u : 1u << 20;
    int n = sb_frame_decode(data, size, cap, &f);
    if (n >= 0) {
        uint8_t *out = malloc(size ? size : 1);
        if ((size_t)n != size || f.payload_len > cap)
            abort();
        if (sb_frame_size(&f) != n || sb_frame_write(&f, out, size) != n || memcmp(out, data, size) != 0)
            abort();
        free(out);
    }
    /* Parsing a run of frames always makes progress or stops with an error. */
    {
        size_t pos = 0;
        while (pos < size) {
            int r = sb_frame_parse(data + pos, size - pos, 1u << 20, &f);
            if (r <= 0)
                break;
            pos += (size_t)r;
        }
    }
    return 0;
}
