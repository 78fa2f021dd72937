/* Fuzz the SSE parser: any bytes, and the same stream fed whole and in chunks
 * whose sizes come from the input give the same events, the same error at
 * the same point, the same last id and retry. Output is valid UTF-8 whose
 * UTF-16 lengths match the records. */
#include "sse.h"
#include "../c/utf8_oracle.h"

#include <stdlib.h>
#include <string.h>

typedef struct acc {
    uint8_t *p;
    size_t len, cap;
} acc;

static void put(acc *a, const void *p, size_t n)
{
    if (a->len + n > a->cap) {
        a->cap = (a->len + n) * 2 + 64;
        a->p = realloc(a->p, a->cap);
        if (!a->p)
            abort();
    }
    if (n)
        memcpy(a->p + a->len, p, n);
    a->len += n;
}

/* Serialize a batch: each string length-prefixed so nothing is ambiguous. */
static void collect(sb_sse *s, int n, acc *a)
{
    const uint8_t *t = sb_sse_text(s), *id = NULL, *type = NULL;
    const uint32_t *r = sb_sse_records(s);
    size_t off = 0;
    uint32_t idlen = 0, typelen = 0;
    for (int i = 0; i < n; i++, r += SB_SSE_REC_WORDS) {
        uint32_t lens[3], tl;
        const uint8_t *data = t + off;
        if (utf8_oracle_units(data, r[0]) != (long)r[1])
            abort();
        off += r[0];
        if (r[2] == SB_SSE_SAME) {
            if (!type || r[3] != SB_SSE_SAME)
                abort();
            tl = typelen;
        } else {
            if (utf8_oracle_units(t + off, r[2]) != (long)r[3])
                abort();
            if (r[2]) {
                type = t + off;
                typelen = r[2];
            }
            tl = r[2];
            off += r[2];
        }
        if (r[4] == SB_SSE_SAME) {
            if (i == 0)
                abort();
        } else {
            id = t + off;
            idlen = r[4];
            if (utf8_oracle_units(id, idlen) != (long)r[5])
                abort();
            off += idlen;
        }
        lens[0] = r[1];
        lens[1] = tl;
        lens[2] = idlen;
        put(a, lens, sizeof lens);
        put(a, data, r[0]);
        put(a, type, tl);
        put(a, id, idlen);
    }
    if (off != sb_sse_text_len(s))
        abort();
}

static int run(const uint8_t *d, size_t n, uint32_t caps, uint32_t seed, int chunked, acc *a)
{
    sb_sse *s = sb_sse_create(caps & 1 ? 24 : 0, caps & 2 ? 40 : 0, 10, 1000, 2, 0, 1);
    size_t i = 0;
    int rc = 0;
    sb_rng rng;
    if (!s)
        abort();
    sb_rng_seed(&rng, seed);
    while (i < n && rc >= 0) {
        size_t k = chunked ? sb_rng_next(&rng) % 17 : n - i;
        if (k > n - i)
            k = n - i;
        rc = sb_sse_feed(s, d + i, k);
        collect(s, rc < 0 ? sb_sse_count(s) : rc, a);
        i += k;
    }
    sb_sse_end(s);
    rc = rc < 0 ? rc : 0; /* counts differ by chunking, errors must not */
    put(a, &rc, sizeof rc);
    {
        double retry = sb_sse_retry(s);
        size_t l = sb_sse_last_id_len(s);
        put(a, &retry, sizeof retry);
        put(a, &l, sizeof l);
        put(a, sb_sse_last_id(s), l);
        if (utf8_oracle_units(sb_sse_last_id(s), l) < 0)
            abort();
    }
    /* after end, the object takes a fresh stream */
    if (sb_sse_feed(s, (const uint8_t *)"data: z\n\n", 9) != 1)
        abort();
    sb_sse_destroy(s);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    acc whole = {0}, parts = {0};
    uint32_t seed = 0;
    uint32_t caps;
    if (size < 5)
        return 0;
    memcpy(&seed, data, 4);
    caps = data[4];
    data += 5;
    size -= 5;
    run(data, size, caps, seed, 0, &whole);
    run(data, size, caps, seed, 1, &parts);
    if (whole.len != parts.len || (whole.len && memcmp(whole.p, parts.p, whole.len) != 0))
        abort();
    free(whole.p);
    free(parts.p);
    return 0;
}
