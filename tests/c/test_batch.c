#include <stdlib.h>

#include "batch.h"
#include "gzip.h"
#include "sbtest.h"

static int enc(uint8_t *out, size_t cap, uint32_t channel, uint32_t seq, const char *text)
{
    sb_frame f;
    sb_frame_init(&f, SB_FRAME_MESSAGE);
    f.channel = channel;
    f.id = seq;
    f.seq = seq;
    f.payload = (const uint8_t *)text;
    f.payload_len = strlen(text);
    return sb_frame_write(&f, out, cap);
}

/* A chat message like the WebSocket demo's: ~230 B of JSON. */
static int chat(char *out, size_t cap, sb_rng *r, uint32_t i)
{
    static const char *users[] = {"alice", "bob", "carol", "dave", "erin"};
    static const char *words[] = {"hello", "anyone", "seen", "the", "deploy", "logs", "today",
                                  "looks", "fine", "to", "me", "ship", "it", "please", "review"};
    char text[120] = "";
    for (int w = 0; w < 10; w++) {
        strcat(text, words[sb_rng_next(r) % 15]);
        strcat(text, " ");
    }
    return snprintf(out, cap,
                    "{\"type\":\"chat\",\"room\":\"general\",\"id\":%u,\"user\":\"%s\","
                    "\"ts\":%u,\"text\":\"%s\",\"meta\":{\"client\":\"web\",\"v\":3}}",
                    1000 + i, users[sb_rng_next(r) % 5], 1767225600u + i * 7, text);
}

/* Feed a transport message and collect the seqs it yields. */
static int drain(sb_unbatch *u, const uint8_t *p, size_t n, uint32_t *seqs, int max)
{
    int k = sb_unbatch_feed(u, p, (uint32_t)n), got = 0;
    sb_frame f;
    if (k < 0)
        return k;
    while (sb_unbatch_next_frame(u, &f) == 1 && got < max)
        seqs[got++] = f.seq;
    CHECK_EQ(got, k);
    return got;
}

static void test_flush_triggers(void)
{
    uint8_t fr[64], copy[256];
    uint32_t seqs[16];
    sb_unbatch *u = sb_unbatch_create(0, 0, 0);
    /* count */
    sb_batch *b = sb_batch_create(3, 1000, 50, 0, SB_BATCH_PLAIN, -1);
    CHECK(b != NULL);
    CHECK(sb_batch_deadline(b) == -1);
    CHECK_EQ(sb_batch_add(b, fr, (uint32_t)enc(fr, 64, 1, 1, "a"), 10), 0);
    CHECK(sb_batch_deadline(b) == 60);
    CHECK_EQ(sb_batch_add(b, fr, (uint32_t)enc(fr, 64, 1, 2, "b"), 11), 0);
    CHECK_EQ(sb_batch_add(b, fr, (uint32_t)enc(fr, 64, 1, 3, "c"), 12), SB_BATCH_DUE);
    int n = sb_batch_flush(b);
    CHECK(n > 0);
    CHECK_EQ(sb_batch_out(b)[0], 0x10 | SB_FRAME_BATCH);
    CHECK_EQ(drain(u, sb_batch_out(b), (size_t)n, seqs, 16), 3);
    CHECK_EQ(seqs[0], 1);
    CHECK_EQ(seqs[2], 3);
    CHECK_EQ(sb_batch_flush(b), 0);
    CHECK(sb_batch_deadline(b) == -1);
    /* delay: nothing before the deadline, a lone frame passes through as is */
    n = enc(fr, 64, 2, 9, "solo");
    CHECK_EQ(sb_batch_add(b, fr, (uint32_t)n, 100), 0);
    CHECK_EQ(sb_batch_poll(b, 149.9), 0);
    CHECK_EQ(sb_batch_poll(b, 150), n);
    CHECK_MEM(sb_batch_out(b), fr, (size_t)n);
    sb_batch_destroy(b);

    /* bytes: the frame that does not fit closes the batch before it */
    b = sb_batch_create(100, 20, 50, 0, SB_BATCH_PLAIN, -1);
    n = enc(fr, 64, 1, 1, "12345678"); /* 15 bytes */
    CHECK_EQ(n, 15);
    CHECK_EQ(sb_batch_add(b, fr, (uint32_t)n, 0), 0);
    n = enc(fr, 64, 1, 2, "12345678");
    CHECK_EQ(sb_batch_add(b, fr, (uint32_t)n, 0), SB_BATCH_OUT);
    CHECK_EQ(sb_batch_out_len(b), 15);
    CHECK_EQ(sb_batch_pending(b), 1);
    /* a frame bigger than max_bytes travels alone, at once */
    char big[40];
    memset(big, 'x', 39);
    big[39] = 0;
    n = enc(fr, 64, 1, 3, big);
    CHECK_EQ(sb_batch_add(b, fr, (uint32_t)n, 0), SB_BATCH_OUT | SB_BATCH_DUE);
    memcpy(copy, sb_batch_out(b), sb_batch_out_len(b));
    CHECK_EQ(drain(u, copy, sb_batch_out_len(b), seqs, 16), 1);
    CHECK_EQ(seqs[0], 2);
    CHECK_EQ(sb_batch_flush(b), n);
    /* garbage is refused, nothing is queued */
    CHECK_EQ(sb_batch_add(b, (const uint8_t *)"{}", 2, 0), SB_E_BAD_VERSION);
    CHECK_EQ(sb_batch_pending(b), 0);
    sb_batch_destroy(b);

    CHECK(sb_batch_create(0, 10, 1, 0, 0, -1) == NULL);
    CHECK(sb_batch_create(1, 10, -1, 0, 0, -1) == NULL);
    CHECK(sb_batch_create(1, 10, 1, 0, 3, -1) == NULL);
    sb_unbatch_destroy(u);
}

static void test_compression_shared_window(void)
{
    sb_rng r;
    char text[400];
    uint8_t fr[512];
    uint32_t seqs[128];
    double raw_json = 0, wire = 0;
    sb_batch *b = sb_batch_create(100, 1 << 20, 10, 256, SB_BATCH_SHARED, 6);
    sb_unbatch *u = sb_unbatch_create(0, 0, 0);
    sb_rng_seed(&r, 7);
    for (int round = 0; round < 5; round++) {
        for (uint32_t i = 0; i < 100; i++) {
            int tl = chat(text, sizeof text, &r, round * 100 + i);
            raw_json += tl;
            int n = enc(fr, sizeof fr, 1, (uint32_t)(round * 100) + i + 1, text);
            int rc = sb_batch_add(b, fr, (uint32_t)n, round * 10.0);
            CHECK(rc == 0 || (i == 99 && rc == SB_BATCH_DUE));
        }
        int n = sb_batch_flush(b);
        CHECK(n > 0);
        wire += n;
        uint8_t flags = sb_batch_out(b)[1];
        CHECK(flags & SB_FRAME_F_COMPRESSED);
        /* the first batch starts the window, the others continue it */
        CHECK_EQ(!!(flags & SB_FRAME_F_SHARED), round > 0);
        CHECK_EQ(drain(u, sb_batch_out(b), (size_t)n, seqs, 128), 100);
        CHECK_EQ(seqs[0], round * 100 + 1);
        CHECK_EQ(seqs[99], round * 100 + 100);
    }
    /* The target: batches of 100 chat messages >= 2.4x smaller than JSON. */
    printf("chat JSON %.0f B -> %.0f B on the wire (%.2fx)\n", raw_json, wire, raw_json / wire);
    CHECK(raw_json / wire >= 2.4);
    CHECK(sb_batch_stat(b, SB_BATCH_STAT_COMPRESSED) == 5);

    /* A reader that missed the fresh batch cannot decode a SHARED one. */
    {
        sb_unbatch *late = sb_unbatch_create(0, 0, 0);
        for (uint32_t i = 0; i < 5; i++) {
            int tl = chat(text, sizeof text, &r, i);
            (void)tl;
            sb_batch_add(b, fr, (uint32_t)enc(fr, sizeof fr, 1, i + 1, text), 0);
        }
        int n = sb_batch_flush(b);
        CHECK(sb_batch_out(b)[1] & SB_FRAME_F_SHARED);
        CHECK_EQ(sb_unbatch_feed(late, sb_batch_out(b), (uint32_t)n), SB_E_CORRUPT);
        /* After reset_stream the writer starts fresh and both sides agree again. */
        sb_batch_reset_stream(b);
        sb_batch_add(b, fr, (uint32_t)enc(fr, sizeof fr, 1, 6, text), 0);
        sb_batch_add(b, fr, (uint32_t)enc(fr, sizeof fr, 1, 7, text), 0);
        n = sb_batch_flush(b);
        CHECK_EQ(sb_batch_out(b)[1] & (SB_FRAME_F_SHARED | SB_FRAME_F_COMPRESSED), SB_FRAME_F_COMPRESSED);
        CHECK_EQ(drain(late, sb_batch_out(b), (size_t)n, seqs, 128), 2);
        sb_unbatch_destroy(late);
    }
    sb_batch_destroy(b);
    sb_unbatch_destroy(u);
}

static void test_compress_only_if_smaller(void)
{
    uint8_t fr[300], noise[200];
    uint32_t seqs[8];
    sb_rng r;
    sb_batch *b = sb_batch_create(10, 1 << 16, 10, 100, SB_BATCH_SHARED, 6);
    sb_unbatch *u = sb_unbatch_create(0, 0, 0);
    sb_frame f;
    sb_rng_seed(&r, 3);
    /* below the threshold: not even tried */
    sb_batch_add(b, fr, (uint32_t)enc(fr, sizeof fr, 1, 1, "tiny"), 0);
    sb_batch_add(b, fr, (uint32_t)enc(fr, sizeof fr, 1, 2, "tiny"), 0);
    int n = sb_batch_flush(b);
    CHECK_EQ(sb_batch_out(b)[1], 0);
    CHECK_EQ(drain(u, sb_batch_out(b), (size_t)n, seqs, 8), 2);
    CHECK(sb_batch_stat(b, SB_BATCH_STAT_SKIPPED) == 0);
    /* random bytes: compression tried, dropped, sent plain */
    for (int i = 0; i < 200; i++)
        noise[i] = (uint8_t)sb_rng_next(&r);
    sb_frame_init(&f, SB_FRAME_MESSAGE);
    f.flags = SB_FRAME_F_BINARY;
    f.payload = noise;
    f.payload_len = 200;
    f.seq = 3;
    n = sb_frame_write(&f, fr, sizeof fr);
    sb_batch_add(b, fr, (uint32_t)n, 0);
    n = sb_batch_flush(b);
    CHECK_EQ(n, 206); /* the lone frame itself */
    CHECK(sb_batch_stat(b, SB_BATCH_STAT_SKIPPED) == 1);
    CHECK_EQ(drain(u, sb_batch_out(b), (size_t)n, seqs, 8), 1);
    /* ... and the next compressed batch restarts the window (no SHARED) */
    char text[400];
    for (int i = 0; i < 3; i++) {
        chat(text, sizeof text, &r, (uint32_t)i);
        sb_batch_add(b, fr, (uint32_t)enc(fr, sizeof fr, 1, 4 + (uint32_t)i, text), 0);
    }
    n = sb_batch_flush(b);
    CHECK_EQ(sb_batch_out(b)[1], SB_FRAME_F_COMPRESSED);
    CHECK_EQ(drain(u, sb_batch_out(b), (size_t)n, seqs, 8), 3);
    CHECK_EQ(seqs[2], 6);
    sb_batch_destroy(b);

    /* DEFLATE mode: every compressed batch stands alone */
    b = sb_batch_create(10, 1 << 16, 10, 1, SB_BATCH_DEFLATE, 9);
    for (int k = 0; k < 3; k++) {
        sb_unbatch *fresh = sb_unbatch_create(0, 0, 0);
        for (int i = 0; i < 3; i++)
            sb_batch_add(b, fr, (uint32_t)enc(fr, sizeof fr, 1, 1 + (uint32_t)i, text), 0);
        n = sb_batch_flush(b);
        CHECK_EQ(sb_batch_out(b)[1], SB_FRAME_F_COMPRESSED);
        CHECK_EQ(drain(fresh, sb_batch_out(b), (size_t)n, seqs, 8), 3);
        sb_unbatch_destroy(fresh);
    }
    sb_batch_destroy(b);
    sb_unbatch_destroy(u);
}

/* Level 0 sends every batch as it is, without a deflater: that is what the
 * size check decided before, because zlib's stored blocks at level 0 are
 * never smaller than the input (checked here, on the native zlib). */
static void test_level_zero_sends_as_is(void)
{
    uint8_t fr[300], plain[4096];
    uint32_t seqs[16];
    char text[400];
    sb_rng r;
    sb_batch *b = sb_batch_create(10, 1 << 16, 10, 1, SB_BATCH_SHARED, 0);
    sb_unbatch *u = sb_unbatch_create(0, 0, 0);
    sb_z *z = sb_z_create(SB_Z_DEFLATE, SB_Z_RAW, 0, 15, 0);
    size_t plen = 0;
    CHECK(b && u && z);
    sb_rng_seed(&r, 9);
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 4; i++) {
            int n;
            chat(text, sizeof text, &r, (uint32_t)i);
            n = enc(fr, sizeof fr, 1, 1 + (uint32_t)(k * 4 + i), text);
            sb_batch_add(b, fr, (uint32_t)n, 0);
            memcpy(plain + plen, fr, (size_t)n);
            plen += (size_t)n;
        }
        int n = sb_batch_flush(b);
        CHECK(n > 0);
        CHECK_EQ(sb_batch_out(b)[1], 0); /* a batch frame, not compressed */
        CHECK_EQ(drain(u, sb_batch_out(b), (size_t)n, seqs, 16), 4);
        CHECK_EQ(seqs[3], (uint32_t)(k * 4 + 4));
        /* what level 0 would have made of the same bytes, on a shared window */
        CHECK(sb_z_message(z, plain, plen) > (int)plen);
        plen = 0;
    }
    CHECK(sb_batch_stat(b, SB_BATCH_STAT_SKIPPED) == 3);
    CHECK(sb_batch_stat(b, SB_BATCH_STAT_COMPRESSED) == 0);
    sb_z_destroy(z);
    sb_batch_destroy(b);
    sb_unbatch_destroy(u);
}

/* Wrap payload in a batch frame. */
static int wrap(uint8_t *out, size_t cap, const uint8_t *p, size_t n, uint8_t flags)
{
    sb_frame f;
    sb_frame_init(&f, SB_FRAME_BATCH);
    f.flags = flags;
    f.payload = p;
    f.payload_len = n;
    return sb_frame_write(&f, out, cap);
}

static void test_reader_limits(void)
{
    uint8_t a[256], b2[256];
    uint32_t seqs[8];
    sb_unbatch *u = sb_unbatch_create(64, 1024, 3);
    int n = enc(a, sizeof a, 1, 1, "x");
    /* depth 1, 2, 3 ok; 4 too deep */
    for (int depth = 1; depth <= 4; depth++) {
        n = wrap(b2, sizeof b2, a, (size_t)n, 0);
        memcpy(a, b2, (size_t)n);
        int rc = drain(u, a, (size_t)n, seqs, 8);
        if (depth <= 3) {
            CHECK_EQ(rc, 1);
            CHECK_EQ(seqs[0], 1);
        } else {
            CHECK_EQ(rc, SB_E_TOO_DEEP);
        }
    }
    /* a compressed batch inside a batch */
    n = wrap(b2, sizeof b2, (const uint8_t *)"\x03\x00", 2, SB_FRAME_F_COMPRESSED);
    n = wrap(a, sizeof a, b2, (size_t)n, 0);
    CHECK_EQ(sb_unbatch_feed(u, a, (uint32_t)n), SB_E_BAD_FRAME);
    /* a bad inner frame spoils the whole message: nothing is yielded */
    int k = enc(b2, sizeof b2, 1, 1, "ok");
    b2[k] = 0x7b;
    n = wrap(a, sizeof a, b2, (size_t)k + 1, 0);
    CHECK_EQ(sb_unbatch_feed(u, a, (uint32_t)n), SB_E_BAD_VERSION);
    CHECK_EQ(sb_unbatch_next(u), 0);
    /* inner truncated */
    n = wrap(a, sizeof a, b2, (size_t)k - 1, 0);
    CHECK_EQ(sb_unbatch_feed(u, a, (uint32_t)n), SB_E_TRUNCATED);
    /* inner payload over the cap */
    {
        char big[80];
        memset(big, 'y', 79);
        big[79] = 0;
        k = enc(b2, sizeof b2, 1, 1, big);
        n = wrap(a, sizeof a, b2, (size_t)k, 0);
        CHECK_EQ(sb_unbatch_feed(u, a, (uint32_t)n), SB_E_TOO_LARGE);
    }
    /* corrupt deflate */
    n = wrap(a, sizeof a, (const uint8_t *)"\xff\xff\xff", 3, SB_FRAME_F_COMPRESSED);
    CHECK_EQ(sb_unbatch_feed(u, a, (uint32_t)n), SB_E_CORRUPT);
    /* decompression bomb: 64 KiB of zeros against a 1 KiB cap */
    {
        sb_batch *w = sb_batch_create(1000, 1 << 20, 1, 1, SB_BATCH_DEFLATE, 9);
        uint8_t *zeros = calloc(1, 60000), *fb = malloc(60100);
        sb_frame f;
        sb_frame_init(&f, SB_FRAME_MESSAGE);
        f.payload = zeros;
        f.payload_len = 60000;
        int fl = sb_frame_write(&f, fb, 60100);
        sb_batch_add(w, fb, (uint32_t)fl, 0);
        n = sb_batch_flush(w);
        CHECK(n < 1000);
        sb_unbatch *big = sb_unbatch_create(100000, 1024, 0);
        CHECK_EQ(sb_unbatch_feed(big, sb_batch_out(w), (uint32_t)n), SB_E_TOO_LARGE);
        sb_unbatch_destroy(big);
        sb_batch_destroy(w);
        free(zeros);
        free(fb);
    }
    /* trailing bytes after the outer frame */
    n = enc(a, sizeof a, 1, 1, "x");
    a[n] = 0;
    CHECK_EQ(sb_unbatch_feed(u, a, (uint32_t)n + 1), SB_E_TRAILING_DATA);
    CHECK(sb_unbatch_create(0, 0, 17) == NULL);
    sb_unbatch_destroy(u);
}

/* A large message pins nothing: once its frames are read (reader) or its
 * bytes taken (writer), the buffers it grew are given back, the shared
 * window kept. */
static void test_large_message_buffers_given_back(void)
{
    static uint8_t zeros[512 << 10], frame[(64 << 10) + 64], big[(512 << 10) + 64];
    static uint8_t small[64];
    sb_batch *b = sb_batch_create(64, 2 << 20, 0, 96, SB_BATCH_SHARED, 6);
    sb_unbatch *u = sb_unbatch_create(1 << 20, 8 << 20, 0);
    uint8_t *copy = malloc(4 << 20);
    sb_frame f;
    int n, k, m;
    /* 16 frames of 64 KiB of zeros: 1 MiB that deflates to about 1 KiB */
    sb_frame_init(&f, SB_FRAME_MESSAGE);
    f.payload = zeros;
    f.payload_len = 64 << 10;
    for (uint32_t i = 1; i <= 16; i++) {
        f.seq = f.id = i;
        m = sb_frame_write(&f, frame, sizeof frame);
        CHECK(m > 0);
        CHECK(sb_batch_add(b, frame, (uint32_t)m, 0) >= 0);
    }
    n = sb_batch_flush(b);
    CHECK(n > 0 && n < 8192);
    memcpy(copy, sb_batch_out(b), (size_t)n);
    CHECK(sb_batch_capacity(b) < (64 << 10) + 8192); /* pending and deflate output gone */
    sb_batch_release(b);
    CHECK(sb_batch_capacity(b) <= 64 << 10);
    k = sb_unbatch_feed(u, copy, (uint32_t)n);
    CHECK_EQ(k, 16);
    CHECK_EQ(sb_unbatch_bytes(u), 16 * m); /* what it inflates to */
    CHECK(sb_unbatch_capacity(u) >= 1 << 20);
    for (m = 0; sb_unbatch_next(u) == 1; m++)
        CHECK_EQ(sb_unbatch_view(u)->payload_len, 64 << 10);
    CHECK_EQ(m, 16);
    CHECK(sb_unbatch_capacity(u) <= 64 << 10);
    /* the window survived: a shared batch after it still inflates */
    n = enc(small, sizeof small, 0, 17, "after the big one, with some words to compress");
    for (int i = 0; i < 4; i++)
        CHECK(sb_batch_add(b, small, (uint32_t)n, 0) >= 0);
    n = sb_batch_flush(b);
    CHECK(n > 0);
    CHECK_EQ(sb_unbatch_feed(u, sb_batch_out(b), (uint32_t)n), 4);
    CHECK(sb_unbatch_next_frame(u, &f) == 1 &&
          f.payload_len == strlen("after the big one, with some words to compress"));
    /* a lone uncompressed 512 KiB frame: the copy of it goes back too */
    sb_frame_init(&f, SB_FRAME_MESSAGE);
    f.seq = f.id = 18;
    f.payload = zeros;
    f.payload_len = 512 << 10;
    n = sb_frame_write(&f, big, sizeof big);
    CHECK_EQ(sb_unbatch_feed(u, big, (uint32_t)n), 1);
    CHECK(sb_unbatch_capacity(u) >= 512 << 10);
    CHECK_EQ(sb_unbatch_next(u), 1);
    CHECK_EQ(sb_unbatch_next(u), 0);
    CHECK(sb_unbatch_capacity(u) <= 64 << 10);
    free(copy);
    sb_batch_destroy(b);
    sb_unbatch_destroy(u);
}

int main(void)
{
    RUN(test_flush_triggers);
    RUN(test_compression_shared_window);
    RUN(test_compress_only_if_smaller);
    RUN(test_level_zero_sends_as_is);
    RUN(test_reader_limits);
    RUN(test_large_message_buffers_given_back);
    TEST_MAIN_END();
}
