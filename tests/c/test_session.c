/* session: a client and a server session wired through an in-memory link,
 * time driven by hand. */
#include "session.h"

#include <stdlib.h>

#include "frame.h"
#include "queue.h"
#include "sbtest.h"

#define MAXQ 4096

/* One direction of the link: transport messages in flight. */
typedef struct pipe {
    uint8_t *msg[MAXQ];
    uint32_t len[MAXQ];
    int text[MAXQ];
    int n;
} pipe;

typedef struct end {
    sb_session *s;
    int open;          /* its transport is up */
    int want_connect;  /* client: asked for a transport */
    int offer_framed;
    int disconnects, last_close;
    uint32_t got[MAXQ]; /* message payloads received, as numbers */
    int ngot;
    int responses, failures, hellos, requests, drops;
    int last_fail_code;
    uint32_t req_ids[MAXQ];
    int nreq;
    int opened, closed;
} end;

static void push(pipe *p, const uint8_t *d, uint32_t n, int text)
{
    if (p->n >= MAXQ)
        return;
    p->msg[p->n] = malloc(n ? n : 1);
    memcpy(p->msg[p->n], d, n);
    p->len[p->n] = n;
    p->text[p->n] = text;
    p->n++;
}

static void clear(pipe *p)
{
    for (int i = 0; i < p->n; i++)
        free(p->msg[i]);
    p->n = 0;
}

/* Drain e's events; writes go into out. */
static void drain(end *e, pipe *out)
{
    int t;
    while ((t = sb_session_next_event(e->s)) != SB_SEV_NONE) {
        const sb_session_event *v = sb_session_event_view(e->s);
        const uint8_t *d = sb_session_event_data(e->s);
        switch (t) {
        case SB_SEV_WRITE:
            if (e->open)
                push(out, d, v->len, (v->flags & SB_SEV_F_TEXT) != 0);
            break;
        case SB_SEV_CONNECT:
            e->want_connect = 1;
            e->offer_framed = (v->flags & SB_SEV_F_OFFER_FRAMED) != 0;
            break;
        case SB_SEV_DISCONNECT:
            e->disconnects++;
            e->last_close = v->code;
            e->open = 0;
            break;
        case SB_SEV_MESSAGE: {
            uint32_t x = 0;
            if (v->len >= 4)
                memcpy(&x, d, 4);
            if (e->ngot < MAXQ)
                e->got[e->ngot++] = x;
            break;
        }
        case SB_SEV_RESPONSE:
            e->responses++;
            break;
        case SB_SEV_REQUEST_FAILED:
            e->failures++;
            e->last_fail_code = v->code;
            break;
        case SB_SEV_DROP:
            e->drops++;
            break;
        case SB_SEV_HELLO:
            e->hellos++;
            break;
        case SB_SEV_REQUEST:
            if (e->nreq < MAXQ)
                e->req_ids[e->nreq++] = v->id;
            e->requests++;
            break;
        case SB_SEV_OPEN:
            e->opened++;
            break;
        case SB_SEV_CLOSED:
            e->closed++;
            break;
        default:
            break;
        }
    }
}

static void deliver(end *to, pipe *p, double now)
{
    for (int i = 0; i < p->n; i++)
        if (to->open)
            sb_session_recv(to->s, p->msg[i], p->len[i], p->text[i], now);
    clear(p);
}

static double server_max_payload = 1 << 20;

static sb_session *server_new(uint32_t seed)
{
    sb_session *s = sb_session_create(SB_SESSION_SERVER, seed);
    sb_session_set(s, SB_SO_MAX_PAYLOAD, server_max_payload);
    return s;
}

/* Connect client c to a fresh pending server transport, run the handshake. */
static void handshake(end *c, end *sv, pipe *up, pipe *down, double now, int resume)
{
    sb_session *p = server_new(7);
    end pend = {0};
    pend.s = p;
    CHECK_EQ(sb_session_transport_open(c->s, now, 1), 0);
    c->open = 1;
    c->want_connect = 0;
    CHECK_EQ(sb_session_transport_open(p, now, 1), 0);
    pend.open = 1;
    sb_session_flush(p, now);
    drain(&pend, down); /* greeting */
    deliver(c, down, now);
    sb_session_flush(c->s, now);
    drain(c, up); /* hello */
    deliver(&pend, up, now);
    drain(&pend, down);
    CHECK_EQ(pend.hellos, 1);
    if (!resume) {
        CHECK_EQ(sb_session_set_id(p, (const uint8_t *)"session-1", 9), 0);
        CHECK_EQ(sb_session_accept(p, now), 0);
        if (sv->s)
            sb_session_destroy(sv->s);
        sv->s = p;
    } else {
        CHECK_EQ(sb_session_takeover(sv->s, p, now), 0);
        drain(sv, down);
        sb_session_destroy(p);
    }
    sv->open = 1;
    sb_session_flush(sv->s, now);
    drain(sv, down);
    deliver(c, down, now);
    sb_session_flush(c->s, now);
    drain(c, up);
}

static void test_handshake_and_messages(void)
{
    pipe up = {0}, down = {0};
    end c = {0}, sv = {0};
    double now = 1000;
    c.s = sb_session_create(SB_SESSION_CLIENT, 1);
    CHECK_EQ(sb_session_start(c.s, now), 0);
    drain(&c, &up);
    CHECK(c.want_connect && c.offer_framed);
    /* Nothing of ours before the greeting. */
    CHECK_EQ(up.n, 0);
    handshake(&c, &sv, &up, &down, now, 0);
    CHECK_EQ(sb_session_state(c.s), SB_SESSION_OPEN);
    CHECK_EQ(sb_session_mode(c.s), SB_SESSION_MODE_FRAMED);
    CHECK_EQ(c.opened, 1);
    for (uint32_t i = 1; i <= 100; i++)
        CHECK(sb_session_send(c.s, 0, 0, (const uint8_t *)&i, 4, now) > 0);
    sb_session_flush(c.s, now);
    drain(&c, &up);
    CHECK_EQ(up.n, 1); /* one batch */
    deliver(&sv, &up, now);
    drain(&sv, &down);
    CHECK_EQ(sv.ngot, 100);
    for (int i = 0; i < sv.ngot; i++)
        CHECK_EQ(sv.got[i], (uint32_t)(i + 1));
    /* the ack goes out after the ack delay */
    now += 25;
    sb_session_tick(sv.s, now);
    drain(&sv, &down);
    deliver(&c, &down, now);
    drain(&c, &up);
    CHECK_EQ(sb_session_stat(c.s, SB_SS_QUEUED), 0);
    /* request / response */
    int id = sb_session_request(c.s, 0, 0, (const uint8_t *)"ping", 4, 5000, now);
    CHECK(id > 0);
    sb_session_flush(c.s, now);
    drain(&c, &up);
    deliver(&sv, &up, now);
    drain(&sv, &down);
    CHECK_EQ(sv.requests, 1);
    CHECK_EQ(sb_session_respond(sv.s, sv.req_ids[0], 0, 0, (const uint8_t *)"pong", 4, now), 1 + 0 * id);
    sb_session_flush(sv.s, now);
    drain(&sv, &down);
    deliver(&c, &down, now);
    drain(&c, &up);
    CHECK_EQ(c.responses, 1);
    clear(&up);
    clear(&down);
    sb_session_destroy(c.s);
    sb_session_destroy(sv.s);
}

static void test_plain_server_sees_nothing_of_ours(void)
{
    pipe up = {0};
    end c = {0};
    double now = 0;
    uint32_t x = 42;
    c.s = sb_session_create(SB_SESSION_CLIENT, 2);
    sb_session_start(c.s, now);
    drain(&c, &up);
    CHECK(sb_session_send(c.s, 0, 0, (const uint8_t *)&x, 4, now) > 0);
    sb_session_transport_open(c.s, now, 1);
    c.open = 1;
    sb_session_flush(c.s, now);
    drain(&c, &up);
    CHECK_EQ(up.n, 0);
    /* the server speaks first, and not switchboard */
    sb_session_recv(c.s, (const uint8_t *)"welcome to chat", 15, 1, now);
    sb_session_flush(c.s, now);
    drain(&c, &up);
    CHECK_EQ(sb_session_mode(c.s), SB_SESSION_MODE_PLAIN);
    CHECK_EQ(c.ngot, 1);
    CHECK_EQ(up.n, 1);
    CHECK_EQ(up.len[0], 4);
    CHECK_MEM(up.msg[0], &x, 4);
    clear(&up);
    /* a silent plain server: plain after the hello timeout, nothing leaked before */
    sb_session_destroy(c.s);
    memset(&c, 0, sizeof c);
    c.s = sb_session_create(SB_SESSION_CLIENT, 3);
    sb_session_start(c.s, now);
    drain(&c, &up);
    sb_session_send(c.s, 0, 0, (const uint8_t *)&x, 4, now);
    sb_session_transport_open(c.s, now, 1);
    c.open = 1;
    sb_session_flush(c.s, now);
    drain(&c, &up);
    CHECK_EQ(up.n, 0);
    now = sb_session_next_deadline(c.s);
    CHECK_EQ(now, 3000);
    sb_session_tick(c.s, now);
    drain(&c, &up);
    CHECK_EQ(sb_session_mode(c.s), SB_SESSION_MODE_PLAIN);
    CHECK_EQ(up.n, 1);
    clear(&up);
    sb_session_destroy(c.s);
}

static void test_resume_after_drop(void)
{
    pipe up = {0}, down = {0};
    end c = {0}, sv = {0};
    double now = 0;
    c.s = sb_session_create(SB_SESSION_CLIENT, 5);
    sb_session_start(c.s, now);
    drain(&c, &up);
    handshake(&c, &sv, &up, &down, now, 0);
    for (uint32_t i = 1; i <= 10; i++)
        sb_session_send(c.s, 0, 0, (const uint8_t *)&i, 4, now);
    for (uint32_t i = 1001; i <= 1010; i++)
        sb_session_send(sv.s, 0, 0, (const uint8_t *)&i, 4, now);
    sb_session_flush(c.s, now);
    sb_session_flush(sv.s, now);
    drain(&c, &up);
    drain(&sv, &down);
    /* the link dies with everything in flight */
    clear(&up);
    clear(&down);
    c.open = sv.open = 0;
    sb_session_transport_closed(c.s, now, 1006);
    sb_session_transport_closed(sv.s, now, 1006);
    drain(&c, &up);
    drain(&sv, &down);
    CHECK_EQ(sb_session_state(c.s), SB_SESSION_RECONNECTING);
    CHECK_EQ(sb_session_state(sv.s), SB_SESSION_RECONNECTING);
    now = sb_session_next_deadline(c.s);
    sb_session_tick(c.s, now);
    drain(&c, &up);
    CHECK(c.want_connect);
    handshake(&c, &sv, &up, &down, now, 1);
    deliver(&sv, &up, now);
    drain(&sv, &down);
    deliver(&c, &down, now);
    drain(&c, &up);
    CHECK_EQ(sv.ngot, 10);
    CHECK_EQ(c.ngot, 10);
    CHECK_EQ(c.got[0], 1001);
    clear(&up);
    clear(&down);
    sb_session_destroy(c.s);
    sb_session_destroy(sv.s);
}

/* Incompressible payloads at and around every cap: no frame over the cap. */
static void test_cap_guard(void)
{
    static uint8_t big[(1 << 20) + 16];
    pipe up = {0}, down = {0};
    end c = {0}, sv = {0};
    double now = 0;
    sb_rng r;
    sb_rng_seed(&r, 11);
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)sb_rng_next(&r);
    c.s = sb_session_create(SB_SESSION_CLIENT, 9);
    sb_session_start(c.s, now);
    drain(&c, &up);
    handshake(&c, &sv, &up, &down, now, 0);
    uint32_t sizes[] = {(1 << 20), (1 << 20) - 1, (1 << 20) - 8, (1 << 20) - 40, (256 << 10),
                        (256 << 10) - 20, (256 << 10) + 20, 100, 95};
    int sent = 0;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        CHECK(sb_session_send(c.s, 0, SB_FRAME_F_BINARY, big, sizes[k], now) > 0);
        sent++;
    }
    CHECK_EQ(sb_session_send(c.s, 0, SB_FRAME_F_BINARY, big, (1 << 20) + 1, now), SB_E_TOO_LARGE);
    /* Over the high-water mark the rest waits for the transport to drain. */
    for (int round = 0; round < 10 && sb_session_stat(c.s, SB_SS_QUEUED) > sb_session_stat(c.s, SB_SS_IN_FLIGHT); round++) {
        sb_session_flush(c.s, now);
        drain(&c, &up);
        for (int i = 0; i < up.n; i++) {
            sb_frame f;
            CHECK(sb_frame_decode(up.msg[i], up.len[i], 1 << 20, &f) > 0);
        }
        deliver(&sv, &up, now);
        drain(&sv, &down);
        now += 10;
    }
    CHECK_EQ(sv.ngot, sent);
    CHECK_EQ(sv.disconnects, 0);
    clear(&up);
    clear(&down);
    sb_session_destroy(c.s);
    sb_session_destroy(sv.s);
}

/* A lone frame just over the batch limit whose deflated form is smaller
 * than the frame but larger than the peer's payload cap must travel
 * uncompressed (found by search over how compressible it is). */
static void test_cap_guard_near_miss(void)
{
    enum { P = 4096 };
    static uint8_t buf[P];
    pipe up = {0}, down = {0};
    end c = {0}, sv = {0};
    double now = 0;
    int tried = 0;
    server_max_payload = P;
    c.s = sb_session_create(SB_SESSION_CLIENT, 10);
    sb_session_set(c.s, SB_SO_BATCH_MAX_FRAMES, 1);
    sb_session_start(c.s, now);
    drain(&c, &up);
    handshake(&c, &sv, &up, &down, now, 0);
    for (int k = 0; k < 64; k++) {
        sb_rng r;
        sb_rng_seed(&r, 1000 + (uint32_t)k);
        memset(buf, 0, (size_t)k);
        for (int i = k; i < P; i++)
            buf[i] = (uint8_t)sb_rng_next(&r);
        CHECK(sb_session_send(c.s, 0, SB_FRAME_F_BINARY, buf, P, now) > 0);
        tried++;
        sb_session_flush(c.s, now);
        drain(&c, &up);
        for (int i = 0; i < up.n; i++) {
            sb_frame f;
            CHECK(sb_frame_decode(up.msg[i], up.len[i], P, &f) > 0);
        }
        deliver(&sv, &up, now);
        drain(&sv, &down);
    }
    CHECK_EQ(sv.ngot, tried);
    CHECK_EQ(sv.disconnects, 0);
    server_max_payload = 1 << 20;
    clear(&up);
    clear(&down);
    sb_session_destroy(c.s);
    sb_session_destroy(sv.s);
}

/* A request whose deadline passes while it is still unconfirmed in the
 * outbox fails once, with TIMEOUT, and is not also reported as a drop. */
static void test_request_timeout_reported_once(void)
{
    pipe up = {0}, down = {0};
    end c = {0}, sv = {0};
    double now = 0;
    c.s = sb_session_create(SB_SESSION_CLIENT, 12);
    sb_session_start(c.s, now);
    drain(&c, &up);
    handshake(&c, &sv, &up, &down, now, 0);
    int id = sb_session_request(c.s, 0, 0, (const uint8_t *)"slow", 4, 100, now);
    CHECK(id > 0);
    sb_session_flush(c.s, now);
    drain(&c, &up);
    clear(&up); /* never arrives: no ack, no answer */
    now = sb_session_next_deadline(c.s);
    CHECK(now <= 100);
    while (now < 100) {
        sb_session_tick(c.s, now);
        drain(&c, &up);
        now = sb_session_next_deadline(c.s);
    }
    sb_session_tick(c.s, now);
    drain(&c, &up);
    CHECK_EQ(c.failures, 1);
    CHECK_EQ(c.last_fail_code, SB_E_TIMEOUT);
    CHECK_EQ(c.drops, 0);
    CHECK_EQ(sb_session_stat(c.s, SB_SS_DROPPED), 0);
    CHECK_EQ(sb_session_stat(c.s, SB_SS_REQUESTS_PENDING), 0);
    clear(&up);
    clear(&down);
    sb_session_destroy(c.s);
    sb_session_destroy(sv.s);
}

/* Frames the server holds behind a hole (a request the client gave up on)
 * are released by the floors in the client's next hello: they reach the
 * application then, once, and are not swallowed. */
static void test_floors_release_held_frames(void)
{
    pipe up = {0}, down = {0};
    end c = {0}, sv = {0};
    double now = 0;
    uint32_t m1 = 1, m2 = 2;
    c.s = sb_session_create(SB_SESSION_CLIENT, 13);
    sb_session_set(c.s, SB_SO_BATCH_MAX_FRAMES, 1); /* one frame per transport message */
    sb_session_start(c.s, now);
    drain(&c, &up);
    handshake(&c, &sv, &up, &down, now, 0);
    CHECK(sb_session_request(c.s, 0, 0, (const uint8_t *)"gone", 4, 50, now) > 0);
    CHECK(sb_session_send(c.s, 0, 0, (const uint8_t *)&m1, 4, now) > 0);
    CHECK(sb_session_send(c.s, 0, 0, (const uint8_t *)&m2, 4, now) > 0);
    sb_session_flush(c.s, now);
    drain(&c, &up);
    CHECK_EQ(up.n, 3);
    /* the request is lost on the way; the two messages wait behind it */
    free(up.msg[0]);
    memmove(&up.msg[0], &up.msg[1], 2 * sizeof up.msg[0]);
    memmove(&up.len[0], &up.len[1], 2 * sizeof up.len[0]);
    memmove(&up.text[0], &up.text[1], 2 * sizeof up.text[0]);
    up.n = 2;
    deliver(&sv, &up, now);
    drain(&sv, &down);
    CHECK_EQ(sv.ngot, 0);
    /* the client gives up on the request before any ack comes back */
    now = 50;
    sb_session_tick(c.s, now);
    drain(&c, &up);
    CHECK_EQ(c.failures, 1);
    /* then the link dies and the client comes back */
    clear(&up);
    clear(&down);
    c.open = sv.open = 0;
    sb_session_transport_closed(c.s, now, 1006);
    sb_session_transport_closed(sv.s, now, 1006);
    drain(&c, &up);
    drain(&sv, &down);
    now = sb_session_next_deadline(c.s);
    sb_session_tick(c.s, now);
    drain(&c, &up);
    CHECK(c.want_connect);
    handshake(&c, &sv, &up, &down, now, 1);
    for (int round = 0; round < 4; round++) {
        deliver(&sv, &up, now);
        sb_session_flush(sv.s, now);
        drain(&sv, &down);
        deliver(&c, &down, now);
        sb_session_flush(c.s, now);
        drain(&c, &up);
        now += 25;
    }
    CHECK_EQ(sv.ngot, 2);
    CHECK_EQ(sv.got[0], 1);
    CHECK_EQ(sv.got[1], 2);
    CHECK_EQ(sb_session_stat(c.s, SB_SS_QUEUED), 0);
    clear(&up);
    clear(&down);
    sb_session_destroy(c.s);
    sb_session_destroy(sv.s);
}

/* A response proves the request arrived: it leaves the outbox then, so it
 * neither expires later as a DROP nor goes out again after a reconnect. */
static void test_answered_request_leaves_outbox(void)
{
    pipe up = {0}, down = {0};
    end c = {0}, sv = {0};
    double now = 0;
    c.s = sb_session_create(SB_SESSION_CLIENT, 14);
    sb_session_start(c.s, now);
    drain(&c, &up);
    handshake(&c, &sv, &up, &down, now, 0);
    CHECK(sb_session_request(c.s, 0, 0, (const uint8_t *)"ping", 4, 100, now) > 0);
    sb_session_flush(c.s, now);
    drain(&c, &up);
    deliver(&sv, &up, now);
    drain(&sv, &down);
    CHECK_EQ(sv.requests, 1);
    CHECK(sb_session_respond(sv.s, sv.req_ids[0], 0, 0, (const uint8_t *)"pong", 4, now) > 0);
    sb_session_flush(sv.s, now); /* the answer goes now, the ack only after the ack delay */
    drain(&sv, &down);
    deliver(&c, &down, now);
    drain(&c, &up);
    CHECK_EQ(c.responses, 1);
    CHECK_EQ(sb_session_stat(c.s, SB_SS_QUEUED), 0);
    now = 100;
    sb_session_tick(c.s, now);
    drain(&c, &up);
    CHECK_EQ(c.drops, 0);
    CHECK_EQ(c.failures, 0);
    CHECK_EQ(sb_session_stat(c.s, SB_SS_DROPPED), 0);
    clear(&up);
    clear(&down);
    sb_session_destroy(c.s);
    sb_session_destroy(sv.s);
}

int main(void)
{
    RUN(test_handshake_and_messages);
    RUN(test_plain_server_sees_nothing_of_ours);
    RUN(test_resume_after_drop);
    RUN(test_cap_guard);
    RUN(test_cap_guard_near_miss);
    RUN(test_request_timeout_reported_once);
    RUN(test_floors_release_held_frames);
    RUN(test_answered_request_leaves_outbox);
    TEST_MAIN_END();
}
