#include "sse.h"
#include "utf8_oracle.h"
#include "sbtest.h"

#include <stdlib.h>

/* ---- helpers ----------------------------------------------------------- */

typedef struct result {
    char ev[16384]; /* events as "type|id|data;" */
    size_t len;
    int rc; /* first error, 0 if none */
} result;

static void put(result *r, const void *p, size_t n)
{
    if (r->len + n < sizeof r->ev) {
        memcpy(r->ev + r->len, p, n);
        r->len += n;
    }
}

/* Append the events of the last feed to r, checking the record invariants. */
static void collect(sb_sse *s, result *r, int n)
{
    const uint8_t *t = sb_sse_text(s);
    const uint32_t *rec = sb_sse_records(s);
    const uint8_t *id = NULL, *type = NULL;
    size_t off = 0, idlen = 0, typelen = 0;
    CHECK_EQ(n, sb_sse_count(s));
    for (int i = 0; i < n; i++, rec += SB_SSE_REC_WORDS) {
        const uint8_t *data = t + off;
        CHECK_EQ(utf8_oracle_units(data, rec[0]), rec[1]);
        off += rec[0];
        if (rec[2] == SB_SSE_SAME) {
            CHECK(type != NULL); /* refers to a type written earlier in the batch */
            CHECK(rec[3] == SB_SSE_SAME);
        } else if (rec[2]) {
            type = t + off;
            typelen = rec[2];
            CHECK_EQ(utf8_oracle_units(type, typelen), rec[3]);
            off += typelen;
        }
        if (rec[4] == SB_SSE_SAME) {
            CHECK(i > 0); /* the first event of a batch always carries its id */
            CHECK(rec[5] == SB_SSE_SAME);
        } else {
            id = t + off;
            idlen = rec[4];
            CHECK_EQ(utf8_oracle_units(id, idlen), rec[5]);
            off += idlen;
        }
        if (rec[2])
            put(r, type, typelen);
        else
            put(r, "message", 7);
        put(r, "|", 1);
        if (idlen)
            put(r, id, idlen);
        put(r, "|", 1);
        if (rec[0])
            put(r, data, rec[0]);
        put(r, ";", 1);
    }
    CHECK_EQ(off, sb_sse_text_len(s));
}

static void feed(sb_sse *s, result *r, const char *p, size_t n)
{
    int rc;
    if (r->rc)
        return;
    rc = sb_sse_feed(s, (const uint8_t *)p, n);
    collect(s, r, rc < 0 ? sb_sse_count(s) : rc);
    if (rc < 0)
        r->rc = rc;
}

static sb_sse *mk(uint32_t max_line, uint32_t max_event)
{
    return sb_sse_create(max_line, max_event, 1000, 30000, 2, 0, 1);
}

/* ---- conformance table ------------------------------------------------- */

typedef struct sse_case {
    const char *name;
    const char *in;
    size_t in_len; /* 0 = strlen */
    const char *events;
    size_t events_len; /* 0 = strlen */
    const char *last_id;
    double retry;
} sse_case;

#define S(x) x, sizeof(x) - 1

static const sse_case cases[] = {
    {"simple data", "data: hello\n\n", 0, "message||hello;", 0, "", -1},
    {"BOM at start is skipped", "\xEF\xBB\xBF" "data: a\n\n", 0, "message||a;", 0, "", -1},
    {"BOM only at the start", "data: a\n\n\xEF\xBB\xBF" "data: b\n\n", 0, "message||a;", 0, "", -1},
    {"second BOM is text", "\xEF\xBB\xBF\xEF\xBB\xBF" "data: x\n\n", 0, "", 0, "", -1},
    {"partial BOM is text", "\xEF\xBB" "data: x\n\ndata: y\n\n", 0, "message||y;", 0, "", -1},
    {"BOM then blank line", "\xEF\xBB\xBF\ndata: z\n\n", 0, "message||z;", 0, "", -1},
    {"LF line ends", "data: a\ndata: b\n\n", 0, "message||a\nb;", 0, "", -1},
    {"CR line ends", "data: a\rdata: b\r\r", 0, "message||a\nb;", 0, "", -1},
    {"CRLF line ends", "data: a\r\ndata: b\r\n\r\n", 0, "message||a\nb;", 0, "", -1},
    {"mixed line ends", "data: a\r\n\ndata: b\r\rdata: c\n\r\n", 0, "message||a;message||b;message||c;",
     0, "", -1},
    {"CR CR LF is two line ends", "data: a\r\r\ndata: b\n\n", 0, "message||a;message||b;", 0, "", -1},
    {"LF CR is two line ends", "data: a\n\rdata: b\n\n", 0, "message||a;message||b;", 0, "", -1},
    {"data lines joined with LF", "data: a\ndata:\ndata: b\n\n", 0, "message||a\n\nb;", 0, "", -1},
    {"only the final LF removed", "data: a\ndata:\n\n", 0, "message||a\n;", 0, "", -1},
    {"empty data dispatches", "data:\n\n", 0, "message||;", 0, "", -1},
    {"field without colon", "data\ndata\n\n", 0, "message||\n;", 0, "", -1},
    {"no data, no dispatch", "event: x\n\n", 0, "", 0, "", -1},
    {"type buffer reset without data", "event: x\n\ndata: y\n\n", 0, "message||y;", 0, "", -1},
    {"event type", "event: add\ndata: 1\n\n", 0, "add||1;", 0, "", -1},
    {"event type reset after dispatch", "event: a\ndata: 1\n\ndata: 2\n\n", 0, "a||1;message||2;", 0, "",
     -1},
    {"event without colon is message", "event\ndata: x\n\n", 0, "message||x;", 0, "", -1},
    {"id persists across events", "id: 7\ndata: x\n\ndata: y\n\n", 0, "message|7|x;message|7|y;", 0,
     "7", -1},
    {"id with NUL ignored", S("id: 1\ndata: a\n\nid: 2\0" "3\ndata: b\n\n"), "message|1|a;message|1|b;", 0, "1", -1},
    {"empty id resets", "id: 1\ndata: a\n\nid\ndata: b\n\n", 0, "message|1|a;message||b;", 0, "", -1},
    {"id without data sets last id", "id: 5\n\n", 0, "", 0, "5", -1},
    {"unterminated event's id is not committed", "id: 1\ndata: a\n\nid: 2\ndata: b\n", 0,
     "message|1|a;", 0, "1", -1},
    {"retry digits", "retry: 1500\n", 0, "", 0, "", 1500},
    {"retry last one wins", "retry: 10\nretry: 20\n", 0, "", 0, "", 20},
    {"retry non-digits ignored", "retry: 15a\nretry: -1\nretry:  100\nretry:\nretry: 1.5\n", 0, "", 0, "",
     -1},
    {"retry without space", "retry:0\n", 0, "", 0, "", 0},
    {"comments ignored", ": comment\ndata: a\n:\n: x: y\n\n", 0, "message||a;", 0, "", -1},
    {"one leading space stripped", "data:  two\n\n", 0, "message|| two;", 0, "", -1},
    {"no space after colon", "data:nospace\n\n", 0, "message||nospace;", 0, "", -1},
    {"colon inside value", "data: a:b\n\n", 0, "message||a:b;", 0, "", -1},
    {"unknown field ignored", "foo: bar\ndata: x\n\n", 0, "message||x;", 0, "", -1},
    {"field names are case-sensitive", "Data: x\nEVENT: y\n\n", 0, "", 0, "", -1},
    {"field name with space", "data : x\n\n", 0, "", 0, "", -1},
    {"unterminated event not dispatched", "data: a\n\ndata: b\n", 0, "message||a;", 0, "", -1},
    {"unterminated line not processed", "data: a\n\ndata: b", 0, "message||a;", 0, "", -1},
    {"UTF-8 passes", "data: \xC3\xA9\xF0\x9F\x98\x80\n\n", 0, "message||\xC3\xA9\xF0\x9F\x98\x80;", 0,
     "", -1},
    {"invalid bytes replaced", "data: \xFF\xC3\n\n", 0, "message||\xEF\xBF\xBD\xEF\xBF\xBD;", 0, "", -1},
    {"truncated sequence is one U+FFFD", "data: \xE2\x82\n\n", 0, "message||\xEF\xBF\xBD;", 0, "", -1},
    {"maximal subpart then ASCII", "data: \xF0\x9F\x98" "A\xED\xA0\x80\n\n", 0,
     "message||\xEF\xBF\xBD" "A\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD;", 0, "", -1},
    {"BOM inside data kept", "data: \xEF\xBB\xBFx\n\n", 0, "message||\xEF\xBB\xBFx;", 0, "", -1},
    {"NUL in data kept", S("data: a\0b\n\n"), S("message||a\0b;"), "", -1},
    {"type and id decoded too", "event: \xC3\n" "id: \xC3\xA9\ndata\n\n", 0, "\xEF\xBF\xBD|\xC3\xA9|;", 0,
     "\xC3\xA9", -1},
};

static void expect(const sse_case *c, const result *r, sb_sse *s, const char *how, size_t k)
{
    const char *ev = c->events;
    size_t evlen = c->events_len ? c->events_len : strlen(ev);
    int ok = r->rc == 0 && r->len == evlen && memcmp(r->ev, ev, evlen) == 0 &&
             sb_sse_last_id_len(s) == strlen(c->last_id) &&
             memcmp(sb_sse_last_id(s) ? (const char *)sb_sse_last_id(s) : "", c->last_id,
                    strlen(c->last_id)) == 0 &&
             sb_sse_retry(s) == c->retry;
    sbt_checks++;
    if (!ok) {
        sbt_failures++;
        fprintf(stderr, "case \"%s\" (%s %zu): got \"%.*s\" rc %d retry %g\n",
                c->name ? c->name : c->in, how, k, (int)r->len, r->ev, r->rc, sb_sse_retry(s));
    }
}

static void test_conformance_any_split(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const sse_case *c = &cases[i];
        size_t n = c->in_len ? c->in_len : strlen(c->in);
        /* whole */
        {
            sb_sse *s = mk(0, 0);
            result r = {0};
            feed(s, &r, c->in, n);
            sb_sse_end(s);
            expect(c, &r, s, "whole", n);
            sb_sse_destroy(s);
        }
        /* split in two at every byte position, with an empty feed in between */
        for (size_t k = 0; k <= n; k++) {
            sb_sse *s = mk(0, 0);
            result r = {0};
            feed(s, &r, c->in, k);
            feed(s, &r, c->in + k, 0);
            feed(s, &r, c->in + k, n - k);
            sb_sse_end(s);
            expect(c, &r, s, "split", k);
            sb_sse_destroy(s);
        }
        /* one byte at a time */
        {
            sb_sse *s = mk(0, 0);
            result r = {0};
            for (size_t k = 0; k < n; k++)
                feed(s, &r, c->in + k, 1);
            sb_sse_end(s);
            expect(c, &r, s, "bytewise", 1);
            sb_sse_destroy(s);
        }
    }
}

static void test_many_events_share_id(void)
{
    /* 500 events after one id: the id is written once per batch */
    char buf[500 * 11 + 32];
    size_t n = 0;
    sb_sse *s = mk(0, 0);
    result r = {0};
    int rc;
    n += (size_t)sprintf(buf, "id: abcdefghij\n");
    for (int i = 0; i < 500; i++)
        n += (size_t)sprintf(buf + n, "data: %03d\n\n", i);
    rc = sb_sse_feed(s, (const uint8_t *)buf, n);
    CHECK_EQ(rc, 500);
    collect(s, &r, rc);
    CHECK_EQ(sb_sse_text_len(s), 500 * 3 + 10);
    CHECK(memcmp(r.ev, "message|abcdefghij|000;message|abcdefghij|001;", 46) == 0);
    sb_sse_destroy(s);
    /* repeated types are written once per batch too, with "message" between */
    {
        const char *in = "event: tick\ndata: 1\n\nevent: tick\ndata: 2\n\ndata: 3\n\n"
                         "event: tick\ndata: 4\n\nevent: tock\ndata: 5\n\n";
        const uint32_t *rec;
        result q = {0};
        s = mk(0, 0);
        rc = sb_sse_feed(s, (const uint8_t *)in, strlen(in));
        CHECK_EQ(rc, 5);
        rec = sb_sse_records(s);
        CHECK_EQ(rec[2], 4);
        CHECK(rec[1 * SB_SSE_REC_WORDS + 2] == SB_SSE_SAME);
        CHECK_EQ(rec[2 * SB_SSE_REC_WORDS + 2], 0);
        CHECK(rec[3 * SB_SSE_REC_WORDS + 2] == SB_SSE_SAME);
        CHECK_EQ(rec[4 * SB_SSE_REC_WORDS + 2], 4);
        CHECK_EQ(sb_sse_text_len(s), 5 + 8);
        collect(s, &q, rc);
        CHECK(q.len == 43 && memcmp(q.ev, "tick||1;tick||2;message||3;tick||4;tock||5;", 43) == 0);
        sb_sse_destroy(s);
    }
}

static void test_line_cap(void)
{
    const char *in = "data: ok\n\ndata: 0123456789abcdef\n\ndata: never\n\n";
    size_t n = strlen(in);
    for (size_t k = 0; k <= n; k++) {
        sb_sse *s = mk(16, 0);
        result r = {0};
        feed(s, &r, in, k);
        feed(s, &r, in + k, n - k);
        CHECK_EQ(r.rc, SB_E_TOO_LARGE);
        CHECK(r.len == 12 && memcmp(r.ev, "message||ok;", 12) == 0);
        /* sticky until the stream ends */
        CHECK_EQ(sb_sse_feed(s, (const uint8_t *)"data: x\n\n", 9), SB_E_TOO_LARGE);
        sb_sse_end(s);
        CHECK_EQ(sb_sse_feed(s, (const uint8_t *)"data: x\n\n", 9), 1);
        sb_sse_destroy(s);
    }
    /* a line of exactly the cap is fine, unterminated too */
    {
        sb_sse *s = mk(16, 0);
        CHECK_EQ(sb_sse_feed(s, (const uint8_t *)"data: 0123456789\n\n", 18), 1);
        CHECK_EQ(sb_sse_feed(s, (const uint8_t *)"data: 0123456789", 16), 0);
        CHECK_EQ(sb_sse_feed(s, (const uint8_t *)"x", 1), SB_E_TOO_LARGE);
        sb_sse_destroy(s);
    }
}

static void test_event_cap(void)
{
    /* data buffer "aaaa\nbbbb\n" is 10 bytes: the third line takes it past 12 */
    const char *in = "data: aaaa\ndata: bbbb\n\ndata: aaaa\ndata: bbbb\ndata: cccc\n\n";
    size_t n = strlen(in);
    for (size_t k = 0; k <= n; k++) {
        sb_sse *s = mk(0, 12);
        result r = {0};
        feed(s, &r, in, k);
        feed(s, &r, in + k, n - k);
        CHECK_EQ(r.rc, SB_E_TOO_LARGE);
        CHECK(r.len == 19 && memcmp(r.ev, "message||aaaa\nbbbb;", 19) == 0);
        sb_sse_destroy(s);
    }
}

static void test_pending_event_spans_feeds(void)
{
    sb_sse *s = mk(0, 0);
    result r = {0};
    feed(s, &r, "data: one\n\ndata: tw", 19);
    feed(s, &r, "o\ndata: more\n", 13);
    CHECK_EQ(sb_sse_count(s), 0);
    feed(s, &r, "\ndata: x\n", 9);
    CHECK(r.len == 31 && memcmp(r.ev, "message||one;message||two\nmore;", 31) == 0);
    /* end drops the pending "x" */
    sb_sse_end(s);
    feed(s, &r, "\n", 1);
    CHECK_EQ(sb_sse_count(s), 0);
    sb_sse_destroy(s);
}

static void test_last_id_and_resume(void)
{
    sb_sse *s = mk(8, 0);
    result r = {0};
    CHECK_EQ(sb_sse_set_last_id(s, (const uint8_t *)"41", 2), SB_OK);
    CHECK_EQ(sb_sse_set_last_id(s, (const uint8_t *)"a\0b", 3), SB_E_INVALID);
    CHECK_EQ(sb_sse_set_last_id(s, (const uint8_t *)"123456789", 9), SB_E_TOO_LARGE);
    CHECK(sb_sse_last_id_len(s) == 2 && memcmp(sb_sse_last_id(s), "41", 2) == 0);
    feed(s, &r, "data: a\n\n", 9); /* inherits the seeded id */
    CHECK(r.len == 13 && memcmp(r.ev, "message|41|a;", 13) == 0);
    feed(s, &r, "id: 42\ndata: b\n", 15); /* connection drops here */
    sb_sse_end(s);
    CHECK(sb_sse_last_id_len(s) == 2 && memcmp(sb_sse_last_id(s), "41", 2) == 0);
    r.len = 0;
    feed(s, &r, "data: c\n\n", 9); /* new stream: id buffer starts from 41 */
    CHECK(r.len == 13 && memcmp(r.ev, "message|41|c;", 13) == 0);
    sb_sse_destroy(s);
}

/* ---- connection state machine ----------------------------------------- */

static void test_states(void)
{
    sb_sse *s = sb_sse_create(0, 0, 500, 8000, 2, 0, 3);
    CHECK_EQ(sb_sse_state(s), SB_SSE_IDLE);
    CHECK_EQ(sb_sse_opened(s, 0), SB_E_BAD_STATE);
    CHECK_EQ(sb_sse_failed(s, 0), SB_E_BAD_STATE);
    CHECK_EQ(sb_sse_connect(s, 0), SB_OK);
    CHECK_EQ(sb_sse_connect(s, 0), SB_E_BAD_STATE);
    CHECK_EQ(sb_sse_state(s), SB_SSE_CONNECTING);
    CHECK_EQ(sb_sse_deadline(s), -1);
    CHECK_EQ(sb_sse_opened(s, 10), SB_OK);
    CHECK_EQ(sb_sse_state(s), SB_SSE_OPEN);
    /* no retry from the server: floor is min_ms; the first attempt is
     * jittered too, in [floor, 2 floor] (never under the floor) */
    CHECK_EQ(sb_sse_failed(s, 100), SB_OK);
    CHECK_EQ(sb_sse_state(s), SB_SSE_WAITING);
    CHECK(sb_sse_deadline(s) >= 600 && sb_sse_deadline(s) <= 1100);
    CHECK(sb_sse_deadline(s) != 600);
    CHECK_EQ(sb_sse_attempts(s), 1);
    /* failures without progress grow with jitter, within [floor, 2 floor*2^k], capped */
    for (int k = 1; k < 12; k++) {
        double now = 1000.0 * k, d, ceil;
        CHECK_EQ(sb_sse_connect(s, now), SB_OK);
        CHECK_EQ(sb_sse_failed(s, now), SB_OK);
        d = sb_sse_deadline(s) - now;
        ceil = 1000;
        for (int j = 0; j < k && ceil < 8000; j++)
            ceil *= 2;
        ceil = ceil > 8000 ? 8000 : ceil;
        CHECK(d >= 500 && d <= ceil);
    }
    CHECK_EQ(sb_sse_attempts(s), 12);
    /* a connection that delivers an event resets the count; the server's
     * retry becomes the floor: the first wait is in [retry, 2 retry] */
    CHECK_EQ(sb_sse_connect(s, 20000), SB_OK);
    CHECK_EQ(sb_sse_opened(s, 20001), SB_OK);
    CHECK_EQ(sb_sse_feed(s, (const uint8_t *)"retry: 250\ndata: x\n\n", 20), 1);
    CHECK_EQ(sb_sse_failed(s, 20010), SB_OK);
    CHECK(sb_sse_deadline(s) >= 20260 && sb_sse_deadline(s) <= 20510);
    CHECK_EQ(sb_sse_attempts(s), 1);
    /* retry above max_ms is still honoured as the floor (and still jittered) */
    CHECK_EQ(sb_sse_connect(s, 30000), SB_OK);
    CHECK_EQ(sb_sse_feed(s, (const uint8_t *)"retry: 20000\ndata: x\n\n", 22), 1);
    CHECK_EQ(sb_sse_failed(s, 30000), SB_OK);
    CHECK(sb_sse_deadline(s) >= 50000 && sb_sse_deadline(s) <= 70000);
    /* two failures without progress, then an event by another path
     * (sb_sse_progress, the native transport) resets the count */
    CHECK_EQ(sb_sse_connect(s, 60000), SB_OK);
    CHECK_EQ(sb_sse_failed(s, 60000), SB_OK);
    CHECK_EQ(sb_sse_connect(s, 90000), SB_OK);
    CHECK_EQ(sb_sse_failed(s, 90000), SB_OK);
    CHECK_EQ(sb_sse_attempts(s), 3); /* one left from the failure above */
    CHECK_EQ(sb_sse_connect(s, 120000), SB_OK);
    CHECK_EQ(sb_sse_opened(s, 120000), SB_OK);
    sb_sse_progress(s);
    CHECK_EQ(sb_sse_failed(s, 120000), SB_OK);
    CHECK_EQ(sb_sse_attempts(s), 1);
    CHECK(sb_sse_deadline(s) >= 140000 && sb_sse_deadline(s) <= 160000);
    sb_sse_close(s);
    CHECK_EQ(sb_sse_state(s), SB_SSE_CLOSED);
    CHECK_EQ(sb_sse_deadline(s), -1);
    CHECK_EQ(sb_sse_connect(s, 0), SB_E_BAD_STATE);
    sb_sse_destroy(s);
}

/* Retry-After (429/503): the next wait is at least what the server asked,
 * at most max_ms, once; time driven by hand. */
static void test_retry_after(void)
{
    sb_sse *s = sb_sse_create(0, 0, 100, 8000, 2, 0, 4);
    CHECK_EQ(sb_sse_connect(s, 0), SB_OK);
    sb_sse_retry_after(s, 5000);
    CHECK_EQ(sb_sse_failed(s, 1000), SB_OK);
    CHECK_EQ(sb_sse_deadline(s), 6000); /* over the draw ([100, 200]) */
    /* one-shot: the next failure is the plain backoff again */
    CHECK_EQ(sb_sse_connect(s, 6000), SB_OK);
    CHECK_EQ(sb_sse_failed(s, 6000), SB_OK);
    CHECK(sb_sse_deadline(s) >= 6100 && sb_sse_deadline(s) <= 6400);
    /* bounded by max_ms */
    CHECK_EQ(sb_sse_connect(s, 7000), SB_OK);
    sb_sse_retry_after(s, 3600e3);
    CHECK_EQ(sb_sse_failed(s, 7000), SB_OK);
    CHECK_EQ(sb_sse_deadline(s), 15000);
    /* below the draw it changes nothing; 0 or negative is ignored */
    CHECK_EQ(sb_sse_connect(s, 20000), SB_OK);
    CHECK_EQ(sb_sse_feed(s, (const uint8_t *)"retry: 1000\ndata: x\n\n", 21), 1);
    sb_sse_retry_after(s, 10);
    CHECK_EQ(sb_sse_failed(s, 20000), SB_OK);
    CHECK(sb_sse_deadline(s) >= 21000);
    CHECK_EQ(sb_sse_connect(s, 30000), SB_OK);
    sb_sse_retry_after(s, -5);
    CHECK_EQ(sb_sse_failed(s, 30000), SB_OK);
    CHECK(sb_sse_deadline(s) >= 31000 && sb_sse_deadline(s) <= 34000);
    sb_sse_retry_after(NULL, 1);
    sb_sse_destroy(s);
}

static void test_max_attempts_and_retry_zero(void)
{
    sb_sse *s = sb_sse_create(0, 0, 100, 1000, 2, 3, 9);
    for (int k = 0; k < 3; k++) {
        CHECK_EQ(sb_sse_connect(s, k), SB_OK);
        CHECK_EQ(sb_sse_failed(s, k), SB_OK);
    }
    CHECK_EQ(sb_sse_connect(s, 5), SB_OK);
    CHECK_EQ(sb_sse_failed(s, 5), SB_E_CONNECTION_LOST);
    CHECK_EQ(sb_sse_state(s), SB_SSE_CLOSED);
    sb_sse_destroy(s);

    s = sb_sse_create(0, 0, 100, 1000, 2, 0, 9);
    CHECK_EQ(sb_sse_connect(s, 0), SB_OK);
    CHECK_EQ(sb_sse_feed(s, (const uint8_t *)"retry: 0\ndata: x\n\n", 18), 1);
    CHECK_EQ(sb_sse_failed(s, 10), SB_OK);
    CHECK(sb_sse_deadline(s) >= 11 && sb_sse_deadline(s) <= 12); /* retry: 0 still waits 1 ms */
    sb_sse_destroy(s);

    CHECK(sb_sse_create(0, 0, -1, 10, 2, 0, 1) == NULL);
    CHECK(sb_sse_create(0, 0, 1, 10, 0.5, 0, 1) == NULL);
    CHECK(sb_sse_create(0, 0, 1, 10, 2, -1, 1) == NULL);
    CHECK(sb_sse_create(1u << 30, 0, 1, 10, 2, 0, 1) == NULL);
    CHECK_EQ(sb_sse_feed(NULL, NULL, 0), SB_E_INVALID);
    sb_sse_destroy(NULL);
}

#define B(x) (const uint8_t *)(x), (uint32_t)strlen(x)

/* Every status and content type into a verdict; Retry-After on 429/503 only. */
static void test_response_verdicts(void)
{
    static const int retry[] = {408, 425, 429, 500, 502, 503, 504};
    static const int fatal[] = {201, 301, 304, 400, 401, 403, 404, 410, 418, 501, 505};
    sb_sse *s = sb_sse_create(0, 0, 100, 60000, 2, 0, 0);
    const double wall = 784111777000.0; /* Sun, 06 Nov 1994 08:49:37 GMT */
    CHECK_EQ(sb_sse_response(s, 200, B("text/event-stream"), NULL, 0, wall), SB_SSE_V_OPEN);
    CHECK_EQ(sb_sse_response(s, 200, B(" Text/Event-Stream ; charset=utf-8"), NULL, 0, wall), SB_SSE_V_OPEN);
    CHECK_EQ(sb_sse_response(s, 200, B("text/plain"), NULL, 0, wall), SB_SSE_V_BAD_TYPE);
    CHECK_EQ(sb_sse_response(s, 200, B("text/event-streams"), NULL, 0, wall), SB_SSE_V_BAD_TYPE);
    CHECK_EQ(sb_sse_response(s, 200, NULL, 0, NULL, 0, wall), SB_SSE_V_BAD_TYPE);
    CHECK_EQ(sb_sse_response(s, 204, B("text/event-stream"), NULL, 0, wall), SB_SSE_V_NO_CONTENT);
    for (size_t i = 0; i < sizeof retry / sizeof *retry; i++)
        CHECK_EQ(sb_sse_response(s, retry[i], NULL, 0, NULL, 0, wall), SB_SSE_V_RETRY);
    for (size_t i = 0; i < sizeof fatal / sizeof *fatal; i++)
        CHECK_EQ(sb_sse_response(s, fatal[i], NULL, 0, NULL, 0, wall), SB_SSE_V_HTTP_ERROR);
    /* Retry-After: seconds, then a date, each the floor of the next wait */
    CHECK_EQ(sb_sse_connect(s, 0), SB_OK);
    CHECK_EQ(sb_sse_response(s, 503, NULL, 0, B(" 7 "), wall), SB_SSE_V_RETRY);
    CHECK_EQ(sb_sse_failed(s, 1000), SB_OK);
    CHECK_EQ(sb_sse_deadline(s), 8000);
    CHECK_EQ(sb_sse_connect(s, 8000), SB_OK);
    CHECK_EQ(sb_sse_response(s, 429, NULL, 0, B("Sun, 06 Nov 1994 08:50:07 GMT"), wall), SB_SSE_V_RETRY);
    CHECK_EQ(sb_sse_failed(s, 8000), SB_OK);
    CHECK_EQ(sb_sse_deadline(s), 38000);
    /* not on a 500, and not a date we can read: the plain backoff */
    CHECK_EQ(sb_sse_connect(s, 40000), SB_OK);
    CHECK_EQ(sb_sse_response(s, 500, NULL, 0, B("3600"), wall), SB_SSE_V_RETRY);
    CHECK_EQ(sb_sse_failed(s, 40000), SB_OK);
    CHECK(sb_sse_deadline(s) < 40000 + 3600e3);
    CHECK_EQ(sb_sse_connect(s, 50000), SB_OK);
    CHECK_EQ(sb_sse_response(s, 503, NULL, 0, B("soon"), wall), SB_SSE_V_RETRY);
    CHECK_EQ(sb_sse_failed(s, 50000), SB_OK);
    CHECK(sb_sse_deadline(s) < 50000 + 60000);
    sb_sse_destroy(s);
    /* the parser alone */
    CHECK(sb_sse_parse_retry_after(B("120"), 0) == 120000);
    CHECK(sb_sse_parse_retry_after(B("Thu, 01 Jan 1970 00:00:10 GMT"), 0) == 10000);
    CHECK(sb_sse_parse_retry_after(B("Sat, 29 Feb 2020 23:59:59 GMT"), 0) == 1583020799000.0);
    CHECK(sb_sse_parse_retry_after(B("Sun, 06 Nov 1994 08:49:37 UTC"), 0) == -1);
    CHECK(sb_sse_parse_retry_after(B("Sun, 06 Foo 1994 08:49:37 GMT"), 0) == -1);
    CHECK(sb_sse_parse_retry_after(B("Sunday, 06-Nov-94 08:49:37 GMT"), 0) == -1);
    CHECK(sb_sse_parse_retry_after(B("-5"), 0) == -1);
    CHECK(sb_sse_parse_retry_after(B("12345678901"), 0) == -1);
    CHECK(sb_sse_parse_retry_after(B(""), 0) == -1);
    CHECK(sb_sse_parse_retry_after(NULL, 3, 0) == -1);
}

int main(void)
{
    RUN(test_conformance_any_split);
    RUN(test_many_events_share_id);
    RUN(test_line_cap);
    RUN(test_event_cap);
    RUN(test_pending_event_spans_feeds);
    RUN(test_last_id_and_resume);
    RUN(test_states);
    RUN(test_max_attempts_and_retry_zero);
    RUN(test_retry_after);
    RUN(test_response_verdicts);
    TEST_MAIN_END();
}
