/* session: a client and a server session wired through an in-memory link,
 * time driven by hand. */
#include "session.h"

#include <stdlib.h>

#include "conn.h"
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
    int pauses;
    double last_pause;
    int moves;
    uint32_t moved_from, moved_to, last_answer; /* SB_SEV_REQUEST_MOVED; RESPONSE id */
    char reason[128]; /* of the last DISCONNECT */
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
            memset(e->reason, 0, sizeof e->reason);
            memcpy(e->reason, d, v->len < sizeof e->reason ? v->len : sizeof e->reason - 1);
            break;
        case SB_SEV_PAUSE:
            e->pauses++;
            e->last_pause = v->value;
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
            e->last_answer = v->id;
            break;
        case SB_SEV_REQUEST_MOVED:
            e->moves++;
            e->moved_from = (uint32_t)v->value;
            e->moved_to = v->id;
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

typedef struct capcfg {
    double payload, message, frames; /* the receiver's caps */
    double batch_bytes, batch_frames; /* the sender's batching */
} capcfg;

static double server_max_payload = 1 << 20;
static double server_idle_timeout = -1; /* -1 = the default */
static const capcfg *server_rx, *server_tx; /* the server's caps / batching, or NULL */
static double server_opts[8][2]; /* more options for new server sessions */
static int nserver_opts;

static sb_session *server_new(uint32_t seed)
{
    sb_session *s = sb_session_create(SB_SESSION_SERVER, seed);
    sb_session_set(s, SB_SO_MAX_PAYLOAD, server_max_payload);
    if (server_idle_timeout >= 0)
        sb_session_set(s, SB_SO_IDLE_TIMEOUT, server_idle_timeout);
    if (server_rx) {
        sb_session_set(s, SB_SO_MAX_PAYLOAD, server_rx->payload);
        sb_session_set(s, SB_SO_MAX_MESSAGE, server_rx->message);
        sb_session_set(s, SB_SO_MAX_FRAMES, server_rx->frames);
    }
    if (server_tx) {
        sb_session_set(s, SB_SO_BATCH_MAX_BYTES, server_tx->batch_bytes);
        sb_session_set(s, SB_SO_BATCH_MAX_FRAMES, server_tx->batch_frames);
    }
    for (int i = 0; i < nserver_opts; i++)
        CHECK_EQ(sb_session_set(s, (int)server_opts[i][0], server_opts[i][1]), 0);
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

/* rounds of client -> server -> client, 25 ms apart; returns the time after */
static double exchange(end *c, end *sv, pipe *up, pipe *down, double now, int rounds)
{
    for (int round = 0; round < rounds; round++) {
        deliver(sv, up, now);
        sb_session_flush(sv->s, now);
        drain(sv, down);
        deliver(c, down, now);
        sb_session_flush(c->s, now);
        drain(c, up);
        now += 25;
    }
    return now;
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
    /* In flight, waiting for an ack: no timer of its own (ack timeouts are
     * off; hosts would busy-loop on a timer 1e15 ms away). */
    CHECK(sb_session_next_deadline(c.s) < 0 || sb_session_next_deadline(c.s) <= now + 60000);
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

/* A request is latency-bound: sb_session_request writes it at once, with
 * what was queued before it in one transport message and in order, without
 * waiting for the host's flush; a transport over the high-water mark still
 * gets nothing, and before the handshake nothing is written. */
static void test_request_written_at_once(void)
{
    pipe up = {0}, down = {0};
    end c = {0}, sv = {0};
    double now = 1000;
    uint32_t one = 1, two = 2;
    c.s = sb_session_create(SB_SESSION_CLIENT, 1);
    CHECK_EQ(sb_session_start(c.s, now), 0);
    drain(&c, &up);
    /* Queued before the greeting: written only once the link is up. */
    CHECK(sb_session_request(c.s, 0, 0, (const uint8_t *)"early", 5, 5000, now) > 0);
    drain(&c, &up);
    CHECK_EQ(up.n, 0);
    handshake(&c, &sv, &up, &down, now, 0);
    deliver(&sv, &up, now);
    drain(&sv, &down);
    CHECK_EQ(sv.requests, 1);
    CHECK(sb_session_send(c.s, 0, 0, (const uint8_t *)&one, 4, now) > 0);
    CHECK(sb_session_send(c.s, 0, 0, (const uint8_t *)&two, 4, now) > 0);
    drain(&c, &up);
    CHECK_EQ(up.n, 0); /* messages wait for the end of the task */
    CHECK(sb_session_request(c.s, 0, 0, (const uint8_t *)"now", 3, 5000, now) > 0);
    drain(&c, &up);
    CHECK_EQ(up.n, 1); /* no flush: the request and what was before it */
    deliver(&sv, &up, now);
    drain(&sv, &down);
    CHECK_EQ(sv.ngot, 2);
    CHECK_EQ(sv.got[0], 1);
    CHECK_EQ(sv.got[1], 2);
    CHECK_EQ(sv.requests, 2);
    /* The transport holds more than the high-water mark: it waits. */
    CHECK_EQ(sb_session_set_buffered(c.s, 64.0 * 1024 * 1024), 0);
    CHECK(sb_session_request(c.s, 0, 0, (const uint8_t *)"later", 5, 5000, now) > 0);
    drain(&c, &up);
    CHECK_EQ(up.n, 0);
    CHECK_EQ(sb_session_set_buffered(c.s, 0), 0);
    now += 1;
    sb_session_flush(c.s, now);
    drain(&c, &up);
    CHECK_EQ(up.n, 1);
    deliver(&sv, &up, now);
    drain(&sv, &down);
    CHECK_EQ(sv.requests, 3);
    clear(&up);
    clear(&down);
    sb_session_destroy(c.s);
    sb_session_destroy(sv.s);
}

/* A burst: each full batch is written as it fills, in order, and the
 * rest at the flush; the same frames as one flush would write. */
static void test_full_batch_written_at_once(void)
{
    pipe up = {0}, down = {0};
    end c = {0}, sv = {0};
    double now = 1000;
    c.s = sb_session_create(SB_SESSION_CLIENT, 1);
    sb_session_set(c.s, SB_SO_BATCH_MAX_FRAMES, 8);
    CHECK_EQ(sb_session_start(c.s, now), 0);
    drain(&c, &up);
    /* Before the link is up nothing is written, full batch or not. */
    for (uint32_t i = 1; i <= 20; i++)
        CHECK(sb_session_send(c.s, 0, 0, (const uint8_t *)&i, 4, now) > 0);
    drain(&c, &up);
    CHECK_EQ(up.n, 0);
    handshake(&c, &sv, &up, &down, now, 0);
    deliver(&sv, &up, now);
    drain(&sv, &down);
    CHECK_EQ(sv.ngot, 20);
    for (uint32_t i = 21; i <= 44; i++) {
        CHECK(sb_session_send(c.s, 0, 0, (const uint8_t *)&i, 4, now) > 0);
        drain(&c, &up);
        CHECK_EQ(up.n, (int)(i - 20) / 8); /* a write every 8th send, none between */
    }
    for (uint32_t i = 45; i <= 50; i++)
        CHECK(sb_session_send(c.s, 0, 0, (const uint8_t *)&i, 4, now) > 0);
    drain(&c, &up);
    CHECK_EQ(up.n, 3); /* 6 queued: they wait for the end of the task */
    sb_session_flush(c.s, now);
    drain(&c, &up);
    CHECK_EQ(up.n, 4);
    deliver(&sv, &up, now);
    drain(&sv, &down);
    CHECK_EQ(sv.ngot, 50);
    for (int i = 0; i < 50; i++)
        CHECK_EQ(sv.got[i], (uint32_t)i + 1);
    /* A transport over its high-water mark takes no early batch either. */
    CHECK_EQ(sb_session_set_buffered(c.s, 64.0 * 1024 * 1024), 0);
    for (uint32_t i = 51; i <= 60; i++)
        CHECK(sb_session_send(c.s, 0, 0, (const uint8_t *)&i, 4, now) > 0);
    drain(&c, &up);
    CHECK_EQ(up.n, 0);
    CHECK_EQ(sb_session_set_buffered(c.s, 0), 0);
    sb_session_flush(c.s, now);
    drain(&c, &up);
    CHECK_EQ(up.n, 2);
    deliver(&sv, &up, now);
    drain(&sv, &down);
    CHECK_EQ(sv.ngot, 60);
    clear(&up);
    clear(&down);
    sb_session_destroy(c.s);
    sb_session_destroy(sv.s);
}

/* The batch counts frame bytes with their headers, the early trigger only
 * payloads: the batch is full first, and what is left over waits for the
 * flush instead of leaving as a small batch of its own. Off (a shared
 * Socket's leading tab), and for a server (it writes once per turn, after
 * its host commits), nothing leaves inside send. */
static void test_early_batch_edges(void)
{
    for (int mode = 0; mode < 3; mode++) {
        pipe up = {0}, down = {0};
        end c = {0}, sv = {0};
        double now = 1000;
        c.s = sb_session_create(SB_SESSION_CLIENT, 1);
        if (mode == 0)
            sb_session_set(c.s, SB_SO_BATCH_MAX_BYTES, 100);
        else
            sb_session_set(c.s, SB_SO_BATCH_MAX_FRAMES, 8);
        if (mode == 1)
            CHECK_EQ(sb_session_set(c.s, SB_SO_EARLY_BATCH, 0), 0);
        CHECK_EQ(sb_session_start(c.s, now), 0);
        drain(&c, &up);
        server_opts[0][0] = SB_SO_BATCH_MAX_FRAMES;
        server_opts[0][1] = 8;
        nserver_opts = mode == 2;
        handshake(&c, &sv, &up, &down, now, 0);
        nserver_opts = 0;
        deliver(&sv, &up, now);
        drain(&sv, &down);
        deliver(&c, &down, now);
        clear(&up);
        clear(&down);
        if (mode < 2) {
            for (uint32_t i = 1; i <= 25; i++) {
                CHECK(sb_session_send(c.s, 0, 0, (const uint8_t *)&i, 4, now) > 0);
                drain(&c, &up);
                /* bytes: 25 x 4 B of payload is two batches of 100 B of frames */
                CHECK_EQ(up.n, mode == 1 || i < 25 ? 0 : 2);
            }
            sb_session_flush(c.s, now);
            drain(&c, &up);
            CHECK_EQ(up.n, mode == 0 ? 3 : 4);
            deliver(&sv, &up, now);
            drain(&sv, &down);
            CHECK_EQ(sv.ngot, 25);
            for (int i = 0; i < sv.ngot; i++)
                CHECK_EQ(sv.got[i], (uint32_t)i + 1);
        } else {
            for (uint32_t i = 1; i <= 20; i++)
                CHECK(sb_session_send(sv.s, 2, 0, (const uint8_t *)&i, 4, now) > 0);
            drain(&sv, &down);
            CHECK_EQ(down.n, 0);
            sb_session_flush(sv.s, now);
            drain(&sv, &down);
            CHECK_EQ(down.n, 3);
            deliver(&c, &down, now);
            drain(&c, &up);
            CHECK_EQ(c.ngot, 20);
        }
        clear(&up);
        clear(&down);
        sb_session_destroy(c.s);
        sb_session_destroy(sv.s);
    }
}

/* A message is named by channel and seq: its frame carries no id (2 B
 * a message saved after deflate); a request keeps its id for the answer. */
/* An idle server session gives its scratch buffers back SB_SO_TRIM_AFTER
 * after its last use (its deadline says when), and works as before after;
 * a client keeps them (its default is 0). */
static void idle_trim_round(end *c, end *sv, pipe *up, pipe *down, double now, uint32_t x)
{
    CHECK(sb_session_send(c->s, 0, 0, (const uint8_t *)&x, 4, now) > 0);
    CHECK(sb_session_send(sv->s, 0, 0, (const uint8_t *)&x, 4, now) > 0);
    sb_session_flush(c->s, now);
    drain(c, up);
    exchange(c, sv, up, down, now, 2);
}

/* The client's last acks, after its ack delay, into the server; returns
 * the time then. */
static double last_acks(end *c, end *sv, pipe *up, pipe *down)
{
    double now = sb_session_next_deadline(c->s);
    sb_session_tick(c->s, now);
    drain(c, up);
    deliver(sv, up, now);
    sb_session_flush(sv->s, now);
    drain(sv, down);
    clear(down);
    return now;
}

static void test_idle_trim(void)
{
    pipe up = {0}, down = {0};
    end c = {0}, sv = {0};
    double now = 1000, used;
    c.s = sb_session_create(SB_SESSION_CLIENT, 1);
    CHECK_EQ(sb_session_start(c.s, now), 0);
    drain(&c, &up);
    handshake(&c, &sv, &up, &down, now, 0);
    for (uint32_t i = 1; i <= 3; i++, now += 100)
        idle_trim_round(&c, &sv, &up, &down, now, i);
    now = last_acks(&c, &sv, &up, &down);
    used = now;
    CHECK(sb_session_capacity(sv.s) > 0);
    CHECK(sb_session_next_deadline(sv.s) <= used + 1000);
    sb_session_tick(sv.s, used + 999);
    drain(&sv, &down);
    CHECK(sb_session_capacity(sv.s) > 0);
    sb_session_tick(sv.s, used + 1000);
    drain(&sv, &down);
    CHECK_EQ(sb_session_capacity(sv.s), 0);
    CHECK_EQ(down.n, 0);
    CHECK(sb_session_capacity(c.s) > 0);
    /* nothing left to give back: no deadline of its own */
    CHECK(sb_session_next_deadline(sv.s) < 0 || sb_session_next_deadline(sv.s) > used + 1000);
    /* both ways still exactly once, in order */
    now = used + 1000;
    for (uint32_t i = 4; i <= 6; i++, now += 100)
        idle_trim_round(&c, &sv, &up, &down, now, i);
    CHECK_EQ(c.ngot, 6);
    CHECK_EQ(sv.ngot, 6);
    for (int i = 0; i < c.ngot && i < sv.ngot; i++) {
        CHECK_EQ(c.got[i], (uint32_t)(i + 1));
        CHECK_EQ(sv.got[i], (uint32_t)(i + 1));
    }
    CHECK_EQ(sb_session_set(sv.s, SB_SO_TRIM_AFTER, -1), SB_E_INVALID);
    /* idle again and trimmed; then its client goes: what that grows (the
     * events of the detach) goes back too, at the next deadline */
    now = last_acks(&c, &sv, &up, &down);
    now += 1000;
    sb_session_tick(sv.s, now);
    drain(&sv, &down);
    CHECK_EQ(sb_session_capacity(sv.s), 0);
    now += 5000;
    CHECK_EQ(sb_session_transport_closed(sv.s, now, 1006), 0);
    sv.open = 0;
    drain(&sv, &down);
    CHECK(sb_session_capacity(sv.s) > 0);
    used = sb_session_next_deadline(sv.s);
    CHECK(used >= 0 && used <= now + 1000);
    sb_session_tick(sv.s, used < now ? now : used);
    drain(&sv, &down);
    CHECK_EQ(sb_session_capacity(sv.s), 0);
    CHECK(sb_session_next_deadline(sv.s) > now + 1000);
    clear(&up);
    clear(&down);
    sb_session_destroy(c.s);
    sb_session_destroy(sv.s);
}

static void test_message_frames_carry_no_id(void)
{
    pipe up = {0}, down = {0};
    end c = {0}, sv = {0};
    double now = 1000;
    sb_frame f;
    uint32_t x = 7;
    c.s = sb_session_create(SB_SESSION_CLIENT, 1);
    CHECK_EQ(sb_session_start(c.s, now), 0);
    drain(&c, &up);
    handshake(&c, &sv, &up, &down, now, 0);
    clear(&up);
    clear(&down);
    CHECK(sb_session_send(c.s, 0, 0, (const uint8_t *)&x, 4, now) > 0);
    sb_session_flush(c.s, now);
    drain(&c, &up);
    CHECK_EQ(up.n, 1);
    CHECK_EQ(sb_frame_decode(up.msg[0], up.len[0], 1 << 20, &f), (int)up.len[0]);
    CHECK_EQ(f.kind, SB_FRAME_MESSAGE);
    CHECK_EQ(f.id, 0);
    CHECK_EQ(f.seq, 1);
    CHECK(sb_session_request(c.s, 0, 0, (const uint8_t *)"q", 1, 5000, now) > 0);
    drain(&c, &up);
    CHECK_EQ(up.n, 2);
    CHECK_EQ(sb_frame_decode(up.msg[1], up.len[1], 1 << 20, &f), (int)up.len[1]);
    CHECK_EQ(f.kind, SB_FRAME_REQUEST);
    CHECK(f.id != 0);
    /* The server's messages (stamped) carry none either, and arrive. */
    deliver(&sv, &up, now);
    drain(&sv, &down);
    CHECK_EQ(sv.ngot, 1);
    CHECK(sb_session_relay(sv.s, 0, 0, 5, (const uint8_t *)"u", 1, (const uint8_t *)&x, 4, now) > 0);
    sb_session_flush(sv.s, now);
    clear(&down);
    drain(&sv, &down);
    CHECK_EQ(down.n, 1);
    CHECK_EQ(sb_frame_decode(down.msg[0], down.len[0], 1 << 20, &f), (int)down.len[0]);
    CHECK_EQ(f.kind, SB_FRAME_MESSAGE);
    CHECK_EQ(f.id, 0);
    CHECK_EQ(f.seq, 1);
    deliver(&c, &down, now);
    drain(&c, &up);
    CHECK_EQ(c.ngot, 1);
    CHECK_EQ(c.got[0], 7);
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

/* Run c's timer on time until `until` or until it gives up on its
 * transport; returns when it did (-1 = it did not). Everything it writes
 * goes to up; with `echo`, the server gets it and its answers come back. */
static double hb_run(end *c, end *sv, pipe *up, pipe *down, double now, double until, int echo,
                     int chatty)
{
    uint32_t x = 7;
    while (now < until) {
        double d = sb_session_next_deadline(c->s);
        int dead = 0;
        if (d < 0 || d > until)
            d = until;
        now = d > now ? d : now + 1;
        if (chatty) /* our own traffic is no proof that the peer lives */
            sb_session_send(c->s, 0, 0, (const uint8_t *)&x, 4, now);
        sb_session_tick(c->s, now);
        {
            int t;
            while ((t = sb_session_next_event(c->s)) != SB_SEV_NONE) {
                const sb_session_event *v = sb_session_event_view(c->s);
                if (t == SB_SEV_WRITE && c->open)
                    push(up, sb_session_event_data(c->s), v->len, 0);
                if (t == SB_SEV_STATE && v->value == SB_SESSION_RECONNECTING) {
                    CHECK_EQ(v->code, SB_CONN_R_HEARTBEAT_TIMEOUT);
                    dead = 1;
                }
                if (t == SB_SEV_DISCONNECT)
                    c->open = 0;
            }
        }
        if (dead)
            return now;
        if (echo) {
            deliver(sv, up, now);
            sb_session_flush(sv->s, now);
            drain(sv, down);
            deliver(c, down, now);
            sb_session_flush(c->s, now);
            drain(c, up);
        } else {
            clear(up); /* the server is gone: nothing it would answer */
        }
    }
    return -1;
}

/* The heartbeat declares a server that stops answering dead within
 * ping interval + ping timeout of the last thing that arrived, not
 * earlier, also while we keep sending; one that answers is never declared
 * dead. A server drops a silent client after its idle timeout. */
static void test_heartbeat_verdict(void)
{
    static const double cfg[][2] = {{25000, 10000}, {1500, 1000}, {100, 50}, {1000, 1}};
    for (size_t k = 0; k < sizeof cfg / sizeof cfg[0]; k++)
        for (int mode = 0; mode < 3; mode++) {
            pipe up = {0}, down = {0};
            end c = {0}, sv = {0};
            double t0 = 1000, bound = t0 + cfg[k][0] + cfg[k][1], dead;
            c.s = sb_session_create(SB_SESSION_CLIENT, 20 + (uint32_t)k);
            sb_session_set(c.s, SB_SO_PING_INTERVAL, cfg[k][0]);
            sb_session_set(c.s, SB_SO_PING_TIMEOUT, cfg[k][1]);
            sb_session_start(c.s, t0);
            drain(&c, &up);
            handshake(&c, &sv, &up, &down, t0, 0); /* the welcome arrives at t0 */
            CHECK_EQ(sb_session_state(c.s), SB_SESSION_OPEN);
            sb_session_set(sv.s, SB_SO_IDLE_TIMEOUT, 0); /* started: refused */
            if (mode < 2) {
                /* silent server; mode 1: we keep sending */
                dead = hb_run(&c, &sv, &up, &down, t0, bound + 10 * cfg[k][0], 0, mode == 1);
                CHECK(dead >= 0);
                CHECK(dead <= bound);
                CHECK(dead >= bound); /* no earlier: the verdict is exact on time */
            } else {
                /* a server that answers: never dead */
                dead = hb_run(&c, &sv, &up, &down, t0, t0 + 10 * (cfg[k][0] + cfg[k][1]), 1, 0);
                CHECK_EQ(dead, -1);
                CHECK_EQ(sb_session_state(c.s), SB_SESSION_OPEN);
                CHECK(sb_session_stat(c.s, SB_SS_RTT) >= 0);
            }
            clear(&up);
            clear(&down);
            sb_session_destroy(c.s);
            sb_session_destroy(sv.s);
        }
    /* the server side: a client that falls silent is dropped after the idle timeout */
    {
        pipe up = {0}, down = {0};
        end c = {0}, sv = {0};
        double now = 0, idle = 5000;
        server_idle_timeout = idle;
        c.s = sb_session_create(SB_SESSION_CLIENT, 30);
        sb_session_start(c.s, now);
        drain(&c, &up);
        handshake(&c, &sv, &up, &down, now, 0);
        server_idle_timeout = -1;
        /* the server keeps sending; nothing comes back */
        while (sv.disconnects == 0 && now < 10 * idle) {
            uint32_t x = 9;
            double d = sb_session_next_deadline(sv.s);
            now = d > now ? d : now + 100;
            sb_session_send(sv.s, 0, 0, (const uint8_t *)&x, 4, now);
            sb_session_tick(sv.s, now);
            drain(&sv, &down);
            clear(&down);
        }
        CHECK_EQ(sv.disconnects, 1);
        CHECK_EQ(sv.last_close, SB_CLOSE_IDLE);
        CHECK(now <= idle);
        CHECK_EQ(sb_session_state(sv.s), SB_SESSION_RECONNECTING);
        clear(&up);
        clear(&down);
        sb_session_destroy(c.s);
        sb_session_destroy(sv.s);
    }
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

/* Payloads at and around every cap, incompressible and slightly
 * compressible, both ways: no transport message the peer refuses. The
 * receiver's caps are its own options (announced in the handshake), the
 * sender's batch limits its options. Over the frame cap a send is refused
 * (TOO_LARGE), never written. */
static void cap_fill(uint8_t *p, uint32_t n, int style, uint32_t seed)
{
    sb_rng r;
    sb_rng_seed(&r, seed);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)sb_rng_next(&r);
        if (style == 1 && i % 8 == 0)
            b = 0; /* slightly compressible */
        else if (style == 2 && i < 24)
            b = 0; /* a compressible head, then noise */
        else if (style == 3)
            b = (uint8_t)(b & 0x3f); /* 6 bits of entropy per byte */
        p[i] = b;
    }
}

static int cap_run(const capcfg *cfg, int server_sends, const uint32_t *sizes, int nsizes,
                   int burst)
{
    static uint8_t buf[(1 << 17) + 64];
    pipe up = {0}, down = {0};
    end c = {0}, sv = {0};
    end *tx, *rx;
    pipe *out, *in;
    double now = 0;
    int sent = 0, bad = 0;
    /* what a send may carry: a lone frame must fit the message cap too */
    uint32_t cap = (uint32_t)cfg->payload;
    if (cfg->message - SB_FRAME_MAX_HEADER < cap)
        cap = (uint32_t)cfg->message - SB_FRAME_MAX_HEADER;
    c.s = sb_session_create(SB_SESSION_CLIENT, 40);
    if (server_sends) {
        sb_session_set(c.s, SB_SO_MAX_PAYLOAD, cfg->payload);
        sb_session_set(c.s, SB_SO_MAX_MESSAGE, cfg->message);
        sb_session_set(c.s, SB_SO_MAX_FRAMES, cfg->frames);
        server_tx = cfg;
    } else {
        sb_session_set(c.s, SB_SO_BATCH_MAX_BYTES, cfg->batch_bytes);
        sb_session_set(c.s, SB_SO_BATCH_MAX_FRAMES, cfg->batch_frames);
        server_rx = cfg;
    }
    sb_session_start(c.s, now);
    drain(&c, &up);
    handshake(&c, &sv, &up, &down, now, 0);
    server_rx = server_tx = NULL;
    if (server_sends) {
        tx = &sv, rx = &c, out = &down, in = &up;
    } else {
        tx = &c, rx = &sv, out = &up, in = &down;
    }
    for (int style = 0; style < 4; style++)
        for (int i = 0; i < nsizes; i += burst) {
            for (int j = i; j < i + burst && j < nsizes; j++) {
                uint32_t n = sizes[j];
                int rc;
                cap_fill(buf, n, style, (uint32_t)(style * 7919 + j));
                rc = sb_session_send(tx->s, 0, SB_FRAME_F_BINARY, buf, n, now);
                if (n > cap) {
                    CHECK_EQ(rc, SB_E_TOO_LARGE);
                } else {
                    CHECK(rc > 0);
                    sent += rc > 0;
                }
            }
            for (int round = 0; round < 8; round++) {
                sb_session_flush(tx->s, now);
                drain(tx, out);
                for (int k = 0; k < out->n; k++) {
                    sb_frame f;
                    if (out->len[k] > cfg->message ||
                        sb_frame_decode(out->msg[k], out->len[k], (size_t)cfg->payload, &f) <= 0)
                        bad++;
                }
                deliver(rx, out, now);
                sb_session_flush(rx->s, now);
                drain(rx, in);
                deliver(tx, in, now);
                now += 25;
            }
        }
    CHECK_EQ(bad, 0);
    CHECK_EQ(rx->ngot, sent);
    CHECK_EQ(rx->disconnects, 0);
    CHECK_EQ(tx->disconnects, 0);
    clear(&up);
    clear(&down);
    sb_session_destroy(c.s);
    sb_session_destroy(sv.s);
    return bad == 0 && rx->ngot == sent && rx->disconnects == 0;
}

static void test_caps_both_ways(void)
{
    static const capcfg cfgs[] = {
        {64, 256, 1, 256 << 10, 512},
        {300, 1024, 4, 1000, 512},
        {4096, 16384, 4096, 1500, 512},
        {4096, 8192, 2, 256 << 10, 512},
        {2048, 1024, 16, 256 << 10, 512}, /* a message cap under the frame cap */
        {65536, 1 << 20, 4096, 65536 - 10, 3},
    };
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
        const capcfg *g = &cfgs[k];
        uint32_t sizes[256];
        int n = 0;
        uint32_t p = (uint32_t)g->payload, b = (uint32_t)g->batch_bytes;
        int step = p > 8192 ? 8 : 1;
        if (g->message - SB_FRAME_MAX_HEADER < p) {
            sizes[n++] = p; /* refused: over the message cap */
            p = (uint32_t)g->message - SB_FRAME_MAX_HEADER;
        }
        for (int d = 48; d >= -2; d -= step)
            if ((int64_t)p - d > 0)
                sizes[n++] = (uint32_t)((int64_t)p - d);
        for (int d = -40; d <= 40; d += 4)
            if ((int64_t)b + d > 0 && (int64_t)b + d <= p)
                sizes[n++] = (uint32_t)((int64_t)b + d);
        sizes[n++] = 95;
        sizes[n++] = 96;
        sizes[n++] = 97;
        for (int dir = 0; dir < 2; dir++)
            for (int burst = 1; burst <= 5; burst += 4)
                if (!cap_run(g, dir, sizes, n, burst))
                    fprintf(stderr, "caps %g/%g/%g batch %g/%g, %s sends, burst %d: refused\n",
                            g->payload, g->message, g->frames, g->batch_bytes, g->batch_frames,
                            dir ? "server" : "client", burst);
    }
}

/* A message queued before the peer's caps were known that turns out to be
 * over them is dropped (DROP, TOO_LARGE) when the link comes up, not
 * written: the peer would refuse it and the session would reconnect and
 * write it again forever. Both roles. */
static void test_queued_over_peer_cap(void)
{
    static uint8_t big[3000];
    for (int server_sends = 0; server_sends < 2; server_sends++) {
        pipe up = {0}, down = {0};
        end c = {0}, sv = {0};
        end *tx, *rx;
        double now = 0;
        uint32_t a = 1, b = 2;
        capcfg caps = {2048, 1 << 20, 4096, 256 << 10, 512};
        memset(big, 'x', sizeof big);
        c.s = sb_session_create(SB_SESSION_CLIENT, 15);
        if (server_sends) {
            sb_session_set(c.s, SB_SO_MAX_PAYLOAD, caps.payload);
        } else {
            server_rx = &caps;
        }
        sb_session_start(c.s, now);
        drain(&c, &up);
        handshake(&c, &sv, &up, &down, now, 0);
        tx = server_sends ? &sv : &c;
        rx = server_sends ? &c : &sv;
        /* the link drops; the sender queues while it is down */
        clear(&up);
        clear(&down);
        c.open = sv.open = 0;
        sb_session_transport_closed(c.s, now, 1006);
        sb_session_transport_closed(sv.s, now, 1006);
        drain(&c, &up);
        drain(&sv, &down);
        CHECK(sb_session_send(tx->s, 0, 0, (const uint8_t *)&a, 4, now) > 0);
        CHECK(sb_session_send(tx->s, 0, SB_FRAME_F_BINARY, big, sizeof big, now) > 0);
        CHECK(sb_session_send(tx->s, 0, 0, (const uint8_t *)&b, 4, now) > 0);
        drain(tx, server_sends ? &down : &up);
        now = sb_session_next_deadline(c.s);
        sb_session_tick(c.s, now);
        drain(&c, &up);
        CHECK(c.want_connect);
        handshake(&c, &sv, &up, &down, now, 1); /* a pending session like the first */
        server_rx = NULL;
        for (int round = 0; round < 4; round++) {
            deliver(&sv, &up, now);
            sb_session_flush(sv.s, now);
            drain(&sv, &down);
            deliver(&c, &down, now);
            sb_session_flush(c.s, now);
            drain(&c, &up);
            now += 50; /* past the client's ack delay by the third round */
        }
        CHECK_EQ(tx->drops, 1);
        CHECK_EQ(rx->disconnects, 0);
        CHECK_EQ(tx->disconnects, 0);
        CHECK_EQ(rx->ngot, 2);
        CHECK_EQ(rx->got[0], 1);
        CHECK_EQ(rx->got[1], 2);
        CHECK_EQ(sb_session_stat(tx->s, SB_SS_QUEUED), 0);
        clear(&up);
        clear(&down);
        sb_session_destroy(c.s);
        sb_session_destroy(sv.s);
    }
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
    now = exchange(&c, &sv, &up, &down, now, 4);
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

/* A shared Socket's handover, the hard case: the leading tab wrote 2 and 3
 * after its last snapshot left, then died. The next leader restores that
 * snapshot and resumes: the server's welcome says it has 3, so the new
 * leader numbers on from 4 (a new message is not dropped as a duplicate of
 * 2) and reports it. A request that was in flight at the snapshot is
 * answered in the new session once it is expected again. */
static void test_resume_from_older_snapshot(void)
{
    pipe up = {0}, down = {0};
    end a = {0}, b = {0}, sv = {0};
    double now = 0;
    uint8_t *snap;
    int n, rid, lost, fresh, early;
    uint32_t x;
    a.s = sb_session_create(SB_SESSION_CLIENT, 21);
    sb_session_start(a.s, now);
    drain(&a, &up);
    handshake(&a, &sv, &up, &down, now, 0);
    x = 1;
    sb_session_send(a.s, 0, 0, (const uint8_t *)&x, 4, now);
    rid = sb_session_request(a.s, 0, 0, (const uint8_t *)"ping", 4, 0, now);
    CHECK(rid > 0);
    sb_session_flush(a.s, now);
    drain(&a, &up);
    CHECK((n = sb_session_serialize(a.s)) > 0); /* the last snapshot that reached another tab */
    snap = malloc((size_t)n);
    memcpy(snap, sb_session_out(a.s), (size_t)n);
    for (x = 2; x <= 3; x++)
        sb_session_send(a.s, 0, 0, (const uint8_t *)&x, 4, now);
    lost = sb_session_request(a.s, 0, 0, (const uint8_t *)"lost", 4, 0, now); /* after the snapshot */
    CHECK(lost > 0);
    sb_session_flush(a.s, now);
    drain(&a, &up);
    deliver(&sv, &up, now);
    drain(&sv, &down);
    CHECK_EQ(sv.ngot, 3);
    CHECK_EQ(sv.requests, 2);
    clear(&down); /* a dies before any ack or answer reaches it */
    sb_session_destroy(a.s);
    sv.open = 0;
    sb_session_transport_closed(sv.s, now, 1006);
    drain(&sv, &down);
    CHECK(sb_session_respond(sv.s, sv.req_ids[0], 0, 0, (const uint8_t *)"pong", 4, now) > 0);

    b.s = sb_session_create(SB_SESSION_CLIENT, 22);
    CHECK_EQ(sb_session_restore(b.s, snap, (uint32_t)n, now), 0);
    CHECK_EQ(sb_session_expect(b.s, (uint32_t)rid, 0, now), 0);
    CHECK_EQ(sb_session_expect(b.s, (uint32_t)rid, 0, now), 0); /* once is enough */
    sb_session_start(b.s, now);
    drain(&b, &up);
    for (x = 4; x <= 5; x++) /* messages only the new leader has (the tabs' resends) */
        sb_session_send(b.s, 0, 0, (const uint8_t *)&x, 4, now);
    /* A request queued before the welcome takes the id the lost state gave
     * "lost". The welcome shows the loss, and it moves past it. */
    early = sb_session_request(b.s, 0, 0, (const uint8_t *)"early", 5, 0, now);
    CHECK_EQ(early, lost);
    {   /* a state saved before the welcome keeps that mark */
        sb_session *c = sb_session_create(SB_SESSION_CLIENT, 23);
        int m = sb_session_serialize(b.s);
        CHECK(m > 0);
        CHECK_EQ(sb_session_restore(c, sb_session_out(b.s), (uint32_t)m, now), 0);
        CHECK_EQ(sb_session_serialize(c), m);
        sb_session_destroy(c);
    }
    handshake(&b, &sv, &up, &down, now, 1);
    CHECK_EQ(sb_session_stat(b.s, SB_SS_GAPS), 1);
    CHECK_EQ(b.moves, 1);
    CHECK_EQ(b.moved_from, (uint32_t)early);
    CHECK(b.moved_to != (uint32_t)lost && b.moved_to != (uint32_t)rid);
    /* A request of the new state never takes the id of one the lost state
     * wrote: the answer to that one is not its answer. */
    fresh = sb_session_request(b.s, 0, 0, (const uint8_t *)"new", 3, 0, now);
    CHECK(fresh > 0 && fresh != lost && fresh != rid && fresh != (int)b.moved_to);
    drain(&b, &up);
    CHECK(sb_session_respond(sv.s, sv.req_ids[1], 0, 0, (const uint8_t *)"lost!", 5, now) > 0);
    deliver(&sv, &up, now);
    sb_session_flush(sv.s, now);
    drain(&sv, &down);
    deliver(&b, &down, now);
    drain(&b, &up);
    CHECK_EQ(sv.ngot, 5);
    CHECK_EQ(sv.got[3], 4);
    CHECK_EQ(sv.requests, 4); /* ping, lost, early, new */
    CHECK_EQ(b.responses, 1); /* pong; "lost!" answers neither "early" nor anything of this state's */
    CHECK_EQ(sv.req_ids[2], b.moved_to);
    CHECK(sb_session_respond(sv.s, sv.req_ids[2], 0, 0, (const uint8_t *)"early!", 6, now) > 0);
    sb_session_flush(sv.s, now);
    drain(&sv, &down);
    deliver(&b, &down, now);
    drain(&b, &up);
    CHECK_EQ(b.responses, 2);
    CHECK_EQ(b.last_answer, b.moved_to);
    CHECK_EQ(sb_session_stat(b.s, SB_SS_TX_SEQ), 9); /* 1, ping, 2, 3, lost came before */
    free(snap);
    clear(&up);
    clear(&down);
    sb_session_destroy(b.s);
    sb_session_destroy(sv.s);
}

/* A server this session already knows (it has a session id) that is slow
 * to greet on a later transport is not taken for a plain one: talking
 * plain to it would write the queue raw, count it as delivered once
 * written, and lose it. The connect timeout decides instead. */
static void test_slow_greeting_after_framed(void)
{
    pipe up = {0}, down = {0};
    end c = {0}, sv = {0};
    double now = 0;
    uint32_t m = 77;
    c.s = sb_session_create(SB_SESSION_CLIENT, 16);
    sb_session_start(c.s, now);
    drain(&c, &up);
    handshake(&c, &sv, &up, &down, now, 0);
    clear(&up);
    clear(&down);
    c.open = sv.open = 0;
    sb_session_transport_closed(c.s, now, 1006);
    sb_session_transport_closed(sv.s, now, 1006);
    drain(&c, &up);
    drain(&sv, &down);
    CHECK(sb_session_send(c.s, 0, 0, (const uint8_t *)&m, 4, now) > 0);
    now = sb_session_next_deadline(c.s);
    sb_session_tick(c.s, now);
    drain(&c, &up);
    CHECK(c.want_connect);
    CHECK_EQ(sb_session_transport_open(c.s, now, 1), 0);
    c.open = 1;
    /* the server takes 5 s to greet: past the hello timeout (3 s), within
     * the connect timeout (10 s) */
    for (int i = 0; i < 50; i++) {
        now += 100;
        sb_session_tick(c.s, now);
        drain(&c, &up);
    }
    CHECK_EQ(sb_session_mode(c.s), SB_SESSION_MODE_NONE);
    CHECK_EQ(up.n, 0); /* nothing raw to a switchboard server */
    CHECK_EQ(sb_session_stat(c.s, SB_SS_QUEUED), 1);
    {
        sb_session *p = server_new(8);
        end pend = {0};
        pend.s = p;
        sb_session_transport_open(p, now, 1);
        pend.open = 1;
        sb_session_flush(p, now);
        drain(&pend, &down);
        deliver(&c, &down, now);
        sb_session_flush(c.s, now);
        drain(&c, &up);
        deliver(&pend, &up, now);
        drain(&pend, &down);
        CHECK_EQ(pend.hellos, 1);
        CHECK_EQ(sb_session_takeover(sv.s, p, now), 0);
        sb_session_destroy(p);
    }
    sv.open = 1;
    for (int round = 0; round < 4; round++) {
        sb_session_flush(sv.s, now);
        drain(&sv, &down);
        deliver(&c, &down, now);
        sb_session_flush(c.s, now);
        drain(&c, &up);
        deliver(&sv, &up, now);
        now += 25;
    }
    drain(&sv, &down);
    CHECK_EQ(sb_session_mode(c.s), SB_SESSION_MODE_FRAMED);
    CHECK_EQ(sv.ngot, 1);
    CHECK_EQ(sv.got[0], 77);
    clear(&up);
    clear(&down);
    sb_session_destroy(c.s);
    sb_session_destroy(sv.s);
}

/* A relay that greets after the hello timeout (3 s): the client went plain
 * and wrote its queue raw, which the relay refuses before a hello. The late
 * greeting is never the application's: the client drops the transport,
 * comes back framed, and what it wrote raw (still unconfirmed) goes out
 * again, framed, and arrives exactly once. */
static void test_late_greeting_reconnects_framed(void)
{
    pipe up = {0}, down = {0};
    end c = {0}, sv = {0}, pend = {0};
    double now = 0;
    uint32_t m = 77, m2 = 78;
    c.s = sb_session_create(SB_SESSION_CLIENT, 21);
    sb_session_start(c.s, now);
    drain(&c, &up);
    CHECK(sb_session_send(c.s, 0, 0, (const uint8_t *)&m, 4, now) > 0);
    CHECK_EQ(sb_session_transport_open(c.s, now, 1), 0);
    c.open = 1;
    pend.s = server_new(9);
    CHECK_EQ(sb_session_transport_open(pend.s, now, 1), 0);
    pend.open = 1;
    sb_session_flush(pend.s, now);
    drain(&pend, &down); /* the greeting, held up on its way */
    CHECK_EQ(down.n, 1);
    now = sb_session_next_deadline(c.s);
    CHECK_EQ(now, 3000);
    sb_session_tick(c.s, now);
    drain(&c, &up);
    CHECK_EQ(sb_session_mode(c.s), SB_SESSION_MODE_PLAIN);
    CHECK_EQ(up.n, 1); /* the application's bytes, raw */
    CHECK_EQ(up.len[0], 4);
    deliver(&pend, &up, now);
    drain(&pend, &down);
    CHECK_EQ(pend.disconnects, 1); /* the relay refused them */
    CHECK_EQ(pend.ngot, 0);
    for (int i = 0; i < 10; i++) { /* the socket wrote them out */
        now += 100;
        sb_session_tick(c.s, now);
        drain(&c, &up);
    }
    CHECK_EQ(sb_session_stat(c.s, SB_SS_QUEUED), 1);
    deliver(&c, &down, now); /* the late greeting */
    drain(&c, &up);
    CHECK_EQ(c.ngot, 0);
    CHECK_EQ(c.disconnects, 1);
    CHECK_EQ(c.last_close, SB_CLOSE_REPLACING);
    CHECK_EQ(sb_session_stat(c.s, SB_SS_LATE_GREETINGS), 1);
    CHECK_EQ(sb_session_stat(c.s, SB_SS_QUEUED), 1);
    sb_session_transport_closed(c.s, now, 1002);
    drain(&c, &up);
    sb_session_destroy(pend.s);
    c.want_connect = 0;
    for (int i = 0; i < 100 && !c.want_connect; i++) {
        now = sb_session_next_deadline(c.s);
        sb_session_tick(c.s, now);
        drain(&c, &up);
    }
    CHECK(c.want_connect);
    CHECK(c.offer_framed);
    clear(&up);
    handshake(&c, &sv, &up, &down, now, 0);
    CHECK_EQ(sb_session_mode(c.s), SB_SESSION_MODE_FRAMED);
    CHECK(sb_session_send(c.s, 0, 0, (const uint8_t *)&m2, 4, now) > 0);
    now = exchange(&c, &sv, &up, &down, now, 6);
    CHECK_EQ(sv.ngot, 2);
    CHECK_EQ(sv.got[0], 77);
    CHECK_EQ(sv.got[1], 78);
    CHECK_EQ(c.ngot, 0);
    CHECK_EQ(sb_session_stat(c.s, SB_SS_QUEUED), 0);
    clear(&up);
    clear(&down);
    sb_session_destroy(c.s);
    sb_session_destroy(sv.s);
}

/* A server session restored from saved state is detached like one whose
 * transport closed: it waits for the client, and is closed after the
 * session TTL if the client does not come back. */
static void test_restored_server_session_expires(void)
{
    pipe up = {0}, down = {0};
    end c = {0}, sv = {0};
    double now = 0;
    int n;
    uint8_t *blob;
    sb_session *r;
    c.s = sb_session_create(SB_SESSION_CLIENT, 17);
    sb_session_start(c.s, now);
    drain(&c, &up);
    handshake(&c, &sv, &up, &down, now, 0);
    n = sb_session_serialize(sv.s);
    CHECK(n > 0);
    blob = malloc((size_t)n);
    memcpy(blob, sb_session_out(sv.s), (size_t)n);
    r = sb_session_create(SB_SESSION_SERVER, 18);
    sb_session_set(r, SB_SO_SESSION_TTL, 1000);
    now = 5000;
    CHECK_EQ(sb_session_restore(r, blob, (uint32_t)n, now), 0);
    CHECK_EQ(sb_session_state(r), SB_SESSION_RECONNECTING);
    CHECK(sb_session_next_deadline(r) == now + 1000);
    sb_session_tick(r, now + 999);
    CHECK_EQ(sb_session_state(r), SB_SESSION_RECONNECTING);
    sb_session_tick(r, now + 1000);
    CHECK_EQ(sb_session_state(r), SB_SESSION_CLOSED);
    {
        int closed = 0, t;
        while ((t = sb_session_next_event(r)) != SB_SEV_NONE)
            closed += t == SB_SEV_CLOSED;
        CHECK_EQ(closed, 1);
    }
    free(blob);
    clear(&up);
    clear(&down);
    sb_session_destroy(r);
    sb_session_destroy(c.s);
    sb_session_destroy(sv.s);
}

/* ---- property test: a flaky link, restarts from saved state ------------------
 *
 * One client and one server session over a link of numbered connections.
 * Each connection carries transport messages in order in each direction;
 * the harness delivers a random prefix of what is queued at random times
 * and kills connections at random moments (everything queued on it is
 * lost; each side hears of it at its own later time). Either side restarts
 * from its latest snapshot, taken whenever a DIRTY event is drained, as a
 * host would persist. Every host action is one task: the call(s), then
 * flush, then every event drained; restarts happen between tasks.
 *
 * Message payloads are a function of (side, channel, index), so the
 * receiver checks every byte, the index order and that it was sent.
 *
 * Environment, for a failing seed: SB_PT_FIRST=n SB_PT_SEEDS=1 runs one
 * seed, SB_PT_TRACE=1 prints what the link and the host did, SB_PT_SHOW=k
 * prints k failures per seed, SB_PT_VERBOSE=1 prints a summary per seed. */

#define PT_CONNS 24
#define PT_NCH 4           /* channels 0..3 */
#define PT_SRV_PAYLOAD 2048 /* the server's frame cap (announced in its greeting) */
#define PT_MAXREQ 8192
#define PT_MAXLEN 4096
#define PT_MAXANSWER 2048

typedef struct mq {
    uint8_t **p;
    uint32_t *n;
    int len, cap;
} mq;

enum { OWN_NONE = 0, OWN_PENDING = 1, OWN_MAIN = 2 };

typedef struct lconn {
    int used, alive;
    int client_on;        /* the client's current transport (it has not let go) */
    int owner;            /* who has the server end */
    sb_session *pend;     /* OWN_PENDING: the pending server session */
    double open_at;       /* the socket opens then, -1 once open */
    double c_hear, s_hear; /* each side hears of the death then, -1 = nothing pending */
    int c_code, s_code;
    mq up, down;
} lconn;

typedef struct preq {
    uint32_t id;
    int inc;              /* client incarnation that made it */
    int state;            /* 0 waiting, 1 answered, 2 timed out, 3 abandoned (client restart) */
    double deadline;      /* -1 = none */
    uint32_t serial;
} preq;

typedef struct world {
    uint32_t seed;
    sb_rng r;
    double now, stall_until;
    int step, quiet;
    sb_session *c, *s;
    int c_conn, s_conn, s_replaced;
    int c_inc;
    lconn k[PT_CONNS];
    uint8_t *c_snap, *s_snap;
    uint32_t c_snap_n, s_snap_n;
    int c_snap_id;        /* the client snapshot knows its session id */
    uint32_t c_sent[PT_NCH], c_sent_snap[PT_NCH], s_sent[PT_NCH];
    uint32_t at_srv[PT_NCH], at_cli[PT_NCH]; /* next index expected by each side */
    preq req[PT_MAXREQ];
    int nreq;
    uint32_t req_serial;
    uint8_t srv_seen[1 << 16]; /* request ids the server application got */
    uint32_t to_answer[PT_MAXANSWER];
    int nanswer;
    double opt_batch_delay, opt_batch_bytes, opt_batch_frames;
    uint32_t p_drop, p_stall, p_restart;
    int fails;
    /* what happened, for the summary */
    int drops, c_restarts, s_restarts, takeovers, opens, hb_deaths, idle_kills, timeouts;
    int responses;
    uint8_t buf[PT_MAXLEN];
} world;

static uint32_t pt_mix(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

static int pt_show = 5;
static int pt_trace;

#define PT_TRACE(w, ...)                                                         \
    do {                                                                         \
        if (pt_trace) {                                                          \
            fprintf(stderr, "  [%d t=%.0f] ", (w)->step, (w)->now);            \
            fprintf(stderr, __VA_ARGS__);                                        \
            fprintf(stderr, "\n");                                               \
        }                                                                        \
    } while (0)

#define PT_FAIL(w, ...)                                                          \
    do {                                                                         \
        if ((w)->fails++ < pt_show) {                                                  \
            fprintf(stderr, "property seed %u step %d t=%.0f: ", (w)->seed, (w)->step, \
                    (w)->now);                                                   \
            fprintf(stderr, __VA_ARGS__);                                        \
            fprintf(stderr, "\n");                                               \
        }                                                                        \
    } while (0)

/* Payload of message idx on channel ch from side (0 client, 1 server): its
 * length and bytes depend on nothing else. Some sit at the peer's frame
 * cap, incompressible, slightly compressible or very compressible. */
static uint32_t pt_payload(int side, uint32_t ch, uint32_t idx, uint8_t *out)
{
    uint32_t h = pt_mix(pt_mix((uint32_t)side * 0x9e3779b9u + ch * 0x85ebca6bu + 1) + idx);
    uint32_t len, style = (h >> 3) % 4, zeros = (h >> 12) % 64;
    sb_rng r;
    switch (h % 8) {
    case 0:
        len = PT_SRV_PAYLOAD - (h >> 8) % 40; /* at and just under the cap */
        break;
    case 1:
        len = 200 + (h >> 8) % 900;
        break;
    default:
        len = 12 + (h >> 8) % 100;
        break;
    }
    sb_rng_seed(&r, h | 1);
    for (uint32_t i = 0; i < len; i++) {
        uint8_t b = (uint8_t)sb_rng_next(&r);
        if (style == 1 && i % 8 == 0)
            b = 0; /* slightly compressible */
        else if (style == 2 && i < zeros)
            b = 0; /* a compressible prefix, the rest random */
        else if (style == 3)
            b = (uint8_t)('a' + b % 4);
        out[i] = b;
    }
    memcpy(out, &idx, 4);
    out[4] = (uint8_t)ch;
    out[5] = (uint8_t)side;
    return len;
}

static uint32_t pt_req_payload(uint32_t serial, uint8_t *out)
{
    uint32_t len = 8 + pt_mix(serial) % 64;
    for (uint32_t i = 0; i < len; i++)
        out[i] = (uint8_t)pt_mix(serial * 131 + i);
    memcpy(out, &serial, 4);
    return len;
}

static void mq_push(mq *q, const uint8_t *d, uint32_t n)
{
    if (q->len == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 16;
        q->p = realloc(q->p, (size_t)q->cap * sizeof *q->p);
        q->n = realloc(q->n, (size_t)q->cap * sizeof *q->n);
    }
    q->p[q->len] = malloc(n ? n : 1);
    memcpy(q->p[q->len], d, n);
    q->n[q->len++] = n;
}

static void mq_clear(mq *q)
{
    for (int i = 0; i < q->len; i++)
        free(q->p[i]);
    q->len = 0;
}

static void mq_free(mq *q)
{
    mq_clear(q);
    free(q->p);
    free(q->n);
    memset(q, 0, sizeof *q);
}

/* Remove the first message into *d (caller frees). */
static uint32_t mq_pop(mq *q, uint8_t **d)
{
    uint32_t n = q->n[0];
    *d = q->p[0];
    memmove(q->p, q->p + 1, (size_t)(q->len - 1) * sizeof *q->p);
    memmove(q->n, q->n + 1, (size_t)(q->len - 1) * sizeof *q->n);
    q->len--;
    return n;
}

static double pt_rand(world *w, double lo, double hi)
{
    return lo + (hi - lo) * sb_rng_unit(&w->r);
}

static int pt_chance(world *w, uint32_t per_mille)
{
    return sb_rng_next(&w->r) % 1000 < per_mille;
}

/* A connection dies: what it carries is lost; each side hears of it later,
 * unless it already let go. */
static void pt_kill(world *w, int i, int code, double c_delay, double s_delay)
{
    lconn *k = &w->k[i];
    if (!k->alive)
        return;
    PT_TRACE(w, "conn %d dies (%d)%s%s", i, code, k->client_on ? " client on" : "",
             k->owner ? " server on" : "");
    k->alive = 0;
    mq_clear(&k->up);
    mq_clear(&k->down);
    if (k->client_on && k->c_hear < 0) {
        k->c_hear = w->now + c_delay;
        k->c_code = code;
    }
    if (k->owner != OWN_NONE && k->s_hear < 0) {
        k->s_hear = w->now + s_delay;
        k->s_code = code;
    }
}

static void pt_server_opts(world *w, sb_session *s)
{
    sb_session_set(s, SB_SO_MAX_PAYLOAD, PT_SRV_PAYLOAD);
    sb_session_set(s, SB_SO_IDLE_TIMEOUT, 5000);
    sb_session_set(s, SB_SO_SESSION_TTL, 1e9);
    sb_session_set(s, SB_SO_BATCH_DELAY, w->opt_batch_delay);
    sb_session_set(s, SB_SO_BATCH_MAX_FRAMES, w->opt_batch_frames);
}

static sb_session *pt_client_new(world *w)
{
    sb_session *c = sb_session_create(SB_SESSION_CLIENT, sb_rng_next(&w->r));
    sb_session_set(c, SB_SO_CONNECT_TIMEOUT, 2500);
    sb_session_set(c, SB_SO_PING_INTERVAL, 1500);
    sb_session_set(c, SB_SO_PING_TIMEOUT, 1000);
    sb_session_set(c, SB_SO_BACKOFF_MIN, 50);
    sb_session_set(c, SB_SO_BACKOFF_MAX, 800);
    sb_session_set(c, SB_SO_BATCH_DELAY, w->opt_batch_delay);
    sb_session_set(c, SB_SO_BATCH_MAX_BYTES, w->opt_batch_bytes);
    sb_session_set(c, SB_SO_BATCH_MAX_FRAMES, w->opt_batch_frames);
    return c;
}

static preq *pt_find_req(world *w, uint32_t id)
{
    for (int i = w->nreq - 1; i >= 0; i--)
        if (w->req[i].id == id && w->req[i].inc == w->c_inc)
            return &w->req[i];
    return NULL;
}

/* A message from side `from` arrived at the other side's application. */
static void pt_check_msg(world *w, int from, const sb_session_event *v, const uint8_t *d)
{
    uint32_t idx, ch = v->channel, n;
    uint32_t *next = from == 0 ? w->at_srv : w->at_cli;
    uint32_t *sent = from == 0 ? w->c_sent : w->s_sent;
    if (ch >= PT_NCH || v->len < 6) {
        PT_FAIL(w, "side %d got a message on channel %u, %u bytes", 1 - from, ch, v->len);
        return;
    }
    memcpy(&idx, d, 4);
    if (d[4] != ch || d[5] != from) {
        PT_FAIL(w, "side %d: message on channel %u says channel %u side %u", 1 - from, ch, d[4], d[5]);
        return;
    }
    if (idx >= sent[ch]) {
        PT_FAIL(w, "side %d: message %u on channel %u was never sent (%u sent)", 1 - from, idx, ch, sent[ch]);
        return;
    }
    if (idx != next[ch]) {
        PT_FAIL(w, "%s: channel %u: got message %u, expected %u (%s)", from ? "client" : "server", ch, idx,
                next[ch], idx < next[ch] ? "duplicate" : "gap");
        if (idx > next[ch])
            next[ch] = idx + 1;
        return;
    }
    n = pt_payload(from, ch, idx, w->buf);
    if (n != v->len || memcmp(w->buf, d, n) != 0)
        PT_FAIL(w, "side %d: channel %u message %u: payload differs", 1 - from, ch, idx);
    next[ch]++;
}

static void pt_snap(uint8_t **snap, uint32_t *snap_n, sb_session *s)
{
    int n = sb_session_serialize(s);
    CHECK(n > 0);
    if (n <= 0)
        return;
    free(*snap);
    *snap = malloc((size_t)n);
    memcpy(*snap, sb_session_out(s), (size_t)n);
    *snap_n = (uint32_t)n;
}

static void pt_c_drain(world *w)
{
    int t;
    while ((t = sb_session_next_event(w->c)) != SB_SEV_NONE) {
        const sb_session_event *v = sb_session_event_view(w->c);
        const uint8_t *d = sb_session_event_data(w->c);
        lconn *k = w->c_conn >= 0 ? &w->k[w->c_conn] : NULL;
        switch (t) {
        case SB_SEV_WRITE:
            if (!k)
                PT_FAIL(w, "client wrote with no transport");
            else if (k->alive && k->open_at < 0)
                mq_push(&k->up, d, v->len);
            break;
        case SB_SEV_CONNECT: {
            int i;
            if (k)
                PT_FAIL(w, "client asked for a transport while it has one");
            for (i = 0; i < PT_CONNS && w->k[i].used; i++)
                ;
            if (i == PT_CONNS) {
                PT_FAIL(w, "out of connection slots");
                break;
            }
            memset(&w->k[i], 0, sizeof w->k[i]);
            w->k[i].used = w->k[i].alive = w->k[i].client_on = 1;
            w->k[i].open_at = w->now + pt_rand(w, 0, 60);
            w->k[i].c_hear = w->k[i].s_hear = -1;
            w->c_conn = i;
            PT_TRACE(w, "client CONNECT -> conn %d%s", i, v->flags & SB_SEV_F_OFFER_FRAMED ? "" : " (plain)");
            if (!(v->flags & SB_SEV_F_OFFER_FRAMED)) {
                /* The relay refuses a handshake without switchboard.v1. */
                w->k[i].alive = 0;
                w->k[i].c_hear = w->now + pt_rand(w, 0, 30);
                w->k[i].c_code = 1006;
            }
            break;
        }
        case SB_SEV_DISCONNECT:
            PT_TRACE(w, "client DISCONNECT conn %d code %d %.*s", w->c_conn, v->code, (int)v->len, (const char *)d);
            if (k) {
                if (v->code == SB_CLOSE_BAD_SERVER)
                    PT_FAIL(w, "client refused the server: %.*s", (int)v->len, (const char *)d);
                k->client_on = 0;
                k->c_hear = -1;
                pt_kill(w, w->c_conn, v->code, 0, pt_rand(w, 0, 300));
                w->c_conn = -1;
            }
            break;
        case SB_SEV_STATE:
            PT_TRACE(w, "client state %g reason %d", v->value, v->code);
            if (v->value == SB_SESSION_CLOSED)
                PT_FAIL(w, "client closed (reason %d)", v->code);
            if (v->code == SB_CONN_R_HEARTBEAT_TIMEOUT)
                w->hb_deaths++;
            break;
        case SB_SEV_OPEN:
            w->opens++;
            if (v->value != SB_SESSION_MODE_FRAMED)
                PT_FAIL(w, "client opened in mode %g", v->value);
            break;
        case SB_SEV_MESSAGE:
            if (pt_trace && v->len >= 4) {
                uint32_t idx;
                memcpy(&idx, d, 4);
                PT_TRACE(w, "client got ch %u seq %u idx %u", v->channel, v->seq, idx);
            }
            pt_check_msg(w, 1, v, d);
            break;
        case SB_SEV_RESPONSE:
        case SB_SEV_REQUEST_FAILED: {
            preq *q = pt_find_req(w, v->id);
            if (!q || q->state != 0) {
                PT_FAIL(w, "client: %s for request %u that %s", t == SB_SEV_RESPONSE ? "response" : "failure",
                        v->id, q ? "was resolved already" : "nothing waits for");
                break;
            }
            if (t == SB_SEV_RESPONSE) {
                uint32_t n = pt_req_payload(q->serial, w->buf);
                if (n != v->len || memcmp(w->buf, d, n) != 0)
                    PT_FAIL(w, "client: response to request %u is not its echo", v->id);
                q->state = 1;
                w->responses++;
            } else {
                if (v->code != SB_E_TIMEOUT || q->deadline < 0 || w->now < q->deadline)
                    PT_FAIL(w, "client: request %u failed with %d (deadline %.0f)", v->id, v->code,
                            q->deadline);
                q->state = 2;
                w->timeouts++;
            }
            break;
        }
        case SB_SEV_DROP: {
            /* A restored outbox still holds requests nobody waits for now. */
            int abandoned = 0;
            for (int i = 0; i < w->nreq; i++)
                if (w->req[i].id == v->id && w->req[i].state == 3)
                    abandoned = 1;
            if (!abandoned || v->seq != SB_DROP_EXPIRED) {
                int r = -1;
                for (int i = 0; i < w->nreq; i++)
                    if (w->req[i].id == v->id)
                        r = i;
                PT_FAIL(w, "client dropped message %u (reason %u, %d) ch %u len %u; request: inc %d/%d state %d deadline %.0f",
                        v->id, v->seq, v->code, v->channel, v->len, r >= 0 ? w->req[r].inc : -1, w->c_inc,
                        r >= 0 ? w->req[r].state : -1, r >= 0 ? w->req[r].deadline : 0);
            }
            break;
        }
        case SB_SEV_ERROR:
            PT_FAIL(w, "client error %d: %.*s", v->code, (int)v->len, (const char *)d);
            break;
        case SB_SEV_CLOSED:
            PT_FAIL(w, "client CLOSED");
            break;
        case SB_SEV_DIRTY:
            PT_TRACE(w, "client snapshot (queued %g in flight %g)", sb_session_stat(w->c, SB_SS_QUEUED),
                     sb_session_stat(w->c, SB_SS_IN_FLIGHT));
            pt_snap(&w->c_snap, &w->c_snap_n, w->c);
            w->c_snap_id = sb_session_get_id(w->c) > 0;
            memcpy(w->c_sent_snap, w->c_sent, sizeof w->c_sent);
            break;
        default:
            break;
        }
    }
}

static void pt_c_task_end(world *w)
{
    CHECK_EQ(sb_session_flush(w->c, w->now), 0);
    pt_c_drain(w);
}

static void pt_s_task_end(world *w);

static void pt_s_drain(world *w)
{
    int t;
    while ((t = sb_session_next_event(w->s)) != SB_SEV_NONE) {
        const sb_session_event *v = sb_session_event_view(w->s);
        const uint8_t *d = sb_session_event_data(w->s);
        lconn *k = w->s_conn >= 0 ? &w->k[w->s_conn] : NULL;
        switch (t) {
        case SB_SEV_WRITE:
            if (!k)
                PT_FAIL(w, "server wrote with no transport");
            else if (k->alive)
                mq_push(&k->down, d, v->len);
            break;
        case SB_SEV_DISCONNECT:
            PT_TRACE(w, "server DISCONNECT conn %d code %d", w->s_conn, v->code);
            if (v->code == SB_CLOSE_REPLACED) {
                if (w->s_replaced < 0) {
                    PT_FAIL(w, "server: REPLACED with no previous transport");
                } else {
                    w->k[w->s_replaced].owner = OWN_NONE; /* the host closes it */
                    w->k[w->s_replaced].s_hear = -1;
                    pt_kill(w, w->s_replaced, v->code, pt_rand(w, 0, 300), 0);
                }
                w->s_replaced = -1;
            } else if (k) {
                if (v->code == SB_CLOSE_IDLE)
                    w->idle_kills++;
                else if (v->code != SB_CLOSE_REPLACED)
                    PT_FAIL(w, "server dropped the transport: %d %.*s", v->code, (int)v->len,
                            (const char *)d);
                k->owner = OWN_NONE;
                k->s_hear = -1;
                pt_kill(w, w->s_conn, v->code, pt_rand(w, 0, 300), 0);
                w->s_conn = -1;
            }
            break;
        case SB_SEV_MESSAGE:
            if (pt_trace && v->len >= 4) {
                uint32_t idx;
                memcpy(&idx, d, 4);
                PT_TRACE(w, "server got ch %u seq %u idx %u", v->channel, v->seq, idx);
            }
            pt_check_msg(w, 0, v, d);
            break;
        case SB_SEV_REQUEST:
            if (v->id >= sizeof w->srv_seen || w->srv_seen[v->id])
                PT_FAIL(w, "server: request %u delivered again", v->id);
            else
                w->srv_seen[v->id] = 1;
            if (w->nanswer < PT_MAXANSWER)
                w->to_answer[w->nanswer++] = v->id;
            else
                PT_FAIL(w, "server: too many requests at once");
            /* the echo is the answer: keep the payload */
            if (v->len >= 4 && v->len <= 72) {
                uint32_t serial;
                memcpy(&serial, d, 4);
                if (pt_req_payload(serial, w->buf) != v->len || memcmp(w->buf, d, v->len) != 0)
                    PT_FAIL(w, "server: request %u payload differs", v->id);
            } else {
                PT_FAIL(w, "server: request %u of %u bytes", v->id, v->len);
            }
            break;
        case SB_SEV_ERROR:
            /* A request that expired in flight is a gap the client gave up on. */
            if (v->code != SB_E_CONNECTION_LOST)
                PT_FAIL(w, "server error %d: %.*s", v->code, (int)v->len, (const char *)d);
            break;
        case SB_SEV_DROP:
            PT_FAIL(w, "server dropped message %u (reason %u)", v->id, v->seq);
            break;
        case SB_SEV_CLOSED:
            PT_FAIL(w, "server session CLOSED");
            break;
        case SB_SEV_HELLO:
            PT_FAIL(w, "hello on the main server session");
            break;
        case SB_SEV_DIRTY:
            PT_TRACE(w, "server snapshot (rx ch0 %g)", sb_session_stat(w->s, SB_SS_RX_SEQ));
            pt_snap(&w->s_snap, &w->s_snap_n, w->s);
            break;
        default:
            break;
        }
    }
    /* The application answers every request in the task it arrived in
     * (echo), so a restart never loses one. */
    if (w->nanswer) {
        int n = w->nanswer;
        static uint32_t ids[PT_MAXANSWER];
        memcpy(ids, w->to_answer, sizeof ids);
        w->nanswer = 0;
        for (int i = 0; i < n; i++) {
            /* the payload is regenerated from the request's serial */
            int found = 0;
            for (int j = w->nreq - 1; j >= 0 && !found; j--)
                if (w->req[j].id == ids[i]) {
                    uint32_t len = pt_req_payload(w->req[j].serial, w->buf);
                    CHECK(sb_session_respond(w->s, ids[i], 0, 0, w->buf, len, w->now) > 0);
                    found = 1;
                }
            if (!found)
                PT_FAIL(w, "server: request %u was never made", ids[i]);
        }
        pt_s_task_end(w);
    }
}

static void pt_s_task_end(world *w)
{
    CHECK_EQ(sb_session_flush(w->s, w->now), 0);
    pt_s_drain(w);
}

/* The host's answer to a hello: the first one makes the session, every
 * later one resumes it on the new transport. */
static void pt_hello(world *w, int i)
{
    lconn *k = &w->k[i];
    sb_session *p = k->pend;
    PT_TRACE(w, "hello on conn %d: %s", i, w->s ? "takeover" : "accept");
    if (!w->s) {
        CHECK_EQ(sb_session_set_id(p, (const uint8_t *)"session-1", 9), 0);
        CHECK_EQ(sb_session_accept(p, w->now), 0);
        w->s = p;
    } else {
        int len = sb_session_get_id(p);
        /* A client that never got a welcome knows no id yet. */
        if (len == 0 ? sb_session_get_id(w->c) != 0
                     : len != 9 || memcmp(sb_session_out(p), "session-1", 9) != 0)
            PT_FAIL(w, "hello resumes an unknown session (%d bytes)", len);
        CHECK_EQ(sb_session_takeover(w->s, p, w->now), 0);
        sb_session_destroy(p);
        w->takeovers++;
        /* The first event closes the previous transport, if any; what the
         * floors released may be answered (and written) at once. */
        w->s_replaced = w->s_conn;
    }
    k->pend = NULL;
    k->owner = OWN_MAIN;
    w->s_conn = i;
    pt_s_task_end(w);
}

static void pt_p_drain(world *w, int i)
{
    lconn *k = &w->k[i];
    int t, hello = 0, closed = 0;
    while ((t = sb_session_next_event(k->pend)) != SB_SEV_NONE) {
        const sb_session_event *v = sb_session_event_view(k->pend);
        const uint8_t *d = sb_session_event_data(k->pend);
        switch (t) {
        case SB_SEV_WRITE:
            if (k->alive)
                mq_push(&k->down, d, v->len);
            break;
        case SB_SEV_DISCONNECT:
            PT_TRACE(w, "pending DISCONNECT conn %d code %d", i, v->code);
            if (v->code != SB_CLOSE_HELLO_TIMEOUT)
                PT_FAIL(w, "pending session dropped the transport: %d %.*s", v->code, (int)v->len,
                        (const char *)d);
            k->owner = OWN_NONE; /* it closed itself */
            k->s_hear = -1;
            pt_kill(w, i, v->code, pt_rand(w, 0, 300), 0);
            break;
        case SB_SEV_HELLO:
            hello = 1;
            break;
        case SB_SEV_CLOSED:
            closed = 1;
            break;
        case SB_SEV_ERROR:
            PT_FAIL(w, "pending session error %d: %.*s", v->code, (int)v->len, (const char *)d);
            break;
        default:
            break;
        }
    }
    if (closed) {
        sb_session_destroy(k->pend);
        k->pend = NULL;
        k->owner = OWN_NONE;
    } else if (hello) {
        pt_hello(w, i);
    }
}

static void pt_recv(world *w, int i, int up, uint8_t *d, uint32_t n)
{
    lconn *k = &w->k[i];
    if (up) {
        if (k->owner == OWN_PENDING) {
            CHECK_EQ(sb_session_recv(k->pend, d, n, 0, w->now), 0);
            CHECK_EQ(sb_session_flush(k->pend, w->now), 0);
            pt_p_drain(w, i);
        } else if (k->owner == OWN_MAIN && w->s_conn == i) {
            CHECK_EQ(sb_session_recv(w->s, d, n, 0, w->now), 0);
            pt_s_task_end(w);
        }
    } else if (k->client_on && w->c_conn == i) {
        CHECK_EQ(sb_session_recv(w->c, d, n, 0, w->now), 0);
        pt_c_task_end(w);
    }
}

/* Deliver a random prefix of what one direction of connection i holds. */
static void pt_deliver(world *w, int i, int up, int all)
{
    lconn *k = &w->k[i];
    mq *q = up ? &k->up : &k->down;
    int count = q->len;
    if (!count)
        return;
    if (!all)
        count = 1 + (int)(sb_rng_next(&w->r) % (uint32_t)count);
    for (int j = 0; j < count && k->alive && q->len; j++) {
        uint8_t *d;
        uint32_t n = mq_pop(q, &d);
        pt_recv(w, i, up, d, n);
        free(d);
    }
}

/* Sockets opening, closes being heard. */
static void pt_timers(world *w)
{
    for (int i = 0; i < PT_CONNS; i++) {
        lconn *k = &w->k[i];
        if (!k->used)
            continue;
        if (k->alive && k->open_at >= 0 && w->now >= k->open_at) {
            k->open_at = -1;
            PT_TRACE(w, "conn %d opens", i);
            if (k->client_on && w->c_conn == i) {
                CHECK_EQ(sb_session_transport_open(w->c, w->now, 1), 0);
                pt_c_task_end(w);
            }
            if (k->alive) {
                k->pend = sb_session_create(SB_SESSION_SERVER, sb_rng_next(&w->r));
                pt_server_opts(w, k->pend);
                k->owner = OWN_PENDING;
                CHECK_EQ(sb_session_transport_open(k->pend, w->now, 1), 0);
                CHECK_EQ(sb_session_flush(k->pend, w->now), 0);
                pt_p_drain(w, i); /* the greeting */
            }
        }
        if (k->c_hear >= 0 && w->now >= k->c_hear) {
            k->c_hear = -1;
            if (k->client_on && w->c_conn == i) {
                PT_TRACE(w, "client hears conn %d closed", i);
                k->client_on = 0;
                w->c_conn = -1;
                CHECK_EQ(sb_session_transport_closed(w->c, w->now, k->c_code), 0);
                pt_c_task_end(w);
            }
        }
        if (k->s_hear >= 0 && w->now >= k->s_hear) {
            k->s_hear = -1;
            PT_TRACE(w, "server hears conn %d closed (owner %d%s)", i, k->owner,
                     k->owner == OWN_MAIN && w->s_conn == i ? ", attached" : "");
            if (k->owner == OWN_PENDING) {
                CHECK_EQ(sb_session_transport_closed(k->pend, w->now, k->s_code), 0);
                pt_p_drain(w, i);
                if (k->pend) {
                    sb_session_destroy(k->pend); /* closed: the host lets it go */
                    k->pend = NULL;
                }
            } else if (k->owner == OWN_MAIN && w->s_conn == i) {
                w->s_conn = -1;
                CHECK_EQ(sb_session_transport_closed(w->s, w->now, k->s_code), 0);
                pt_s_task_end(w);
            }
            k->owner = OWN_NONE;
        }
        if (!k->alive && !k->client_on && k->owner == OWN_NONE && k->c_hear < 0 && k->s_hear < 0) {
            mq_free(&k->up);
            mq_free(&k->down);
            memset(k, 0, sizeof *k);
        }
    }
}

static void pt_ticks(world *w)
{
    CHECK_EQ(sb_session_tick(w->c, w->now), 0);
    pt_c_drain(w);
    if (w->s) {
        CHECK_EQ(sb_session_tick(w->s, w->now), 0);
        pt_s_drain(w);
    }
    for (int i = 0; i < PT_CONNS; i++)
        if (w->k[i].used && w->k[i].owner == OWN_PENDING && w->k[i].pend) {
            CHECK_EQ(sb_session_tick(w->k[i].pend, w->now), 0);
            pt_p_drain(w, i);
        }
}

/* A live connection at random, or -1. */
static int pt_pick_conn(world *w)
{
    int live[PT_CONNS], n = 0;
    for (int i = 0; i < PT_CONNS; i++)
        if (w->k[i].used && w->k[i].alive)
            live[n++] = i;
    return n ? live[sb_rng_next(&w->r) % (uint32_t)n] : -1;
}

static void pt_client_send(world *w)
{
    static const uint32_t chans[] = {0, 2, 3};
    int burst = 1 + (int)(sb_rng_next(&w->r) % 6);
    for (int j = 0; j < burst; j++) {
        uint32_t ch = chans[sb_rng_next(&w->r) % 3];
        uint32_t n = pt_payload(0, ch, w->c_sent[ch], w->buf);
        int rc = sb_session_send(w->c, ch, SB_FRAME_F_BINARY, w->buf, n, w->now);
        if (rc > 0)
            w->c_sent[ch]++;
        else
            PT_FAIL(w, "client send failed: %d", rc);
    }
    pt_c_task_end(w);
}

static void pt_server_send(world *w)
{
    int burst = 1 + (int)(sb_rng_next(&w->r) % 6);
    if (!w->s)
        return;
    for (int j = 0; j < burst; j++) {
        uint32_t ch = sb_rng_next(&w->r) % 3; /* 0, 1 (the server's own), 2 */
        uint32_t n = pt_payload(1, ch, w->s_sent[ch], w->buf);
        int rc = sb_session_send(w->s, ch, SB_FRAME_F_BINARY, w->buf, n, w->now);
        if (rc > 0)
            w->s_sent[ch]++;
        else
            PT_FAIL(w, "server send failed: %d", rc);
    }
    pt_s_task_end(w);
}

static void pt_client_request(world *w)
{
    static const uint32_t chans[] = {0, 2, 3};
    double timeout = pt_chance(w, 300) ? 0 : pt_rand(w, 100, 4000);
    uint32_t serial = ++w->req_serial;
    uint32_t n = pt_req_payload(serial, w->buf);
    int id;
    if (w->nreq >= PT_MAXREQ)
        return;
    id = sb_session_request(w->c, chans[sb_rng_next(&w->r) % 3], 0, w->buf, n, timeout, w->now);
    if (id <= 0) {
        PT_FAIL(w, "request failed: %d", id);
        return;
    }
    if ((size_t)id >= sizeof w->srv_seen)
        PT_FAIL(w, "request id %d out of range", id);
    w->req[w->nreq].id = (uint32_t)id;
    w->req[w->nreq].inc = w->c_inc;
    w->req[w->nreq].state = 0;
    w->req[w->nreq].deadline = timeout > 0 ? w->now + timeout : -1;
    w->req[w->nreq].serial = serial;
    w->nreq++;
    pt_c_task_end(w);
}

/* The browser tab reloads: its transport goes with it; the new client
 * starts from the last state it persisted. */
static void pt_client_restart(world *w)
{
    if (w->c_conn >= 0) {
        lconn *k = &w->k[w->c_conn];
        k->client_on = 0;
        k->c_hear = -1;
        pt_kill(w, w->c_conn, 1001, 0, pt_rand(w, 0, 500));
        w->c_conn = -1;
    }
    PT_TRACE(w, "client restarts (queued %g in flight %g)", sb_session_stat(w->c, SB_SS_QUEUED),
             sb_session_stat(w->c, SB_SS_IN_FLIGHT));
    sb_session_destroy(w->c);
    for (int i = 0; i < PT_NCH; i++)
        if (w->c_sent[i] != w->c_sent_snap[i]) {
            PT_FAIL(w, "channel %d: %u sends after the last DIRTY", i, w->c_sent[i] - w->c_sent_snap[i]);
            w->c_sent[i] = w->c_sent_snap[i];
        }
    for (int i = 0; i < w->nreq; i++)
        if (w->req[i].inc == w->c_inc && w->req[i].state == 0)
            w->req[i].state = 3; /* the page that waited for it is gone */
    w->c_inc++;
    w->c = pt_client_new(w);
    CHECK_EQ(sb_session_restore(w->c, w->c_snap, w->c_snap_n, w->now), 0);
    PT_TRACE(w, "restored (queued %g in flight %g)", sb_session_stat(w->c, SB_SS_QUEUED),
             sb_session_stat(w->c, SB_SS_IN_FLIGHT));
    CHECK_EQ(sb_session_start(w->c, w->now), 0);
    pt_c_task_end(w);
    w->c_restarts++;
}

/* The relay restarts: every transport it had dies; the session comes back
 * detached from its last committed state. */
static void pt_server_restart(world *w)
{
    for (int i = 0; i < PT_CONNS; i++) {
        lconn *k = &w->k[i];
        if (!k->used || k->owner == OWN_NONE)
            continue;
        if (k->pend)
            sb_session_destroy(k->pend);
        k->pend = NULL;
        k->owner = OWN_NONE;
        k->s_hear = -1;
        pt_kill(w, i, 1006, pt_rand(w, 0, 500), 0);
    }
    PT_TRACE(w, "server restarts");
    w->s_conn = -1;
    sb_session_destroy(w->s);
    w->s = sb_session_create(SB_SESSION_SERVER, sb_rng_next(&w->r));
    pt_server_opts(w, w->s);
    CHECK_EQ(sb_session_restore(w->s, w->s_snap, w->s_snap_n, w->now), 0);
    CHECK_EQ(sb_session_state(w->s), SB_SESSION_RECONNECTING);
    w->s_restarts++;
}

static int pt_done(world *w)
{
    for (int ch = 0; ch < PT_NCH; ch++)
        if (w->at_srv[ch] != w->c_sent[ch] || w->at_cli[ch] != w->s_sent[ch])
            return 0;
    for (int i = 0; i < w->nreq; i++)
        if (w->req[i].state == 0)
            return 0;
    return 1;
}

static int property_session(uint32_t seed, int steps)
{
    world *w = calloc(1, sizeof *w);
    int fails;
    w->seed = seed;
    sb_rng_seed(&w->r, seed * 2654435761u + 1);
    w->now = 1000;
    w->c_conn = w->s_conn = w->s_replaced = -1;
    /* Per seed: how often the link drops a connection, stalls and a side
     * restarts, so calm runs let the heartbeat and the idle timeout decide
     * and churny ones stress resume. */
    w->p_drop = (uint32_t[]){150, 400, 1000}[seed % 3];
    w->p_stall = (uint32_t[]){4, 2, 1}[seed % 3];
    w->p_restart = (uint32_t[]){150, 500, 1000}[seed % 3];
    w->opt_batch_delay = pt_chance(w, 500) ? 0 : 5;
    w->opt_batch_bytes = pt_chance(w, 500) ? 256 << 10 : 1000 + sb_rng_next(&w->r) % 2000;
    w->opt_batch_frames = pt_chance(w, 300) ? 1 + sb_rng_next(&w->r) % 4 : 512;
    w->c = pt_client_new(w);
    CHECK_EQ(sb_session_start(w->c, w->now), 0);
    pt_c_drain(w);
    for (w->step = 0;; w->step++) {
        uint32_t a = sb_rng_next(&w->r) % 1000;
        if (w->step == steps)
            w->quiet = 1; /* no more faults, sends or restarts: everything must arrive */
        if (w->quiet) {
            w->now += 5;
            for (int i = 0; i < PT_CONNS; i++)
                if (w->k[i].used && w->k[i].alive) {
                    pt_deliver(w, i, 1, 1);
                    pt_deliver(w, i, 0, 1);
                }
            pt_timers(w);
            pt_ticks(w);
            if (pt_done(w) || w->step > steps + 6000) /* 30 s: backoff is at most 0.8 s */
                break;
            continue;
        }
        if (a < 250) {
            /* time passes; now and then the link stalls, long enough for the
             * heartbeat or the idle timeout to notice */
            w->now += pt_rand(w, 0, 40);
            if (w->now >= w->stall_until && pt_chance(w, w->p_stall)) {
                w->stall_until = w->now + pt_rand(w, 2000, 7000);
                PT_TRACE(w, "link stalls until %.0f", w->stall_until);
            }
            pt_timers(w);
            if (pt_chance(w, 700))
                pt_ticks(w);
        } else if (a < 600) {
            int i = pt_pick_conn(w);
            if (i >= 0 && w->now >= w->stall_until)
                pt_deliver(w, i, (int)(sb_rng_next(&w->r) & 1), 0);
        } else if (a < 720) {
            pt_client_send(w);
        } else if (a < 820) {
            pt_server_send(w);
        } else if (a < 880) {
            pt_client_request(w);
        } else if (a < 886) {
            int i = pt_pick_conn(w);
            if (i >= 0 && pt_chance(w, w->p_drop)) {
                /* each side hears at its own time; sometimes the server much later */
                pt_kill(w, i, 1006, pt_rand(w, 0, 200),
                        pt_chance(w, 200) ? pt_rand(w, 1000, 8000) : pt_rand(w, 0, 300));
                w->drops++;
            }
        } else if (a < 887) {
            if (w->c_snap && w->c_snap_id && pt_chance(w, w->p_restart))
                pt_client_restart(w);
        } else if (a < 888) {
            if (w->s && w->s_snap && pt_chance(w, w->p_restart))
                pt_server_restart(w);
        } else {
            pt_ticks(w);
        }
    }
    for (int ch = 0; ch < PT_NCH; ch++) {
        if (w->at_srv[ch] != w->c_sent[ch])
            PT_FAIL(w, "channel %d: server got %u of %u client messages", ch, w->at_srv[ch], w->c_sent[ch]);
        if (w->at_cli[ch] != w->s_sent[ch])
            PT_FAIL(w, "channel %d: client got %u of %u server messages", ch, w->at_cli[ch], w->s_sent[ch]);
    }
    for (int i = 0; i < w->nreq; i++)
        if (w->req[i].state == 0)
            PT_FAIL(w, "request %u (deadline %.0f) never resolved", w->req[i].id, w->req[i].deadline);
    if (getenv("SB_PT_VERBOSE"))
        fprintf(stderr,
                "seed %u: %d steps, t=%.0f s, sent c %u/%u/%u s %u/%u/%u, %d requests (%d answered, %d timed out), "
                "%d drops, %d opens, %d takeovers, %d+%d restarts, %d heartbeat deaths, %d idle kills\n",
                seed, w->step, w->now / 1000, w->c_sent[0], w->c_sent[2], w->c_sent[3], w->s_sent[0],
                w->s_sent[1], w->s_sent[2], w->nreq, w->responses, w->timeouts, w->drops, w->opens,
                w->takeovers, w->c_restarts, w->s_restarts, w->hb_deaths, w->idle_kills);
    fails = w->fails;
    for (int i = 0; i < PT_CONNS; i++) {
        sb_session_destroy(w->k[i].pend);
        mq_free(&w->k[i].up);
        mq_free(&w->k[i].down);
    }
    sb_session_destroy(w->c);
    sb_session_destroy(w->s);
    free(w->c_snap);
    free(w->s_snap);
    free(w);
    return fails;
}

static void test_property_flaky_link(void)
{
    const char *env = getenv("SB_PT_SEEDS");
    int seeds = env ? atoi(env) : 16;
    uint32_t first = getenv("SB_PT_FIRST") ? (uint32_t)atoi(getenv("SB_PT_FIRST")) : 1;
    pt_trace = getenv("SB_PT_TRACE") != NULL;
    if (getenv("SB_PT_SHOW"))
        pt_show = atoi(getenv("SB_PT_SHOW"));
    for (uint32_t seed = first; seed < first + (uint32_t)seeds; seed++)
        CHECK_EQ(property_session(seed, 8000), 0);
}

/* One attempt the server refuses after the hello with `code` (what a relay
 * does when its authenticate hook says no): the pending server session
 * writes DISCONNECT with that code and reason, the host closes the
 * transport with it, and the client hears that close. */
static void refused_attempt(end *c, pipe *up, pipe *down, double now, int code, const char *reason)
{
    sb_session *p = server_new(11);
    end pend = {0};
    int t, seen = 0;
    pend.s = p;
    CHECK(c->want_connect);
    c->want_connect = 0;
    CHECK_EQ(sb_session_transport_open(c->s, now, 1), 0);
    c->open = 1;
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
    CHECK_EQ(sb_session_refuse(p, code, (const uint8_t *)reason, (uint32_t)strlen(reason), now), 0);
    while ((t = sb_session_next_event(p)) != SB_SEV_NONE) {
        const sb_session_event *v = sb_session_event_view(p);
        if (t == SB_SEV_DISCONNECT) {
            seen++;
            CHECK_EQ(v->code, code);
            CHECK_EQ(v->len, strlen(reason));
            CHECK_MEM(sb_session_event_data(p), reason, v->len);
        }
    }
    CHECK_EQ(seen, 1);
    CHECK_EQ(sb_session_state(p), SB_SESSION_CLOSED);
    sb_session_destroy(p);
    clear(down);
    c->open = 0;
    CHECK_EQ(sb_session_transport_closed(c->s, now, code), 0);
    drain(c, up);
}

/* 4401 (credentials refused) ends a client that cannot get new ones, and is
 * retried with backoff by one whose host refreshes them (SB_SO_REFRESH_AUTH);
 * 4403 (another user's session) ends both. Time is driven by hand. */
static void test_auth_close_verdict(void)
{
    pipe up = {0}, down = {0};
    double now = 1000;
    {
        /* Default: do not come back, however long we wait. */
        end c = {0};
        c.s = sb_session_create(SB_SESSION_CLIENT, 21);
        CHECK_EQ(sb_session_start(c.s, now), 0);
        drain(&c, &up);
        refused_attempt(&c, &up, &down, now, SB_CLOSE_AUTH, "UNAUTHORIZED: bad token");
        CHECK_EQ(sb_session_state(c.s), SB_SESSION_CLOSED);
        CHECK_EQ(c.closed, 1);
        CHECK(sb_session_next_deadline(c.s) < 0);
        for (double t = now; t < now + 3600e3; t += 60e3)
            sb_session_tick(c.s, t);
        drain(&c, &up);
        CHECK(!c.want_connect);
        CHECK_EQ(up.n, 0);
        sb_session_destroy(c.s);
    }
    {
        /* A host that refreshes credentials: backoff, then a new attempt;
         * the delays grow, since a refused attempt never proved alive. */
        end c = {0};
        double ceiling = 250, retry_at;
        c.s = sb_session_create(SB_SESSION_CLIENT, 22);
        CHECK_EQ(sb_session_set(c.s, SB_SO_REFRESH_AUTH, 1), 0);
        CHECK_EQ(sb_session_set(c.s, SB_SO_REFRESH_AUTH, 2), SB_E_INVALID);
        CHECK_EQ(sb_session_start(c.s, now), 0);
        drain(&c, &up);
        for (int k = 1; k <= 4; k++) {
            refused_attempt(&c, &up, &down, now, SB_CLOSE_AUTH, "UNAUTHORIZED: expired token");
            CHECK_EQ(sb_session_state(c.s), SB_SESSION_RECONNECTING);
            CHECK_EQ(c.closed, 0);
            CHECK_EQ(sb_session_stat(c.s, SB_SS_ATTEMPT), k);
            retry_at = sb_session_next_deadline(c.s);
            /* attempt k-1's delay: in [min/2, min(max, min * 2^(k-1))] */
            CHECK(retry_at >= now + 125 && retry_at <= now + ceiling);
            ceiling *= 2;
            sb_session_tick(c.s, retry_at - 1);
            drain(&c, &up);
            CHECK(!c.want_connect);
            now = retry_at;
            sb_session_tick(c.s, now);
            drain(&c, &up);
            CHECK(c.want_connect);
            /* it greeted us: a switchboard server, no plain probe next */
            CHECK(c.offer_framed);
            CHECK_EQ(sb_session_state(c.s), SB_SESSION_CONNECTING);
        }
        /* the fresh credentials work: open, and the first traffic resets
         * the attempt count */
        {
            end sv = {0};
            uint32_t x = 1;
            handshake(&c, &sv, &up, &down, now, 0);
            CHECK_EQ(sb_session_state(c.s), SB_SESSION_OPEN);
            CHECK(sb_session_send(sv.s, 0, 0, (const uint8_t *)&x, 4, now) > 0);
            sb_session_flush(sv.s, now);
            drain(&sv, &down);
            deliver(&c, &down, now);
            drain(&c, &up);
            CHECK_EQ(c.ngot, 1);
            CHECK_EQ(sb_session_stat(c.s, SB_SS_ATTEMPT), 0);
            clear(&up);
            clear(&down);
            sb_session_destroy(sv.s);
        }
        sb_session_destroy(c.s);
    }
    {
        /* 4403 is final even for a host that refreshes credentials. */
        end c = {0};
        c.s = sb_session_create(SB_SESSION_CLIENT, 23);
        CHECK_EQ(sb_session_set(c.s, SB_SO_REFRESH_AUTH, 1), 0);
        CHECK_EQ(sb_session_start(c.s, now), 0);
        drain(&c, &up);
        refused_attempt(&c, &up, &down, now, SB_CLOSE_FORBIDDEN, "FORBIDDEN: not your session");
        CHECK_EQ(sb_session_state(c.s), SB_SESSION_CLOSED);
        CHECK_EQ(c.closed, 1);
        sb_session_destroy(c.s);
    }
    clear(&up);
    clear(&down);
}

/* A request queued before the verdict never reaches a plain server: it
 * fails with BAD_STATE; the app's messages still go. (review finding) */
static void test_request_before_plain_verdict(void)
{
    pipe up = {0};
    end c = {0};
    double now = 0;
    c.s = sb_session_create(SB_SESSION_CLIENT, 21);
    sb_session_start(c.s, now);
    drain(&c, &up);
    CHECK(sb_session_request(c.s, 0, 0, (const uint8_t *)"secret", 6, 5000, now) > 0);
    CHECK(sb_session_send(c.s, 0, 0, (const uint8_t *)"hi", 2, now) > 0);
    sb_session_transport_open(c.s, now, 0); /* no subprotocol: plain at once */
    c.open = 1;
    sb_session_flush(c.s, now);
    drain(&c, &up);
    CHECK_EQ(up.n, 1);
    CHECK(up.n == 1 && up.len[0] == 2 && memcmp(up.msg[0], "hi", 2) == 0);
    CHECK_EQ(c.failures, 1);
    clear(&up);
    sb_session_destroy(c.s);
}

/* Under drop-newest a request on a full queue fails at once. (review finding) */
static void test_request_dropped_newest_fails(void)
{
    pipe up = {0};
    end c = {0};
    double now = 0;
    c.s = sb_session_create(SB_SESSION_CLIENT, 22);
    sb_session_set(c.s, SB_SO_QUEUE_MAX_COUNT, 1);
    sb_session_set(c.s, SB_SO_QUEUE_POLICY, SB_QUEUE_DROP_NEWEST);
    sb_session_start(c.s, now);
    drain(&c, &up);
    CHECK(sb_session_send(c.s, 0, 0, (const uint8_t *)"a", 1, now) > 0);
    CHECK(sb_session_request(c.s, 0, 0, (const uint8_t *)"q", 1, 0, now) > 0);
    drain(&c, &up);
    CHECK_EQ(c.failures, 1);
    CHECK_EQ(sb_session_stat(c.s, SB_SS_REQUESTS_PENDING), 0);
    sb_session_destroy(c.s);
}

/* c sends payloads first..last (4-byte numbers, zero-padded to size) in one
 * flush; the server gets them, answers (acks) at now. */
static void send_range(end *c, end *sv, pipe *up, pipe *down, uint32_t first, uint32_t last,
                       uint32_t size, double now)
{
    static uint8_t buf[4096];
    memset(buf, 0, sizeof buf);
    for (uint32_t i = first; i <= last; i++) {
        memcpy(buf, &i, 4);
        CHECK(sb_session_send(c->s, 0, 0, buf, size, now) > 0);
    }
    sb_session_flush(c->s, now);
    drain(c, up);
    deliver(sv, up, now);
    drain(sv, down);
    if (sv->open) {
        sb_session_flush(sv->s, now);
        drain(sv, down);
    }
    deliver(c, down, now);
    drain(c, up);
}

/* A client over the message rate: the server asks its host to stop
 * reading (PAUSE, for as long as the debt takes to pay off), and past the
 * tolerance closes the transport with RATE_LIMITED, taking nothing of the
 * message; the client resumes and it arrives once. */
static void test_rate_limit_messages(void)
{
    pipe up = {0}, down = {0};
    end c = {0}, sv = {0};
    double now = 1000;
    double opts[][2] = {{SB_SO_RATE_MSGS, 100}, {SB_SO_RATE_MSGS_BURST, 100},
                        {SB_SO_RATE_TOLERANCE, 1000}, {SB_SO_RATE_BYTES, 0}};
    memcpy(server_opts, opts, sizeof opts);
    nserver_opts = 4;
    c.s = sb_session_create(SB_SESSION_CLIENT, 40);
    /* a client's own rate options are never applied to what it receives */
    CHECK_EQ(sb_session_set(c.s, SB_SO_RATE_MSGS, 1), 0);
    CHECK_EQ(sb_session_set(c.s, SB_SO_RATE_MSGS_BURST, 1), 0);
    CHECK_EQ(sb_session_set(c.s, SB_SO_RATE_TOLERANCE, 0), 0);
    sb_session_start(c.s, now);
    drain(&c, &up);
    handshake(&c, &sv, &up, &down, now, 0);
    send_range(&c, &sv, &up, &down, 1, 100, 4, now); /* the burst */
    CHECK_EQ(sv.ngot, 100);
    CHECK_EQ(sv.pauses, 0);
    send_range(&c, &sv, &up, &down, 101, 150, 4, now); /* 50 in debt at 100/s */
    CHECK_EQ(sv.ngot, 150);
    CHECK_EQ(sv.pauses, 1);
    CHECK_EQ(sv.last_pause, 500);
    /* the client goes on: 100 ms later 10 are paid, 60 more make 100 of debt, at the tolerance */
    now += 100;
    send_range(&c, &sv, &up, &down, 151, 210, 4, now);
    CHECK_EQ(sv.ngot, 210);
    CHECK_EQ(sv.pauses, 2);
    CHECK_EQ(sv.last_pause, 1000);
    CHECK_EQ(sv.disconnects, 0);
    /* past it: closed, the message not taken */
    send_range(&c, &sv, &up, &down, 211, 211, 4, now);
    CHECK_EQ(sv.disconnects, 1);
    CHECK_EQ(sv.last_close, SB_CLOSE_RATE_LIMITED);
    CHECK(strncmp(sv.reason, "RATE_LIMITED: ", 14) == 0);
    CHECK_EQ(sv.ngot, 210);
    CHECK_EQ(sb_session_state(sv.s), SB_SESSION_RECONNECTING);
    /* the client comes back (a fresh transport, fresh buckets): 211 once */
    c.open = 0;
    clear(&up);
    clear(&down);
    sb_session_transport_closed(c.s, now, SB_CLOSE_RATE_LIMITED);
    drain(&c, &up);
    CHECK_EQ(sb_session_state(c.s), SB_SESSION_RECONNECTING);
    now = sb_session_next_deadline(c.s);
    sb_session_tick(c.s, now);
    drain(&c, &up);
    CHECK(c.want_connect);
    handshake(&c, &sv, &up, &down, now, 1);
    deliver(&sv, &up, now);
    drain(&sv, &down);
    CHECK_EQ(sv.ngot, 211);
    for (int i = 0; i < sv.ngot; i++)
        CHECK_EQ(sv.got[i], (uint32_t)(i + 1));
    CHECK_EQ(sv.pauses, 2);
    /* and the server's flood to the client is not limited on the client */
    for (uint32_t i = 1; i <= 300; i++)
        sb_session_send(sv.s, 0, 0, (const uint8_t *)&i, 4, now);
    sb_session_flush(sv.s, now);
    drain(&sv, &down);
    deliver(&c, &down, now);
    drain(&c, &up);
    CHECK_EQ(c.ngot, 300);
    CHECK_EQ(c.pauses, 0);
    CHECK_EQ(c.disconnects, 0);
    nserver_opts = 0;
    clear(&up);
    clear(&down);
    sb_session_destroy(c.s);
    sb_session_destroy(sv.s);
}

/* The byte rate counts frame bytes after inflating: a compressed batch of
 * zeros costs what it inflates to, not its few transport bytes. */
static void test_rate_limit_bytes(void)
{
    pipe up = {0}, down = {0};
    end c = {0}, sv = {0};
    double now = 0;
    double opts[][2] = {{SB_SO_RATE_MSGS, 0}, {SB_SO_RATE_BYTES, 1000},
                        {SB_SO_RATE_BYTES_BURST, 1000}, {SB_SO_RATE_TOLERANCE, 5000}};
    double in0;
    memcpy(server_opts, opts, sizeof opts);
    nserver_opts = 4;
    c.s = sb_session_create(SB_SESSION_CLIENT, 41);
    sb_session_start(c.s, now);
    drain(&c, &up);
    handshake(&c, &sv, &up, &down, now, 0);
    send_range(&c, &sv, &up, &down, 1, 1, 900, now);
    CHECK_EQ(sv.pauses, 0);
    in0 = sb_session_stat(sv.s, SB_SS_BYTES_IN);
    send_range(&c, &sv, &up, &down, 2, 4, 900, now); /* ~2.7 KB inflated */
    CHECK(sb_session_stat(sv.s, SB_SS_BYTES_IN) - in0 < 200); /* compressed on the wire */
    CHECK_EQ(sv.ngot, 4);
    CHECK_EQ(sv.pauses, 1);
    CHECK(sv.last_pause >= 2500 && sv.last_pause <= 2800);
    /* paid off after the wait: the next message passes */
    now += sv.last_pause + 1000;
    send_range(&c, &sv, &up, &down, 5, 5, 900, now);
    CHECK_EQ(sv.pauses, 1);
    /* 8 at once is over the tolerance (5 s at 1000 B/s): closed */
    send_range(&c, &sv, &up, &down, 6, 13, 900, now);
    CHECK_EQ(sv.last_close, SB_CLOSE_RATE_LIMITED);
    CHECK_EQ(sv.ngot, 5);
    nserver_opts = 0;
    clear(&up);
    clear(&down);
    sb_session_destroy(c.s);
    sb_session_destroy(sv.s);
}

/* A client that does not read: once the transport has held the high-water
 * mark unsent for the stall timeout it is closed with TRY_AGAIN, not
 * before, and a drained buffer starts the clock again; the session stays
 * with what was not confirmed, and the client resumes with all of it. */
static void test_stalled_transport(void)
{
    pipe up = {0}, down = {0};
    end c = {0}, sv = {0};
    double now = 0;
    double opts[][2] = {{SB_SO_HIGH_WATER, 1000}, {SB_SO_STALL_TIMEOUT, 500}};
    memcpy(server_opts, opts, sizeof opts);
    nserver_opts = 2;
    c.s = sb_session_create(SB_SESSION_CLIENT, 42);
    sb_session_start(c.s, now);
    drain(&c, &up);
    handshake(&c, &sv, &up, &down, now, 0);
    for (uint32_t i = 1; i <= 10; i++)
        sb_session_send(sv.s, 0, 0, (const uint8_t *)&i, 4, now);
    sb_session_set_buffered(sv.s, 5000);
    sb_session_flush(sv.s, now);
    drain(&sv, &down);
    clear(&down); /* never read */
    CHECK(sb_session_next_deadline(sv.s) <= now + 500);
    sb_session_tick(sv.s, now + 499);
    drain(&sv, &down);
    CHECK_EQ(sv.disconnects, 0);
    /* it drained a little: the clock starts again */
    sb_session_set_buffered(sv.s, 999);
    sb_session_tick(sv.s, now + 499);
    sb_session_set_buffered(sv.s, 5000);
    now += 600;
    sb_session_tick(sv.s, now);
    drain(&sv, &down);
    sb_session_tick(sv.s, now + 499);
    drain(&sv, &down);
    CHECK_EQ(sv.disconnects, 0);
    CHECK(sb_session_next_deadline(sv.s) <= now + 500);
    now += 500;
    sb_session_tick(sv.s, now);
    drain(&sv, &down);
    CHECK_EQ(sv.disconnects, 1);
    CHECK_EQ(sv.last_close, SB_CLOSE_TRY_AGAIN);
    CHECK(strncmp(sv.reason, "TIMEOUT: ", 9) == 0);
    CHECK_EQ(sb_session_state(sv.s), SB_SESSION_RECONNECTING);
    CHECK_EQ(sb_session_stat(sv.s, SB_SS_QUEUED), 10);
    clear(&down);
    /* the client comes back and gets all ten, once */
    c.open = 0;
    sb_session_transport_closed(c.s, now, SB_CLOSE_TRY_AGAIN);
    drain(&c, &up);
    now = sb_session_next_deadline(c.s);
    sb_session_tick(c.s, now);
    drain(&c, &up);
    CHECK(c.want_connect);
    sb_session_set_buffered(sv.s, 0);
    handshake(&c, &sv, &up, &down, now, 1);
    CHECK_EQ(c.ngot, 10);
    for (int i = 0; i < c.ngot; i++)
        CHECK_EQ(c.got[i], (uint32_t)(i + 1));
    nserver_opts = 0;
    clear(&up);
    clear(&down);
    sb_session_destroy(c.s);
    sb_session_destroy(sv.s);
}

/* A MESSAGE frame with the FROM flag, seq 1 on channel 2, as a forger would write it. */
static int stamped_frame(uint8_t *out, size_t cap, const uint8_t *payload, size_t n)
{
    sb_frame f;
    int k;
    sb_frame_init(&f, SB_FRAME_MESSAGE);
    f.flags = SB_FRAME_F_FROM | SB_FRAME_F_ACK_REQ;
    f.channel = 2;
    f.seq = 1;
    f.payload = payload;
    f.payload_len = n;
    k = sb_frame_write(&f, out, cap);
    CHECK(k > 0);
    return k;
}

/* The server stamps the sender and the room offset; the client reads both
 * and can stamp nothing itself; channel 1 takes the client's requests only. */
static void test_relay_stamp(void)
{
    pipe up = {0}, down = {0};
    end c = {0}, sv = {0};
    double now = 1000;
    int t, seen = 0;
    uint32_t x = 7;
    char big[256];
    c.s = sb_session_create(SB_SESSION_CLIENT, 1);
    CHECK_EQ(sb_session_start(c.s, now), 0);
    drain(&c, &up);
    handshake(&c, &sv, &up, &down, now, 0);
    /* bad arguments */
    memset(big, 'a', sizeof big);
    CHECK_EQ(sb_session_relay(c.s, 2, 0, 1, (const uint8_t *)"ann", 3, (const uint8_t *)&x, 4, now), SB_E_INVALID);
    CHECK_EQ(sb_session_relay(sv.s, 2, 0, 1, (const uint8_t *)"", 0, (const uint8_t *)&x, 4, now), SB_E_INVALID);
    CHECK_EQ(sb_session_relay(sv.s, 2, 0, 1, (const uint8_t *)big, 256, (const uint8_t *)&x, 4, now), SB_E_INVALID);
    CHECK_EQ(sb_session_relay(sv.s, 2, 0, 1.5, (const uint8_t *)"ann", 3, (const uint8_t *)&x, 4, now), SB_E_INVALID);
    CHECK_EQ(sb_session_relay(sv.s, 2, 0, 4294967296.0, (const uint8_t *)"ann", 3, (const uint8_t *)&x, 4, now), SB_E_INVALID);
    CHECK_EQ(sb_session_send(sv.s, 2, SB_FRAME_F_FROM, (const uint8_t *)&x, 4, now), SB_E_INVALID);
    /* a stamped message, then an empty one with the longest sender */
    CHECK(sb_session_relay(sv.s, 2, 0, 41, (const uint8_t *)"ann", 3, (const uint8_t *)&x, 4, now) > 0);
    CHECK(sb_session_relay(sv.s, 3, SB_FRAME_F_BINARY, 4294967295.0, (const uint8_t *)big, 255, NULL, 0, now) > 0);
    CHECK(sb_session_send(sv.s, 2, 0, (const uint8_t *)&x, 4, now) > 0);
    sb_session_flush(sv.s, now);
    drain(&sv, &down);
    deliver(&c, &down, now);
    while ((t = sb_session_next_event(c.s)) != SB_SEV_NONE) {
        const sb_session_event *v = sb_session_event_view(c.s);
        const uint8_t *d = sb_session_event_data(c.s);
        if (t != SB_SEV_MESSAGE)
            continue;
        if (seen == 0) {
            CHECK_EQ(v->channel, 2u);
            CHECK_EQ(v->len, 4u);
            CHECK_EQ(v->aux, 3u);
            CHECK(v->value == 41);
            CHECK(memcmp(d, &x, 4) == 0 && memcmp(d + 4, "ann", 3) == 0);
        } else if (seen == 1) {
            CHECK_EQ(v->len, 0u);
            CHECK_EQ(v->aux, 255u);
            CHECK(v->value == 4294967295.0);
            CHECK_EQ(v->flags, (uint32_t)SB_FRAME_F_BINARY);
            CHECK(memcmp(d, big, 255) == 0);
        } else {
            CHECK_EQ(v->aux, 0u); /* unstamped */
            CHECK(v->value == 0);
        }
        seen++;
    }
    CHECK_EQ(seen, 3);
    /* A message at the client's cap still arrives stamped; one byte over does not go. */
    {
        uint8_t *m = calloc(1, (1u << 20) + 1);
        uint32_t got = 0;
        CHECK(sb_session_relay(sv.s, 2, SB_FRAME_F_BINARY, 50, (const uint8_t *)big, 255, m, 1u << 20, now) > 0);
        CHECK_EQ(sb_session_relay(sv.s, 2, SB_FRAME_F_BINARY, 51, (const uint8_t *)"a", 1, m, (1u << 20) + 1, now), SB_E_TOO_LARGE);
        for (int round = 0; round < 4; round++) {
            sb_session_flush(sv.s, now);
            drain(&sv, &down);
            deliver(&c, &down, now);
            while ((t = sb_session_next_event(c.s)) != SB_SEV_NONE) {
                const sb_session_event *v = sb_session_event_view(c.s);
                if (t == SB_SEV_MESSAGE && v->len == 1u << 20 && v->aux == 255)
                    got++;
                CHECK(t != SB_SEV_DISCONNECT && t != SB_SEV_ERROR);
            }
        }
        CHECK_EQ(got, 1u);
        free(m);
    }
    /* A client may request on channel 1 (the server itself), not send there. */
    CHECK_EQ(sb_session_send(c.s, 1, 0, (const uint8_t *)&x, 4, now), SB_E_INVALID);
    CHECK(sb_session_request(c.s, 1, 0, (const uint8_t *)"sub", 3, 5000, now) > 0);
    sb_session_flush(c.s, now);
    drain(&c, &up);
    deliver(&sv, &up, now);
    drain(&sv, &down);
    CHECK_EQ(sv.requests, 1);
    CHECK_EQ(sv.disconnects, 0);
    /* A client forging a stamp is a protocol error. */
    {
        uint8_t fb[64], payload[8] = {3, 'b', 'o', 'b', 1, 2, 3, 4};
        int k = stamped_frame(fb, sizeof fb, payload, sizeof payload);
        clear(&down);
        sb_session_recv(sv.s, fb, (uint32_t)k, 0, now);
        drain(&sv, &down);
        CHECK_EQ(sv.disconnects, 1);
        CHECK_EQ(sv.last_close, SB_CLOSE_PROTOCOL);
    }
    /* A stamp longer than its payload, to a client: a protocol error there. */
    {
        end c2 = {0}, sv2 = {0};
        uint8_t fb[64], payload[4] = {9, 'b', 'o', 'b'};
        int k = stamped_frame(fb, sizeof fb, payload, sizeof payload);
        c2.s = sb_session_create(SB_SESSION_CLIENT, 3);
        CHECK_EQ(sb_session_start(c2.s, now), 0);
        drain(&c2, &up);
        clear(&up);
        clear(&down);
        handshake(&c2, &sv2, &up, &down, now, 0);
        sb_session_recv(c2.s, fb, (uint32_t)k, 0, now);
        drain(&c2, &up);
        CHECK_EQ(c2.disconnects, 1);
        CHECK_EQ(c2.last_close, SB_CLOSE_BAD_SERVER);
        sb_session_destroy(c2.s);
        sb_session_destroy(sv2.s);
    }
    clear(&up);
    clear(&down);
    sb_session_destroy(c.s);
    sb_session_destroy(sv.s);
}

/* A relayed message that does not fit the client's window is refused with
 * QUEUE_FULL and takes nothing: no eviction, no DROP, no loss reported; once
 * the client confirms, the next one goes. (sb_session_send evicts instead.) */
static void test_relay_window_full(void)
{
    pipe up = {0}, down = {0};
    end c = {0}, sv = {0};
    double now = 1000;
    uint32_t x = 7;
    c.s = sb_session_create(SB_SESSION_CLIENT, 1);
    CHECK_EQ(sb_session_start(c.s, now), 0);
    drain(&c, &up);
    server_opts[0][0] = SB_SO_QUEUE_MAX_COUNT;
    server_opts[0][1] = 3;
    server_opts[1][0] = SB_SO_QUEUE_MAX_BYTES;
    server_opts[1][1] = 100;
    nserver_opts = 2;
    handshake(&c, &sv, &up, &down, now, 0);
    nserver_opts = 0;
    for (int i = 0; i < 3; i++)
        CHECK(sb_session_relay(sv.s, 0, 0, 1 + i, (const uint8_t *)"ann", 3, (const uint8_t *)&x, 4, now) > 0);
    CHECK_EQ(sb_session_relay(sv.s, 0, 0, 4, (const uint8_t *)"ann", 3, (const uint8_t *)&x, 4, now), SB_E_QUEUE_FULL);
    CHECK(sb_session_stat(sv.s, SB_SS_QUEUED) == 3);
    CHECK(sb_session_stat(sv.s, SB_SS_DROPPED) == 0);
    sb_session_flush(sv.s, now);
    drain(&sv, &down);
    CHECK_EQ(sv.drops, 0);
    CHECK_EQ(sv.disconnects, 0);
    deliver(&c, &down, now);
    drain(&c, &up);
    CHECK_EQ(c.ngot, 3);
    /* the client's ack frees the window */
    now += 1000;
    sb_session_tick(c.s, now);
    drain(&c, &up);
    deliver(&sv, &up, now);
    drain(&sv, &down);
    CHECK(sb_session_stat(sv.s, SB_SS_QUEUED) == 0);
    CHECK(sb_session_relay(sv.s, 0, 0, 4, (const uint8_t *)"ann", 3, (const uint8_t *)&x, 4, now) > 0);
    /* bytes: a payload that would take the window past its bytes */
    {
        uint8_t big[96] = {0};
        CHECK_EQ(sb_session_relay(sv.s, 0, 0, 5, (const uint8_t *)"ann", 3, big, sizeof big, now), SB_E_QUEUE_FULL);
    }
    /* the welcome of a later resume reports no loss */
    sb_session_flush(sv.s, now);
    drain(&sv, &down);
    deliver(&c, &down, now);
    drain(&c, &up);
    CHECK_EQ(c.ngot, 4);
    CHECK(sb_session_stat(c.s, SB_SS_GAPS) == 0);
    sb_session_destroy(c.s);
    sb_session_destroy(sv.s);
}

/* A framed pair (the client's SB_SO_ACK_RIDE = ride) where the client has
 * just received one message from the server and acked nothing yet. */
static void one_unacked(end *c, end *sv, pipe *up, pipe *down, double now, int ride)
{
    uint32_t x = 5;
    c->s = sb_session_create(SB_SESSION_CLIENT, 3);
    CHECK_EQ(sb_session_set(c->s, SB_SO_ACK_RIDE, ride), 0);
    CHECK_EQ(sb_session_start(c->s, now), 0);
    drain(c, up);
    handshake(c, sv, up, down, now, 0);
    clear(up);
    CHECK(sb_session_send(sv->s, 0, 0, (const uint8_t *)&x, 4, now) > 0);
    sb_session_flush(sv->s, now);
    drain(sv, down);
    deliver(c, down, now);
}

/* An ack that is not due yet rides along with whatever else is written:
 * the client's next message confirms what it received, with no write of
 * the ack's own before its delay. */
static void test_acks_ride_along(void)
{
    pipe up = {0}, down = {0};
    end c = {0}, sv = {0};
    double now = 1000;
    uint32_t y = 6;
    one_unacked(&c, &sv, &up, &down, now, 1);
    now += 10; /* before the client's ack delay: nothing of its own to write */
    sb_session_flush(c.s, now);
    drain(&c, &up);
    CHECK_EQ(c.ngot, 1);
    CHECK_EQ(up.n, 0);
    CHECK(sb_session_stat(sv.s, SB_SS_QUEUED) == 1);
    /* a message of the client's carries the ack */
    CHECK(sb_session_send(c.s, 0, 0, (const uint8_t *)&y, 4, now) > 0);
    sb_session_flush(c.s, now);
    drain(&c, &up);
    CHECK_EQ(up.n, 1);
    deliver(&sv, &up, now);
    drain(&sv, &down);
    CHECK_EQ(sv.ngot, 1);
    CHECK(sb_session_stat(sv.s, SB_SS_QUEUED) == 0);
    sb_session_destroy(c.s);
    sb_session_destroy(sv.s);
}

/* SB_SO_ACK_RIDE 0 (a shared Socket's leading tab): the client's message
 * goes alone, and the ack waits its delay. */
static void test_acks_wait_when_not_riding(void)
{
    end probe = {0};
    probe.s = sb_session_create(SB_SESSION_CLIENT, 3);
    CHECK_EQ(sb_session_set(probe.s, SB_SO_ACK_RIDE, 2), SB_E_INVALID);
    sb_session_destroy(probe.s);
    pipe up = {0}, down = {0};
    end c = {0}, sv = {0};
    double now = 1000;
    uint32_t y = 6;
    one_unacked(&c, &sv, &up, &down, now, 0);
    CHECK_EQ(sb_session_set(c.s, SB_SO_ACK_RIDE, 0), SB_E_BAD_STATE); /* before the start only */
    now += 10;
    CHECK(sb_session_send(c.s, 0, 0, (const uint8_t *)&y, 4, now) > 0);
    sb_session_flush(c.s, now);
    drain(&c, &up);
    deliver(&sv, &up, now);
    drain(&sv, &down);
    CHECK_EQ(sv.ngot, 1);
    CHECK(sb_session_stat(sv.s, SB_SS_QUEUED) == 1); /* not confirmed yet */
    now += 100; /* past the ack delay */
    sb_session_tick(c.s, now);
    sb_session_flush(c.s, now);
    drain(&c, &up);
    deliver(&sv, &up, now);
    drain(&sv, &down);
    CHECK(sb_session_stat(sv.s, SB_SS_QUEUED) == 0);
    sb_session_destroy(c.s);
    sb_session_destroy(sv.s);
}

int main(void)
{
    RUN(test_handshake_and_messages);
    RUN(test_request_written_at_once);
    RUN(test_full_batch_written_at_once);
    RUN(test_early_batch_edges);
    RUN(test_message_frames_carry_no_id);
    RUN(test_idle_trim);
    RUN(test_plain_server_sees_nothing_of_ours);
    RUN(test_request_before_plain_verdict);
    RUN(test_late_greeting_reconnects_framed);
    RUN(test_request_dropped_newest_fails);
    RUN(test_resume_after_drop);
    RUN(test_heartbeat_verdict);
    RUN(test_cap_guard);
    RUN(test_cap_guard_near_miss);
    RUN(test_caps_both_ways);
    RUN(test_queued_over_peer_cap);
    RUN(test_request_timeout_reported_once);
    RUN(test_floors_release_held_frames);
    RUN(test_answered_request_leaves_outbox);
    RUN(test_slow_greeting_after_framed);
    RUN(test_restored_server_session_expires);
    RUN(test_resume_from_older_snapshot);
    RUN(test_auth_close_verdict);
    RUN(test_rate_limit_messages);
    RUN(test_rate_limit_bytes);
    RUN(test_stalled_transport);
    RUN(test_relay_stamp);
    RUN(test_relay_window_full);
    RUN(test_acks_ride_along);
    RUN(test_acks_wait_when_not_riding);
    RUN(test_property_flaky_link);
    TEST_MAIN_END();
}
