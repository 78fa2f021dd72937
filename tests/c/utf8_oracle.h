/* An independent UTF-8 check for tests and fuzzers of code that repairs
 * UTF-8 (the SSE parser): the length in UTF-16 code units of valid UTF-8, or
 * -1 if the bytes are not valid UTF-8 (overlongs, surrogates and code points
 * past U+10FFFF included). */
#ifndef SB_UTF8_ORACLE_H
#define SB_UTF8_ORACLE_H

#include <stddef.h>
#include <stdint.h>

static inline long utf8_oracle_units(const uint8_t *p, size_t n)
{
    long u = 0;
    for (size_t i = 0; i < n;) {
        uint8_t b = p[i];
        size_t k = b < 0x80 ? 1 : b >= 0xC2 && b <= 0xDF ? 2 : b >= 0xE0 && b <= 0xEF ? 3
                                : b >= 0xF0 && b <= 0xF4 ? 4 : 0;
        if (!k || i + k > n)
            return -1;
        for (size_t j = 1; j < k; j++)
            if ((p[i + j] & 0xC0) != 0x80)
                return -1;
        if ((b == 0xE0 && p[i + 1] < 0xA0) || (b == 0xED && p[i + 1] > 0x9F) ||
            (b == 0xF0 && p[i + 1] < 0x90) || (b == 0xF4 && p[i + 1] > 0x8F))
            return -1;
        u += k == 4 ? 2 : 1;
        i += k;
    }
    return u;
}

#endif
