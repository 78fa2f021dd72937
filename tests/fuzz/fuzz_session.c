/* Fuzz both roles of the session with foreign bytes, mixed with the
 * application's calls and time.
 *
 * data[0] picks the set-up (low 2 bits) and options (the rest):
 *   0: a client after a real greeting + welcome from a server session
 *   1: a client whose first message is the input's (no handshake)
 *   2: a pending server session: the input's first message is the hello
 *   3: a server session accepted through a real client's hello
 * The rest is steps, each an op byte and its operands (see step()). Every
 * step is followed by draining all events.
 *
 * Checks: no crash, no leak, every call returns 0 / a count / an sb_err,
 * every event is well formed, a recv never returns a peer's error, and in
 * set-ups 0 and 3 everything the fuzzed session writes on the original
 * transport is accepted by the real peer (no ERROR there): the input may
 * confuse the session, but never into writing what its peer refuses. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz {
    sb_session *s;      /* the fuzzed session */
    sb_session *peer;   /* the real other end (set-ups 0 and 3), or NULL */
    sb_session *other;  /* set-up 2: an existing session a hello may take over */
    int role;
    int linked;         /* writes still reach the peer on the original transport */
    int want_connect;   /* client: asked for a transport */
    int hello;          /* server: a hello waits for the host's decision */
    uint32_t req[64];   /* server: requests waiting for an answer */
    int nreq;
    double now;
} fz;

static void check_rc(int rc)
{
    if (rc > 0x7ffffff0 || (rc < 0 && rc <= SB_E_LAST_))
        abort();
}

/* Pop every event of s; with to_peer, forward its writes to f->peer. */
static void drain_one(fz *f, sb_session *s, int to_peer)
{
    int t;
    while ((t = sb_session_next_event(s)) != SB_SEV_NONE) {
        const sb_session_event *v = sb_session_event_view(s);
        const uint8_t *d = sb_session_event_data(s);
        if (t <= SB_SEV_NONE || t >= SB_SEV_COUNT_ || (v->len && !d) || isnan(v->value))
            abort();
        switch (t) {
        case SB_SEV_WRITE:
            if (to_peer && f->linked && f->peer) {
                /* a copy: the peer's calls must not see our event buffer move */
                uint8_t *copy = malloc(v->len ? v->len : 1);
                memcpy(copy, d, v->len);
                if (sb_session_recv(f->peer, copy, v->len, (v->flags & SB_SEV_F_TEXT) != 0, f->now) != 0)
                    abort();
                free(copy);
            }
            break;
        case SB_SEV_CONNECT:
            if (s == f->s)
                f->want_connect = 1;
            break;
        case SB_SEV_DISCONNECT:
            if (s == f->s || s == f->peer)
                f->linked = 0;
            break;
        case SB_SEV_HELLO:
            if (s == f->s)
                f->hello = 1;
            break;
        case SB_SEV_REQUEST:
            if (s == f->s && f->nreq < 64)
                f->req[f->nreq++] = v->id;
            break;
        case SB_SEV_ERROR:
            if (v->code >= 0 || v->code <= SB_E_LAST_)
                abort();
            /* The peer refused what the fuzzed session wrote it. */
            if (s == f->peer && f->linked)
                abort();
            break;
        case SB_SEV_STATE:
            if (v->value < SB_SESSION_IDLE || v->value > SB_SESSION_RECONNECTING)
                abort();
            break;
        default:
            break;
        }
    }
}

static void drain(fz *f)
{
    /* The peer's answers are not fed back: the input speaks for it. */
    for (int round = 0; round < 4; round++) {
        drain_one(f, f->s, 1);
        if (f->peer) {
            check_rc(sb_session_flush(f->peer, f->now));
            drain_one(f, f->peer, 0);
        }
    }
    if (f->other)
        drain_one(f, f->other, 0);
}

/* Move every write between two sessions until both are quiet. */
static void exchange(sb_session *a, sb_session *b, double now)
{
    for (int round = 0; round < 8; round++) {
        sb_session *from = round & 1 ? b : a, *to = round & 1 ? a : b;
        int t;
        sb_session_flush(from, now);
        while ((t = sb_session_next_event(from)) != SB_SEV_NONE) {
            const sb_session_event *v = sb_session_event_view(from);
            if (t == SB_SEV_WRITE) {
                uint8_t *copy = malloc(v->len ? v->len : 1);
                memcpy(copy, sb_session_event_data(from), v->len);
                sb_session_recv(to, copy, v->len, 0, now);
                free(copy);
            } else if (t == SB_SEV_HELLO) {
                sb_session_set_id(from, (const uint8_t *)"fuzz-session", 12);
                sb_session_accept(from, now);
            }
        }
    }
}

static void options(sb_session *s, uint8_t o)
{
    if (o & 1)
        sb_session_set(s, SB_SO_COMPRESS, 0);
    if (o & 2) { /* small caps, so inputs reach them */
        sb_session_set(s, SB_SO_MAX_PAYLOAD, 256);
        sb_session_set(s, SB_SO_MAX_MESSAGE, 1024);
        sb_session_set(s, SB_SO_MAX_FRAMES, 8);
        sb_session_set(s, SB_SO_MAX_CHANNELS, 4);
        sb_session_set(s, SB_SO_MAX_REQUESTS, 4);
        sb_session_set(s, SB_SO_QUEUE_MAX_COUNT, 16);
    }
    if (o & 4)
        sb_session_set(s, SB_SO_BATCH_DELAY, 5);
    if (o & 8)
        sb_session_set(s, SB_SO_COMPRESS_ABOVE, 0);
    sb_session_set(s, SB_SO_PING_INTERVAL, 1000);
    sb_session_set(s, SB_SO_PING_TIMEOUT, 500);
    sb_session_set(s, SB_SO_BACKOFF_MIN, 1);
    sb_session_set(s, SB_SO_BACKOFF_MAX, 10);
}

static void setup(fz *f, int mode, uint8_t o)
{
    f->now = 1000;
    f->role = mode < 2 ? SB_SESSION_CLIENT : SB_SESSION_SERVER;
    f->s = sb_session_create(f->role, 1);
    options(f->s, o);
    if (mode == 0 || mode == 1) {
        check_rc(sb_session_start(f->s, f->now));
        drain_one(f, f->s, 0);
        check_rc(sb_session_transport_open(f->s, f->now, (o & 16) == 0 || mode == 0));
        f->want_connect = 0;
        if (mode == 0) {
            f->peer = sb_session_create(SB_SESSION_SERVER, 2);
            options(f->peer, o >> 4);
            sb_session_transport_open(f->peer, f->now, 1);
            exchange(f->peer, f->s, f->now);
            f->linked = sb_session_state(f->s) == SB_SESSION_OPEN;
        }
    } else {
        check_rc(sb_session_transport_open(f->s, f->now, 1));
        if (mode == 3) {
            f->peer = sb_session_create(SB_SESSION_CLIENT, 2);
            options(f->peer, o >> 4);
            sb_session_start(f->peer, f->now);
            drain_one(f, f->peer, 0);
            sb_session_transport_open(f->peer, f->now, 1);
            exchange(f->s, f->peer, f->now);
            f->linked = sb_session_state(f->s) == SB_SESSION_OPEN;
        } else {
            /* a detached session with some history that a hello may resume */
            uint32_t x = 5;
            f->other = sb_session_create(SB_SESSION_SERVER, 3);
            sb_session_set_id(f->other, (const uint8_t *)"old", 3);
            sb_session_send(f->other, 0, 0, (const uint8_t *)&x, 4, f->now);
            sb_session_send(f->other, 1, SB_FRAME_F_BINARY, (const uint8_t *)&x, 4, f->now);
        }
        check_rc(sb_session_flush(f->s, f->now));
    }
    drain(f);
}

/* The host's answer to a hello (set-up 2), chosen by the input. */
static void decide(fz *f, uint8_t how)
{
    f->hello = 0;
    check_rc(sb_session_get_id(f->s));
    switch (how % 3) {
    case 0:
        check_rc(sb_session_set_id(f->s, (const uint8_t *)"new", 3));
        check_rc(sb_session_accept(f->s, f->now));
        break;
    case 1:
        if (f->other && sb_session_takeover(f->other, f->s, f->now) == 0) {
            /* the host now routes the transport to the old session */
            drain_one(f, f->s, 0);
            sb_session_destroy(f->s);
            f->s = f->other;
            f->other = NULL;
        }
        break;
    default:
        check_rc(sb_session_refuse(f->s, 1008, (const uint8_t *)"no", 2, f->now));
        break;
    }
}

/* One step; returns the bytes it used. */
static size_t step(fz *f, const uint8_t *p, size_t n)
{
    static uint8_t buf[4096];
    uint8_t op = p[0], a = n > 1 ? p[1] : 0;
    size_t used = 1;
    int rc = 0;
    switch (op & 7) {
    case 0: { /* one transport message from the peer: a 2-byte length, then bytes */
        size_t len = n >= 3 ? (size_t)(p[1] | p[2] << 8) : 0;
        used = n >= 3 ? 3 : n;
        if (len > n - used)
            len = n - used;
        /* a copy, so ASan sees reads past it */
        uint8_t *m = malloc(len ? len : 1);
        memcpy(m, p + used, len);
        if (sb_session_recv(f->s, m, (uint32_t)len, (op & 8) != 0, f->now) != 0)
            abort();
        free(m);
        used += len;
        check_rc(sb_session_flush(f->s, f->now));
        break;
    }
    case 1: /* time passes, the timer fires */
        f->now += a < 200 ? a : (double)(a - 199) * 997;
        if (op & 8) {
            double d = sb_session_next_deadline(f->s);
            if (isnan(d) || (d < 0 && d != -1))
                abort();
            if (d > f->now)
                f->now = d;
        }
        check_rc(sb_session_tick(f->s, f->now));
        used = 2;
        break;
    case 2: /* the application sends */
        memset(buf, op, a);
        rc = sb_session_send(f->s, (op >> 3) & 3, (op & 32) ? SB_FRAME_F_BINARY : 0, buf, a, f->now);
        if (rc == 0)
            abort(); /* an id is >= 1 */
        check_rc(rc);
        check_rc(sb_session_flush(f->s, f->now));
        used = 2;
        break;
    case 3: /* client: a request; server: answer the oldest one */
        if (f->role == SB_SESSION_CLIENT) {
            memset(buf, 'q', a & 63);
            check_rc(sb_session_request(f->s, (op >> 3) & 3, 0, buf, a & 63,
                                        (op & 32) ? 0 : (double)a * 10, f->now));
        } else if (f->nreq) {
            memset(buf, 'r', a);
            check_rc(sb_session_respond(f->s, f->req[0], (op & 8) != 0, 0, buf, a, f->now));
            memmove(f->req, f->req + 1, (size_t)--f->nreq * sizeof f->req[0]);
        }
        check_rc(sb_session_flush(f->s, f->now));
        used = 2;
        break;
    case 4: /* the transport goes away */
        f->linked = 0;
        check_rc(sb_session_transport_closed(f->s, f->now, a & 1 ? 1006 : 1000 + a * 13));
        used = 2;
        break;
    case 5: /* client: a new transport opens; server: the host decides on a hello */
        if (f->role == SB_SESSION_CLIENT) {
            if (f->want_connect) {
                f->want_connect = 0;
                f->linked = 0;
                check_rc(sb_session_transport_open(f->s, f->now, (op & 8) == 0));
            } else {
                check_rc(sb_session_network(f->s, f->now, (op & 8) != 0));
                check_rc(sb_session_visibility(f->s, f->now, (op & 16) != 0));
            }
        } else if (f->hello) {
            decide(f, a);
        }
        used = 2;
        break;
    case 6: /* the transport's buffer, a cancel, a close */
        if (op & 8)
            check_rc(sb_session_set_buffered(f->s, (double)a * 100000));
        else if (op & 16)
            sb_session_cancel(f->s, a);
        else if ((op & 32) && a == 0xff)
            check_rc(sb_session_close(f->s, f->now, 1000));
        check_rc(sb_session_flush(f->s, f->now));
        used = 2;
        break;
    default: { /* persistence: the saved state loads into a fresh session */
        int len = sb_session_serialize(f->s);
        check_rc(len);
        if (len > 0) {
            uint8_t *blob = malloc((size_t)len);
            sb_session *copy = sb_session_create(f->role, 9);
            memcpy(blob, sb_session_out(f->s), (size_t)len);
            options(copy, 0);
            if (sb_session_restore(copy, blob, (uint32_t)len, f->now) != 0)
                abort();
            free(blob);
            sb_session_destroy(copy);
        }
        break;
    }
    }
    for (int i = 0; i < SB_SS_COUNT_; i++)
        if (isnan(sb_session_stat(f->s, i)))
            abort();
    if (sb_session_state(f->s) < SB_SESSION_IDLE || sb_session_state(f->s) > SB_SESSION_RECONNECTING)
        abort();
    drain(f);
    return used < n ? used : n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *input = data;
    size_t input_size = size;
    fz f;
    if (size < 1)
        return 0;
    memset(&f, 0, sizeof f);
    setup(&f, data[0] & 3, data[0] >> 2);
    data++;
    size--;
    /* Set-ups 1 and 2: the first message is the input's, whole. */
    if (size && (data[-1] & 3) != 0 && (data[-1] & 3) != 3) {
        size_t len = size;
        if (len > 2 && data[0] == 0xfe) { /* or a length prefix, so steps can follow */
            len = (size_t)(data[1] | data[2] << 8);
            data += 3;
            size -= 3;
            if (len > size)
                len = size;
        }
        uint8_t *m = malloc(len ? len : 1);
        memcpy(m, data, len);
        if (sb_session_recv(f.s, m, (uint32_t)len, 0, f.now) != 0)
            abort();
        free(m);
        check_rc(sb_session_flush(f.s, f.now));
        drain(&f);
        data += len;
        size -= len;
    }
    while (size) {
        size_t used = step(&f, data, size);
        data += used;
        size -= used;
    }
    /* A saved state read back from storage is foreign bytes too: the
     * input after its first byte, behind the right magic. */
    {
        sb_session *r = sb_session_create(f.role, 4);
        uint8_t *blob = malloc(input_size + 3);
        memcpy(blob, "SBS\1", 4);
        memcpy(blob + 4, input + 1, input_size - 1);
        int rc = sb_session_restore(r, blob, (uint32_t)(input_size + 3), f.now);
        check_rc(rc);
        if (rc == 0 && f.role == SB_SESSION_CLIENT) {
            check_rc(sb_session_start(r, f.now));
            check_rc(sb_session_flush(r, f.now));
        }
        while (sb_session_next_event(r) != SB_SEV_NONE)
            ;
        free(blob);
        sb_session_destroy(r);
    }
    sb_session_destroy(f.s);
    sb_session_destroy(f.peer);
    sb_session_destroy(f.other);
    return 0;
}
