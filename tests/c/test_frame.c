#include <stdlib.h>

#include "frame.h"
#include "sbtest.h"

/* ---- tiny reader for tests/data/frame-vectors.json (one vector a line) ---- */

static char *read_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    long n;
    char *s;
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    s = malloc((size_t)n + 1);
    if (fread(s, 1, (size_t)n, fp) != (size_t)n) {
        free(s);
        s = NULL;
    } else {
        s[n] = 0;
    }
    fclose(fp);
    return s;
}

/* Value of "key": in line (string value copied into out, number returned). */
static int json_str(const char *line, const char *key, char *out, size_t cap)
{
    char pat[64];
    const char *p, *e;
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    p = strstr(line, pat);
    if (!p)
        return -1;
    p += strlen(pat);
    e = strchr(p, '"');
    if (!e || (size_t)(e - p) >= cap)
        return -1;
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = 0;
    return (int)(e - p);
}

static double json_num(const char *line, const char *key, double dflt)
{
    char pat[64];
    const char *p;
    snprintf(pat, sizeof pat, "\"%s\":", key);
    p = strstr(line, pat);
    return p ? strtod(p + strlen(pat), NULL) : dflt;
}

static size_t unhex(const char *h, uint8_t *out)
{
    size_t n = 0;
    for (; h[0] && h[1]; h += 2) {
        unsigned v;
        sscanf(h, "%2x", &v);
        out[n++] = (uint8_t)v;
    }
    return n;
}

static void test_vectors(void)
{
    char *json = read_file(SB_TEST_DATA "/frame-vectors.json");
    char *line, *next;
    int nvalid = 0, ninvalid = 0;
    CHECK(json != NULL);
    if (!json)
        return;
    for (line = json; line && *line; line = next) {
        char hex[1024], err[64], phex[1024], name[128];
        uint8_t in[512], pay[512], out[600];
        size_t n, pn;
        sb_frame f;
        int rc;
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        if (json_str(line, "hex", hex, sizeof hex) < 0)
            continue;
        json_str(line, "name", name, sizeof name);
        n = unhex(hex, in);
        if (json_str(line, "error", err, sizeof err) >= 0) {
            size_t maxp = (size_t)json_num(line, "maxPayload", 16 << 20);
            rc = sb_frame_decode(in, n, maxp, &f);
            CHECK(rc < 0);
            if (strcmp(sb_errname(rc), err) != 0)
                fprintf(stderr, "vector '%s': got %s want %s\n", name, sb_errname(rc), err);
            CHECK(strcmp(sb_errname(rc), err) == 0);
            ninvalid++;
            continue;
        }
        rc = sb_frame_decode(in, n, 16 << 20, &f);
        if (rc != (int)n)
            fprintf(stderr, "vector '%s': decode %d (%s)\n", name, rc, sb_errname(rc));
        CHECK_EQ(rc, n);
        CHECK_EQ(f.kind, json_num(line, "kind", -9));
        CHECK_EQ(f.flags, json_num(line, "flags", -9));
        CHECK_EQ(f.channel, json_num(line, "channel", -9));
        CHECK_EQ(f.id, json_num(line, "id", -9));
        CHECK_EQ(f.seq, json_num(line, "seq", -9));
        CHECK_EQ(f.corr, json_num(line, "corr", -9));
        CHECK(f.deadline == json_num(line, "deadline", -9));
        json_str(line, "payload", phex, sizeof phex);
        pn = unhex(phex, pay);
        CHECK_EQ(f.payload_len, pn);
        if (f.payload_len == pn && pn)
            CHECK_MEM(f.payload, pay, pn);
        /* Re-encode byte for byte (also through the codec object). */
        CHECK_EQ(sb_frame_size(&f), n);
        CHECK_EQ(sb_frame_write(&f, out, sizeof out), n);
        CHECK_MEM(out, in, n);
        {
            sb_frame_codec *c = sb_frame_codec_create(0);
            const sb_frame_view *v;
            CHECK_EQ(sb_frame_codec_encode(c, f.kind, f.flags, f.channel, f.id, f.seq, f.corr,
                                           f.deadline, f.payload, (uint32_t)f.payload_len),
                     n);
            CHECK_MEM(sb_frame_codec_out(c), in, n);
            CHECK_EQ(sb_frame_codec_decode(c, in, (uint32_t)n), 0);
            v = sb_frame_codec_view(c);
            CHECK_EQ(v->seq, f.seq);
            CHECK_EQ(v->payload_off + v->payload_len, n);
            CHECK(v->deadline == f.deadline);
            sb_frame_codec_destroy(c);
        }
        nvalid++;
    }
    CHECK(nvalid >= 10);
    CHECK(ninvalid >= 10);
    free(json);
}

static void test_roundtrip_fields(void)
{
    static const uint32_t vals[] = {0, 1, 127, 128, 16383, 16384, 0x7fffffffu, 0xffffffffu};
    uint8_t buf[SB_FRAME_MAX_HEADER + 8];
    sb_frame f, g;
    for (size_t i = 0; i < 8; i++)
        for (size_t j = 0; j < 8; j++) {
            sb_frame_init(&f, (int)(i + j) % SB_FRAME_KIND_COUNT_);
            f.channel = vals[i];
            f.id = vals[j];
            f.seq = vals[(i + 3) % 8];
            f.corr = vals[(j + 5) % 8];
            f.deadline = (i & 1) ? (double)vals[j] * 1000.0 : -1;
            f.flags = SB_FRAME_F_LAST | SB_FRAME_F_ACK_REQ;
            f.payload = (const uint8_t *)"12345678";
            f.payload_len = j;
            int n = sb_frame_write(&f, buf, sizeof buf);
            CHECK(n > 0 && n <= (int)sizeof buf);
            CHECK_EQ(sb_frame_decode(buf, (size_t)n, 64, &g), n);
            CHECK_EQ(g.channel, f.channel);
            CHECK_EQ(g.id, f.id);
            CHECK_EQ(g.seq, f.seq);
            CHECK_EQ(g.corr, f.corr);
            CHECK(g.deadline == f.deadline);
            CHECK_EQ(g.payload_len, j);
            /* Every strict prefix is TRUNCATED (never a different frame). */
            for (int k = 0; k < n; k++)
                CHECK_EQ(sb_frame_decode(buf, (size_t)k, 64, &g), SB_E_TRUNCATED);
        }
}

static void test_encode_rejects(void)
{
    uint8_t buf[64];
    sb_frame f;
    sb_frame_init(&f, SB_FRAME_KIND_COUNT_);
    CHECK_EQ(sb_frame_write(&f, buf, sizeof buf), SB_E_INVALID);
    sb_frame_init(&f, SB_FRAME_MESSAGE);
    f.flags = SB_FRAME_F_SHARED;
    CHECK_EQ(sb_frame_write(&f, buf, sizeof buf), SB_E_INVALID);
    f.flags = 0x80;
    CHECK_EQ(sb_frame_write(&f, buf, sizeof buf), SB_E_INVALID);
    f.flags = 0;
    f.deadline = 1.5;
    CHECK_EQ(sb_frame_write(&f, buf, sizeof buf), SB_E_INVALID);
    f.deadline = 9007199254740994.0;
    CHECK_EQ(sb_frame_write(&f, buf, sizeof buf), SB_E_INVALID);
    f.deadline = -1;
    f.payload = (const uint8_t *)"abcdef";
    f.payload_len = 6;
    CHECK_EQ(sb_frame_write(&f, buf, 9), SB_E_BUFFER_TOO_SMALL);
    CHECK_EQ(sb_frame_write(&f, buf, 10), 10);
    {
        sb_frame_codec *c = sb_frame_codec_create(4);
        CHECK_EQ(sb_frame_codec_encode(c, 0, 0, 0, 0, 0, 0, -1, buf, 5), SB_E_TOO_LARGE);
        CHECK_EQ(sb_frame_codec_encode(c, 0, 0, 0, 0, 0, 0, -1, buf, 4), 8);
        CHECK_EQ(sb_frame_codec_parse(c, (const uint8_t *)"\x10\x00\x00\x00\x10", 5), 4);
        CHECK_EQ(sb_frame_codec_decode(c, (const uint8_t *)"\x10\x00\x00\x00\x10", 5), SB_E_TRAILING_DATA);
        sb_frame_codec_destroy(c);
    }
    CHECK(strcmp(sb_frame_kind_name(SB_FRAME_STATE_OP), "state-op") == 0);
    CHECK(strcmp(sb_frame_kind_name(42), "unknown") == 0);
}

int main(void)
{
    RUN(test_vectors);
    RUN(test_roundtrip_fields);
    RUN(test_encode_rejects);
    TEST_MAIN_END();
}
