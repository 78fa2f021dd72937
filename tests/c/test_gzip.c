#include <stdlib.h>

#include "gzip.h"
#include "sbtest.h"

static uint8_t *make_text(size_t n, uint32_t seed)
{
    static const char *words[] = {"alpha", "beta", "{\"user\":", "\"msg\":", "42,", "hello ", "world", "\n"};
    uint8_t *p = malloc(n);
    sb_rng r;
    size_t i = 0;
    sb_rng_seed(&r, seed);
    while (i < n) {
        const char *w = words[sb_rng_next(&r) % 8];
        while (*w && i < n)
            p[i++] = (uint8_t)*w++;
    }
    return p;
}

static void test_roundtrip_all_formats_levels(void)
{
    sb_gzip *g = sb_gzip_create();
    size_t sizes[] = {0, 1, 230, 4096, 70000};
    for (int f = 0; f < 3; f++)
        for (int level = 0; level <= 9; level++)
            for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
                size_t n = sizes[s];
                uint8_t *src = make_text(n ? n : 1, (uint32_t)(n + (size_t)level));
                int clen = sb_gzip_compress(g, src, n, level, f);
                CHECK(clen > 0);
                uint8_t *c = malloc((size_t)clen);
                memcpy(c, sb_gzip_out(g), (size_t)clen);
                int dlen = sb_gzip_decompress(g, c, (size_t)clen, f, 0);
                CHECK_EQ(dlen, n);
                if (dlen == (int)n && n)
                    CHECK_MEM(sb_gzip_out(g), src, n);
                free(c);
                free(src);
            }
    sb_gzip_destroy(g);
}

static int compress_copy(sb_gzip *g, const uint8_t *src, size_t n, uint8_t **out)
{
    int clen = sb_gzip_compress(g, src, n, 6, SB_Z_GZIP);
    *out = malloc((size_t)clen);
    memcpy(*out, sb_gzip_out(g), (size_t)clen);
    return clen;
}

static void test_multi_member(void)
{
    sb_gzip *g = sb_gzip_create();
    uint8_t *a, *b;
    int la = compress_copy(g, (const uint8_t *)"hello ", 6, &a);
    int lb = compress_copy(g, (const uint8_t *)"world", 5, &b);
    uint8_t *ab = malloc((size_t)(la + lb));
    memcpy(ab, a, (size_t)la);
    memcpy(ab + la, b, (size_t)lb);
    CHECK_EQ(sb_gzip_decompress(g, ab, (size_t)(la + lb), SB_Z_GZIP, 0), 11);
    CHECK_MEM(sb_gzip_out(g), "hello world", 11);

    /* Streaming, split at every byte position. */
    for (int cut = 0; cut <= la + lb; cut++) {
        sb_z *z = sb_z_create(SB_Z_INFLATE, SB_Z_GZIP, 0, 0, 0);
        char got[32];
        size_t gl = 0;
        int r1 = sb_z_push(z, ab, (size_t)cut, SB_Z_NO_FLUSH);
        CHECK(r1 >= 0);
        memcpy(got, sb_z_out(z), (size_t)r1);
        gl += (size_t)r1;
        int r2 = sb_z_push(z, ab + cut, (size_t)(la + lb - cut), SB_Z_FINISH);
        CHECK(r2 >= 0);
        if (r2 >= 0 && gl + (size_t)r2 <= sizeof got) {
            memcpy(got + gl, sb_z_out(z), (size_t)r2);
            gl += (size_t)r2;
        }
        CHECK_EQ(gl, 11);
        CHECK_MEM(got, "hello world", 11);
        sb_z_destroy(z);
    }
    free(a);
    free(b);
    free(ab);
    sb_gzip_destroy(g);
}

static void test_errors(void)
{
    sb_gzip *g = sb_gzip_create();
    uint8_t *src = make_text(5000, 7), *c;
    int clen = compress_copy(g, src, 5000, &c);
    uint8_t *bad = malloc((size_t)clen + 8);

    /* truncated at every length */
    for (int cut = 1; cut < clen; cut += 7)
        CHECK_EQ(sb_gzip_decompress(g, c, (size_t)cut, SB_Z_GZIP, 0), SB_E_TRUNCATED);
    CHECK_EQ(sb_gzip_decompress(g, c, 0, SB_Z_GZIP, 0), SB_E_TRUNCATED);

    /* bad CRC32 and bad ISIZE */
    memcpy(bad, c, (size_t)clen);
    bad[clen - 8] ^= 1;
    CHECK_EQ(sb_gzip_decompress(g, bad, (size_t)clen, SB_Z_GZIP, 0), SB_E_BAD_CHECKSUM);
    memcpy(bad, c, (size_t)clen);
    bad[clen - 1] ^= 1;
    CHECK_EQ(sb_gzip_decompress(g, bad, (size_t)clen, SB_Z_GZIP, 0), SB_E_BAD_CHECKSUM);

    /* trailing garbage, one byte and several */
    memcpy(bad, c, (size_t)clen);
    bad[clen] = 0;
    CHECK_EQ(sb_gzip_decompress(g, bad, (size_t)clen + 1, SB_Z_GZIP, 0), SB_E_TRAILING_DATA);
    memcpy(bad + clen, "garbage!", 8);
    CHECK_EQ(sb_gzip_decompress(g, bad, (size_t)clen + 8, SB_Z_GZIP, 0), SB_E_TRAILING_DATA);

    /* corrupt body */
    memcpy(bad, c, (size_t)clen);
    bad[12] ^= 0xff;
    bad[13] ^= 0x55;
    {
        int rc = sb_gzip_decompress(g, bad, (size_t)clen, SB_Z_GZIP, 0);
        CHECK(rc == SB_E_CORRUPT || rc == SB_E_BAD_CHECKSUM);
    }
    /* not gzip at all */
    CHECK_EQ(sb_gzip_decompress(g, (const uint8_t *)"plain text", 10, SB_Z_GZIP, 0), SB_E_CORRUPT);

    /* and the instance still works */
    CHECK_EQ(sb_gzip_decompress(g, c, (size_t)clen, SB_Z_GZIP, 0), 5000);
    CHECK_MEM(sb_gzip_out(g), src, 5000);

    /* zlib and raw: trailing data */
    {
        int zl = sb_gzip_compress(g, src, 100, 6, SB_Z_ZLIB);
        memcpy(bad, sb_gzip_out(g), (size_t)zl);
        bad[zl] = 'x';
        CHECK_EQ(sb_gzip_decompress(g, bad, (size_t)zl + 1, SB_Z_ZLIB, 0), SB_E_TRAILING_DATA);
        bad[zl - 1] ^= 1;
        CHECK_EQ(sb_gzip_decompress(g, bad, (size_t)zl, SB_Z_ZLIB, 0), SB_E_BAD_CHECKSUM);
    }
    free(bad);
    free(c);
    free(src);
    sb_gzip_destroy(g);
}

static void test_bomb(void)
{
    sb_gzip *g = sb_gzip_create();
    size_t n = 8u << 20;
    uint8_t *zeros = calloc(1, n), *c;
    int clen = compress_copy(g, zeros, n, &c);
    CHECK(clen < 20000);
    CHECK_EQ(sb_gzip_decompress(g, c, (size_t)clen, SB_Z_GZIP, 1 << 20), SB_E_TOO_LARGE);
    /* cap exactly at the size is fine, one below is not */
    CHECK_EQ(sb_gzip_decompress(g, c, (size_t)clen, SB_Z_GZIP, (double)n), (int)n);
    CHECK_EQ(sb_gzip_decompress(g, c, (size_t)clen, SB_Z_GZIP, (double)n - 1), SB_E_TOO_LARGE);
    /* still usable afterwards */
    CHECK_EQ(sb_gzip_decompress(g, c, (size_t)clen, SB_Z_GZIP, 0), (int)n);
    free(c);
    free(zeros);
    sb_gzip_destroy(g);
}

static void test_message_mode(void)
{
    sb_z *d = sb_z_create(SB_Z_DEFLATE, SB_Z_RAW, 6, 15, 0);
    sb_z *i = sb_z_create(SB_Z_INFLATE, SB_Z_RAW, 0, 15, 4096);
    size_t total_raw = 0, total_c = 0;
    for (int k = 0; k < 200; k++) {
        char msg[300];
        int len = snprintf(msg, sizeof msg,
                           "{\"type\":\"chat\",\"room\":\"general\",\"user\":\"user%d\",\"text\":"
                           "\"message number %d from the load test\",\"ts\":%d}",
                           k % 7, k, 1700000000 + k);
        int cl = sb_z_message(d, (const uint8_t *)msg, (size_t)len);
        CHECK(cl > 0);
        uint8_t cbuf[400];
        memcpy(cbuf, sb_z_out(d), (size_t)cl);
        int dl = sb_z_message(i, cbuf, (size_t)cl);
        CHECK_EQ(dl, len);
        CHECK_MEM(sb_z_out(i), msg, (size_t)len);
        total_raw += (size_t)len;
        total_c += (size_t)cl;
    }
    CHECK(total_raw > 2 * total_c); /* the shared window is what makes this work */
    /* empty message */
    CHECK(sb_z_message(d, NULL, 0) >= 0);
    {
        uint8_t e[8];
        size_t el = sb_z_out_len(d);
        memcpy(e, sb_z_out(d), el);
        CHECK_EQ(sb_z_message(i, e, el), 0);
    }
    /* a truncated message is an error, not a shorter message */
    {
        const char *m = "hello hello hello, a message that will be cut short";
        sb_z *d2 = sb_z_create(SB_Z_DEFLATE, SB_Z_RAW, 6, 15, 0);
        int cl = sb_z_message(d2, (const uint8_t *)m, strlen(m));
        uint8_t cbuf[128];
        CHECK(cl > 6);
        memcpy(cbuf, sb_z_out(d2), (size_t)cl);
        for (int cut = 1; cut < cl; cut++) {
            sb_z *i2 = sb_z_create(SB_Z_INFLATE, SB_Z_RAW, 0, 15, 0);
            int r = sb_z_message(i2, cbuf, (size_t)(cl - cut));
            CHECK(r == SB_E_TRUNCATED || r == SB_E_CORRUPT);
            sb_z_destroy(i2);
        }
        sb_z *i2 = sb_z_create(SB_Z_INFLATE, SB_Z_RAW, 0, 15, 0);
        CHECK_EQ(sb_z_message(i2, cbuf, (size_t)cl), (int)strlen(m));
        sb_z_destroy(i2);
        sb_z_destroy(d2);
    }
    /* per-message cap */
    {
        uint8_t big[8192];
        memset(big, 'a', sizeof big);
        int cl = sb_z_message(d, big, sizeof big);
        uint8_t cbuf[256];
        CHECK(cl > 0 && cl < 256);
        memcpy(cbuf, sb_z_out(d), (size_t)cl);
        CHECK_EQ(sb_z_message(i, cbuf, (size_t)cl), SB_E_TOO_LARGE);
        CHECK_EQ(sb_z_message(i, cbuf, (size_t)cl), SB_E_BAD_STATE);
    }
    sb_z_destroy(d);
    sb_z_destroy(i);
}

static void test_streaming_deflate(void)
{
    sb_z *d = sb_z_create(SB_Z_DEFLATE, SB_Z_GZIP, 9, 0, 0);
    sb_gzip *g = sb_gzip_create();
    uint8_t *src = make_text(100000, 3);
    uint8_t *c = malloc(200000);
    size_t cl = 0;
    for (size_t off = 0; off < 100000; off += 777) {
        size_t n = 100000 - off < 777 ? 100000 - off : 777;
        int r = sb_z_push(d, src + off, n, SB_Z_NO_FLUSH);
        CHECK(r >= 0);
        memcpy(c + cl, sb_z_out(d), (size_t)r);
        cl += (size_t)r;
    }
    {
        int r = sb_z_push(d, NULL, 0, SB_Z_FINISH);
        CHECK(r > 0);
        memcpy(c + cl, sb_z_out(d), (size_t)r);
        cl += (size_t)r;
    }
    CHECK_EQ(sb_z_push(d, src, 1, SB_Z_NO_FLUSH), SB_E_CLOSED);
    CHECK_EQ(sb_gzip_decompress(g, c, cl, SB_Z_GZIP, 0), 100000);
    CHECK_MEM(sb_gzip_out(g), src, 100000);
    free(c);
    free(src);
    sb_gzip_destroy(g);
    sb_z_destroy(d);
}

static void test_bad_args(void)
{
    CHECK(sb_z_create(2, 0, 6, 15, 0) == NULL);
    CHECK(sb_z_create(0, 3, 6, 15, 0) == NULL);
    CHECK(sb_z_create(0, 0, 10, 15, 0) == NULL);
    CHECK(sb_z_create(0, 0, 6, 8, 0) == NULL);
    CHECK(sb_z_create(0, 0, 6, 15, -1) == NULL);
    CHECK_EQ(sb_z_push(NULL, NULL, 0, 0), SB_E_INVALID);
    sb_gzip *g = sb_gzip_create();
    CHECK_EQ(sb_gzip_compress(g, (const uint8_t *)"x", 1, 11, 0), SB_E_INVALID);
    CHECK_EQ(sb_gzip_compress(g, (const uint8_t *)"x", 1, 6, 5), SB_E_INVALID);
    sb_gzip_destroy(g);
    CHECK(strcmp(sb_errname(SB_E_TOO_LARGE), "TOO_LARGE") == 0);
    CHECK(strcmp(sb_errname(-999), "UNKNOWN") == 0);
    CHECK(strcmp(sb_errname(-2147483647 - 1), "UNKNOWN") == 0);
    CHECK(strcmp(sb_strerror(5), "unknown error") == 0);
    CHECK(strcmp(sb_errname(SB_E_LAST_ + 1), "UNKNOWN") != 0);
}

int main(void)
{
    RUN(test_roundtrip_all_formats_levels);
    RUN(test_multi_member);
    RUN(test_errors);
    RUN(test_bomb);
    RUN(test_message_mode);
    RUN(test_streaming_deflate);
    RUN(test_bad_args);
    TEST_MAIN_END();
}
