/* session — see session.h and docs/protocol.md §12. */
#include "session.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "buf.h"
#include "conn.h"
#include "frame.h"
#include "queue.h"
#include "rate.h"

/* js/session.js reads the event at the offsets js/constants.js gives (SB_LAYOUT). */
_Static_assert(offsetof(sb_session_event, code) == 20, "sb_session_event layout");
_Static_assert(offsetof(sb_session_event, value) == 32, "sb_session_event layout");

#define ID_MAX 64
#define EPOCH_LEN 16
#define CTL_MAX 16          /* pongs and pings waiting for the next write */
#define HELLO_APP_MAX 65536 /* application JSON in a client hello */
#define NO_TIMEOUT 1e15     /* ack timeouts off: a transport is ordered and lossless;
                             * what it lost is resent on the next one */
#define INBOX_WINDOW 65536
#define DRAIN_POLL_MS 20    /* plain mode: how often to look whether the socket wrote out */
#define BLOCKED_POLL_MS 10  /* over the high-water mark: look again this soon */
#define EV_KEEP 1024        /* event slots kept after a drain */
#define ACK_NOW 1e300       /* take every pending ack, due or not */
#define CLIENT_ACK_DELAY 100 /* a client's acks wait this long (or for its next write): the
                             * server holds the messages 0.1 s longer, and a room's fan-out
                             * costs it one ack turn per recipient per 0.1 s, not per 20 ms */

/* Handshake messages: payload of a HELLO frame, first byte says which. */
enum { H_GREETING = 'S', H_HELLO = 'C', H_WELCOME = 'W', H_VERSION = 1 };
enum { HF_COMPRESS = 1, HF_LOST = 2 };

typedef struct pos {
    uint32_t ch, v;
} pos;

typedef struct hello {
    uint32_t flags;
    uint8_t id[ID_MAX], epoch[ID_MAX];
    uint32_t id_len, epoch_len;
    pos *rx, *fl; /* what the sender has received; the sender's outbox floors */
    uint32_t nrx, nfl;
    sb_buf app;
} hello;

/* One transport's state: what a new WebSocket starts from scratch. */
typedef struct link {
    int greeted;           /* client: the greeting arrived; server: it was written */
    int hello_out;         /* client: our hello waits for the next write */
    int have_hello;        /* server: the client's hello arrived */
    int welcome_out;       /* server: the welcome waits for the next write */
    int up;                /* handshake done (or plain): data flows */
    int compress;
    double hello_due, last_rx;
    uint32_t peer_payload, peer_message, peer_frames;
    sb_unbatch *rd;
    sb_batch *wr;
    sb_frame_codec *codec;
    hello *h; /* server: the client's hello, from its arrival to the welcome */
    uint8_t (*ctl)[16]; /* CTL_MAX slots, made when a ping or pong is first queued */
    uint8_t ctl_len[CTL_MAX];
    int nctl;
    int nctl_sent;     /* pings or pongs went into this write: acks may ride along */
    int plain_written; /* plain: messages written since the socket last drained */
    double poll_at;    /* look at the socket's buffer again then (-1 = no need) */
    int ping_out;      /* plain: write the application ping */
    /* client: plain only because no greeting came in time (the server took
     * switchboard.v1): its first message may still be a late greeting */
    int late_plain, plain_worked0;
    double hello_wait;
    double hold_until; /* plain: writes stay unconfirmed until then (-1 = no hold) */
    sb_rate *rate[2];  /* server: frames and bytes from the client (created at first use) */
    double stalled_at; /* server: since when the transport holds the high-water mark, or -1 */
} link;

typedef struct ev {
    sb_session_event e;
    size_t off;
} ev;

typedef struct req {
    uint32_t id;
    double deadline; /* -1 = none */
} req;

/* The server role's own steps, reached only through sb_session.srv, which
 * only sb_session_create(SB_SESSION_SERVER) sets: a core that exports
 * sb_session_create_client alone (the browser's) links none of them. */
typedef struct server_role {
    int (*open)(sb_session *s, double now);      /* a new transport */
    void (*closed)(sb_session *s, double now);   /* the transport went away */
    int (*hello)(sb_session *s, const uint8_t *data, uint32_t n); /* the client's hello */
    int (*pump)(sb_session *s);                  /* greeting and welcome, before the frames */
    void (*timers)(sb_session *s, double now);   /* hello, stall, idle and TTL verdicts */
    double (*deadline)(const sb_session *s, double d);
    void (*close)(sb_session *s, int code);
    /* what arrived, against the rate limits (SB_OK, or the transport is closed) */
    int (*limit)(sb_session *s, double frames, double bytes, double now);
    void (*trim)(sb_session *s); /* idle: the scratch buffers back (SB_SO_TRIM_AFTER) */
} server_role;

struct sb_session {
    int role, state, mode, started;
    double opt[SB_SO_COUNT_];
    sb_rng rng;
    sb_conn *conn;
    sb_outbox *out;
    sb_inbox *in;
    link *l;
    uint8_t id[ID_MAX], epoch[ID_MAX];
    uint32_t id_len, epoch_len;
    int lost;           /* server: messages were dropped for this client */
    int dirty;          /* a DIRTY event is queued */
    double detached_at; /* server */
    double buffered;
    int offer_framed, offered_framed, framed_worked, plain_worked;
    int close_code;     /* the code and reason for the next DISCONNECT */
    char close_reason[124];
    uint32_t ping_id;
    sb_buf plain_ping, hello_app;
    req *reqs;
    int pending_request; /* enqueue is queueing a request: register it */
    double burst_frames, burst_bytes; /* messages queued since the last pump */
    int early;                        /* pumping from sb_session_send: only full batches leave */
    uint32_t fresh_from;  /* client: the first id given out since a restore, until a welcome */
    double pending_deadline;
    uint32_t nreqs;
    ev *evs;
    uint32_t nev, ev_head, ev_cap;
    sb_buf arena, out_buf;
    sb_session_event cur;
    const uint8_t *cur_data;
    double stats[SB_SS_COUNT_];
    const server_role *srv; /* NULL for a client */
    int holding;            /* scratch buffers may be held: given back at used_at + TRIM_AFTER */
    double used_at;
};

static const double defaults[SB_SO_COUNT_] = {
    [SB_SO_CONNECT_TIMEOUT] = 10000, [SB_SO_HELLO_TIMEOUT] = -1, [SB_SO_PING_INTERVAL] = 25000,
    [SB_SO_PING_TIMEOUT] = 10000, [SB_SO_IDLE_TIMEOUT] = 60000, [SB_SO_SESSION_TTL] = 300000,
    [SB_SO_RECONNECT] = 1, [SB_SO_BACKOFF_MIN] = 250, [SB_SO_BACKOFF_MAX] = 30000,
    [SB_SO_BACKOFF_FACTOR] = 2, [SB_SO_MAX_ATTEMPTS] = 0, [SB_SO_QUEUE_MAX_COUNT] = 10000,
    [SB_SO_QUEUE_MAX_BYTES] = 16 << 20, [SB_SO_QUEUE_POLICY] = -1,
    [SB_SO_BATCH_MAX_FRAMES] = 512, [SB_SO_BATCH_MAX_BYTES] = 256 << 10,
    [SB_SO_BATCH_DELAY] = 0, [SB_SO_COMPRESS] = 1, [SB_SO_COMPRESS_ABOVE] = 96,
    [SB_SO_COMPRESS_LEVEL] = 6, [SB_SO_MAX_PAYLOAD] = 1 << 20, [SB_SO_MAX_MESSAGE] = 8 << 20,
    [SB_SO_MAX_FRAMES] = 4096, [SB_SO_ACK_DELAY] = 20, [SB_SO_FRAMED] = 1,
    [SB_SO_MAX_REQUESTS] = 4096, [SB_SO_MAX_CHANNELS] = 256, [SB_SO_HIGH_WATER] = 4 << 20,
    [SB_SO_REFRESH_AUTH] = 0,
    [SB_SO_RATE_MSGS] = 1000, [SB_SO_RATE_MSGS_BURST] = 10000, [SB_SO_RATE_BYTES] = 8 << 20,
    [SB_SO_RATE_BYTES_BURST] = 16 << 20, [SB_SO_RATE_TOLERANCE] = 10000,
    [SB_SO_STALL_TIMEOUT] = 30000, [SB_SO_ACK_RIDE] = 1, [SB_SO_EARLY_BATCH] = 1,
    [SB_SO_TRIM_AFTER] = 1000, /* a server's: a client never trims */
};

/* Valid ranges; integer options are checked to be whole. */
static const struct {
    double lo, hi;
    int whole;
} ranges[SB_SO_COUNT_] = {
    [SB_SO_CONNECT_TIMEOUT] = {1, 1e9, 0}, [SB_SO_HELLO_TIMEOUT] = {1, 1e9, 0},
    [SB_SO_PING_INTERVAL] = {0, 1e9, 0}, [SB_SO_PING_TIMEOUT] = {1, 1e9, 0},
    [SB_SO_IDLE_TIMEOUT] = {0, 1e9, 0}, [SB_SO_SESSION_TTL] = {0, 1e10, 0},
    [SB_SO_RECONNECT] = {0, 1, 1}, [SB_SO_BACKOFF_MIN] = {0, 1e9, 0},
    [SB_SO_BACKOFF_MAX] = {0, 1e9, 0}, [SB_SO_BACKOFF_FACTOR] = {1, 100, 0},
    [SB_SO_MAX_ATTEMPTS] = {0, 1e9, 1}, [SB_SO_QUEUE_MAX_COUNT] = {1, 1 << 24, 1},
    [SB_SO_QUEUE_MAX_BYTES] = {1, 1e12, 0}, [SB_SO_QUEUE_POLICY] = {0, 2, 1},
    [SB_SO_BATCH_MAX_FRAMES] = {1, 1 << 20, 1}, [SB_SO_BATCH_MAX_BYTES] = {1, 1 << 30, 1},
    [SB_SO_BATCH_DELAY] = {0, 1e6, 0}, [SB_SO_COMPRESS] = {0, 1, 1},
    [SB_SO_COMPRESS_ABOVE] = {0, 1 << 30, 1}, [SB_SO_COMPRESS_LEVEL] = {0, 9, 1},
    [SB_SO_MAX_PAYLOAD] = {64, 1 << 30, 1}, [SB_SO_MAX_MESSAGE] = {256, 1 << 30, 1},
    [SB_SO_MAX_FRAMES] = {1, 1 << 20, 1}, [SB_SO_ACK_DELAY] = {0, 1e6, 0},
    [SB_SO_FRAMED] = {0, 1, 1}, [SB_SO_MAX_REQUESTS] = {1, 1 << 20, 1},
    [SB_SO_MAX_CHANNELS] = {1, 1 << 16, 1}, [SB_SO_HIGH_WATER] = {1, 1e12, 0},
    [SB_SO_REFRESH_AUTH] = {0, 1, 1},
    [SB_SO_RATE_MSGS] = {0, 1e12, 0}, [SB_SO_RATE_MSGS_BURST] = {1, 1e12, 0},
    [SB_SO_RATE_BYTES] = {0, 1e12, 0}, [SB_SO_RATE_BYTES_BURST] = {1, 1e12, 0},
    [SB_SO_RATE_TOLERANCE] = {0, 1e9, 0}, [SB_SO_STALL_TIMEOUT] = {0, 1e9, 0},
    [SB_SO_ACK_RIDE] = {0, 1, 1}, [SB_SO_EARLY_BATCH] = {0, 1, 1},
    [SB_SO_TRIM_AFTER] = {0, 1e9, 0},
};


/* ---- events ---------------------------------------------------------------- */

static void hold(sb_session *s);

static void emit(sb_session *s, uint32_t type, uint32_t channel, uint32_t seq, uint32_t id,
                 uint32_t flags, int code, double value, const uint8_t *data, size_t len)
{
    ev *e;
    hold(s);
    if (s->nev == s->ev_cap) {
        uint32_t cap = s->ev_cap ? s->ev_cap * 2 : 8; /* grows; an idle session keeps few */
        ev *p = realloc(s->evs, (size_t)cap * sizeof *p);
        if (!p)
            return; /* out of memory: the event is lost, nothing else breaks */
        s->evs = p;
        s->ev_cap = cap;
    }
    e = &s->evs[s->nev];
    memset(e, 0, sizeof *e);
    e->off = s->arena.len;
    if (len && sb_buf_put(&s->arena, data, len) < 0)
        return;
    e->e.type = type;
    e->e.channel = channel;
    e->e.seq = seq;
    e->e.id = id;
    e->e.flags = flags;
    e->e.code = code;
    e->e.len = (uint32_t)len;
    e->e.value = value;
    s->nev++;
}

/* Room for the events one transport message can cause (n frames, bytes of
 * them) before any of it is taken: an event lost to memory would be a
 * message acknowledged and never delivered. */
static int reserve_events(sb_session *s, uint32_t n, size_t bytes)
{
    uint32_t cap = s->nev + n + 16;
    if (cap > s->ev_cap) {
        ev *p = realloc(s->evs, (size_t)cap * sizeof *p);
        if (!p)
            return SB_E_NO_MEMORY;
        s->evs = p;
        s->ev_cap = cap;
    }
    return sb_buf_reserve(&s->arena, bytes + 1024);
}

/* Buffers may have grown: an idle session gives them back TRIM_AFTER ms
 * after its last use (trim). */
static void used(sb_session *s, double now)
{
    s->used_at = now;
    hold(s);
}

/* The same from a call that takes no time (an event, a serialization):
 * counted from the last use, so a session the host touches once more
 * after its trim (its transport closed) gives it back at the next tick. */
static void hold(sb_session *s)
{
    if (s->srv && s->opt[SB_SO_TRIM_AFTER] > 0)
        s->holding = 1;
}

/* Every scratch buffer back to the allocator (the events are drained, so
 * nothing points into them): what 10,000 idle relay connections would
 * otherwise each keep of their handshake. State stays, and the deflate
 * windows, which the peer shares. */
static void trim(sb_session *s)
{
    link *l = s->l;
    s->holding = 0;
    sb_buf_free(&s->arena);
    sb_buf_free(&s->out_buf);
    free(s->evs);
    s->evs = NULL;
    s->ev_cap = s->ev_head = s->nev = 0;
    if (l) {
        sb_batch_trim(l->wr);
        sb_unbatch_trim(l->rd);
        sb_frame_codec_trim(l->codec);
        if (!l->nctl) {
            free(l->ctl);
            l->ctl = NULL;
        }
    }
    sb_outbox_trim(s->out);
    sb_inbox_trim(s->in);
}

size_t sb_session_capacity(const sb_session *s)
{
    const link *l = s ? s->l : NULL;
    size_t n;
    if (!s)
        return 0;
    n = s->arena.cap + s->out_buf.cap + (size_t)s->ev_cap * sizeof *s->evs +
        sb_outbox_capacity(s->out) + sb_inbox_capacity(s->in);
    if (l)
        n += sb_batch_capacity(l->wr) + sb_unbatch_capacity(l->rd) + sb_frame_codec_capacity(l->codec) +
             (l->ctl ? CTL_MAX * sizeof *l->ctl : 0);
    return n;
}

static void emit_text(sb_session *s, uint32_t type, int code, const char *text)
{
    emit(s, type, 0, 0, 0, 0, code, 0, (const uint8_t *)text, strlen(text));
}

/* Persistent state changed: one DIRTY event per drain, queued at once, so
 * a host that commits after draining never acks ahead of its store. */
static void set_dirty(sb_session *s)
{
    if (s->dirty)
        return;
    s->dirty = 1;
    emit(s, SB_SEV_DIRTY, 0, 0, 0, 0, 0, 0, NULL, 0);
}

/* "CODE: what" into the pending close reason. */
static void set_close(sb_session *s, int code, int err, const char *what)
{
    const char *name = err < 0 ? sb_errname(err) : "";
    size_t n = 0, cap = sizeof s->close_reason - 1;
    s->close_code = code;
    for (const char *p = name; *p && n < cap; p++)
        s->close_reason[n++] = *p;
    if (*name && n + 2 < cap) {
        s->close_reason[n++] = ':';
        s->close_reason[n++] = ' ';
    }
    for (const char *p = what; *p && n < cap; p++)
        s->close_reason[n++] = *p;
    s->close_reason[n] = 0;
}

/* ---- create / options ---------------------------------------------------------- */

static const server_role server_ops;

static sb_session *create(int role, uint32_t seed)
{
    sb_session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->role = role;
    memcpy(s->opt, defaults, sizeof defaults);
    s->opt[SB_SO_HELLO_TIMEOUT] = role == SB_SESSION_CLIENT ? 3000 : 10000;
    s->opt[SB_SO_ACK_DELAY] = role == SB_SESSION_CLIENT ? CLIENT_ACK_DELAY : 20;
    s->opt[SB_SO_QUEUE_POLICY] = role == SB_SESSION_CLIENT ? SB_QUEUE_REJECT : SB_QUEUE_DROP_OLDEST;
    sb_rng_seed(&s->rng, seed);
    s->offer_framed = 1;
    s->stats[SB_SS_RTT] = -1;
    return s;
}

sb_session *sb_session_create(int role, uint32_t seed)
{
    sb_session *s;
    if (role != SB_SESSION_CLIENT && role != SB_SESSION_SERVER)
        return NULL;
    s = create(role, seed);
    if (s && role == SB_SESSION_SERVER)
        s->srv = &server_ops;
    return s;
}

sb_session *sb_session_create_client(uint32_t seed)
{
    return create(SB_SESSION_CLIENT, seed);
}

static void free_hello(hello **hp)
{
    hello *h = *hp;
    if (!h)
        return;
    free(h->rx);
    free(h->fl);
    sb_buf_free(&h->app);
    free(h);
    *hp = NULL;
}

static void free_link(link *l)
{
    if (!l)
        return;
    sb_unbatch_destroy(l->rd);
    sb_batch_destroy(l->wr);
    sb_frame_codec_destroy(l->codec);
    free(l->ctl);
    sb_rate_destroy(l->rate[0]);
    sb_rate_destroy(l->rate[1]);
    free_hello(&l->h);
    free(l);
}

void sb_session_destroy(sb_session *s)
{
    if (!s)
        return;
    free_link(s->l);
    sb_conn_destroy(s->conn);
    sb_outbox_destroy(s->out);
    sb_inbox_destroy(s->in);
    sb_buf_free(&s->plain_ping);
    sb_buf_free(&s->hello_app);
    sb_buf_free(&s->arena);
    sb_buf_free(&s->out_buf);
    free(s->reqs);
    free(s->evs);
    free(s);
}

int sb_session_set(sb_session *s, int opt, double v)
{
    if (!s || opt < 0 || opt >= SB_SO_COUNT_ || v != v || v < ranges[opt].lo ||
        v > ranges[opt].hi || (ranges[opt].whole && v != (double)(long long)v))
        return SB_E_INVALID;
    if (s->started)
        return SB_E_BAD_STATE;
    s->opt[opt] = v;
    return SB_OK;
}

int sb_session_set_plain_ping(sb_session *s, const uint8_t *text, uint32_t n)
{
    if (!s || (!text && n) || n > 4096)
        return SB_E_INVALID;
    s->plain_ping.len = 0;
    return n ? sb_buf_put(&s->plain_ping, text, n) : SB_OK;
}

int sb_session_set_hello(sb_session *s, const uint8_t *json, uint32_t n)
{
    if (!s || (!json && n) || n > HELLO_APP_MAX)
        return SB_E_INVALID;
    s->hello_app.len = 0;
    return n ? sb_buf_put(&s->hello_app, json, n) : SB_OK;
}

int sb_session_set_id(sb_session *s, const uint8_t *id, uint32_t n)
{
    if (!s || !id || n < 1 || n > ID_MAX)
        return SB_E_INVALID;
    memcpy(s->id, id, n);
    s->id_len = n;
    return SB_OK;
}

const uint8_t *sb_session_out(const sb_session *s)
{
    return s ? s->out_buf.p : NULL;
}

int sb_session_get_id(sb_session *s)
{
    const uint8_t *p;
    uint32_t n;
    if (!s)
        return SB_E_INVALID;
    p = s->id;
    n = s->id_len;
    if (s->role == SB_SESSION_SERVER && s->state == SB_SESSION_CONNECTING && s->l &&
        s->l->have_hello && s->l->h) {
        p = s->l->h->id;
        n = s->l->h->id_len;
    }
    hold(s);
    s->out_buf.len = 0;
    if (n && sb_buf_put(&s->out_buf, p, n) < 0)
        return SB_E_NO_MEMORY;
    return (int)n;
}

/* Outbox, inbox and (client) conn, from the options; once. */
static int setup(sb_session *s)
{
    const double *o = s->opt;
    if (s->started)
        return SB_OK;
    s->out = sb_outbox_create((uint32_t)o[SB_SO_QUEUE_MAX_COUNT], o[SB_SO_QUEUE_MAX_BYTES],
                              (int)o[SB_SO_QUEUE_POLICY], (uint32_t)o[SB_SO_QUEUE_MAX_COUNT],
                              NO_TIMEOUT, 1000, 1000, 0, (uint32_t)o[SB_SO_MAX_CHANNELS],
                              sb_rng_next(&s->rng));
    s->in = sb_inbox_create(INBOX_WINDOW, o[SB_SO_MAX_MESSAGE] * 4,
                            (uint32_t)o[SB_SO_MAX_CHANNELS], o[SB_SO_ACK_DELAY]);
    if (!s->out || !s->in)
        return SB_E_NO_MEMORY;
    sb_outbox_set_online(s->out, 0, 0);
    sb_outbox_message_ids(s->out, 0); /* channel + seq name a message; ids are for requests */
    if (s->role == SB_SESSION_CLIENT) {
        double hb = o[SB_SO_PING_INTERVAL];
        double bmin = o[SB_SO_BACKOFF_MIN], bmax = o[SB_SO_BACKOFF_MAX];
        if (bmin < 1) /* 0 asks for the fastest: the backoff grows from 1 ms */
            bmin = 1;
        if (!o[SB_SO_RECONNECT])
            bmin = bmax = 1;
        s->conn = sb_conn_create(o[SB_SO_CONNECT_TIMEOUT], hb, o[SB_SO_PING_TIMEOUT], bmin,
                                 bmax < bmin ? bmin : bmax, o[SB_SO_BACKOFF_FACTOR],
                                 (int)o[SB_SO_MAX_ATTEMPTS], sb_rng_next(&s->rng));
        if (!s->conn)
            return SB_E_INVALID;
        s->offer_framed = o[SB_SO_FRAMED] != 0;
    }
    s->started = 1;
    return SB_OK;
}

/* ---- serialized state --------------------------------------------------------- */

/* A writer whose first error sticks: a run of puts, one check at the end. */
typedef struct wr {
    sb_buf *b;
    int rc;
} wr;

static void put_raw(wr *w, const void *p, size_t n)
{
    if (w->rc >= 0)
        w->rc = sb_buf_put(w->b, p, n);
}

static void put_u(wr *w, uint64_t x)
{
    uint8_t v[10];
    put_raw(w, v, sb_varint_put(v, x));
}

static void put_bytes(wr *w, const uint8_t *p, uint32_t n)
{
    put_u(w, n);
    put_raw(w, p, n);
}

typedef struct rd {
    const uint8_t *p;
    size_t n, pos;
    int err;
} rd;

static uint64_t rd_u(rd *r, uint64_t max)
{
    uint64_t v = 0;
    int k;
    if (r->err)
        return 0;
    k = sb_varint_get(r->p + r->pos, r->n - r->pos, max, &v);
    if (k <= 0) {
        r->err = SB_E_CORRUPT;
        return 0;
    }
    r->pos += (size_t)k;
    return v;
}

/* A length-prefixed byte string of at most max bytes; returns a pointer into r. */
static const uint8_t *rd_bytes(rd *r, uint32_t max, uint32_t *len)
{
    uint64_t n = rd_u(r, max);
    const uint8_t *p;
    if (r->err || r->n - r->pos < n) {
        r->err = SB_E_CORRUPT;
        *len = 0;
        return NULL;
    }
    p = r->p + r->pos;
    r->pos += (size_t)n;
    *len = (uint32_t)n;
    return p;
}

int sb_session_serialize(sb_session *s)
{
    int n, rc;
    wr w;
    if (!s)
        return SB_E_INVALID;
    if ((rc = setup(s)) < 0)
        return rc;
    hold(s);
    s->out_buf.len = 0;
    w.b = &s->out_buf;
    w.rc = 0;
    put_raw(&w, "SBS\1", 4);
    put_u(&w, (uint64_t)s->role << 1 | (uint64_t)(s->lost != 0) | (s->fresh_from ? 4u : 0u));
    if (s->fresh_from)
        put_u(&w, s->fresh_from);
    put_bytes(&w, s->id, s->id_len);
    put_bytes(&w, s->epoch, s->epoch_len);
    if ((n = sb_outbox_serialize(s->out)) < 0)
        return n;
    put_bytes(&w, sb_outbox_out(s->out), (uint32_t)n);
    if ((n = sb_inbox_serialize(s->in)) < 0)
        return n;
    put_bytes(&w, sb_inbox_out(s->in), (uint32_t)n);
    return w.rc < 0 ? w.rc : (int)s->out_buf.len;
}

int sb_session_restore(sb_session *s, const uint8_t *blob, uint32_t n, double now_ms)
{
    rd r = {blob, n, 4, 0};
    const uint8_t *p;
    uint32_t len;
    uint64_t role, fresh = 0;
    int rc;
    if (!s || (!blob && n))
        return SB_E_INVALID;
    if (s->state != SB_SESSION_IDLE || s->id_len)
        return SB_E_BAD_STATE;
    if (n < 4 || memcmp(blob, "SBS", 3) != 0)
        return SB_E_CORRUPT;
    if (blob[3] != 1)
        return SB_E_BAD_VERSION;
    if ((rc = setup(s)) < 0)
        return rc;
    role = rd_u(&r, 7);
    if (role & 4)
        fresh = rd_u(&r, 0x7fffffffu);
    if (!r.err && (int)(role >> 1 & 1) != s->role)
        return SB_E_CORRUPT;
    p = rd_bytes(&r, ID_MAX, &len);
    if (r.err)
        return r.err;
    memcpy(s->id, p, len);
    s->id_len = len;
    p = rd_bytes(&r, ID_MAX, &len);
    if (r.err)
        return r.err;
    memcpy(s->epoch, p, len);
    s->epoch_len = len;
    p = rd_bytes(&r, 0xffffffffu, &len);
    if (r.err)
        return r.err;
    if ((rc = sb_outbox_restore(s->out, p, len, now_ms)) < 0)
        goto fail;
    sb_outbox_set_online(s->out, 0, now_ms);
    p = rd_bytes(&r, 0xffffffffu, &len);
    if (r.err) {
        rc = r.err;
        goto fail;
    }
    if ((rc = sb_inbox_restore(s->in, p, len)) < 0)
        goto fail;
    if (r.pos != r.n) {
        rc = SB_E_TRAILING_DATA;
        goto fail;
    }
    s->lost = (int)(role & 1);
    /* The ids given out from here may be ones a newer, lost state also gave
     * out (a page or leading tab that died after writing past this state):
     * the welcome tells (new_link). A state saved before its welcome keeps
     * the first restore's mark. */
    if (s->role == SB_SESSION_CLIENT)
        s->fresh_from = fresh ? (uint32_t)fresh : sb_outbox_next_id(s->out);
    if (s->role == SB_SESSION_SERVER) {
        /* Detached, as after its transport closed: it waits for the client
         * (sb_session_takeover) for the session TTL from now. */
        s->state = SB_SESSION_RECONNECTING;
        s->detached_at = now_ms;
    }
    return SB_OK;
fail:
    /* Leave a session that can start from scratch. */
    sb_outbox_destroy(s->out);
    sb_inbox_destroy(s->in);
    s->out = NULL;
    s->in = NULL;
    s->started = 0;
    s->id_len = s->epoch_len = 0;
    return rc;
}

/* ---- handshake messages -------------------------------------------------------- */

static void put_positions(wr *w, sb_session *s, int floors)
{
    uint32_t ch, a, fl, count = 0;
    for (uint32_t i = 0; floors ? sb_outbox_chan_info(s->out, i, &ch, &a, &fl) == 0
                                : sb_inbox_chan_info(s->in, i, &ch, &a) == 0;
         i++)
        count++;
    put_u(w, count);
    for (uint32_t i = 0; i < count; i++) {
        if (floors)
            sb_outbox_chan_info(s->out, i, &ch, &a, &fl);
        else
            sb_inbox_chan_info(s->in, i, &ch, &fl);
        put_u(w, ch);
        put_u(w, fl);
    }
}

static int rd_positions(rd *r, uint32_t max, pos **out, uint32_t *n)
{
    uint64_t k = rd_u(r, max);
    if (r->err)
        return r->err;
    *n = 0;
    *out = k ? malloc((size_t)k * sizeof **out) : NULL;
    if (k && !*out)
        return SB_E_NO_MEMORY;
    for (uint64_t i = 0; i < k; i++) {
        (*out)[i].ch = (uint32_t)rd_u(r, 0xffffffffu);
        (*out)[i].v = (uint32_t)rd_u(r, 0xffffffffu);
    }
    *n = (uint32_t)k;
    return r->err;
}

/* Encode a HELLO frame around payload b into the link's control area or
 * straight into a WRITE event. */
static int write_hello(sb_session *s, wr *w)
{
    link *l = s->l;
    int n = w->rc;
    if (n >= 0)
        n = sb_frame_codec_encode(l->codec, SB_FRAME_HELLO, 0, 0, 0, 0, 0, -1, w->b->p,
                                  (uint32_t)w->b->len);
    sb_buf_free(w->b);
    if (n < 0)
        return n;
    emit(s, SB_SEV_WRITE, 0, 0, 0, 0, 0, 0, sb_frame_codec_out(l->codec), (size_t)n);
    s->stats[SB_SS_BYTES_OUT] += n;
    return SB_OK;
}

static int send_greeting(sb_session *s)
{
    sb_buf b = {0};
    wr w = {&b, 0};
    const double *o = s->opt;
    put_raw(&w, "S\1", 2);
    put_u(&w, o[SB_SO_COMPRESS] ? HF_COMPRESS : 0);
    put_u(&w, (uint64_t)o[SB_SO_MAX_PAYLOAD]);
    put_u(&w, (uint64_t)o[SB_SO_MAX_MESSAGE]);
    put_u(&w, (uint64_t)o[SB_SO_MAX_FRAMES]);
    return write_hello(s, &w);
}

/* Our cap on a frame's payload, plus, for a client, room for a server's
 * stamp (sb_session_relay): a message at the cap still arrives stamped. */
static uint32_t rx_payload(const sb_session *s)
{
    return (uint32_t)s->opt[SB_SO_MAX_PAYLOAD] +
           (s->role == SB_SESSION_CLIENT ? SB_SESSION_STAMP_MAX : 0);
}

static int send_client_hello(sb_session *s, const uint8_t *app, size_t app_len)
{
    sb_buf b = {0};
    wr w = {&b, 0};
    put_raw(&w, "C\1", 2);
    put_u(&w, s->opt[SB_SO_COMPRESS] ? HF_COMPRESS : 0);
    put_bytes(&w, s->id, s->id_len);
    put_bytes(&w, s->epoch, s->epoch_len);
    put_positions(&w, s, 0);
    put_positions(&w, s, 1);
    put_bytes(&w, app, (uint32_t)app_len);
    /* Our caps, as the greeting gives the server's: what it may write to us.
     * After the fields an older server knows, so it ignores them. */
    put_u(&w, (uint64_t)s->opt[SB_SO_MAX_PAYLOAD]); /* a stamp may come on top */
    put_u(&w, (uint64_t)s->opt[SB_SO_MAX_MESSAGE]);
    put_u(&w, (uint64_t)s->opt[SB_SO_MAX_FRAMES]);
    return write_hello(s, &w);
}

static int send_welcome(sb_session *s)
{
    sb_buf b = {0};
    wr w = {&b, 0};
    put_raw(&w, "W\1", 2);
    put_u(&w, (s->l->compress ? HF_COMPRESS : 0) | (s->lost ? HF_LOST : 0));
    put_bytes(&w, s->id, s->id_len);
    put_bytes(&w, s->epoch, s->epoch_len);
    put_positions(&w, s, 0);
    put_positions(&w, s, 1);
    s->lost = 0;
    return write_hello(s, &w);
}

/* The peer's floors: everything below is resolved on its side (acked by us
 * earlier, or given up on and reported). Applied as SKIP frames; not a gap
 * for the application (a stale saved state is the usual cause). A SKIP
 * releases frames held behind a seq the peer gave up on: the caller
 * delivers them (a resumed or restored inbox may hold some). */
static void apply_floors(sb_session *s, const pos *fl, uint32_t n, double now)
{
    uint8_t f[SB_FRAME_MAX_HEADER];
    sb_frame fr;
    for (uint32_t i = 0; i < n; i++) {
        int k;
        if (fl[i].v < 2)
            continue;
        sb_frame_init(&fr, SB_FRAME_SKIP);
        fr.channel = fl[i].ch;
        fr.seq = fl[i].v;
        k = sb_frame_write(&fr, f, sizeof f);
        if (k > 0)
            sb_inbox_push(s->in, f, (uint32_t)k, now);
    }
}

/* The requests queued since the restore (ids from fresh_from on, all below
 * the next id) take new ids; the host hears each move before any answer. */
static void renumber(sb_session *s)
{
    const uint32_t m = 0x7fffffffu, f = s->fresh_from; /* ids run 1..m */
    const uint32_t span = (sb_outbox_next_id(s->out) + m - f) % m;
    for (uint32_t j = 0, to; j < s->nreqs; j++) {
        uint32_t id = s->reqs[j].id;
        if ((id + m - f) % m < span &&
            (to = sb_outbox_renumber(s->out, id))) {
            s->reqs[j].id = to;
            emit(s, SB_SEV_REQUEST_MOVED, 0, 0, to, 0, 0, id, NULL, 0);
        }
    }
}

/* Client: the server has more of our stream than this state ever numbered:
 * the state is older than a write that reached it (a page, or a shared
 * Socket's leading tab, died between writing a batch and the snapshot of it
 * leaving). Number on past it, so nothing new is dropped as a duplicate, and
 * say so: whoever still holds what those seqs carried sends it again under
 * new seqs (at least once, never lost). */
static void adopt_rx(sb_session *s, const pos *rx, uint32_t n)
{
    int k, unknown = 0;
    for (uint32_t i = 0; i < n; i++)
        if ((k = sb_outbox_adopt(s->out, rx[i].ch, rx[i].v)) > 0)
            unknown += k;
    if (unknown > 0) {
        s->stats[SB_SS_GAPS]++;
        set_dirty(s);
        emit_text(s, SB_SEV_ERROR, SB_E_CONNECTION_LOST,
                  "the server holds messages of ours this state never numbered: they may arrive twice");
        /* The requests queued since the restore have ids the lost state may
         * have written too, and the server's answers to those (sent again
         * now) would settle them: they take ids past what it gave out. */
        if (s->fresh_from)
            renumber(s);
    }
    s->fresh_from = 0; /* (the welcome made the state dirty) */
}

/* The peer's receive positions: an implicit cumulative ack per channel. */
static void apply_rx(sb_session *s, const pos *rx, uint32_t n, double now)
{
    for (uint32_t i = 0; i < n; i++)
        sb_outbox_ack(s->out, rx[i].ch, rx[i].v, NULL, 0, now);
}

/* ---- link ------------------------------------------------------------------- */

static int new_link(sb_session *s, double now)
{
    link *l = calloc(1, sizeof *l);
    if (!l)
        return SB_E_NO_MEMORY;
    l->codec = sb_frame_codec_create(rx_payload(s));
    if (!l->codec) {
        free(l);
        return SB_E_NO_MEMORY;
    }
    l->last_rx = now;
    l->poll_at = -1;
    l->stalled_at = -1;
    l->hold_until = -1;
    l->peer_payload = 1 << 20;
    l->peer_message = 8 << 20;
    l->peer_frames = 4096;
    free_link(s->l);
    s->l = l;
    return SB_OK;
}

static void outbox_events(sb_session *s, uint32_t new_id, const uint8_t *data, uint32_t n);

/* Batch writer and reader once the handshake says how. */
static int link_up(sb_session *s, double now)
{
    link *l = s->l;
    const double *o = s->opt;
    uint32_t bytes = (uint32_t)o[SB_SO_BATCH_MAX_BYTES];
    uint32_t frames = (uint32_t)o[SB_SO_BATCH_MAX_FRAMES];
    /* No frame we write may exceed what the peer accepts. */
    if (bytes > l->peer_payload)
        bytes = l->peer_payload;
    if (bytes > l->peer_message / 2)
        bytes = l->peer_message / 2;
    if (frames > l->peer_frames)
        frames = l->peer_frames;
    l->wr = sb_batch_create(frames, bytes, o[SB_SO_BATCH_DELAY], (uint32_t)o[SB_SO_COMPRESS_ABOVE],
                            l->compress ? SB_BATCH_SHARED : SB_BATCH_PLAIN,
                            (int)o[SB_SO_COMPRESS_LEVEL]);
    l->rd = sb_unbatch_create(rx_payload(s), (uint32_t)o[SB_SO_MAX_MESSAGE], 1);
    if (!l->wr || !l->rd)
        return SB_E_NO_MEMORY;
    l->up = 1;
    sb_outbox_set_online(s->out, 1, now);
    /* What was queued before the peer's caps were known and is over them
     * would be refused, and written again on every transport: drop it. */
    if (sb_outbox_drop_over(s->out, l->peer_payload < l->peer_message - SB_FRAME_MAX_HEADER
                                        ? l->peer_payload
                                        : l->peer_message - SB_FRAME_MAX_HEADER,
                            now) > 0)
        outbox_events(s, 0, NULL, 0);
    return SB_OK;
}

/* The transport is gone (or being replaced): what it carried unconfirmed
 * goes out again on the next one. */
static void end_link(sb_session *s)
{
    if (!s->l)
        return;
    free_link(s->l);
    s->l = NULL;
    if (s->out)
        sb_outbox_set_online(s->out, 0, 0);
}

static void disconnect(sb_session *s, int code, const char *reason)
{
    emit(s, SB_SEV_DISCONNECT, 0, 0, 0, 0, code, 0, (const uint8_t *)reason, strlen(reason));
}

/* ---- client life cycle ---------------------------------------------------------- */

static void fail_requests(sb_session *s, int code)
{
    for (uint32_t i = 0; i < s->nreqs; i++)
        emit(s, SB_SEV_REQUEST_FAILED, 0, 0, s->reqs[i].id, 0, code, 0, NULL, 0);
    s->nreqs = 0;
}

static void conn_apply(sb_session *s, int a, double now);

static void state_changed(sb_session *s, double now)
{
    int st = sb_conn_state(s->conn), reason = sb_conn_reason(s->conn);
    s->state = st;
    emit(s, SB_SEV_STATE, 0, 0, 0, 0, reason, st, NULL, 0);
    switch (st) {
    case SB_SESSION_OPEN:
        s->stats[SB_SS_OPENS]++;
        emit(s, SB_SEV_OPEN, 0, 0, 0, 0, 0, s->mode, NULL, 0);
        break;
    case SB_SESSION_RECONNECTING:
        end_link(s);
        if (!s->opt[SB_SO_RECONNECT]) {
            conn_apply(s, sb_conn_close(s->conn, now), now);
            return;
        }
        emit(s, SB_SEV_RECONNECTING, 0, (uint32_t)sb_conn_attempt(s->conn), 0, 0, reason,
             sb_conn_retry_delay(s->conn), NULL, 0);
        break;
    case SB_SESSION_CONNECTING:
        end_link(s);
        break;
    case SB_SESSION_CLOSED:
        end_link(s);
        fail_requests(s, SB_E_CLOSED);
        emit(s, SB_SEV_CLOSED, 0, 0, 0, 0, reason, 0, NULL, 0);
        break;
    default:
        break;
    }
}

static void queue_ctl(link *l, int kind, uint32_t id, uint32_t corr)
{
    int n;
    if (l->nctl >= CTL_MAX)
        return; /* a ping flood: answering the first ones proves life enough */
    if (!l->ctl && !(l->ctl = malloc(CTL_MAX * sizeof *l->ctl)))
        return; /* out of memory: a missed pong is a late one */
    {
        sb_frame f;
        sb_frame_init(&f, kind);
        f.id = id;
        f.corr = corr;
        n = sb_frame_write(&f, l->ctl[l->nctl], sizeof l->ctl[0]);
    }
    if (n > 0)
        l->ctl_len[l->nctl++] = (uint8_t)n;
}

static void conn_apply(sb_session *s, int a, double now)
{
    if (a < 0 || !s->conn)
        return;
    if (a & SB_CONN_DO_CLOSE) {
        int closing = sb_conn_state(s->conn) == SB_CONN_CLOSING;
        if (closing)
            disconnect(s, s->close_code ? s->close_code : SB_CLOSE_NORMAL, s->close_reason);
        else if (s->close_code)
            disconnect(s, s->close_code, s->close_reason);
        else
            disconnect(s, SB_CLOSE_REPLACING, "switchboard: replacing connection");
        if (!closing) {
            s->close_code = 0;
            s->close_reason[0] = 0;
            end_link(s);
        }
    }
    if (a & SB_CONN_CHANGED)
        state_changed(s, now);
    if ((a & SB_CONN_DO_CONNECT) && s->state == SB_SESSION_CONNECTING) {
        s->offered_framed = s->offer_framed;
        s->mode = SB_SESSION_MODE_NONE;
        emit(s, SB_SEV_CONNECT, 0, 0, 0, s->offered_framed ? SB_SEV_F_OFFER_FRAMED : 0, 0,
             sb_conn_attempt(s->conn), NULL, 0);
    }
    if ((a & SB_CONN_DO_PING) && s->l && s->l->up) {
        if (s->mode == SB_SESSION_MODE_FRAMED) {
            s->ping_id = s->ping_id >= 0x7fffffffu ? 1 : s->ping_id + 1;
            queue_ctl(s->l, SB_FRAME_PING, s->ping_id, 0);
        } else if (s->plain_ping.len) {
            s->l->ping_out = 1;
        } else {
            /* A plain server cannot be pinged from a browser: no verdict. */
            sb_conn_pong(s->conn, now);
        }
    }
}

int sb_session_start(sb_session *s, double now_ms)
{
    int rc;
    if (!s || s->role != SB_SESSION_CLIENT)
        return SB_E_INVALID;
    if (s->state != SB_SESSION_IDLE)
        return SB_E_BAD_STATE;
    if ((rc = setup(s)) < 0)
        return rc;
    conn_apply(s, sb_conn_start(s->conn, now_ms), now_ms);
    return SB_OK;
}

/* Plain mode on this transport: the server does not speak switchboard.v1. */
static void go_plain(sb_session *s, double now)
{
    s->mode = SB_SESSION_MODE_PLAIN;
    s->plain_worked = 1;
    s->offer_framed = s->framed_worked; /* plain until framed has worked */
    s->l->up = 1;
    sb_outbox_set_online(s->out, 1, now);
    conn_apply(s, sb_conn_opened(s->conn, now), now);
}

int sb_session_transport_open(sb_session *s, double now_ms, int framed)
{
    int rc;
    if (!s)
        return SB_E_INVALID;
    if (s->srv)
        return s->srv->open(s, now_ms);
    if (s->state != SB_SESSION_CONNECTING || s->l)
        return SB_E_BAD_STATE;
    if ((rc = new_link(s, now_ms)) < 0)
        return rc;
    if (!framed) {
        go_plain(s, now_ms);
        return SB_OK;
    }
    /* The wait for a greeting must end inside the connect timeout, or a
     * silent plain server would only ever time out. */
    s->l->hello_wait = s->opt[SB_SO_HELLO_TIMEOUT] < s->opt[SB_SO_CONNECT_TIMEOUT] / 2
                           ? s->opt[SB_SO_HELLO_TIMEOUT]
                           : s->opt[SB_SO_CONNECT_TIMEOUT] / 2;
    s->l->hello_due = now_ms + s->l->hello_wait;
    return SB_OK;
}

/* Client: the server said not to come back. Refused credentials are worth
 * another attempt only when the host fetches new ones for it. */
static int no_retry(const sb_session *s, int code)
{
    if (code == SB_CLOSE_AUTH)
        return !s->opt[SB_SO_REFRESH_AUTH];
    return code == SB_CLOSE_POLICY || code == SB_CLOSE_REPLACED || code == SB_CLOSE_FORBIDDEN;
}

int sb_session_transport_closed(sb_session *s, double now_ms, int code)
{
    if (!s)
        return SB_E_INVALID;
    if (s->srv) {
        s->srv->closed(s, now_ms);
        return SB_OK;
    }
    if (!s->conn)
        return SB_OK;
    if (s->state != SB_SESSION_CLOSING) {
        /* No link: a transport we already let go of, unless the attempt
         * never got one (the host could not even create it). */
        if (!s->l && s->state != SB_SESSION_CONNECTING)
            return SB_OK;
        if ((!s->l || (!s->l->up && !s->l->greeted)) && s->opt[SB_SO_FRAMED]) {
            /* Failed before it worked. Chromium fails the handshake when a
             * server picks no subprotocol; until one mode has worked,
             * alternate what the next attempt offers. (A server that sent
             * its greeting speaks switchboard.v1, even if it then refused
             * the hello, e.g. with 4401.) */
            if (s->offered_framed && !s->framed_worked)
                s->offer_framed = 0;
            else if (!s->offered_framed && !s->plain_worked)
                s->offer_framed = 1;
        }
    }
    end_link(s);
    conn_apply(s, sb_conn_closed(s->conn, now_ms, no_retry(s, code)), now_ms);
    return SB_OK;
}

int sb_session_set_buffered(sb_session *s, double bytes)
{
    if (!s || !(bytes >= 0))
        return SB_E_INVALID;
    s->buffered = bytes;
    return SB_OK;
}

int sb_session_network(sb_session *s, double now_ms, int online)
{
    if (!s || !s->conn)
        return SB_E_INVALID;
    conn_apply(s, sb_conn_network(s->conn, now_ms, online), now_ms);
    return SB_OK;
}

int sb_session_visibility(sb_session *s, double now_ms, int visible)
{
    if (!s || !s->conn)
        return SB_E_INVALID;
    conn_apply(s, sb_conn_visibility(s->conn, now_ms, visible), now_ms);
    return SB_OK;
}

/* ---- receiving -------------------------------------------------------------------- */

/* The peer sent something we refuse: report it and drop the transport. */
static void protocol_error(sb_session *s, int err, const char *what, double now)
{
    int code = err == SB_E_TOO_LARGE   ? SB_CLOSE_TOO_BIG
               : err == SB_E_NO_MEMORY ? SB_CLOSE_TRY_AGAIN /* ours: come back later */
                                       : SB_CLOSE_PROTOCOL;
    emit(s, SB_SEV_ERROR, 0, 0, 0, 0, err, 0, (const uint8_t *)what, strlen(what));
    if (s->role == SB_SESSION_CLIENT) {
        set_close(s, SB_CLOSE_BAD_SERVER, err, what);
        conn_apply(s, sb_conn_fail(s->conn, now), now);
        return;
    }
    set_close(s, code, err, what);
    disconnect(s, s->close_code, s->close_reason);
    s->close_code = 0;
    sb_session_transport_closed(s, now, code);
}

static void request_answered(sb_session *s, const sb_frame_view *v, const uint8_t *payload, double now)
{
    /* An answer proves the request arrived, even before its ack: it must
     * neither expire later (a DROP) nor go out again on the next transport. */
    sb_outbox_resolve(s->out, v->corr, now);
    for (uint32_t i = 0; i < s->nreqs; i++)
        if (s->reqs[i].id == v->corr) {
            s->reqs[i] = s->reqs[--s->nreqs];
            if (v->kind == SB_FRAME_RESPONSE)
                emit(s, SB_SEV_RESPONSE, v->channel, v->seq, v->corr, v->flags, 0, 0, payload,
                     v->payload_len);
            else
                emit(s, SB_SEV_REQUEST_FAILED, v->channel, v->seq, v->corr, SB_SEV_F_REMOTE,
                     SB_E_CONNECTION_LOST, 0, payload, v->payload_len);
            return;
        }
    /* answered after we gave up on it: nothing waits */
}

/* Deliver what the inbox has ready, in order. */
static int deliver(sb_session *s, double now)
{
    while (sb_inbox_next(s->in) == 1) {
        const sb_frame_view *v = sb_inbox_view(s->in);
        const uint8_t *payload = sb_inbox_frame(s->in) + v->payload_off;
        int client = s->role == SB_SESSION_CLIENT;
        switch (v->kind) {
        case SB_FRAME_MESSAGE: {
            uint32_t nfrom = 0, n = v->payload_len;
            if (v->flags & SB_FRAME_F_FROM) {
                /* stamped by the server: the sender, then the message */
                if (!client || !n || payload[0] == 0 || payload[0] >= n + 0u)
                    return SB_E_BAD_FRAME;
                nfrom = payload[0];
                n -= 1 + nfrom;
            }
            uint32_t at = s->nev;
            s->stats[SB_SS_RECEIVED]++;
            emit(s, SB_SEV_MESSAGE, v->channel, v->seq, v->id, v->flags & SB_FRAME_F_BINARY, 0,
                 nfrom ? v->corr : 0, payload + (nfrom ? 1 + nfrom : 0), n);
            if (nfrom && s->nev == at + 1 && sb_buf_put(&s->arena, payload + 1, nfrom) == 0)
                s->evs[at].e.aux = nfrom;
            break;
        }
        case SB_FRAME_REQUEST:
            if (client)
                return SB_E_BAD_FRAME;
            emit(s, SB_SEV_REQUEST, v->channel, v->seq, v->id, v->flags & SB_FRAME_F_BINARY, 0,
                 0, payload, v->payload_len);
            break;
        case SB_FRAME_RESPONSE:
        case SB_FRAME_ERROR:
            if (!client)
                return SB_E_BAD_FRAME;
            request_answered(s, v, payload, now);
            break;
        default:
            return SB_E_BAD_FRAME;
        }
        set_dirty(s);
    }
    return SB_OK;
}

static int on_frame(sb_session *s, const uint8_t *frame, uint32_t n, double now)
{
    sb_frame f;
    int rc = sb_frame_decode(frame, n, rx_payload(s), &f);
    if (rc < 0)
        return rc;
    switch (f.kind) {
    case SB_FRAME_MESSAGE:
    case SB_FRAME_REQUEST:
    case SB_FRAME_RESPONSE:
    case SB_FRAME_ERROR:
    case SB_FRAME_SKIP: {
        double dup = sb_inbox_stat(s->in, SB_INBOX_STAT_DUPLICATES);
        double skipped = sb_inbox_stat(s->in, SB_INBOX_STAT_SKIPPED);
        /* Channel 1 is the server's: a client writes only requests to the
         * server itself there. Only a server stamps a sender. */
        if (s->role == SB_SESSION_SERVER &&
            ((f.channel == SB_SESSION_SYSTEM_CHANNEL && f.kind != SB_FRAME_SKIP &&
              f.kind != SB_FRAME_REQUEST) ||
             (f.flags & SB_FRAME_F_FROM)))
            return SB_E_BAD_FRAME;
        rc = sb_inbox_push(s->in, frame, n, now);
        if (rc < 0)
            return rc;
        if (sb_inbox_stat(s->in, SB_INBOX_STAT_DUPLICATES) == dup)
            set_dirty(s); /* held (acked selectively) or the floor moved: persist it */
        s->stats[SB_SS_DUPLICATES] += sb_inbox_stat(s->in, SB_INBOX_STAT_DUPLICATES) - dup;
        if (sb_inbox_stat(s->in, SB_INBOX_STAT_SKIPPED) > skipped) {
            s->stats[SB_SS_GAPS]++;
            emit_text(s, SB_SEV_ERROR, SB_E_CONNECTION_LOST,
                      "the peer gave up on messages before they arrived");
        }
        return deliver(s, now);
    }
    case SB_FRAME_ACK:
        rc = sb_outbox_on_ack(s->out, frame, n, now);
        if (rc < 0)
            return rc;
        if (rc > 0)
            set_dirty(s);
        return SB_OK;
    case SB_FRAME_PING:
        queue_ctl(s->l, SB_FRAME_PONG, 0, f.id);
        return SB_OK;
    case SB_FRAME_PONG:
        if (s->conn)
            sb_conn_pong(s->conn, now);
        return SB_OK;
    case SB_FRAME_HELLO:
        return SB_E_BAD_STATE;
    default:
        return SB_E_BAD_FRAME;
    }
}

/* One HELLO frame spanning the whole message, its payload starting with tag. */
static int hello_payload(sb_session *s, const uint8_t *data, uint32_t n, int tag, rd *r)
{
    sb_frame f;
    int rc = sb_frame_decode(data, n, rx_payload(s), &f);
    if (rc < 0)
        return rc;
    if (f.kind != SB_FRAME_HELLO || f.payload_len < 2 || f.payload[0] != tag)
        return SB_E_BAD_STATE;
    if (f.payload[1] != H_VERSION)
        return SB_E_BAD_VERSION;
    r->p = f.payload;
    r->n = f.payload_len;
    r->pos = 2;
    r->err = 0;
    return SB_OK;
}

static int read_greeting(sb_session *s, const uint8_t *data, uint32_t n)
{
    rd r;
    uint64_t flags;
    link *l = s->l;
    int rc = hello_payload(s, data, n, H_GREETING, &r);
    if (rc < 0)
        return rc;
    flags = rd_u(&r, 0xffffffffu);
    l->peer_payload = (uint32_t)rd_u(&r, 1u << 30);
    l->peer_message = (uint32_t)rd_u(&r, 1u << 30);
    l->peer_frames = (uint32_t)rd_u(&r, 1u << 20);
    if (r.err || l->peer_payload < 64 || l->peer_message < 256 || l->peer_frames < 1)
        return SB_E_BAD_FRAME;
    l->compress = (flags & HF_COMPRESS) && s->opt[SB_SO_COMPRESS];
    return SB_OK; /* later fields, if any, are a newer minor version's */
}

static int read_welcome(sb_session *s, const uint8_t *data, uint32_t n, double now)
{
    rd r;
    uint64_t flags;
    const uint8_t *id, *epoch;
    uint32_t id_len, epoch_len, nrx = 0, nfl = 0;
    pos *rx = NULL, *fl = NULL;
    int rc = hello_payload(s, data, n, H_WELCOME, &r);
    if (rc < 0)
        return rc;
    flags = rd_u(&r, 0xffffffffu);
    id = rd_bytes(&r, ID_MAX, &id_len);
    epoch = rd_bytes(&r, ID_MAX, &epoch_len);
    if (!r.err && id_len == 0)
        r.err = SB_E_BAD_FRAME;
    if (r.err)
        return SB_E_BAD_FRAME;
    if ((rc = rd_positions(&r, (uint32_t)s->opt[SB_SO_MAX_CHANNELS], &rx, &nrx)) < 0 ||
        (rc = rd_positions(&r, (uint32_t)s->opt[SB_SO_MAX_CHANNELS], &fl, &nfl)) < 0) {
        free(rx);
        free(fl);
        return rc == SB_E_NO_MEMORY ? rc : SB_E_BAD_FRAME;
    }
    if (s->epoch_len && (epoch_len != s->epoch_len || memcmp(epoch, s->epoch, epoch_len))) {
        /* The server no longer has our stream: its numbering starts again. */
        uint32_t ch, cum;
        int had = 0;
        for (uint32_t i = 0; sb_inbox_chan_info(s->in, i, &ch, &cum) == 0; i++)
            had |= cum > 0;
        sb_inbox_reset(s->in);
        if (had) {
            s->stats[SB_SS_GAPS]++;
            emit_text(s, SB_SEV_ERROR, SB_E_CONNECTION_LOST,
                      "the server no longer knows this session; its messages restart");
        }
    }
    memcpy(s->id, id, id_len);
    s->id_len = id_len;
    memcpy(s->epoch, epoch, epoch_len);
    s->epoch_len = epoch_len;
    if (flags & HF_LOST) {
        s->stats[SB_SS_GAPS]++;
        emit_text(s, SB_SEV_ERROR, SB_E_CONNECTION_LOST,
                  "some messages aged out of the server's history before we came back");
    }
    s->l->compress = s->l->compress && (flags & HF_COMPRESS);
    adopt_rx(s, rx, nrx);
    apply_rx(s, rx, nrx, now);
    apply_floors(s, fl, nfl, now);
    free(rx);
    free(fl);
    if ((rc = link_up(s, now)) < 0)
        return rc;
    s->mode = SB_SESSION_MODE_FRAMED;
    s->framed_worked = 1;
    s->offer_framed = 1;
    set_dirty(s);
    conn_apply(s, sb_conn_opened(s->conn, now), now);
    return deliver(s, now); /* what the floors released */
}

static int read_client_hello(sb_session *s, const uint8_t *data, uint32_t n)
{
    rd r;
    const uint8_t *p;
    uint32_t len;
    link *l = s->l;
    hello *h;
    int rc = hello_payload(s, data, n, H_HELLO, &r);
    if (rc < 0)
        return rc;
    free_hello(&l->h);
    if (!(h = l->h = calloc(1, sizeof *h)))
        return SB_E_NO_MEMORY;
    h->flags = (uint32_t)rd_u(&r, 0xffffffffu);
    p = rd_bytes(&r, ID_MAX, &len);
    if (!r.err) {
        memcpy(h->id, p, len);
        h->id_len = len;
    }
    p = rd_bytes(&r, ID_MAX, &len);
    if (!r.err) {
        memcpy(h->epoch, p, len);
        h->epoch_len = len;
    }
    if (r.err)
        return SB_E_BAD_FRAME;
    if ((rc = rd_positions(&r, (uint32_t)s->opt[SB_SO_MAX_CHANNELS], &h->rx, &h->nrx)) < 0 ||
        (rc = rd_positions(&r, (uint32_t)s->opt[SB_SO_MAX_CHANNELS], &h->fl, &h->nfl)) < 0)
        return rc == SB_E_NO_MEMORY ? rc : SB_E_BAD_FRAME;
    p = rd_bytes(&r, HELLO_APP_MAX, &len);
    if (r.err)
        return SB_E_BAD_FRAME;
    if (len && (rc = sb_buf_put(&h->app, p, len)) < 0)
        return rc;
    if (r.pos < r.n) {
        /* The client's caps (absent from an older client: the defaults). */
        l->peer_payload = (uint32_t)rd_u(&r, 1u << 30);
        l->peer_message = (uint32_t)rd_u(&r, 1u << 30);
        l->peer_frames = (uint32_t)rd_u(&r, 1u << 20);
        if (r.err || l->peer_payload < 64 || l->peer_message < 256 || l->peer_frames < 1)
            return SB_E_BAD_FRAME;
    }
    l->have_hello = 1;
    l->compress = (h->flags & HF_COMPRESS) && s->opt[SB_SO_COMPRESS];
    l->hello_due = -1; /* the host decides now, at its own pace */
    emit(s, SB_SEV_HELLO, 0, 0, 0, l->compress, 0, 0, h->app.p, h->app.len);
    return SB_OK;
}

static int recv_framed(sb_session *s, const uint8_t *data, uint32_t n, double now)
{
    int count, rc;
    link *l = s->l;
    if (n > s->opt[SB_SO_MAX_MESSAGE])
        return SB_E_TOO_LARGE;
    count = sb_unbatch_feed(l->rd, data, n);
    if (count < 0)
        return count;
    if ((double)count > s->opt[SB_SO_MAX_FRAMES])
        return SB_E_TOO_LARGE;
    if (s->srv && ((rc = s->srv->limit(s, count, sb_unbatch_bytes(l->rd), now)) < 0 || !s->l))
        return rc; /* refused: none of its frames is taken */
    if ((rc = reserve_events(s, (uint32_t)count, sb_unbatch_bytes(l->rd))) < 0)
        return rc;
    while (sb_unbatch_next(l->rd) == 1) {
        s->stats[SB_SS_PAYLOAD_BYTES_IN] += sb_unbatch_frame_len(l->rd);
        rc = on_frame(s, sb_unbatch_frame(l->rd), sb_unbatch_frame_len(l->rd), now);
        if (rc < 0)
            return rc;
        if (!s->l)
            return SB_OK; /* the frame ended the transport */
    }
    return SB_OK;
}

/* A greeting after we went plain: a switchboard server, only slow. Its
 * relay refuses whatever we wrote raw before a hello, and those writes are
 * still unconfirmed (hold_until): drop the transport and come back framed,
 * where the outbox sends them again. */
static void late_greeting(sb_session *s, double now)
{
    s->stats[SB_SS_LATE_GREETINGS]++;
    s->plain_worked = s->l->plain_worked0; /* plain did not work here */
    s->offer_framed = 1;
    set_close(s, SB_CLOSE_REPLACING, 0, "switchboard: late greeting, reconnecting framed");
    conn_apply(s, sb_conn_fail(s->conn, now), now);
}

static void recv_message(sb_session *s, const uint8_t *data, uint32_t n, int text, double now_ms)
{
    link *l = s->l;
    int rc = SB_OK;
    const char *what = "bad frame";
    if (s->mode == SB_SESSION_MODE_PLAIN) {
        if (l->late_plain) {
            /* Never the application's: a greeting is ours, and it decides. */
            l->late_plain = 0;
            if (!text && read_greeting(s, data, n) == SB_OK) {
                late_greeting(s, now_ms);
                return;
            }
            l->hold_until = -1; /* the server spoke plain: it is plain */
        }
        s->stats[SB_SS_RECEIVED]++;
        emit(s, SB_SEV_MESSAGE, 0, 0, 0, text ? 0 : SB_FRAME_F_BINARY, 0, 0, data, n);
        return;
    }
    if (s->role == SB_SESSION_CLIENT && !l->greeted) {
        /* The first message decides: a server greeting, or a plain server
         * (whose message is the application's). Nothing of ours went out. */
        if (!text && read_greeting(s, data, n) == SB_OK) {
            l->greeted = 1;
            l->hello_out = 1;
            l->hello_due = -1;
            return;
        }
        if (s->id_len || s->framed_worked) {
            /* This session is framed: a server that picked the subprotocol
             * and then says something else is broken, not plain (going
             * plain would write our queue raw and count it delivered). */
            protocol_error(s, SB_E_BAD_VERSION, "no greeting from a switchboard server", now_ms);
            return;
        }
        go_plain(s, now_ms);
        s->stats[SB_SS_RECEIVED]++;
        emit(s, SB_SEV_MESSAGE, 0, 0, 0, text ? 0 : SB_FRAME_F_BINARY, 0, 0, data, n);
        return;
    }
    if (text) {
        rc = SB_E_BAD_FRAME;
        what = "switchboard.v1 carries binary frames only";
    } else if (s->role == SB_SESSION_CLIENT && !l->up) {
        rc = read_welcome(s, data, n, now_ms);
        what = "bad welcome";
    } else if (s->srv && !l->have_hello) {
        rc = s->srv->hello(s, data, n);
        what = rc == SB_E_BAD_STATE ? "the first frame must be hello" : "bad hello";
    } else if (!l->up) {
        rc = SB_E_BAD_STATE;
        what = "frames before the welcome";
    } else {
        rc = recv_framed(s, data, n, now_ms);
        what = rc == SB_E_BAD_STATE ? "second hello" : rc == SB_E_TOO_LARGE ? "over a cap" : "bad frame";
    }
    if (rc < 0 && rc != SB_E_NO_MEMORY)
        protocol_error(s, rc, what, now_ms);
    else if (rc < 0)
        protocol_error(s, rc, "out of memory", now_ms);
}

int sb_session_recv(sb_session *s, const uint8_t *data, uint32_t n, int text, double now_ms)
{
    int st;
    if (!s || (!data && n))
        return SB_E_INVALID;
    if (!s->l)
        return SB_OK; /* nothing is attached: a stale transport */
    s->stats[SB_SS_BYTES_IN] += n;
    s->l->last_rx = now_ms;
    used(s, now_ms);
    st = s->conn ? sb_conn_state(s->conn) : -1;
    recv_message(s, data, n, text, now_ms);
    /* Proof of life after the frames, so that a pong still finds its ping
     * outstanding and yields the round trip; as before, only for a
     * connection that was open when the message came. */
    if (st == SB_CONN_OPEN || st == SB_CONN_CLOSING)
        conn_apply(s, sb_conn_received(s->conn, now_ms), now_ms);
    return SB_OK;
}

/* ---- server decisions ----------------------------------------------------------------- */

static void new_epoch(sb_session *s)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (int i = 0; i < EPOCH_LEN; i++)
        s->epoch[i] = (uint8_t)abc[sb_rng_next(&s->rng) >> 26];
    s->epoch_len = EPOCH_LEN;
}

/* Server: charge what arrived to the transport's buckets. Over a rate the
 * host is told to stop reading (PAUSE, for the longest of the waits);
 * past the tolerance the transport is closed and nothing of the message is
 * taken (the client resends it when it resumes). */
static int limit(sb_session *s, double frames, double bytes, double now)
{
    link *l = s->l;
    const double *o = s->opt;
    int wait = 0;
    for (int i = 0; i < 2; i++) {
        double rate = o[SB_SO_RATE_MSGS + 2 * i];
        int rc;
        if (rate <= 0)
            continue;
        if (!l->rate[i] && !(l->rate[i] = sb_rate_create(rate, o[SB_SO_RATE_MSGS_BURST + 2 * i],
                                                         o[SB_SO_RATE_TOLERANCE], now)))
            return SB_E_NO_MEMORY;
        rc = sb_rate_take(l->rate[i], i ? bytes : frames, now);
        if (rc == SB_E_RATE_LIMITED) {
            const char *what = i ? "bytes over the rate limit" : "messages over the rate limit";
            emit_text(s, SB_SEV_ERROR, rc, what);
            set_close(s, SB_CLOSE_RATE_LIMITED, rc, what);
            disconnect(s, s->close_code, s->close_reason);
            s->close_code = 0;
            return sb_session_transport_closed(s, now, SB_CLOSE_RATE_LIMITED);
        }
        if (rc > wait)
            wait = rc;
    }
    if (wait > 0)
        emit(s, SB_SEV_PAUSE, 0, 0, 0, 0, 0, wait, NULL, 0);
    return SB_OK;
}

/* Server, on every run: a transport that has held the high-water mark
 * unsent for the stall timeout belongs to a client that is not reading:
 * closed with TRY_AGAIN; the session stays, detached, with what it has
 * not confirmed, until the client comes back or the session TTL. */
static void watch(sb_session *s, double now)
{
    link *l = s->l;
    double stall = s->opt[SB_SO_STALL_TIMEOUT];
    if (!l || !l->up || stall <= 0 || s->buffered < s->opt[SB_SO_HIGH_WATER]) {
        if (l)
            l->stalled_at = -1;
        return;
    }
    if (l->stalled_at < 0)
        l->stalled_at = now;
    else if (now - l->stalled_at >= stall) {
        disconnect(s, SB_CLOSE_TRY_AGAIN, "TIMEOUT: the client is not reading");
        sb_session_transport_closed(s, now, SB_CLOSE_TRY_AGAIN);
    }
}

/* Resume s on its (new) link from the client's hello. */
static int welcome(sb_session *s, double now)
{
    link *l = s->l;
    hello *h = l->h;
    int rc;
    if (!h)
        return SB_E_BAD_STATE;
    if (h->epoch_len == s->epoch_len && !memcmp(h->epoch, s->epoch, s->epoch_len))
        apply_rx(s, h->rx, h->nrx, now); /* what it has of this epoch's stream */
    apply_floors(s, h->fl, h->nfl, now);
    if ((rc = link_up(s, now)) < 0)
        return rc;
    l->welcome_out = 1;
    free_hello(&l->h);
    s->state = SB_SESSION_OPEN;
    s->mode = SB_SESSION_MODE_FRAMED;
    set_dirty(s);
    s->stats[SB_SS_OPENS]++;
    emit(s, SB_SEV_STATE, 0, 0, 0, 0, SB_CONN_R_OPENED, s->state, NULL, 0);
    emit(s, SB_SEV_OPEN, 0, 0, 0, 0, 0, s->mode, NULL, 0);
    /* What the floors released; a frame of a kind the client may not send
     * is dropped (each failing call consumes it). */
    while (deliver(s, now) < 0)
        ;
    return SB_OK;
}

static int server_open(sb_session *s, double now)
{
    int rc;
    if (s->state != SB_SESSION_IDLE)
        return SB_E_BAD_STATE;
    if ((rc = setup(s)) < 0 || (rc = new_link(s, now)) < 0)
        return rc;
    s->l->hello_due = now + s->opt[SB_SO_HELLO_TIMEOUT];
    s->state = SB_SESSION_CONNECTING;
    return SB_OK;
}

static void server_closed(sb_session *s, double now)
{
    if (!s->l)
        return;
    end_link(s);
    if (s->state == SB_SESSION_CONNECTING || s->state == SB_SESSION_IDLE) {
        s->state = SB_SESSION_CLOSED;
        emit(s, SB_SEV_CLOSED, 0, 0, 0, 0, 0, 0, NULL, 0);
    } else if (s->state == SB_SESSION_OPEN) {
        s->state = SB_SESSION_RECONNECTING;
        s->detached_at = now;
        emit(s, SB_SEV_STATE, 0, 0, 0, 0, SB_CONN_R_PEER_CLOSED, s->state, NULL, 0);
    }
}

/* The server speaks first: its greeting, then (once accepted) its welcome. */
static int server_pump(sb_session *s)
{
    link *l = s->l;
    int rc;
    if (!l->greeted) {
        l->greeted = 1;
        if ((rc = send_greeting(s)) < 0)
            return rc;
    }
    if (l->welcome_out) {
        l->welcome_out = 0;
        if ((rc = send_welcome(s)) < 0)
            return rc;
    }
    return SB_OK;
}

static void server_timers(sb_session *s, double now)
{
    double idle = s->opt[SB_SO_IDLE_TIMEOUT];
    if (s->l && s->l->hello_due >= 0 && now >= s->l->hello_due) {
        s->l->hello_due = -1;
        disconnect(s, SB_CLOSE_HELLO_TIMEOUT, "TIMEOUT: no hello");
        sb_session_transport_closed(s, now, SB_CLOSE_HELLO_TIMEOUT);
    }
    watch(s, now);
    if (s->l && s->l->up && idle > 0 && now - s->l->last_rx >= idle) {
        disconnect(s, SB_CLOSE_IDLE, "TIMEOUT: no traffic");
        sb_session_transport_closed(s, now, SB_CLOSE_IDLE);
    }
    if (s->state == SB_SESSION_RECONNECTING && now - s->detached_at >= s->opt[SB_SO_SESSION_TTL]) {
        s->state = SB_SESSION_CLOSED;
        emit(s, SB_SEV_CLOSED, 0, 0, 0, 0, 0, 0, NULL, 0);
    }
}

static double server_deadline(const sb_session *s, double d)
{
    const link *l = s->l;
    if (l && l->up) {
        if (s->opt[SB_SO_IDLE_TIMEOUT] > 0)
            d = sb_min_deadline(d, l->last_rx + s->opt[SB_SO_IDLE_TIMEOUT]);
        if (l->stalled_at >= 0)
            d = sb_min_deadline(d, l->stalled_at + s->opt[SB_SO_STALL_TIMEOUT]);
    }
    if (s->state == SB_SESSION_RECONNECTING)
        d = sb_min_deadline(d, s->detached_at + s->opt[SB_SO_SESSION_TTL]);
    return d;
}

static void server_close(sb_session *s, int code)
{
    if (s->state == SB_SESSION_CLOSED)
        return;
    if (s->l)
        disconnect(s, code, "");
    end_link(s);
    s->state = SB_SESSION_CLOSED;
    emit(s, SB_SEV_CLOSED, 0, 0, 0, 0, 0, 0, NULL, 0);
}

static const server_role server_ops = {
    server_open, server_closed, read_client_hello, server_pump,
    server_timers, server_deadline, server_close, limit, trim,
};

int sb_session_accept(sb_session *s, double now_ms)
{
    if (!s || s->role != SB_SESSION_SERVER || !s->id_len)
        return SB_E_INVALID;
    if (s->state != SB_SESSION_CONNECTING || !s->l || !s->l->have_hello)
        return SB_E_BAD_STATE;
    new_epoch(s);
    return welcome(s, now_ms);
}

int sb_session_takeover(sb_session *s, sb_session *p, double now_ms)
{
    if (!s || !p || s == p || s->role != SB_SESSION_SERVER || p->role != SB_SESSION_SERVER)
        return SB_E_INVALID;
    if (p->state != SB_SESSION_CONNECTING || !p->l || !p->l->have_hello ||
        s->state == SB_SESSION_CLOSED || s->state == SB_SESSION_CONNECTING || !s->started)
        return SB_E_BAD_STATE;
    if (s->l) {
        disconnect(s, SB_CLOSE_REPLACED, "replaced by a newer connection");
        end_link(s);
    }
    s->l = p->l;
    p->l = NULL;
    p->state = SB_SESSION_CLOSED;
    return welcome(s, now_ms);
}

int sb_session_refuse(sb_session *s, int code, const uint8_t *reason, uint32_t n, double now_ms)
{
    char text[124];
    if (!s || (!reason && n) || code < 1000 || code > 4999)
        return SB_E_INVALID;
    if (n >= sizeof text)
        n = sizeof text - 1;
    if (n)
        memcpy(text, reason, n);
    text[n] = 0;
    if (!s->l)
        return SB_E_BAD_STATE;
    disconnect(s, code, text);
    return sb_session_transport_closed(s, now_ms, code);
}

int sb_session_respond(sb_session *s, uint32_t id, int is_error, int flags, const uint8_t *data,
                       uint32_t n, double now_ms)
{
    int rc;
    if (!s || s->role != SB_SESSION_SERVER || !id || (flags & ~SB_FRAME_F_BINARY) || (!data && n))
        return SB_E_INVALID;
    if (!s->started || s->state == SB_SESSION_CLOSED)
        return SB_E_CLOSED;
    if (n > s->opt[SB_SO_MAX_PAYLOAD] || (s->l && n > s->l->peer_payload))
        return SB_E_TOO_LARGE;
    rc = sb_outbox_send(s->out, is_error ? SB_FRAME_ERROR : SB_FRAME_RESPONSE, 0, 0, flags, id, 0,
                        data, n, now_ms);
    if (rc > 0)
        set_dirty(s);
    return rc;
}

/* ---- sending ---------------------------------------------------------------------------- */

/* The largest payload we may send: our cap (plus a stamp's room, extra),
 * and once the peer's caps are known, within them. */
static uint32_t payload_cap(const sb_session *s, uint32_t extra)
{
    uint32_t cap = (uint32_t)s->opt[SB_SO_MAX_PAYLOAD] + extra;
    if (s->l && s->l->up && s->mode == SB_SESSION_MODE_FRAMED) {
        if (s->l->peer_payload + extra < cap)
            cap = s->l->peer_payload + extra;
        /* a lone frame is a transport message: it must fit that cap too */
        if (s->l->peer_message - SB_FRAME_MAX_HEADER < cap)
            cap = s->l->peer_message - SB_FRAME_MAX_HEADER;
    }
    return cap;
}

static void outbox_events(sb_session *s, uint32_t new_id, const uint8_t *data, uint32_t n);
static int run(sb_session *s, double now);

static int enqueue(sb_session *s, int kind, uint32_t channel, int flags, uint32_t corr,
                   const uint8_t *data, uint32_t n, double ttl, double now)
{
    int rc;
    if (!s || (!data && n) || (flags & ~(SB_FRAME_F_BINARY | SB_FRAME_F_FROM)))
        return SB_E_INVALID;
    used(s, now);
    if (s->state == SB_SESSION_CLOSED || s->state == SB_SESSION_CLOSING)
        return SB_E_CLOSED;
    if ((rc = setup(s)) < 0)
        return rc;
    if (channel == SB_SESSION_SYSTEM_CHANNEL && s->role == SB_SESSION_CLIENT &&
        kind != SB_FRAME_REQUEST)
        return SB_E_INVALID;
    /* a stamp (sb_session_relay) comes on top of the cap */
    if (n > payload_cap(s, flags & SB_FRAME_F_FROM ? 1u + data[0] : 0)) {
        s->stats[SB_SS_DROPPED]++;
        emit(s, SB_SEV_DROP, channel, SB_DROP_TOO_LARGE, 0, (uint32_t)flags, SB_E_TOO_LARGE, 0,
             data, n);
        return SB_E_TOO_LARGE;
    }
    rc = sb_outbox_send(s->out, kind, channel, 0, flags, corr, ttl, data, n, now);
    /* A server keeps the newest messages for a client that is behind: past
     * the bound even unconfirmed ones go (the welcome reports the loss). */
    while (rc == SB_E_QUEUE_FULL && s->role == SB_SESSION_SERVER &&
           sb_outbox_evict_oldest(s->out, now) == 1)
        rc = sb_outbox_send(s->out, kind, channel, 0, flags, corr, ttl, data, n, now);
    if (rc == SB_E_QUEUE_FULL || rc == SB_E_TOO_LARGE) {
        if (s->role == SB_SESSION_SERVER)
            s->lost = 1;
        s->stats[SB_SS_DROPPED]++;
        emit(s, SB_SEV_DROP, channel, rc == SB_E_TOO_LARGE ? SB_DROP_TOO_LARGE : SB_DROP_REJECTED,
             0, (uint32_t)flags, rc, 0, data, n);
        return rc;
    }
    if (rc > 0)
        set_dirty(s);
    if (rc > 0 && s->pending_request) {
        s->reqs[s->nreqs].id = (uint32_t)rc;
        s->reqs[s->nreqs].deadline = s->pending_deadline;
        s->nreqs++;
    }
    outbox_events(s, rc > 0 ? (uint32_t)rc : 0, data, n);
    return rc;
}

/* frames and bytes fill a batch: our caps or the peer's frame cap */
static int batch_full(const sb_session *s, double frames, double bytes)
{
    return frames >= s->opt[SB_SO_BATCH_MAX_FRAMES] || frames >= s->l->peer_frames ||
           bytes >= s->opt[SB_SO_BATCH_MAX_BYTES];
}

int sb_session_send(sb_session *s, uint32_t channel, int flags, const uint8_t *data, uint32_t n,
                    double now_ms)
{
    int rc;
    const link *l;
    if (flags & SB_FRAME_F_FROM)
        return SB_E_INVALID;
    rc = enqueue(s, SB_FRAME_MESSAGE, channel, flags, 0, data, n, 0, now_ms);
    l = s->l;
    if (rc <= 0 || !l || !l->up || s->mode != SB_SESSION_MODE_FRAMED ||
        s->role != SB_SESSION_CLIENT || !s->opt[SB_SO_EARLY_BATCH])
        return rc;
    /* A burst: a batch that fills leaves now, not at the end of the host's
     * task, so the peer works on it while the host is still queueing. The
     * counts are payloads only, so the batch is full by the time they say
     * so; what is left over waits in the batch for the flush: the same
     * WebSocket messages as one flush at the end would write. */
    s->burst_frames++;
    s->burst_bytes += n;
    if (batch_full(s, s->burst_frames, s->burst_bytes)) {
        s->early = 1;
        (void)run(s, now_ms); /* as a request's: what fails here fails again at the flush */
        s->early = 0;
    }
    return rc;
}

int sb_session_relay(sb_session *s, uint32_t channel, int flags, double offset,
                     const uint8_t *from, uint32_t nfrom, const uint8_t *data, uint32_t n,
                     double now_ms)
{
    uint8_t *p;
    int rc;
    if (!s || s->role != SB_SESSION_SERVER || (flags & ~SB_FRAME_F_BINARY) || !from ||
        nfrom == 0 || nfrom > 255 || (!data && n) || n > 0x7fffffffu - 256 ||
        !(offset >= 0 && offset <= 0xffffffffu) || offset != (uint32_t)offset)
        return SB_E_INVALID;
    /* A window already full takes nothing: the host still has the message
     * (a room's log) and hands it once the client has confirmed some; no
     * eviction, no drop, so nothing is lost for a slow reader. */
    if (s->started && (sb_outbox_stat(s->out, SB_OUTBOX_STAT_DEPTH) + 1 > s->opt[SB_SO_QUEUE_MAX_COUNT] ||
                       sb_outbox_stat(s->out, SB_OUTBOX_STAT_BYTES) + 1 + nfrom + n >
                           s->opt[SB_SO_QUEUE_MAX_BYTES]))
        return SB_E_QUEUE_FULL;
    if (!(p = malloc((size_t)1 + nfrom + n)))
        return SB_E_NO_MEMORY;
    p[0] = (uint8_t)nfrom;
    memcpy(p + 1, from, nfrom);
    if (n)
        memcpy(p + 1 + nfrom, data, n);
    rc = enqueue(s, SB_FRAME_MESSAGE, channel, flags | SB_FRAME_F_FROM, (uint32_t)offset, p,
                 1 + nfrom + n, 0, now_ms);
    free(p);
    return rc;
}

static int reqs_alloc(sb_session *s)
{
    if (!s->reqs && !(s->reqs = malloc((size_t)s->opt[SB_SO_MAX_REQUESTS] * sizeof *s->reqs)))
        return SB_E_NO_MEMORY;
    return SB_OK;
}

int sb_session_request(sb_session *s, uint32_t channel, int flags, const uint8_t *data, uint32_t n,
                       double timeout_ms, double now_ms)
{
    int id;
    if (!s || s->role != SB_SESSION_CLIENT || timeout_ms != timeout_ms)
        return SB_E_INVALID;
    if (s->mode == SB_SESSION_MODE_PLAIN)
        return SB_E_BAD_STATE;
    if (s->nreqs >= (uint32_t)s->opt[SB_SO_MAX_REQUESTS])
        return SB_E_QUEUE_FULL;
    if (reqs_alloc(s) < 0)
        return SB_E_NO_MEMORY;
    /* The request leaves the outbox when it times out: a late one is never sent. */
    s->pending_deadline = timeout_ms > 0 ? now_ms + timeout_ms : -1;
    s->pending_request = 1; /* enqueue registers it before it reports drops */
    id = enqueue(s, SB_FRAME_REQUEST, channel, flags, 0, data, n, timeout_ms > 0 ? timeout_ms : 0,
                 now_ms);
    s->pending_request = 0;
    /* A request is latency-bound: it leaves now (with whatever else is
     * pending), not at the end of the host's task. It is queued either
     * way: a write that fails here fails again at the host's flush. */
    if (id > 0)
        (void)run(s, now_ms);
    return id;
}

int sb_session_expect(sb_session *s, uint32_t id, double timeout_ms, double now_ms)
{
    int rc;
    if (!s || s->role != SB_SESSION_CLIENT || id == 0 || timeout_ms != timeout_ms)
        return SB_E_INVALID;
    for (uint32_t i = 0; i < s->nreqs; i++)
        if (s->reqs[i].id == id)
            return SB_OK;
    if (s->nreqs >= (uint32_t)s->opt[SB_SO_MAX_REQUESTS])
        return SB_E_QUEUE_FULL;
    if ((rc = reqs_alloc(s)) < 0)
        return rc;
    s->reqs[s->nreqs].id = id;
    s->reqs[s->nreqs].deadline = timeout_ms > 0 ? now_ms + timeout_ms : -1;
    s->nreqs++;
    return SB_OK;
}

int sb_session_cancel(sb_session *s, uint32_t id)
{
    if (!s)
        return SB_E_INVALID;
    for (uint32_t i = 0; i < s->nreqs; i++)
        if (s->reqs[i].id == id) {
            s->reqs[i] = s->reqs[--s->nreqs];
            return SB_OK;
        }
    return SB_E_NOT_FOUND;
}

int sb_session_close(sb_session *s, double now_ms, int code)
{
    if (!s || code < 1000 || code > 4999)
        return SB_E_INVALID;
    if (s->srv) {
        s->srv->close(s, code);
        return SB_OK;
    }
    if (!s->conn) {
        if (s->state != SB_SESSION_CLOSED) {
            s->state = SB_SESSION_CLOSED;
            emit(s, SB_SEV_CLOSED, 0, 0, 0, 0, SB_CONN_R_USER_CLOSE, 0, NULL, 0);
        }
        return SB_OK;
    }
    if (s->state == SB_SESSION_OPEN)
        sb_session_flush(s, now_ms); /* what is queued goes out first */
    s->close_code = code;
    s->close_reason[0] = 0;
    conn_apply(s, sb_conn_close(s->conn, now_ms), now_ms);
    return SB_OK;
}

/* ---- writing -------------------------------------------------------------------------------- */

static void outbox_events(sb_session *s, uint32_t new_id, const uint8_t *data, uint32_t n)
{
    int t;
    while ((t = sb_outbox_next_event(s->out)) != SB_OUTBOX_EV_NONE) {
        const sb_outbox_event *e = sb_outbox_event_view(s->out);
        const uint8_t *p;
        uint32_t len;
        int is_req = 0;
        if (t != SB_OUTBOX_EV_DROP && t != SB_OUTBOX_EV_EXPIRED && t != SB_OUTBOX_EV_DEADLETTER)
            continue;
        p = sb_outbox_event_payload(s->out, &len);
        if (!p && e->id == new_id) { /* drop-newest: the message being sent */
            p = data;
            len = n;
        }
        set_dirty(s);
        if (s->role == SB_SESSION_SERVER && e->code != SB_E_TOO_LARGE) {
            /* A client we had to drop messages for hears of it in the next
             * welcome; if it is attached it is not keeping up: make it come back. */
            s->lost = 1;
            if (s->l && s->l->up)
                set_close(s, SB_CLOSE_TRY_AGAIN, SB_E_QUEUE_FULL, "client is not reading");
        }
        for (uint32_t i = 0; i < s->nreqs; i++)
            if (s->reqs[i].id == e->id) {
                s->reqs[i] = s->reqs[--s->nreqs];
                emit(s, SB_SEV_REQUEST_FAILED, 0, 0, e->id, 0,
                     t == SB_OUTBOX_EV_EXPIRED ? SB_E_TIMEOUT : e->code, 0, NULL, 0);
                is_req = 1; /* a request's failure is its own event */
                break;
            }
        if (!is_req && (p || t == SB_OUTBOX_EV_DROP)) {
            s->stats[SB_SS_DROPPED]++; /* counts DROP events */
            emit(s, SB_SEV_DROP, e->channel,
                 t != SB_OUTBOX_EV_DROP      ? SB_DROP_EXPIRED
                 : e->code == SB_E_TOO_LARGE ? SB_DROP_TOO_LARGE
                                             : SB_DROP_OVERFLOW,
                 e->id, 0, e->code, 0, p, len);
        }
    }
}

static void write_out(sb_session *s, const uint8_t *p, size_t n, uint32_t flags)
{
    emit(s, SB_SEV_WRITE, 0, 0, 0, flags, 0, 0, p, n);
    s->stats[SB_SS_BYTES_OUT] += (double)n;
}

/* Close the pending batch (uncompressed if it is one latency-bound frame). */
static int flush_batch(sb_session *s, int urgent)
{
    link *l = s->l;
    int n = sb_batch_flush_as(l->wr, !urgent);
    if (n > 0)
        write_out(s, sb_batch_out(l->wr), (size_t)n, 0);
    return n;
}

static int add_frame(sb_session *s, const uint8_t *f, uint32_t n, double now)
{
    link *l = s->l;
    int rc = sb_batch_add(l->wr, f, n, now);
    if (rc < 0)
        return rc;
    s->stats[SB_SS_PAYLOAD_BYTES_OUT] += n;
    if (rc & SB_BATCH_OUT)
        write_out(s, sb_batch_out(l->wr), sb_batch_out_len(l->wr), 0);
    if (batch_full(s, sb_batch_pending(l->wr), sb_batch_pending_bytes(l->wr)))
        return flush_batch(s, 0);
    return SB_OK;
}

static int pump_plain(sb_session *s, double now)
{
    link *l = s->l;
    double written = 0;
    int n;
    if (l->ping_out) {
        l->ping_out = 0;
        write_out(s, s->plain_ping.p, s->plain_ping.len, SB_SEV_F_TEXT);
    }
    while (s->buffered + written < s->opt[SB_SO_HIGH_WATER] &&
           (n = sb_outbox_next_frame(s->out, now)) > 0) {
        sb_frame f;
        if (sb_frame_decode(sb_outbox_out(s->out), (size_t)n, 0x7fffffff, &f) < 0)
            return SB_E_INTERNAL;
        if (f.kind != SB_FRAME_MESSAGE) {
            /* A request queued before the verdict: a plain server cannot
             * answer it, and its bytes must not reach it. */
            uint32_t id = f.id;
            sb_outbox_resolve(s->out, id, now);
            for (uint32_t i = 0; i < s->nreqs; i++)
                if (s->reqs[i].id == id) {
                    s->reqs[i] = s->reqs[--s->nreqs];
                    emit(s, SB_SEV_REQUEST_FAILED, 0, 0, id, 0, SB_E_BAD_STATE, 0, NULL, 0);
                    break;
                }
            continue;
        }
        write_out(s, f.payload, f.payload_len, f.flags & SB_FRAME_F_BINARY ? 0 : SB_SEV_F_TEXT);
        s->stats[f.flags & SB_FRAME_F_RETRY ? SB_SS_RETRANSMITS : SB_SS_SENT]++;
        written += f.payload_len;
        l->plain_written++;
    }
    /* A message leaves the outbox once the socket has written it out. */
    if (l->plain_written && written == 0 && s->buffered == 0 && !(l->hold_until > now)) {
        uint32_t ch, last, fl;
        for (uint32_t i = 0; sb_outbox_chan_info(s->out, i, &ch, &last, &fl) == 0; i++)
            sb_outbox_ack(s->out, ch, last, NULL, 0, now);
        l->plain_written = 0;
        set_dirty(s);
    }
    l->poll_at = !l->plain_written        ? -1
                 : l->hold_until > now ? l->hold_until
                                       : now + DRAIN_POLL_MS;
    return SB_OK;
}

static int pump(sb_session *s, double now)
{
    link *l = s->l;
    int n, rc, urgent = 1, riders = 0;
    uint32_t pending0;
    double written0;
    if (!l)
        return SB_OK;
    if (s->srv && (rc = s->srv->pump(s)) < 0)
        return rc;
    if (l->hello_out) {
        l->hello_out = 0;
        rc = send_client_hello(s, s->hello_app.p, s->hello_app.len);
        if (rc < 0)
            return rc;
    }
    if (!l->up)
        return SB_OK;
    if (s->mode == SB_SESSION_MODE_PLAIN)
        return pump_plain(s, now);
    s->burst_frames = s->burst_bytes = 0;
    /* Frames an early pump left in the batch: no lone urgent frame then. */
    if (sb_batch_pending(l->wr))
        urgent = 0;
    written0 = s->stats[SB_SS_BYTES_OUT];
    for (int i = 0; i < l->nctl; i++)
        if ((rc = add_frame(s, l->ctl[i], l->ctl_len[i], now)) < 0)
            return rc;
    l->nctl_sent = l->nctl > 0;
    l->nctl = 0;
    while ((n = sb_inbox_take_ack(s->in, now)) > 0)
        if ((rc = add_frame(s, sb_inbox_out(s->in), (uint32_t)n, now)) < 0)
            return rc;
    pending0 = sb_batch_pending(l->wr);
    l->poll_at = -1;
    /* The transport is not keeping up: leave the rest queued (checked
     * before every frame, the first one included). */
    while (s->buffered + (s->stats[SB_SS_BYTES_OUT] - written0) < s->opt[SB_SO_HIGH_WATER] ||
           (l->poll_at = now + BLOCKED_POLL_MS, 0)) {
        const uint8_t *f;
        if ((n = sb_outbox_next_frame(s->out, now)) <= 0)
            break;
        f = sb_outbox_out(s->out);
        if (!(f[1] & SB_FRAME_F_RETRY) && (f[0] & 15) != SB_FRAME_SKIP)
            set_dirty(s); /* a seq was assigned: a host that persists must know */
        if ((f[0] & 15) == SB_FRAME_MESSAGE) {
            urgent = 0;
            s->stats[f[1] & SB_FRAME_F_RETRY ? SB_SS_RETRANSMITS : SB_SS_SENT]++;
        }
        if ((rc = add_frame(s, f, (uint32_t)n, now)) < 0)
            return rc;
    }
    outbox_events(s, 0, NULL, 0);
    /* A client's acks not due yet ride along with frames it writes anyway:
     * earlier than promised, and no write (and no turn of the server's) of
     * their own later. (A server's wait their 20 ms: docs/decisions.md,
     * "Fan-out in batches".) */
    if (s->role == SB_SESSION_CLIENT && s->opt[SB_SO_ACK_RIDE] &&
        (sb_batch_pending(l->wr) > pending0 || l->nctl_sent))
        while ((n = sb_inbox_take_ack(s->in, ACK_NOW)) > 0) {
            if ((rc = add_frame(s, sb_inbox_out(s->in), (uint32_t)n, now)) < 0)
                return rc;
            riders++;
        }
    l->nctl_sent = 0;
    if (s->opt[SB_SO_BATCH_DELAY] == 0)
        rc = s->early ? 0 : flush_batch(s, urgent && sb_batch_pending(l->wr) == 1u + (uint32_t)riders);
    else if ((rc = sb_batch_poll(l->wr, now)) > 0)
        write_out(s, sb_batch_out(l->wr), (size_t)rc, 0);
    sb_batch_release(l->wr); /* every batch was copied into a WRITE event */
    return rc < 0 ? rc : SB_OK;
}

/* Timers, then writes. */
static int run(sb_session *s, double now)
{
    link *l = s->l;
    int rc;
    if (s->holding && s->nev == 0 && now >= s->used_at + s->opt[SB_SO_TRIM_AFTER])
        s->srv->trim(s); /* holding: a server (a client core links no trim) */
    if (s->conn)
        conn_apply(s, sb_conn_tick(s->conn, now), now);
    l = s->l;
    if (s->srv) {
        s->srv->timers(s, now);
    } else if (l && l->hello_due >= 0 && now >= l->hello_due) {
        l->hello_due = -1;
        /* An open socket and no greeting: a plain server, unless it gave
         * us a session before: then it is only slow, and plain would write
         * the queue raw to it and count it delivered. The connect timeout
         * decides. */
        if (s->state == SB_SESSION_CONNECTING && !s->id_len) {
            /* A greeting may still be on its way: until it could no longer
             * be, what we write stays in the outbox (docs/decisions.md,
             * "A late greeting"). */
            l->plain_worked0 = s->plain_worked;
            l->late_plain = 1;
            l->hold_until = now + l->hello_wait;
            go_plain(s, now);
        }
    }
    /* The outbox first: a request that expires there still finds its
     * waiter, so it fails once instead of also being reported as a drop. */
    if (s->out) {
        sb_outbox_poll(s->out, now);
        outbox_events(s, 0, NULL, 0);
    }
    for (uint32_t i = 0; i < s->nreqs;) {
        if (s->reqs[i].deadline >= 0 && now >= s->reqs[i].deadline) {
            uint32_t id = s->reqs[i].id;
            s->reqs[i] = s->reqs[--s->nreqs];
            emit(s, SB_SEV_REQUEST_FAILED, 0, 0, id, 0, SB_E_TIMEOUT, 0, NULL, 0);
        } else {
            i++;
        }
    }
    if (s->close_code == SB_CLOSE_TRY_AGAIN && s->role == SB_SESSION_SERVER && s->l) {
        disconnect(s, s->close_code, s->close_reason);
        s->close_code = 0;
        sb_session_transport_closed(s, now, SB_CLOSE_TRY_AGAIN);
    }
    rc = pump(s, now);
    if (s->nev)
        used(s, now);
    return rc;
}

int sb_session_flush(sb_session *s, double now_ms)
{
    return s ? run(s, now_ms) : SB_E_INVALID;
}

int sb_session_tick(sb_session *s, double now_ms)
{
    return s ? run(s, now_ms) : SB_E_INVALID;
}

double sb_session_next_deadline(const sb_session *s)
{
    double d = -1;
    const link *l;
    if (!s)
        return -1;
    l = s->l;
    if (s->conn)
        d = sb_conn_next_deadline(s->conn);
    if (l) {
        if (l->hello_due >= 0)
            d = sb_min_deadline(d, l->hello_due);
        if (l->up) {
            d = sb_min_deadline(d, sb_inbox_deadline(s->in));
            if (l->wr && sb_batch_pending(l->wr))
                d = sb_min_deadline(d, sb_batch_deadline(l->wr));
            if (l->poll_at >= 0)
                d = sb_min_deadline(d, l->poll_at);
        }
    }
    if (s->out) {
        /* Blocked on the transport: only the outbox's own timers count. */
        double od = sb_outbox_timers_deadline(s->out, !(l && l->poll_at >= 0));
        if (od < NO_TIMEOUT / 2) /* an ack timeout that is off is no deadline */
            d = sb_min_deadline(d, od);
    }
    if (s->srv)
        d = s->srv->deadline(s, d);
    for (uint32_t i = 0; i < s->nreqs; i++)
        if (s->reqs[i].deadline >= 0)
            d = sb_min_deadline(d, s->reqs[i].deadline);
    if (s->holding)
        d = sb_min_deadline(d, s->used_at + s->opt[SB_SO_TRIM_AFTER]);
    return d;
}

/* ---- output ---------------------------------------------------------------------------------- */

int sb_session_next_event(sb_session *s)
{
    ev *e;
    if (!s)
        return SB_SEV_NONE;
    if (s->ev_head == s->nev) {
        s->ev_head = s->nev = 0;
        /* Drained: what a large message's events needed goes back. */
        sb_buf_clear(&s->arena, SB_BUF_KEEP);
        if (s->ev_cap > EV_KEEP) {
            free(s->evs);
            s->evs = NULL;
            s->ev_cap = 0;
        }
        memset(&s->cur, 0, sizeof s->cur);
        s->cur_data = NULL;
        return SB_SEV_NONE;
    }
    e = &s->evs[s->ev_head++];
    s->cur = e->e;
    if (s->cur.type == SB_SEV_DIRTY)
        s->dirty = 0;
    s->cur_data = s->arena.p ? s->arena.p + e->off : NULL;
    return (int)s->cur.type;
}

const sb_session_event *sb_session_event_view(const sb_session *s)
{
    return s ? &s->cur : NULL;
}

const uint8_t *sb_session_event_data(const sb_session *s)
{
    return s ? s->cur_data : NULL;
}

int sb_session_state(const sb_session *s)
{
    return s ? s->state : SB_E_INVALID;
}

int sb_session_mode(const sb_session *s)
{
    return s ? s->mode : SB_E_INVALID;
}

double sb_session_stat(const sb_session *s, int which)
{
    uint32_t ch, last, fl, cum;
    if (!s || which < 0 || which >= SB_SS_COUNT_)
        return -1;
    switch (which) {
    case SB_SS_QUEUED:
        return s->out ? sb_outbox_stat(s->out, SB_OUTBOX_STAT_DEPTH) : 0;
    case SB_SS_QUEUED_BYTES:
        return s->out ? sb_outbox_stat(s->out, SB_OUTBOX_STAT_BYTES) : 0;
    case SB_SS_IN_FLIGHT:
        return s->out ? sb_outbox_stat(s->out, SB_OUTBOX_STAT_IN_FLIGHT) : 0;
    case SB_SS_REQUESTS_PENDING:
        return s->nreqs;
    case SB_SS_ATTEMPT:
        return s->conn ? sb_conn_attempt(s->conn) : 0;
    case SB_SS_RTT:
        return s->conn ? sb_conn_rtt(s->conn) : -1;
    case SB_SS_TX_SEQ:
    case SB_SS_ACKED_SEQ:
        for (uint32_t i = 0; s->out && sb_outbox_chan_info(s->out, i, &ch, &last, &fl) == 0; i++)
            if (ch == 0)
                return which == SB_SS_TX_SEQ ? last : fl - 1;
        return 0;
    case SB_SS_RX_SEQ:
        for (uint32_t i = 0; s->in && sb_inbox_chan_info(s->in, i, &ch, &cum) == 0; i++)
            if (ch == 0)
                return cum;
        return 0;
    default:
        return s->stats[which];
    }
}
