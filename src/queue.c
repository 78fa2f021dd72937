/* queue — see queue.h and docs/protocol.md §9. */
#include "queue.h"
#include "buf.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"

/* js/queue.js reads the event as Uint32Array[6] + Float64 at byte 24. */
_Static_assert(offsetof(sb_outbox_event, code) == 20, "sb_outbox_event layout");
_Static_assert(offsetof(sb_outbox_event, value) == 24, "sb_outbox_event layout");

#define MAX_SACK_RANGES 32   /* what an inbox writes */
#define MAX_SACK_PARSE 64    /* what an outbox accepts */
#define ACK_PAYLOAD_CAP 4096

/* ---- small helpers ------------------------------------------------------ */

/* Output buffers here are rewritten from the start by every call. */
static int out_reserve(sb_buf *b, size_t need)
{
    /* After a large one, a small one gives the memory back. */
    sb_buf_clear(b, need > SB_BUF_KEEP ? (size_t)-1 : SB_BUF_KEEP);
    return sb_buf_reserve(b, need);
}

static void put_f64(uint8_t *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(u >> (8 * i));
}

static double get_f64(const uint8_t *p)
{
    uint64_t u = 0;
    double d;
    for (int i = 0; i < 8; i++)
        u |= (uint64_t)p[i] << (8 * i);
    memcpy(&d, &u, 8);
    return d;
}

/* Reader over an untrusted blob. */
typedef struct rd {
    const uint8_t *p;
    size_t n, pos;
    int err;
} rd;

static uint32_t rd_u32(rd *r)
{
    uint64_t v = 0;
    int k;
    if (r->err)
        return 0;
    k = sb_varint_get(r->p + r->pos, r->n - r->pos, 0xffffffffu, &v);
    if (k <= 0) {
        r->err = SB_E_CORRUPT;
        return 0;
    }
    r->pos += (size_t)k;
    return (uint32_t)v;
}

static uint8_t rd_u8(rd *r)
{
    if (r->err || r->pos >= r->n) {
        r->err = SB_E_CORRUPT;
        return 0;
    }
    return r->p[r->pos++];
}

static double rd_f64(rd *r)
{
    double d;
    if (r->err || r->n - r->pos < 8) {
        r->err = SB_E_CORRUPT;
        return 0;
    }
    d = get_f64(r->p + r->pos);
    r->pos += 8;
    return d;
}

/* ======================================================================== */
/* outbox                                                                   */
/* ======================================================================== */

enum { ST_QUEUED = 0, ST_AWAIT = 1, ST_RESEND = 2 };

/* Message ids run 1..2^31-1 and wrap. */
static uint32_t id_after(uint32_t id)
{
    return id >= 0x7fffffffu ? 1 : id + 1;
}

typedef struct entry {
    struct entry *prev, *next;
    uint32_t id, channel, seq, corr, attempts;
    uint8_t kind, flags, prio, state;
    double expires_at; /* -1 = no TTL */
    double due_at;     /* AWAIT: ack timeout; RESEND: when to transmit again */
    double sent_at;
    uint32_t len;
    uint8_t data[];
} entry;

typedef struct list {
    entry *head, *tail;
    uint32_t n;
} list;

typedef struct ochan {
    uint32_t channel, next_seq, skip_to, acked;
    double skip_due;
} ochan;

struct sb_outbox {
    uint32_t max_count, window, max_channels;
    double max_bytes, ack_timeout, retry_min, retry_max;
    int policy, max_retries, online;
    int message_ids; /* write a message's id on the wire (see sb_outbox_message_ids) */
    list queued[SB_QUEUE_PRIORITIES], inflight;
    uint32_t count, ttl_queued; /* ttl_queued: queued entries with a TTL */
    double bytes;
    ochan *chans;
    uint32_t nchans, chans_alloc;
    uint32_t next_id;
    sb_rng rng;
    sb_outbox_event *evq;
    uint32_t ev_head, ev_n, ev_alloc, ev_cap; /* ring of ev_alloc slots; ev_cap = bound */
    sb_outbox_event ev_cur;
    /* Entries removed with a DROP/EXPIRED/DEADLETTER event, in event order,
     * kept until their event is popped so the payload can be reported. */
    entry *grave, *grave_tail, *ev_cur_e;
    /* Lower bounds on when anything in flight expires / is due, so that a
     * poll with nothing due does not walk thousands of in-flight entries;
     * the entries in RESEND state, and where the walk for them may start
     * (rs_ok: everything before rs_from is awaiting its ack). */
    double exp_min, due_min;
    uint32_t nresend;
    entry *rs_from;
    int rs_ok;
    sb_buf out;
    double stats[SB_OUTBOX_STAT_COUNT_];
};

static void list_push(list *l, entry *e)
{
    e->next = NULL;
    e->prev = l->tail;
    if (l->tail)
        l->tail->next = e;
    else
        l->head = e;
    l->tail = e;
    l->n++;
}

static void list_unlink(list *l, entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        l->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        l->tail = e->prev;
    e->prev = e->next = NULL;
    l->n--;
}

static void bound(double *min, double t)
{
    if (t < *min)
        *min = t;
}

/* An in-flight entry goes out again at `due`. */
static void set_resend(sb_outbox *o, entry *e, double due)
{
    if (e->state != ST_RESEND)
        o->nresend++;
    e->state = ST_RESEND;
    e->due_at = due;
    o->rs_ok = 0;
    bound(&o->due_min, due);
}

static int ensure_chan_room(sb_outbox *o);

static ochan *get_chan(sb_outbox *o, uint32_t channel, int create)
{
    for (uint32_t i = 0; i < o->nchans; i++)
        if (o->chans[i].channel == channel)
            return &o->chans[i];
    if (!create || ensure_chan_room(o) < 0)
        return NULL;
    memset(&o->chans[o->nchans], 0, sizeof o->chans[0]);
    o->chans[o->nchans].channel = channel;
    o->chans[o->nchans].next_seq = 1;
    return &o->chans[o->nchans++];
}

sb_outbox *sb_outbox_create(uint32_t max_count, double max_bytes, int policy, uint32_t window,
                            double ack_timeout_ms, double retry_min_ms, double retry_max_ms,
                            int max_retries, uint32_t max_channels, uint32_t seed)
{
    sb_outbox *o;
    if (max_count < 1 || max_count > (1u << 24) || !(max_bytes >= 1) || policy < 0 ||
        policy > SB_QUEUE_DROP_NEWEST || window < 1 || !(ack_timeout_ms > 0) ||
        !(retry_min_ms > 0) || !(retry_max_ms >= retry_min_ms) || retry_max_ms > 1e12 ||
        max_retries < 0 || max_channels < 1 || max_channels > (1u << 20))
        return NULL;
    o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->max_count = max_count;
    o->max_bytes = max_bytes;
    o->policy = policy;
    o->window = window;
    o->ack_timeout = ack_timeout_ms;
    o->retry_min = retry_min_ms;
    o->retry_max = retry_max_ms;
    o->max_retries = max_retries;
    o->max_channels = max_channels;
    o->online = 1;
    o->message_ids = 1;
    o->next_id = 1;
    o->exp_min = o->due_min = 1e300;
    sb_rng_seed(&o->rng, seed);
    /* Every message yields a bounded number of events between drains; the
     * glue drains after each call, so this is generous. */
    o->ev_cap = max_count * 2 + 64;
    /* The channel table and the event ring are made at first use and grow
     * as they must: an idle relay connection holds neither (sb_outbox_trim). */
    o->stats[SB_OUTBOX_STAT_RTT] = -1;
    o->stats[SB_OUTBOX_STAT_RTT_LAST] = -1;
    return o;
}

static void free_list(list *l)
{
    entry *e = l->head;
    while (e) {
        entry *n = e->next;
        free(e);
        e = n;
    }
    l->head = l->tail = NULL;
    l->n = 0;
}

void sb_outbox_destroy(sb_outbox *o)
{
    if (!o)
        return;
    for (int p = 0; p < SB_QUEUE_PRIORITIES; p++)
        free_list(&o->queued[p]);
    free_list(&o->inflight);
    while (o->grave) {
        entry *e = o->grave;
        o->grave = e->next;
        free(e);
    }
    free(o->ev_cur_e);
    free(o->chans);
    free(o->evq);
    free(o->out.p);
    free(o);
}

/* Room for one more channel (the table grows up to max_channels). */
static int ensure_chan_room(sb_outbox *o)
{
    uint32_t n2;
    ochan *p;
    if (o->nchans < o->chans_alloc)
        return SB_OK;
    if (o->nchans >= o->max_channels)
        return SB_E_TOO_LARGE;
    n2 = o->chans_alloc ? o->chans_alloc * 2 : 4; /* most sessions use a channel or two */
    if (n2 > o->max_channels)
        n2 = o->max_channels;
    p = realloc(o->chans, (size_t)n2 * sizeof *p);
    if (!p)
        return SB_E_NO_MEMORY;
    o->chans = p;
    o->chans_alloc = n2;
    return SB_OK;
}

static uint32_t chan_floor(const sb_outbox *o, const ochan *ch);

/* Returns 1 if the event was queued, 0 if it was lost. */
static int emit(sb_outbox *o, uint32_t type, const entry *e, int code, double value)
{
    sb_outbox_event *ev;
    if (o->ev_n >= o->ev_cap) {
        o->stats[SB_OUTBOX_STAT_EVENTS_LOST]++;
        return 0;
    }
    if (o->ev_n == o->ev_alloc) {
        /* Grow and unwrap the ring. */
        uint32_t n2 = o->ev_alloc ? o->ev_alloc * 2 : 8;
        sb_outbox_event *p = malloc((size_t)n2 * sizeof *p);
        if (!p) {
            o->stats[SB_OUTBOX_STAT_EVENTS_LOST]++;
            return 0;
        }
        for (uint32_t i = 0; i < o->ev_n; i++)
            p[i] = o->evq[(o->ev_head + i) % o->ev_alloc];
        free(o->evq);
        o->evq = p;
        o->ev_head = 0;
        o->ev_alloc = n2;
    }
    ev = &o->evq[(o->ev_head + o->ev_n) % o->ev_alloc];
    o->ev_n++;
    ev->type = type;
    ev->id = e->id;
    ev->channel = e->channel;
    ev->seq = e->seq;
    ev->attempts = e->attempts;
    ev->code = code;
    ev->value = value;
    return 1;
}

size_t sb_outbox_capacity(const sb_outbox *o)
{
    return o ? (size_t)o->ev_alloc * sizeof *o->evq + o->out.cap : 0;
}

void sb_outbox_trim(sb_outbox *o)
{
    if (!o)
        return;
    if (!o->ev_n) {
        free(o->evq);
        o->evq = NULL;
        o->ev_alloc = o->ev_head = 0;
    }
    sb_buf_free(&o->out);
}

int sb_outbox_next_event(sb_outbox *o)
{
    if (!o)
        return SB_OUTBOX_EV_NONE;
    free(o->ev_cur_e);
    o->ev_cur_e = NULL;
    if (!o->ev_n)
        return SB_OUTBOX_EV_NONE;
    o->ev_cur = o->evq[o->ev_head];
    o->ev_head = (o->ev_head + 1) % o->ev_alloc;
    o->ev_n--;
    if (o->ev_cur.type != SB_OUTBOX_EV_ACK && o->grave && o->grave->id == o->ev_cur.id &&
        o->ev_cur.type != SB_OUTBOX_EV_TIMEOUT) {
        o->ev_cur_e = o->grave;
        o->grave = o->grave->next;
        if (!o->grave)
            o->grave_tail = NULL;
    }
    return (int)o->ev_cur.type;
}

const uint8_t *sb_outbox_event_payload(const sb_outbox *o, uint32_t *len)
{
    if (!o || !o->ev_cur_e) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = o->ev_cur_e->len;
    return o->ev_cur_e->data;
}

int sb_outbox_chan_info(const sb_outbox *o, uint32_t i, uint32_t *channel, uint32_t *last_seq,
                        uint32_t *floor)
{
    if (!o || i >= o->nchans)
        return SB_E_NOT_FOUND;
    *channel = o->chans[i].channel;
    *last_seq = o->chans[i].next_seq - 1;
    *floor = chan_floor(o, &o->chans[i]);
    return SB_OK;
}

const sb_outbox_event *sb_outbox_event_view(const sb_outbox *o)
{
    return o ? &o->ev_cur : NULL;
}

/* Lowest seq still unresolved on the channel: the receiver may skip below it. */
static uint32_t chan_floor(const sb_outbox *o, const ochan *ch)
{
    uint32_t lo = ch->next_seq;
    for (const entry *e = o->inflight.head; e; e = e->next)
        if (e->channel == ch->channel && e->seq < lo)
            lo = e->seq;
    return lo;
}

static void remove_entry(sb_outbox *o, list *l, entry *e, uint32_t ev, int code, double value,
                         double now)
{
    int was_sent = e->state != ST_QUEUED, keep;
    if (e->state == ST_RESEND)
        o->nresend--;
    if (o->rs_from == e)
        o->rs_from = e->next;
    list_unlink(l, e);
    if (!was_sent && e->expires_at >= 0)
        o->ttl_queued--;
    o->count--;
    o->bytes -= e->len;
    keep = emit(o, ev, e, code, value) && ev != SB_OUTBOX_EV_ACK;
    if (was_sent && ev != SB_OUTBOX_EV_ACK) {
        /* The receiver may be waiting for this seq: announce the new floor. */
        ochan *ch = get_chan(o, e->channel, 0);
        if (ch) {
            uint32_t fl = chan_floor(o, ch);
            if (fl > ch->acked + 1) {
                ch->skip_to = fl;
                ch->skip_due = now;
            }
        }
    }
    if (!keep) {
        free(e);
        return;
    }
    e->next = NULL;
    if (o->grave_tail)
        o->grave_tail->next = e;
    else
        o->grave = e;
    o->grave_tail = e;
}

int sb_outbox_send(sb_outbox *o, int kind, uint32_t channel, int priority, int flags,
                   uint32_t corr, double ttl_ms, const uint8_t *payload, uint32_t n, double now_ms)
{
    entry *e;
    uint32_t id;
    int rc;
    if (!o || kind < 0 || kind >= SB_FRAME_KIND_COUNT_ || kind == SB_FRAME_ACK ||
        kind == SB_FRAME_BATCH || kind == SB_FRAME_SKIP || priority < 0 ||
        priority >= SB_QUEUE_PRIORITIES ||
        (flags & ~(SB_FRAME_F_LAST | SB_FRAME_F_BINARY | SB_FRAME_F_FROM)) ||
        (!payload && n) || ttl_ms != ttl_ms)
        return SB_E_INVALID;
    if ((double)n > o->max_bytes)
        return SB_E_TOO_LARGE;
    if (!get_chan(o, channel, 0) && (rc = ensure_chan_room(o)) < 0)
        return rc;
    id = o->next_id;
    while (o->count + 1 > o->max_count || o->bytes + n > o->max_bytes) {
        entry *victim = NULL;
        int p;
        if (o->policy == SB_QUEUE_REJECT)
            return SB_E_QUEUE_FULL;
        if (o->policy == SB_QUEUE_DROP_NEWEST) {
            entry tmp;
            memset(&tmp, 0, sizeof tmp);
            tmp.id = id;
            tmp.channel = channel;
            o->next_id = id_after(id);
            emit(o, SB_OUTBOX_EV_DROP, &tmp, SB_E_QUEUE_FULL, 0);
            o->stats[SB_OUTBOX_STAT_DROPS]++;
            return (int)id;
        }
        for (p = 0; p <= priority && !victim; p++)
            victim = o->queued[p].head;
        if (!victim)
            return SB_E_QUEUE_FULL; /* only in-flight or higher-priority messages */
        o->stats[SB_OUTBOX_STAT_DROPS]++;
        remove_entry(o, &o->queued[victim->prio], victim, SB_OUTBOX_EV_DROP, SB_E_QUEUE_FULL, 0,
                     now_ms);
    }
    e = malloc(sizeof *e + (n ? n : 1));
    if (!e)
        return SB_E_NO_MEMORY;
    memset(e, 0, sizeof *e);
    get_chan(o, channel, 1);
    o->next_id = id_after(id);
    e->id = id;
    e->channel = channel;
    e->corr = corr;
    e->kind = (uint8_t)kind;
    e->flags = (uint8_t)flags;
    e->prio = (uint8_t)priority;
    e->state = ST_QUEUED;
    e->expires_at = ttl_ms > 0 ? now_ms + ttl_ms : -1;
    e->len = n;
    if (n)
        memcpy(e->data, payload, n);
    if (e->expires_at >= 0)
        o->ttl_queued++;
    list_push(&o->queued[priority], e);
    o->count++;
    o->bytes += n;
    return (int)id;
}

int sb_outbox_evict_oldest(sb_outbox *o, double now_ms)
{
    entry *e;
    if (!o)
        return SB_E_INVALID;
    e = o->inflight.head;
    if (!e)
        return 0;
    o->stats[SB_OUTBOX_STAT_DROPS]++;
    /* remove_entry announces the new floor, so the receiver skips it. */
    remove_entry(o, &o->inflight, e, SB_OUTBOX_EV_DROP, SB_E_QUEUE_FULL, 0, now_ms);
    return 1;
}

int sb_outbox_poll(sb_outbox *o, double now_ms)
{
    entry *e, *next;
    double exp_min = 1e300, due_min = 1e300;
    if (!o)
        return SB_E_INVALID;
    if (now_ms < o->exp_min && (!o->online || now_ms < o->due_min))
        goto queued; /* nothing in flight can be due yet */
    for (e = o->inflight.head; e; e = next) {
        next = e->next;
        if (e->expires_at >= 0 && now_ms >= e->expires_at) {
            o->stats[SB_OUTBOX_STAT_EXPIRED]++;
            remove_entry(o, &o->inflight, e, SB_OUTBOX_EV_EXPIRED, SB_E_EXPIRED, 0, now_ms);
        } else if (o->online && e->state == ST_AWAIT && now_ms >= e->due_at) {
            if (o->max_retries && e->attempts > (uint32_t)o->max_retries) {
                o->stats[SB_OUTBOX_STAT_DEADLETTERS]++;
                remove_entry(o, &o->inflight, e, SB_OUTBOX_EV_DEADLETTER, SB_E_TIMEOUT, 0, now_ms);
            } else {
                double d = sb_backoff_delay(o->retry_min, o->retry_max, 2, (int)e->attempts - 1,
                                            &o->rng);
                set_resend(o, e, now_ms + d);
                emit(o, SB_OUTBOX_EV_TIMEOUT, e, SB_E_TIMEOUT, d);
            }
        }
    }
    for (e = o->inflight.head; e; e = e->next) {
        if (e->expires_at >= 0)
            bound(&exp_min, e->expires_at);
        bound(&due_min, e->due_at);
    }
    o->exp_min = exp_min;
    o->due_min = due_min;
queued:
    if (o->ttl_queued)
        for (int p = 0; p < SB_QUEUE_PRIORITIES; p++)
            for (e = o->queued[p].head; e; e = next) {
                next = e->next;
                if (e->expires_at >= 0 && now_ms >= e->expires_at) {
                    o->stats[SB_OUTBOX_STAT_EXPIRED]++;
                    remove_entry(o, &o->queued[p], e, SB_OUTBOX_EV_EXPIRED, SB_E_EXPIRED, 0, now_ms);
                }
            }
    return (int)o->ev_n;
}

static int encode(sb_outbox *o, const sb_frame *f)
{
    int size = sb_frame_size(f), rc;
    if (size < 0)
        return size;
    rc = out_reserve(&o->out, (size_t)size);
    if (rc < 0)
        return rc;
    o->out.len = (size_t)sb_frame_write(f, o->out.p, o->out.cap);
    return (int)o->out.len;
}

static int transmit(sb_outbox *o, entry *e, double now_ms, int retry)
{
    sb_frame f;
    sb_frame_init(&f, e->kind);
    f.flags = (uint8_t)(e->flags | SB_FRAME_F_ACK_REQ | (retry ? SB_FRAME_F_RETRY : 0));
    f.channel = e->channel;
    f.id = e->kind == SB_FRAME_MESSAGE && !o->message_ids ? 0 : e->id;
    f.seq = e->seq;
    f.corr = e->corr;
    f.payload = e->data;
    f.payload_len = e->len;
    e->attempts++;
    if (e->state == ST_RESEND)
        o->nresend--;
    e->state = ST_AWAIT;
    e->due_at = now_ms + o->ack_timeout;
    bound(&o->due_min, e->due_at);
    if (e->expires_at >= 0)
        bound(&o->exp_min, e->expires_at);
    e->sent_at = now_ms;
    o->stats[SB_OUTBOX_STAT_SENT]++;
    if (retry)
        o->stats[SB_OUTBOX_STAT_RETRIES]++;
    return encode(o, &f);
}

int sb_outbox_next_frame(sb_outbox *o, double now_ms)
{
    entry *e;
    int rc = sb_outbox_poll(o, now_ms);
    if (rc < 0)
        return rc;
    o->out.len = 0;
    if (!o->online)
        return 0;
    /* 1. floors the receiver has not confirmed */
    for (uint32_t i = 0; i < o->nchans; i++) {
        ochan *ch = &o->chans[i];
        if (ch->skip_to && now_ms >= ch->skip_due) {
            sb_frame f;
            sb_frame_init(&f, SB_FRAME_SKIP);
            f.channel = ch->channel;
            f.seq = ch->skip_to;
            ch->skip_due = now_ms + o->ack_timeout;
            return encode(o, &f);
        }
    }
    /* 2. retransmissions that are due, oldest first; the walk starts past
     * the entries it already found awaiting their ack */
    if (o->nresend) {
        int skipping = 1;
        if (!o->rs_ok) {
            o->rs_from = o->inflight.head;
            o->rs_ok = 1;
        }
        for (e = o->rs_from; e; e = e->next) {
            if (e->state != ST_RESEND) {
                if (skipping)
                    o->rs_from = e->next;
                continue;
            }
            if (now_ms >= e->due_at) {
                if (skipping)
                    o->rs_from = e->next;
                return transmit(o, e, now_ms, 1);
            }
            skipping = 0; /* one not due yet: the next walk starts here */
        }
    }
    /* 3. new messages, highest priority first, while the window has room */
    if (o->inflight.n < o->window)
        for (int p = SB_QUEUE_PRIORITIES - 1; p >= 0; p--) {
            ochan *ch;
            e = o->queued[p].head;
            if (!e)
                continue;
            ch = get_chan(o, e->channel, 0);
            if (!ch)
                return SB_E_INTERNAL;
            list_unlink(&o->queued[p], e);
            if (e->expires_at >= 0)
                o->ttl_queued--;
            e->seq = ch->next_seq;
            ch->next_seq = ch->next_seq == 0xffffffffu ? 1 : ch->next_seq + 1;
            list_push(&o->inflight, e);
            return transmit(o, e, now_ms, 0);
        }
    return 0;
}

const uint8_t *sb_outbox_out(const sb_outbox *o)
{
    return o ? o->out.p : NULL;
}

typedef struct range {
    uint32_t lo, hi; /* inclusive */
} range;

int sb_outbox_adopt(sb_outbox *o, uint32_t channel, uint32_t seq)
{
    ochan *ch;
    uint32_t had;
    if (!o || seq == 0xffffffffu)
        return SB_E_INVALID;
    if (!(ch = get_chan(o, channel, 1)))
        return SB_E_TOO_LARGE;
    had = ch->next_seq - 1;
    if (seq <= had)
        return 0;
    /* every entry in flight has a seq below next_seq: the ack that follows
     * (cum = seq) confirms them all */
    ch->next_seq = seq + 1;
    /* Ids too: the state that wrote those seqs gave out ids this one never
     * saw (one per write, plus what it held queued), and a new request that
     * reused one would take the answer to another. */
    o->next_id = (uint32_t)(1 + ((uint64_t)o->next_id - 1 + (seq - had) + o->max_count) % 0x7fffffffu);
    return (int)(seq - had > 0x7fffffffu ? 0x7fffffffu : seq - had);
}

uint32_t sb_outbox_next_id(const sb_outbox *o)
{
    return o ? o->next_id : 0;
}

uint32_t sb_outbox_renumber(sb_outbox *o, uint32_t id)
{
    for (int p = 0; o && p < SB_QUEUE_PRIORITIES; p++)
        for (entry *e = o->queued[p].head; e; e = e->next)
            if (e->id == id) {
                e->id = o->next_id;
                o->next_id = id_after(e->id);
                return e->id;
            }
    return 0;
}

int sb_outbox_ack(sb_outbox *o, uint32_t channel, uint32_t cum, const uint8_t *sack,
                  size_t sack_len, double now_ms)
{
    range rs[MAX_SACK_PARSE];
    int nr = 0, acked = 0;
    uint64_t at = (uint64_t)cum + 1;
    size_t pos = 0;
    uint32_t top = cum;
    ochan *ch;
    entry *e, *next;
    if (!o || (!sack && sack_len))
        return SB_E_INVALID;
    /* Selective ranges: (gap >= 1, length >= 1) varint pairs after cum. */
    while (pos < sack_len) {
        uint64_t gap, len;
        int k = sb_varint_get(sack + pos, sack_len - pos, 0xffffffffu, &gap);
        if (k <= 0 || gap < 1 || nr >= MAX_SACK_PARSE)
            return SB_E_BAD_FRAME;
        pos += (size_t)k;
        k = sb_varint_get(sack + pos, sack_len - pos, 0xffffffffu, &len);
        if (k <= 0 || len < 1)
            return SB_E_BAD_FRAME;
        pos += (size_t)k;
        at += gap;
        if (at + len - 1 > 0xffffffffu)
            return SB_E_BAD_FRAME;
        rs[nr].lo = (uint32_t)at;
        rs[nr].hi = (uint32_t)(at + len - 1);
        top = rs[nr].hi;
        nr++;
        at += len;
    }
    ch = get_chan(o, channel, 0);
    if (!ch)
        return 0; /* nothing was ever sent there */
    /* No further than what was sent: a peer's larger number would make
     * the saved state one that sb_outbox_restore refuses. */
    if (cum > ch->acked)
        ch->acked = cum < ch->next_seq ? cum : ch->next_seq - 1;
    if (ch->skip_to && ch->acked + 1 >= ch->skip_to)
        ch->skip_to = 0;
    for (e = o->inflight.head; e; e = next) {
        int hit;
        next = e->next;
        if (e->channel != channel)
            continue;
        hit = e->seq <= cum;
        for (int i = 0; i < nr && !hit; i++)
            hit = e->seq >= rs[i].lo && e->seq <= rs[i].hi;
        if (hit) {
            double rtt = now_ms - e->sent_at;
            double *srtt = &o->stats[SB_OUTBOX_STAT_RTT];
            *srtt = *srtt < 0 ? rtt : *srtt + (rtt - *srtt) / 8;
            o->stats[SB_OUTBOX_STAT_RTT_LAST] = rtt;
            o->stats[SB_OUTBOX_STAT_ACKED]++;
            acked++;
            remove_entry(o, &o->inflight, e, SB_OUTBOX_EV_ACK, 0, rtt, now_ms);
        } else if (nr && e->seq < top && e->state == ST_AWAIT &&
                   o->stats[SB_OUTBOX_STAT_RTT] >= 0 &&
                   now_ms - e->sent_at >= o->stats[SB_OUTBOX_STAT_RTT]) {
            /* Later seqs arrived and this one did not, a round trip after it
             * left: resend now rather than wait for the timeout. */
            set_resend(o, e, now_ms);
        }
    }
    /* A seq given up on while an earlier one was unconfirmed did not move
     * the floor then; now that the earlier one is acked it may: announce
     * it, or the receiver waits for that seq forever. */
    if (acked) {
        uint32_t fl = chan_floor(o, ch);
        if (fl > ch->acked + 1 && fl > ch->skip_to) {
            ch->skip_to = fl;
            ch->skip_due = now_ms;
        }
    }
    return acked;
}

int sb_outbox_resolve(sb_outbox *o, uint32_t id, double now_ms)
{
    if (!o || !id)
        return SB_E_INVALID;
    for (entry *e = o->inflight.head; e; e = e->next)
        if (e->id == id) {
            o->stats[SB_OUTBOX_STAT_ACKED]++;
            remove_entry(o, &o->inflight, e, SB_OUTBOX_EV_ACK, 0, now_ms - e->sent_at, now_ms);
            return 1;
        }
    return 0; /* acked already, or never sent: only what was sent can be answered */
}

int sb_outbox_drop_over(sb_outbox *o, uint32_t max_len, double now_ms)
{
    int n = 0;
    if (!o)
        return SB_E_INVALID;
    for (int k = -1; k < SB_QUEUE_PRIORITIES; k++) {
        list *l = k < 0 ? &o->inflight : &o->queued[k];
        entry *next;
        for (entry *e = l->head; e; e = next) {
            next = e->next;
            if (e->len > max_len) {
                o->stats[SB_OUTBOX_STAT_DROPS]++;
                remove_entry(o, l, e, SB_OUTBOX_EV_DROP, SB_E_TOO_LARGE, 0, now_ms);
                n++;
            }
        }
    }
    return n;
}

int sb_outbox_on_ack(sb_outbox *o, const uint8_t *frame, uint32_t n, double now_ms)
{
    sb_frame f;
    int rc;
    if (!o)
        return SB_E_INVALID;
    rc = sb_frame_decode(frame, n, ACK_PAYLOAD_CAP, &f);
    if (rc < 0)
        return rc;
    if (f.kind != SB_FRAME_ACK)
        return SB_E_INVALID;
    return sb_outbox_ack(o, f.channel, f.seq, f.payload, f.payload_len, now_ms);
}

double sb_outbox_deadline(const sb_outbox *o)
{
    return sb_outbox_timers_deadline(o, 1);
}

double sb_outbox_timers_deadline(const sb_outbox *o, int sendable)
{
    double d = -1;
    const entry *e;
#define CONSIDER(t)                    \
    do {                               \
        double t_ = (t);               \
        if (d < 0 || t_ < d)           \
            d = t_;                    \
    } while (0)
    if (!o)
        return -1;
    /* The bounds may be early (an entry they came from has gone or moved):
     * an early poll finds nothing due and makes them exact. */
    if (o->inflight.n) {
        if (o->exp_min < 1e300)
            CONSIDER(o->exp_min);
        /* Due times (resends, ack timeouts) are work for a host that can
         * write; one that cannot polls on its own. */
        if (o->online && sendable && o->due_min < 1e300)
            CONSIDER(o->due_min);
    }
    if (o->ttl_queued)
        for (int p = 0; p < SB_QUEUE_PRIORITIES; p++)
            for (e = o->queued[p].head; e; e = e->next)
                if (e->expires_at >= 0)
                    CONSIDER(e->expires_at);
    if (o->online) {
        for (uint32_t i = 0; i < o->nchans; i++)
            if (o->chans[i].skip_to)
                CONSIDER(o->chans[i].skip_due);
        if (sendable && o->inflight.n < o->window)
            for (int p = 0; p < SB_QUEUE_PRIORITIES; p++)
                if (o->queued[p].n) {
                    CONSIDER(0); /* sendable now */
                    break;
                }
    }
#undef CONSIDER
    return d;
}

void sb_outbox_set_online(sb_outbox *o, int online, double now_ms)
{
    if (!o)
        return;
    if (online && !o->online) {
        for (entry *e = o->inflight.head; e; e = e->next) {
            set_resend(o, e, now_ms);
            if (e->attempts)
                e->attempts--; /* the link dropped it, not the peer */
        }
        for (uint32_t i = 0; i < o->nchans; i++)
            o->chans[i].skip_due = now_ms;
    }
    o->online = online ? 1 : 0;
}

void sb_outbox_message_ids(sb_outbox *o, int on)
{
    if (o)
        o->message_ids = on != 0;
}

double sb_outbox_stat(const sb_outbox *o, int which)
{
    if (!o || which < 0 || which >= SB_OUTBOX_STAT_COUNT_)
        return -1;
    switch (which) {
    case SB_OUTBOX_STAT_DEPTH:
        return o->count;
    case SB_OUTBOX_STAT_BYTES:
        return o->bytes;
    case SB_OUTBOX_STAT_IN_FLIGHT:
        return o->inflight.n;
    default:
        return o->stats[which];
    }
}

/* Serialized form (little-endian; docs/protocol.md §9.4):
 *   "SBQ" 0x01, varint next_id, varint nchans, per channel: varint channel,
 *   next_seq, skip_to, acked; varint nentries, per entry: varint id, channel,
 *   seq (0 = not sent yet), corr, attempts; u8 kind, flags, prio; f64
 *   expires_at; varint len; payload. In-flight entries first, in send order,
 *   then queued ones by priority, in queue order. */
int sb_outbox_serialize(sb_outbox *o)
{
    size_t need = 4 + 5 + 5 + (size_t)o->nchans * 20 + 5;
    uint8_t *p;
    int rc;
    if (!o)
        return SB_E_INVALID;
    for (int p2 = -1; p2 < SB_QUEUE_PRIORITIES; p2++)
        for (entry *e = p2 < 0 ? o->inflight.head : o->queued[p2].head; e; e = e->next)
            need += 5 * 5 + 3 + 8 + 5 + e->len;
    if (need > 0x7fffffffu)
        return SB_E_TOO_LARGE;
    rc = out_reserve(&o->out, need);
    if (rc < 0)
        return rc;
    p = o->out.p;
    memcpy(p, "SBQ\x01", 4);
    p += 4;
    p += sb_varint_put(p, o->next_id);
    p += sb_varint_put(p, o->nchans);
    for (uint32_t i = 0; i < o->nchans; i++) {
        p += sb_varint_put(p, o->chans[i].channel);
        p += sb_varint_put(p, o->chans[i].next_seq);
        p += sb_varint_put(p, o->chans[i].skip_to);
        p += sb_varint_put(p, o->chans[i].acked);
    }
    p += sb_varint_put(p, o->count);
    /* inflight first, then queued from the highest priority */
    for (int k = 0; k <= SB_QUEUE_PRIORITIES; k++) {
        const list *l = k == 0 ? &o->inflight : &o->queued[SB_QUEUE_PRIORITIES - k];
        for (const entry *e = l->head; e; e = e->next) {
            p += sb_varint_put(p, e->id);
            p += sb_varint_put(p, e->channel);
            p += sb_varint_put(p, e->state == ST_QUEUED ? 0 : e->seq);
            p += sb_varint_put(p, e->corr);
            p += sb_varint_put(p, e->attempts);
            *p++ = e->kind;
            *p++ = e->flags;
            *p++ = e->prio;
            put_f64(p, e->expires_at);
            p += 8;
            p += sb_varint_put(p, e->len);
            if (e->len)
                memcpy(p, e->data, e->len);
            p += e->len;
        }
    }
    o->out.len = (size_t)(p - o->out.p);
    return (int)o->out.len;
}

int sb_outbox_restore(sb_outbox *o, const uint8_t *blob, uint32_t n, double now_ms)
{
    rd r = {blob, n, 4, 0};
    uint32_t nch, nent, next_id;
    if (!o || (!blob && n))
        return SB_E_INVALID;
    if (o->count || o->nchans)
        return SB_E_BAD_STATE;
    if (n < 4 || memcmp(blob, "SBQ", 3) != 0)
        return SB_E_CORRUPT;
    if (blob[3] != 1)
        return SB_E_BAD_VERSION;
    next_id = rd_u32(&r);
    nch = rd_u32(&r);
    if (r.err)
        return r.err;
    if (next_id == 0 || next_id > 0x7fffffffu)
        return SB_E_CORRUPT;
    if (nch > o->max_channels)
        return SB_E_TOO_LARGE;
    for (uint32_t i = 0; i < nch; i++) {
        uint32_t c = rd_u32(&r), ns = rd_u32(&r), sk = rd_u32(&r), ak = rd_u32(&r);
        ochan *ch;
        if (r.err)
            goto fail;
        if (ns == 0 || get_chan(o, c, 0) || ensure_chan_room(o) < 0 || ak >= ns || sk > ns) {
            r.err = SB_E_CORRUPT;
            goto fail;
        }
        ch = get_chan(o, c, 1);
        ch->next_seq = ns;
        ch->skip_to = sk;
        ch->acked = ak;
        ch->skip_due = now_ms;
    }
    nent = rd_u32(&r);
    if (r.err)
        goto fail;
    if (nent > o->max_count) {
        r.err = SB_E_TOO_LARGE;
        goto fail;
    }
    for (uint32_t i = 0; i < nent; i++) {
        uint32_t id = rd_u32(&r), c = rd_u32(&r), seq = rd_u32(&r), corr = rd_u32(&r),
                 att = rd_u32(&r);
        uint8_t kind = rd_u8(&r), flags = rd_u8(&r), prio = rd_u8(&r);
        double exp = rd_f64(&r);
        uint32_t len = rd_u32(&r);
        entry *e;
        if (r.err)
            goto fail;
        if (kind >= SB_FRAME_KIND_COUNT_ || kind == SB_FRAME_ACK || kind == SB_FRAME_BATCH ||
            kind == SB_FRAME_SKIP ||
            (flags & ~(SB_FRAME_F_LAST | SB_FRAME_F_BINARY | SB_FRAME_F_FROM)) ||
            prio >= SB_QUEUE_PRIORITIES || !get_chan(o, c, 0) || id == 0 ||
            !(exp == -1 || exp >= 0) || len > r.n - r.pos) {
            r.err = SB_E_CORRUPT;
            goto fail;
        }
        if (o->bytes + len > o->max_bytes) {
            r.err = SB_E_TOO_LARGE;
            goto fail;
        }
        e = malloc(sizeof *e + (len ? len : 1));
        if (!e) {
            r.err = SB_E_NO_MEMORY;
            goto fail;
        }
        memset(e, 0, sizeof *e);
        e->id = id;
        e->channel = c;
        e->seq = seq;
        e->corr = corr;
        e->attempts = att;
        e->kind = kind;
        e->flags = flags;
        e->prio = prio;
        e->expires_at = exp;
        e->len = len;
        if (len)
            memcpy(e->data, r.p + r.pos, len);
        r.pos += len;
        if (seq) {
            ochan *ch = get_chan(o, c, 0);
            if (seq >= ch->next_seq) {
                free(e);
                r.err = SB_E_CORRUPT;
                goto fail;
            }
            e->state = ST_AWAIT; /* set_resend counts it */
            list_push(&o->inflight, e);
            set_resend(o, e, now_ms);
            if (e->expires_at >= 0)
                bound(&o->exp_min, e->expires_at);
        } else {
            e->state = ST_QUEUED;
            if (exp >= 0)
                o->ttl_queued++;
            list_push(&o->queued[prio], e);
        }
        o->count++;
        o->bytes += len;
    }
    if (r.pos != r.n) {
        r.err = SB_E_TRAILING_DATA;
        goto fail;
    }
    o->next_id = next_id;
    return (int)nent;
fail:
    /* Leave the outbox empty, as it was. */
    for (int p = 0; p < SB_QUEUE_PRIORITIES; p++)
        free_list(&o->queued[p]);
    free_list(&o->inflight);
    o->count = 0;
    o->ttl_queued = 0;
    o->bytes = 0;
    o->nchans = 0;
    return r.err;
}

/* ======================================================================== */
/* inbox                                                                    */
/* ======================================================================== */

typedef struct rent {
    struct rent *next;
    uint32_t seq, len;
    uint8_t data[];
} rent;

typedef struct ichan {
    uint32_t channel, cum;
    rent *held; /* sorted by seq, all > cum + 1 */
    int ack_pending;
    double ack_due;
} ichan;

struct sb_inbox {
    uint32_t window, max_channels;
    double max_bytes, ack_delay, bytes;
    ichan *chans;
    uint32_t nchans, chans_cap;
    rent *ready, *ready_tail, *cur;
    uint32_t nready;
    sb_frame_view view;
    sb_buf ser; /* the last ack frame or serialization (sb_inbox_out) */
    double stats[SB_INBOX_STAT_COUNT_];
};

size_t sb_inbox_capacity(const sb_inbox *in)
{
    return in ? in->ser.cap : 0;
}

void sb_inbox_trim(sb_inbox *in)
{
    if (in)
        sb_buf_free(&in->ser);
}

sb_inbox *sb_inbox_create(uint32_t window, double max_bytes, uint32_t max_channels,
                          double ack_delay_ms)
{
    sb_inbox *in;
    if (window < 1 || !(max_bytes >= 1) || max_channels < 1 || max_channels > (1u << 20) ||
        !(ack_delay_ms >= 0))
        return NULL;
    in = calloc(1, sizeof *in);
    if (!in)
        return NULL;
    in->window = window;
    in->max_bytes = max_bytes;
    in->max_channels = max_channels;
    in->ack_delay = ack_delay_ms;
    return in;
}

static void free_rents(rent *r)
{
    while (r) {
        rent *n = r->next;
        free(r);
        r = n;
    }
}

void sb_inbox_reset(sb_inbox *in)
{
    if (!in)
        return;
    for (uint32_t i = 0; i < in->nchans; i++)
        for (rent *r = in->chans[i].held; r; r = r->next)
            in->bytes -= r->len;
    for (uint32_t i = 0; i < in->nchans; i++)
        free_rents(in->chans[i].held);
    in->nchans = 0;
    in->stats[SB_INBOX_STAT_HELD] = 0;
}

int sb_inbox_chan_info(const sb_inbox *in, uint32_t i, uint32_t *channel, uint32_t *cum)
{
    if (!in || i >= in->nchans)
        return SB_E_NOT_FOUND;
    *channel = in->chans[i].channel;
    *cum = in->chans[i].cum;
    return SB_OK;
}

void sb_inbox_destroy(sb_inbox *in)
{
    if (!in)
        return;
    sb_inbox_reset(in);
    free_rents(in->ready);
    free(in->cur);
    free(in->chans);
    free(in->ser.p);
    free(in);
}

static ichan *iget(sb_inbox *in, uint32_t channel, int create, int *err)
{
    for (uint32_t i = 0; i < in->nchans; i++)
        if (in->chans[i].channel == channel)
            return &in->chans[i];
    if (!create)
        return NULL;
    if (in->nchans >= in->max_channels) {
        *err = SB_E_TOO_LARGE;
        return NULL;
    }
    if (in->nchans == in->chans_cap) {
        uint32_t cap = in->chans_cap ? in->chans_cap * 2 : 16;
        ichan *p;
        if (cap > in->max_channels)
            cap = in->max_channels;
        p = realloc(in->chans, (size_t)cap * sizeof *p);
        if (!p) {
            *err = SB_E_NO_MEMORY;
            return NULL;
        }
        in->chans = p;
        in->chans_cap = cap;
    }
    memset(&in->chans[in->nchans], 0, sizeof in->chans[0]);
    in->chans[in->nchans].channel = channel;
    return &in->chans[in->nchans++];
}

static rent *make_rent(const uint8_t *frame, uint32_t n, uint32_t seq)
{
    rent *r = malloc(sizeof *r + n);
    if (!r)
        return NULL;
    r->next = NULL;
    r->seq = seq;
    r->len = n;
    memcpy(r->data, frame, n);
    return r;
}

static void make_ready(sb_inbox *in, rent *r)
{
    r->next = NULL;
    if (in->ready_tail)
        in->ready_tail->next = r;
    else
        in->ready = r;
    in->ready_tail = r;
    in->nready++;
    in->stats[SB_INBOX_STAT_DELIVERED]++;
}

/* Move held frames that are now contiguous (or below floor) to ready. */
static void drain_held(sb_inbox *in, ichan *ch, uint32_t floor)
{
    while (ch->held && (ch->held->seq <= floor || ch->held->seq == ch->cum + 1)) {
        rent *r = ch->held;
        ch->held = r->next;
        in->stats[SB_INBOX_STAT_HELD]--;
        if (r->seq > ch->cum)
            ch->cum = r->seq;
        make_ready(in, r);
    }
}

static uint32_t count_ready(const sb_inbox *in)
{
    return in->nready;
}

static void want_ack(sb_inbox *in, ichan *ch, double now_ms)
{
    double due = now_ms + in->ack_delay;
    if (!ch->ack_pending || due < ch->ack_due)
        ch->ack_due = due;
    ch->ack_pending = 1;
}

int sb_inbox_push(sb_inbox *in, const uint8_t *frame, uint32_t n, double now_ms)
{
    sb_frame f;
    ichan *ch;
    rent *r, **pp;
    int rc, err = SB_E_NO_MEMORY;
    size_t cap;
    if (!in)
        return SB_E_INVALID;
    cap = in->max_bytes < 0x7fffffff ? (size_t)in->max_bytes : 0x7fffffff;
    rc = sb_frame_decode(frame, n, cap, &f);
    if (rc < 0)
        return rc;
    if (f.kind == SB_FRAME_ACK || f.kind == SB_FRAME_BATCH)
        return SB_E_INVALID;
    if (f.kind == SB_FRAME_SKIP) {
        if (!f.seq)
            return SB_E_BAD_FRAME;
        ch = iget(in, f.channel, 1, &err);
        if (!ch)
            return err;
        if (f.seq - 1 > ch->cum) {
            uint32_t before = ch->cum, got = 0;
            for (rent *h = ch->held; h && h->seq < f.seq; h = h->next)
                got++;
            drain_held(in, ch, f.seq - 1);
            if (ch->cum < f.seq - 1)
                ch->cum = f.seq - 1;
            in->stats[SB_INBOX_STAT_SKIPPED] += (double)(f.seq - 1 - before - got);
            drain_held(in, ch, 0);
        }
        want_ack(in, ch, now_ms);
        return (int)count_ready(in);
    }
    if (!(f.flags & SB_FRAME_F_ACK_REQ) || !f.seq) {
        /* Not tracked: pass through. */
        if (in->bytes + n > in->max_bytes) {
            in->stats[SB_INBOX_STAT_REFUSED]++;
            return SB_E_QUEUE_FULL;
        }
        r = make_rent(frame, n, 0);
        if (!r)
            return SB_E_NO_MEMORY;
        in->bytes += n;
        make_ready(in, r);
        return (int)count_ready(in);
    }
    ch = iget(in, f.channel, 1, &err);
    if (!ch)
        return err;
    want_ack(in, ch, now_ms);
    if (f.seq <= ch->cum) {
        in->stats[SB_INBOX_STAT_DUPLICATES]++;
        return (int)count_ready(in);
    }
    for (pp = &ch->held; *pp && (*pp)->seq < f.seq; pp = &(*pp)->next)
        ;
    if (*pp && (*pp)->seq == f.seq) {
        in->stats[SB_INBOX_STAT_DUPLICATES]++;
        return (int)count_ready(in);
    }
    if (f.seq - ch->cum > in->window || in->bytes + n > in->max_bytes) {
        /* Not acked: the sender keeps it and tries again later. */
        in->stats[SB_INBOX_STAT_REFUSED]++;
        return (int)count_ready(in);
    }
    r = make_rent(frame, n, f.seq);
    if (!r)
        return SB_E_NO_MEMORY;
    in->bytes += n;
    if (f.seq == ch->cum + 1) {
        ch->cum = f.seq;
        make_ready(in, r);
        drain_held(in, ch, 0);
    } else {
        r->next = *pp;
        *pp = r;
        in->stats[SB_INBOX_STAT_HELD]++;
    }
    return (int)count_ready(in);
}

int sb_inbox_next(sb_inbox *in)
{
    sb_frame f;
    if (!in)
        return SB_E_INVALID;
    if (in->cur) {
        in->bytes -= in->cur->len;
        free(in->cur);
        in->cur = NULL;
    }
    if (!in->ready)
        return 0;
    in->cur = in->ready;
    in->ready = in->cur->next;
    in->nready--;
    if (!in->ready)
        in->ready_tail = NULL;
    if (sb_frame_decode(in->cur->data, in->cur->len, 0x7fffffff, &f) < 0)
        return SB_E_INTERNAL;
    in->view.kind = f.kind;
    in->view.flags = f.flags;
    in->view.channel = f.channel;
    in->view.id = f.id;
    in->view.seq = f.seq;
    in->view.corr = f.corr;
    in->view.payload_off = (uint32_t)(f.payload - in->cur->data);
    in->view.payload_len = (uint32_t)f.payload_len;
    in->view.deadline = f.deadline;
    return 1;
}

const sb_frame_view *sb_inbox_view(const sb_inbox *in)
{
    return in ? &in->view : NULL;
}

const uint8_t *sb_inbox_frame(const sb_inbox *in)
{
    return (in && in->cur) ? in->cur->data : NULL;
}

uint32_t sb_inbox_frame_len(const sb_inbox *in)
{
    return (in && in->cur) ? in->cur->len : 0;
}

int sb_inbox_take_ack(sb_inbox *in, double now_ms)
{
    if (!in)
        return SB_E_INVALID;
    for (uint32_t i = 0; i < in->nchans; i++) {
        ichan *ch = &in->chans[i];
        uint8_t sack[MAX_SACK_RANGES * 10];
        size_t sl = 0;
        int nr = 0;
        uint32_t prev_end;
        sb_frame f;
        int rc;
        if (!ch->ack_pending || now_ms < ch->ack_due)
            continue;
        if ((rc = out_reserve(&in->ser, SB_FRAME_MAX_HEADER + sizeof sack)) < 0)
            return rc;
        /* Runs of held seqs as (gap, length) pairs. */
        prev_end = ch->cum + 1; /* first seq not covered so far */
        for (rent *h = ch->held; h && nr < MAX_SACK_RANGES;) {
            uint32_t lo = h->seq, hi = h->seq;
            while (h->next && h->next->seq == hi + 1) {
                h = h->next;
                hi++;
            }
            h = h->next;
            sl += sb_varint_put(sack + sl, lo - prev_end);
            sl += sb_varint_put(sack + sl, hi - lo + 1);
            prev_end = hi + 1;
            nr++;
        }
        sb_frame_init(&f, SB_FRAME_ACK);
        f.channel = ch->channel;
        f.seq = ch->cum;
        f.payload = sack;
        f.payload_len = sl;
        ch->ack_pending = 0;
        in->stats[SB_INBOX_STAT_ACKS]++;
        return sb_frame_write(&f, in->ser.p, in->ser.cap);
    }
    return 0;
}

const uint8_t *sb_inbox_out(const sb_inbox *in)
{
    return in ? in->ser.p : NULL;
}

double sb_inbox_deadline(const sb_inbox *in)
{
    double d = -1;
    if (!in)
        return -1;
    for (uint32_t i = 0; i < in->nchans; i++)
        if (in->chans[i].ack_pending && (d < 0 || in->chans[i].ack_due < d))
            d = in->chans[i].ack_due;
    return d;
}

double sb_inbox_stat(const sb_inbox *in, int which)
{
    if (!in || which < 0 || which >= SB_INBOX_STAT_COUNT_)
        return -1;
    return in->stats[which];
}

/* "SBI" 0x01, varint nchans, per channel: varint channel, cum, nheld, per
 * held frame: varint len, bytes; then varint nready, per undelivered frame:
 * varint len, bytes. Held frames were already acked selectively, so a
 * restart must keep them or they would be lost. */
int sb_inbox_serialize(sb_inbox *in)
{
    size_t need = 4 + 5 + 5;
    uint8_t *p;
    int rc;
    if (!in)
        return SB_E_INVALID;
    for (uint32_t i = 0; i < in->nchans; i++) {
        need += 15;
        for (const rent *h = in->chans[i].held; h; h = h->next)
            need += 5 + h->len;
    }
    for (const rent *r = in->ready; r; r = r->next)
        need += 5 + r->len;
    if (need > 0x7fffffffu)
        return SB_E_TOO_LARGE;
    rc = out_reserve(&in->ser, need);
    if (rc < 0)
        return rc;
    p = in->ser.p;
    memcpy(p, "SBI\x01", 4);
    p += 4;
    p += sb_varint_put(p, in->nchans);
    for (uint32_t i = 0; i < in->nchans; i++) {
        uint32_t nheld = 0;
        for (const rent *h = in->chans[i].held; h; h = h->next)
            nheld++;
        p += sb_varint_put(p, in->chans[i].channel);
        p += sb_varint_put(p, in->chans[i].cum);
        p += sb_varint_put(p, nheld);
        for (const rent *h = in->chans[i].held; h; h = h->next) {
            p += sb_varint_put(p, h->len);
            memcpy(p, h->data, h->len);
            p += h->len;
        }
    }
    p += sb_varint_put(p, in->nready);
    for (const rent *r = in->ready; r; r = r->next) {
        p += sb_varint_put(p, r->len);
        memcpy(p, r->data, r->len);
        p += r->len;
    }
    in->ser.len = (size_t)(p - in->ser.p);
    return (int)in->ser.len;
}

/* Validate one stored frame and copy it; seq_min: held frames must be
 * tracked and beyond the gap, in increasing order. */
static rent *restore_frame(sb_inbox *in, rd *r, const ichan *ch, uint32_t seq_min)
{
    uint32_t len = rd_u32(r);
    sb_frame f;
    rent *e;
    if (r->err)
        return NULL;
    if (len > r->n - r->pos || in->bytes + len > in->max_bytes) {
        r->err = len > r->n - r->pos ? SB_E_CORRUPT : SB_E_TOO_LARGE;
        return NULL;
    }
    if (sb_frame_decode(r->p + r->pos, len, len, &f) != (int)len || f.kind == SB_FRAME_ACK ||
        f.kind == SB_FRAME_BATCH || f.kind == SB_FRAME_SKIP ||
        (ch && (f.channel != ch->channel || !(f.flags & SB_FRAME_F_ACK_REQ) || f.seq < seq_min))) {
        r->err = SB_E_CORRUPT;
        return NULL;
    }
    e = make_rent(r->p + r->pos, len, f.seq);
    if (!e) {
        r->err = SB_E_NO_MEMORY;
        return NULL;
    }
    r->pos += len;
    in->bytes += len;
    return e;
}

int sb_inbox_restore(sb_inbox *in, const uint8_t *blob, uint32_t n)
{
    rd r = {blob, n, 4, 0};
    uint32_t nch, nready;
    int err = SB_E_NO_MEMORY;
    if (!in || (!blob && n))
        return SB_E_INVALID;
    if (in->nchans || in->ready || in->cur)
        return SB_E_BAD_STATE;
    if (n < 4 || memcmp(blob, "SBI", 3) != 0)
        return SB_E_CORRUPT;
    if (blob[3] != 1)
        return SB_E_BAD_VERSION;
    nch = rd_u32(&r);
    if (r.err)
        return r.err;
    if (nch > in->max_channels)
        return SB_E_TOO_LARGE;
    for (uint32_t i = 0; i < nch && !r.err; i++) {
        uint32_t c = rd_u32(&r), cum = rd_u32(&r), nheld = rd_u32(&r);
        ichan *ch;
        rent **tail;
        uint32_t next_min;
        if (r.err)
            break;
        /* Held frames lie beyond cum + 1; with none, any cum is valid (a
         * peer may have named the top of the seq space). */
        if (iget(in, c, 0, &err) || nheld > in->window ||
            (nheld && (uint64_t)cum + 2 > 0xffffffffu)) {
            r.err = SB_E_CORRUPT;
            break;
        }
        ch = iget(in, c, 1, &err);
        if (!ch) {
            r.err = err;
            break;
        }
        ch->cum = cum;
        tail = &ch->held;
        next_min = cum + 2;
        for (uint32_t k = 0; k < nheld; k++) {
            rent *e = restore_frame(in, &r, ch, next_min);
            if (!e)
                break;
            *tail = e;
            tail = &e->next;
            in->stats[SB_INBOX_STAT_HELD]++;
            if (e->seq == 0xffffffffu) {
                r.err = k + 1 < nheld ? SB_E_CORRUPT : 0;
                break;
            }
            next_min = e->seq + 1;
        }
    }
    nready = rd_u32(&r);
    for (uint32_t k = 0; k < nready && !r.err; k++) {
        rent *e = restore_frame(in, &r, NULL, 0);
        if (e)
            make_ready(in, e);
    }
    if (!r.err && r.pos != n)
        r.err = SB_E_TRAILING_DATA;
    if (r.err) {
        /* Leave the inbox empty, as it was. */
        sb_inbox_reset(in);
        free_rents(in->ready);
        in->ready = in->ready_tail = NULL;
        in->nready = 0;
        in->bytes = 0;
        memset(in->stats, 0, sizeof in->stats);
        return r.err;
    }
    /* Restoring is not delivering. */
    in->stats[SB_INBOX_STAT_DELIVERED] = 0;
    return (int)nch;
}
