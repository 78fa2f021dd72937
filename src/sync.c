/* sync — see sync.h and docs/tabs.md (wire format and GC rule). */
#include "sync.h"
#include "buf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

#define WALL_MAX ((uint64_t)1 << 53)
#define CAP_LIMIT (1u << 20) /* sanity bound on every count cap */
#define SKEW_DEFAULT 86400000u /* 24 h: how far ahead of now a remote stamp may be */

typedef struct hlc {
    uint64_t wall;
    uint32_t ctr;
} hlc;

typedef struct entry {
    uint8_t *kv; /* key bytes then value bytes */
    uint32_t klen, vlen, hash;
    sb_sync_ts ts;
    uint32_t seq; /* dot = (ts.rid, seq); 0 while a local write awaits flush */
    uint8_t used, tomb, dirty, mark;
} entry;

typedef struct peer {
    uint32_t id;
    uint32_t vv;       /* every write of this peer with seq <= vv is absorbed */
    uint64_t window;   /* bit i: seq vv+1+i absorbed (out of order) */
    uint32_t last_seq; /* highest seq absorbed and its stamp */
    hlc last_ts;
    uint32_t adv_seq;  /* highest seq the peer said it has sent */
    hlc complete;      /* we hold all of its writes stamped <= complete */
    hlc stable;        /* the stable point it last reported */
    uint8_t live, gone;
    uint64_t touched;  /* for evicting departed peers (logical time) */
} peer;


/* The policy's times (sb_sync.at): when each is due. */
enum {
    T_JOIN,   /* the join wait runs out */
    T_REQ,    /* a deferred repair request */
    T_DIGEST, /* the next digest */
    T_SAVE,   /* the leader's save */
    T_FLUSH,  /* pending local writes */
    T_ANSWER, /* a snapshot for those who asked */
    T_CLOSE,  /* the last flush and save */
    T_ASKED,  /* when the last request went out (not a deadline) */
    T_N_
};

struct sb_sync {
    uint32_t id;
    uint32_t max_keys, max_key, max_value, max_tomb, max_peers;
    size_t max_msg;
    size_t max_bytes, bytes; /* key + value bytes held (tombstones: the key) */
    uint64_t max_skew, now; /* now: wall clock of the merge in progress */
    int skewed;             /* remote stamps the last merge ignored */
    hlc clock;
    uint32_t own_seq;
    entry *tab;
    size_t tab_cap; /* power of two */
    uint32_t count, ndirty, ntomb;
    /* Slots written locally since the last flush, so a flush does not scan
     * the table (may hold stale or repeated slots: flush re-checks each;
     * on overflow flush falls back to a scan). */
    uint32_t *dirty;
    uint32_t ndirty_list, dirty_cap;
    int dirty_overflow;
    peer *peers;
    uint32_t npeers;
    uint64_t tick;
    sb_buf out, payload, changes;
    int nchanges;
    int last_type;
    uint32_t last_origin;
    /* The policy (sb_sync_start): times on the caller's clock, INFINITY
     * when not armed, so a shift moves every one of them alike. */
    double pnow, digest_ms, batch_ms, at[T_N_];
    uint32_t leader;
    uint8_t phase, persist, out_kind, events;
};

/* ---- small helpers ------------------------------------------------------ */

static int hlc_cmp(hlc a, hlc b)
{
    if (a.wall != b.wall)
        return a.wall < b.wall ? -1 : 1;
    if (a.ctr != b.ctr)
        return a.ctr < b.ctr ? -1 : 1;
    return 0;
}

static hlc hlc_max(hlc a, hlc b)
{
    return hlc_cmp(a, b) >= 0 ? a : b;
}

static hlc ts_hlc(const sb_sync_ts *t)
{
    hlc h = {t->wall, t->ctr};
    return h;
}

int sb_sync_ts_cmp(const sb_sync_ts *a, const sb_sync_ts *b)
{
    int c = hlc_cmp(ts_hlc(a), ts_hlc(b));
    if (c)
        return c;
    if (a->rid != b->rid)
        return a->rid < b->rid ? -1 : 1;
    return 0;
}

static uint64_t wall_of(double now_ms)
{
    if (!(now_ms > 0))
        return 0;
    if (now_ms >= (double)WALL_MAX)
        return WALL_MAX;
    return (uint64_t)now_ms;
}

/* Local event: strictly above everything this replica has stamped or seen. */
static hlc clock_tick(sb_sync *s, double now_ms)
{
    uint64_t w = wall_of(now_ms);
    if (w > s->clock.wall) {
        s->clock.wall = w;
        s->clock.ctr = 0;
    } else if (s->clock.ctr == UINT32_MAX) {
        s->clock.wall++;
        s->clock.ctr = 0;
    } else {
        s->clock.ctr++;
    }
    return s->clock;
}

static void clock_seen(sb_sync *s, hlc remote)
{
    s->clock = hlc_max(s->clock, remote);
}

/* May a remote stamp enter our clock? Not if it is more than max_skew ahead
 * of our wall clock (one crafted message must not drag every tab's clock to
 * the end of its range), and never at the top of the range, so the next
 * local tick still encodes. A refused stamp is counted (sb_sync_skewed). */
static int stamp_ok(sb_sync *s, uint64_t wall)
{
    if (wall < WALL_MAX && wall <= s->now + s->max_skew)
        return 1;
    s->skewed++;
    return 0;
}

static uint32_t hash_key(const uint8_t *k, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ k[i]) * 16777619u;
    return h;
}

static void put_u8(sb_buf *b, uint8_t v)
{
    b->p[b->len++] = v;
}

static void put_var(sb_buf *b, uint64_t v)
{
    b->len += sb_varint_put(b->p + b->len, v);
}

static void put_bytes(sb_buf *b, const uint8_t *p, size_t n)
{
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

/* ---- reader over untrusted bytes ------------------------------------------ */

typedef struct rd {
    const uint8_t *p;
    size_t n, pos;
    int err;
} rd;

static uint64_t rd_var(rd *r, uint64_t max)
{
    uint64_t v = 0;
    int k;
    if (r->err)
        return 0;
    k = sb_varint_get(r->p + r->pos, r->n - r->pos, max, &v);
    if (k == 0) {
        r->err = SB_E_TRUNCATED;
        return 0;
    }
    if (k < 0) {
        r->err = SB_E_BAD_FRAME;
        return 0;
    }
    r->pos += (size_t)k;
    return v;
}

/* A count or length against one of our caps: over it is TOO_LARGE, not malformed. */
static uint64_t rd_cap(rd *r, uint64_t cap)
{
    uint64_t v = rd_var(r, UINT64_MAX);
    if (!r->err && v > cap) {
        r->err = SB_E_TOO_LARGE;
        return 0;
    }
    return v;
}

static uint8_t rd_u8(rd *r)
{
    if (r->err)
        return 0;
    if (r->pos >= r->n) {
        r->err = SB_E_TRUNCATED;
        return 0;
    }
    return r->p[r->pos++];
}

static const uint8_t *rd_bytes(rd *r, size_t len)
{
    const uint8_t *p;
    if (r->err)
        return NULL;
    if (len > r->n - r->pos) {
        r->err = SB_E_TRUNCATED;
        return NULL;
    }
    p = r->p + r->pos;
    r->pos += len;
    return p;
}

/* ---- hash table (linear probing, backward-shift delete) --------------------- */

static entry *find(const sb_sync *s, const uint8_t *key, size_t klen, uint32_t h)
{
    size_t mask = s->tab_cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        entry *e = &s->tab[i];
        if (!e->used)
            return NULL;
        if (e->hash == h && e->klen == klen && memcmp(e->kv, key, klen) == 0)
            return e;
    }
}

/* Slot for a new key (caller checked the caps, so the table has room). */
static entry *insert_slot(sb_sync *s, uint32_t h)
{
    size_t mask = s->tab_cap - 1;
    size_t i = h & mask;
    while (s->tab[i].used)
        i = (i + 1) & mask;
    return &s->tab[i];
}

static void remove_entry(sb_sync *s, entry *e)
{
    size_t mask = s->tab_cap - 1;
    size_t i = (size_t)(e - s->tab);
    if (e->tomb)
        s->ntomb--;
    else
        s->count--;
    s->bytes -= (size_t)e->klen + e->vlen;
    free(e->kv);
    memset(e, 0, sizeof *e);
    /* Pull later members of the probe run back so lookups never stop early. */
    for (size_t j = (i + 1) & mask; s->tab[j].used; j = (j + 1) & mask) {
        size_t home = s->tab[j].hash & mask;
        int movable = (i <= j) ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            if (s->tab[j].dirty)
                for (uint32_t d = 0; d < s->ndirty_list; d++)
                    if (s->dirty[d] == j)
                        s->dirty[d] = (uint32_t)i;
            s->tab[i] = s->tab[j];
            memset(&s->tab[j], 0, sizeof s->tab[j]);
            i = j;
        }
    }
}

/* ---- peers ----------------------------------------------------------------- */

static peer *peer_find(sb_sync *s, uint32_t id)
{
    for (uint32_t i = 0; i < s->npeers; i++)
        if (s->peers[i].id == id)
            return &s->peers[i];
    return NULL;
}

/* Find or add; a full table evicts the longest-idle departed peer. */
static peer *peer_get(sb_sync *s, uint32_t id)
{
    peer *p = peer_find(s, id);
    if (!p) {
        if (s->npeers == s->max_peers) {
            peer *victim = NULL;
            for (uint32_t i = 0; i < s->npeers; i++) {
                peer *q = &s->peers[i];
                if (!q->live && (!victim || q->touched < victim->touched))
                    victim = q;
            }
            if (!victim)
                return NULL;
            *victim = s->peers[--s->npeers];
        }
        p = &s->peers[s->npeers++];
        memset(p, 0, sizeof *p);
        p->id = id;
    }
    p->touched = ++s->tick;
    return p;
}

static void peer_alive(peer *p)
{
    if (!p->gone)
        p->live = 1;
}

static int covered(const sb_sync *s, uint32_t rid, uint32_t seq)
{
    const peer *p;
    if (rid == s->id)
        return seq <= s->own_seq;
    p = peer_find((sb_sync *)s, rid);
    if (!p)
        return 0;
    if (seq <= p->vv)
        return 1;
    return seq - p->vv - 1 < 64 && (p->window >> (seq - p->vv - 1) & 1);
}

static void peer_advance(peer *p)
{
    while (p->window & 1) {
        p->vv++;
        p->window >>= 1;
    }
    if (p->last_seq <= p->vv)
        p->complete = hlc_max(p->complete, p->last_ts);
}

static void peer_raise_vv(peer *p, uint32_t vv)
{
    if (vv <= p->vv)
        return;
    uint32_t shift = vv - p->vv;
    p->window = shift >= 64 ? 0 : p->window >> shift;
    p->vv = vv;
    peer_advance(p);
}

/* Record that write (p, seq) stamped ts is absorbed. */
static void peer_mark(peer *p, uint32_t seq, hlc ts)
{
    if (seq > p->last_seq) {
        p->last_seq = seq;
        p->last_ts = ts;
    }
    if (seq > p->adv_seq)
        p->adv_seq = seq;
    /* Further ahead than the window: left for a snapshot to repair. */
    if (seq > p->vv && seq - p->vv - 1 < 64)
        p->window |= (uint64_t)1 << (seq - p->vv - 1);
    peer_advance(p);
}

/* ---- create / destroy ------------------------------------------------------ */

sb_sync *sb_sync_create(uint32_t replica_id, uint32_t max_keys, uint32_t max_key_len,
                        uint32_t max_value_len, uint32_t max_tombstones, uint32_t max_peers)
{
    sb_sync *s;
    size_t slots = 16, per;
    if (!replica_id || !max_keys || !max_key_len || !max_peers || max_keys > CAP_LIMIT ||
        max_tombstones > CAP_LIMIT || max_peers > 65536 || max_key_len > (1u << 16) ||
        max_value_len > (64u << 20))
        return NULL;
    s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->id = replica_id;
    s->max_keys = max_keys;
    s->max_key = max_key_len;
    s->max_value = max_value_len;
    s->max_tomb = max_tombstones;
    s->max_peers = max_peers;
    while (slots < 2 * ((size_t)max_keys + max_tombstones))
        slots *= 2;
    s->tab_cap = slots;
    s->tab = calloc(slots, sizeof *s->tab);
    s->dirty_cap = max_keys + max_tombstones;
    s->dirty = calloc(s->dirty_cap ? s->dirty_cap : 1, sizeof *s->dirty);
    s->peers = calloc(max_peers, sizeof *s->peers);
    /* Largest legitimate message: a full snapshot at every cap. */
    per = (size_t)max_key_len + max_value_len + 48;
    s->max_msg = ((size_t)max_keys + max_tombstones) * per + (size_t)max_peers * 40 + 64;
    if (s->max_msg > (1u << 30))
        s->max_msg = 1u << 30;
    s->max_bytes = s->max_msg;
    s->max_skew = SKEW_DEFAULT;
    /* Nothing armed until sb_sync_start (nor after a close that comes first). */
    for (int i = 0; i < T_N_; i++)
        s->at[i] = INFINITY;
    s->at[T_ASKED] = -INFINITY;
    if (!s->tab || !s->peers || !s->dirty) {
        sb_sync_destroy(s);
        return NULL;
    }
    return s;
}

int sb_sync_limits(sb_sync *s, uint32_t max_bytes, uint32_t max_skew_ms)
{
    size_t msg;
    if (!s || !max_bytes || max_bytes > (1u << 30))
        return SB_E_INVALID;
    s->max_bytes = max_bytes;
    s->max_skew = max_skew_ms;
    /* A full snapshot: the bytes, then per entry its stamp, dot and lengths. */
    msg = max_bytes + ((size_t)s->max_keys + s->max_tomb) * 48 + (size_t)s->max_peers * 40 + 64;
    if (msg < s->max_msg)
        s->max_msg = msg;
    return (int)s->max_msg;
}

int sb_sync_skewed(const sb_sync *s)
{
    return s ? s->skewed : 0;
}

void sb_sync_destroy(sb_sync *s)
{
    if (!s)
        return;
    if (s->tab)
        for (size_t i = 0; i < s->tab_cap; i++)
            free(s->tab[i].kv);
    free(s->tab);
    free(s->dirty);
    free(s->peers);
    free(s->out.p);
    free(s->payload.p);
    free(s->changes.p);
    free(s);
}

/* ---- applying one write ----------------------------------------------------- */

static int record_change(sb_sync *s, const entry *e)
{
    int rc = sb_buf_reserve(&s->changes, 1 + 10 + e->klen + 10 + e->vlen);
    if (rc)
        return rc;
    put_u8(&s->changes, e->tomb ? SB_SYNC_CH_DELETED : 0);
    put_var(&s->changes, e->klen);
    put_bytes(&s->changes, e->kv, e->klen);
    put_var(&s->changes, e->tomb ? 0 : e->vlen);
    if (!e->tomb)
        put_bytes(&s->changes, e->kv + e->klen, e->vlen);
    s->nchanges++;
    return 0;
}

/* Last-writer-wins: install (ts, seq, value) for key unless what we hold is
 * newer. Returns 1 if the entry changed, 0 if not, or an sb_err (caps). */
static int apply(sb_sync *s, const uint8_t *key, size_t klen, const sb_sync_ts *ts, uint32_t seq,
                 int tomb, const uint8_t *val, size_t vlen, int report)
{
    uint32_t h = hash_key(key, klen);
    entry *e = find(s, key, klen, h);
    int was_live, same;
    uint8_t *kv;
    if (tomb)
        vlen = 0;
    if (e && sb_sync_ts_cmp(&e->ts, ts) >= 0)
        return 0;
    if (!e && tomb && s->ntomb >= s->max_tomb)
        return SB_E_TOO_LARGE;
    if (!e && !tomb && s->count >= s->max_keys)
        return SB_E_TOO_LARGE;
    if (e && e->tomb && !tomb && s->count >= s->max_keys)
        return SB_E_TOO_LARGE;
    if (e && !e->tomb && tomb && s->ntomb >= s->max_tomb)
        return SB_E_TOO_LARGE;
    if (s->bytes - (e ? (size_t)e->klen + e->vlen : 0) + klen + vlen > s->max_bytes)
        return SB_E_TOO_LARGE;
    was_live = e && !e->tomb;
    same = was_live && !tomb && e->vlen == vlen && memcmp(e->kv + e->klen, val, vlen) == 0;
    kv = malloc(klen + vlen + 1);
    if (!kv)
        return SB_E_NO_MEMORY;
    memcpy(kv, key, klen);
    if (vlen)
        memcpy(kv + klen, val, vlen);
    if (!e) {
        e = insert_slot(s, h);
        e->used = 1;
        e->hash = h;
        e->tomb = 1; /* counted below as a transition from "absent" */
        s->ntomb++;
    } else {
        s->bytes -= (size_t)e->klen + e->vlen;
        free(e->kv);
        if (e->dirty)
            s->ndirty--; /* an unsent local write, superseded: never sent */
    }
    if (e->tomb && !tomb) {
        s->ntomb--;
        s->count++;
    } else if (!e->tomb && tomb) {
        s->count--;
        s->ntomb++;
    }
    s->bytes += klen + vlen;
    e->kv = kv;
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)vlen;
    e->ts = *ts;
    e->seq = seq;
    e->tomb = (uint8_t)tomb;
    e->dirty = 0;
    if (report && !same && (was_live || !tomb))
        return record_change(s, e) ? SB_E_NO_MEMORY : 1;
    return 1;
}

/* ---- local writes ------------------------------------------------------------- */

static double policy_now(sb_sync *s, double now_ms);
static void arm_persist(sb_sync *s);
static void policy_merged(sb_sync *s, int type, uint32_t origin);

static int local_write(sb_sync *s, double now_ms, const uint8_t *key, uint32_t klen,
                       const uint8_t *val, uint32_t vlen, int tomb)
{
    sb_sync_ts ts;
    hlc c;
    uint32_t h;
    entry *e;
    int rc;
    if (!s || !key || !klen || (!val && vlen))
        return SB_E_INVALID;
    if (klen > s->max_key || vlen > s->max_value)
        return SB_E_TOO_LARGE;
    h = hash_key(key, klen);
    e = find(s, key, klen, h);
    if (tomb && (!e || e->tomb))
        return 0;
    if (tomb && s->ntomb >= s->max_tomb) {
        sb_sync_gc(s);
        if (s->ntomb >= s->max_tomb)
            return SB_E_TOO_LARGE;
    }
    if (!tomb && (!e || e->tomb) && s->count >= s->max_keys)
        return SB_E_TOO_LARGE;
    c = clock_tick(s, now_ms);
    ts.wall = c.wall;
    ts.ctr = c.ctr;
    ts.rid = s->id;
    rc = apply(s, key, klen, &ts, 0, tomb, val, vlen, 0);
    if (rc < 0)
        return rc;
    e = find(s, key, klen, h);
    if (e && !e->dirty) {
        if (!s->ndirty) /* the batch delay counts from the first write */
            s->at[T_FLUSH] = policy_now(s, now_ms) + s->batch_ms;
        e->dirty = 1;
        s->ndirty++;
        if (s->ndirty_list < s->dirty_cap)
            s->dirty[s->ndirty_list++] = (uint32_t)(e - s->tab);
        else
            s->dirty_overflow = 1;
    }
    return tomb ? 1 : 0;
}

int sb_sync_set(sb_sync *s, double now_ms, const uint8_t *key, uint32_t klen, const uint8_t *val,
                uint32_t vlen)
{
    return local_write(s, now_ms, key, klen, val, vlen, 0);
}

int sb_sync_delete(sb_sync *s, double now_ms, const uint8_t *key, uint32_t klen)
{
    return local_write(s, now_ms, key, klen, NULL, 0, 1);
}

int sb_sync_pending(const sb_sync *s)
{
    return s ? (int)s->ndirty : 0;
}

/* ---- encoding --------------------------------------------------------------------- */

static int payload_begin(sb_sync *s, int type, size_t body)
{
    s->payload.len = 0;
    if (sb_buf_reserve(&s->payload, body + 16))
        return SB_E_NO_MEMORY;
    put_u8(&s->payload, (uint8_t)type);
    put_var(&s->payload, s->id);
    return 0;
}

/* Wrap the payload in a STATE_OP frame in s->out. */
static int frame_out(sb_sync *s)
{
    sb_frame f;
    int n;
    sb_frame_init(&f, SB_FRAME_STATE_OP);
    f.flags = SB_FRAME_F_BINARY;
    f.payload = s->payload.p;
    f.payload_len = s->payload.len;
    n = sb_frame_size(&f);
    if (n < 0)
        return n;
    s->out.len = 0;
    if (sb_buf_reserve(&s->out, (size_t)n))
        return SB_E_NO_MEMORY;
    n = sb_frame_write(&f, s->out.p, s->out.cap);
    if (n >= 0)
        s->out.len = (size_t)n;
    return n;
}

static size_t entry_wire_max(const entry *e)
{
    return 4 * 10 + 1 + 2 * 5 + e->klen + e->vlen;
}

static void put_entry_value(sb_buf *b, const entry *e)
{
    put_u8(b, e->tomb);
    put_var(b, e->klen);
    put_bytes(b, e->kv, e->klen);
    if (!e->tomb) {
        put_var(b, e->vlen);
        put_bytes(b, e->kv + e->klen, e->vlen);
    }
}

/* Heapsort by stamp, in place: O(n log n) for a dirty list in any order,
 * and small (libc's qsort, a smoothsort, is 0.4 KB gzipped of the tabs core).
 * Stamps are unique, so stability does not matter. */
static void sort_by_ts(entry **a, size_t n)
{
    for (size_t end = n, i = n / 2; end > 1;) {
        size_t r;
        entry *t;
        if (i > 0) {
            r = --i; /* building the heap */
        } else {
            t = a[--end]; /* the latest to the end */
            a[end] = a[0];
            a[0] = t;
            r = 0;
        }
        for (size_t c; (c = 2 * r + 1) < end; r = c) {
            if (c + 1 < end && sb_sync_ts_cmp(&a[c]->ts, &a[c + 1]->ts) < 0)
                c++;
            if (sb_sync_ts_cmp(&a[r]->ts, &a[c]->ts) >= 0)
                break;
            t = a[r];
            a[r] = a[c];
            a[c] = t;
        }
    }
}

int sb_sync_flush(sb_sync *s)
{
    entry **list;
    size_t n = 0, body = 10;
    int rc;
    if (!s)
        return SB_E_INVALID;
    if (!s->ndirty) {
        s->ndirty_list = 0; /* only superseded writes were listed */
        s->dirty_overflow = 0;
        return 0;
    }
    list = malloc(s->ndirty * sizeof *list);
    if (!list)
        return SB_E_NO_MEMORY;
    if (s->dirty_overflow) {
        for (size_t i = 0; i < s->tab_cap && n < s->ndirty; i++)
            if (s->tab[i].used && s->tab[i].dirty) {
                list[n++] = &s->tab[i];
                body += entry_wire_max(&s->tab[i]);
            }
    } else {
        for (uint32_t d = 0; d < s->ndirty_list && n < s->ndirty; d++) {
            entry *e = &s->tab[s->dirty[d]];
            if (e->used && e->dirty) {
                e->dirty = 0; /* listed twice: take it once */
                list[n++] = e;
                body += entry_wire_max(e);
            }
        }
    }
    s->ndirty_list = 0;
    s->dirty_overflow = 0;
    if (n != s->ndirty) {
        free(list);
        return SB_E_INTERNAL;
    }
    /* Sequence numbers follow stamp order, so "all writes up to seq k" is
     * also "all writes up to the stamp of k" (the GC rule relies on it). */
    sort_by_ts(list, n);
    rc = payload_begin(s, SB_SYNC_OPS, body);
    if (rc) {
        for (size_t i = 0; i < n; i++)
            list[i]->dirty = 1; /* still owed: the next flush scans for them */
        s->dirty_overflow = 1;
        free(list);
        return rc;
    }
    put_var(&s->payload, n);
    for (size_t i = 0; i < n; i++) {
        entry *e = list[i];
        e->seq = ++s->own_seq;
        e->dirty = 0;
        put_var(&s->payload, e->seq);
        put_var(&s->payload, e->ts.wall);
        put_var(&s->payload, e->ts.ctr);
        put_entry_value(&s->payload, e);
    }
    s->ndirty = 0;
    free(list);
    s->at[T_FLUSH] = INFINITY;
    s->events |= SB_SYNC_EV_FLUSHED;
    arm_persist(s);
    return frame_out(s);
}

/* Our own stable point: every live origin's writes up to it are here. */
static hlc self_stable(const sb_sync *s)
{
    hlc m = s->clock;
    for (uint32_t i = 0; i < s->npeers; i++)
        if (s->peers[i].live && hlc_cmp(s->peers[i].complete, m) < 0)
            m = s->peers[i].complete;
    return m;
}

int sb_sync_snapshot(sb_sync *s, double now_ms)
{
    size_t body = 64 + (size_t)s->npeers * 40;
    hlc c, st;
    int rc;
    if (!s)
        return SB_E_INVALID;
    if (s->ndirty)
        return SB_E_BAD_STATE;
    for (size_t i = 0; i < s->tab_cap; i++)
        if (s->tab[i].used)
            body += entry_wire_max(&s->tab[i]);
    c = clock_tick(s, now_ms);
    st = self_stable(s);
    rc = payload_begin(s, SB_SYNC_SNAPSHOT, body);
    if (rc)
        return rc;
    put_var(&s->payload, c.wall);
    put_var(&s->payload, c.ctr);
    put_var(&s->payload, st.wall);
    put_var(&s->payload, st.ctr);
    /* Version vector, ourselves first. */
    put_var(&s->payload, (uint64_t)s->npeers + 1);
    put_var(&s->payload, s->id);
    put_var(&s->payload, s->own_seq);
    put_var(&s->payload, c.wall);
    put_var(&s->payload, c.ctr);
    for (uint32_t i = 0; i < s->npeers; i++) {
        const peer *p = &s->peers[i];
        put_var(&s->payload, p->id);
        put_var(&s->payload, p->vv);
        put_var(&s->payload, p->complete.wall);
        put_var(&s->payload, p->complete.ctr);
    }
    put_var(&s->payload, (uint64_t)s->count + s->ntomb);
    for (size_t i = 0; i < s->tab_cap; i++) {
        const entry *e = &s->tab[i];
        if (!e->used)
            continue;
        put_var(&s->payload, e->ts.wall);
        put_var(&s->payload, e->ts.ctr);
        put_var(&s->payload, e->ts.rid);
        put_var(&s->payload, e->seq);
        put_entry_value(&s->payload, e);
    }
    return frame_out(s);
}

int sb_sync_digest(sb_sync *s, double now_ms)
{
    hlc c, st;
    int rc;
    if (!s)
        return SB_E_INVALID;
    if (s->ndirty)
        return SB_E_BAD_STATE;
    c = clock_tick(s, now_ms); /* later writes are stamped above c */
    st = self_stable(s);
    rc = payload_begin(s, SB_SYNC_DIGEST, 60);
    if (rc)
        return rc;
    put_var(&s->payload, c.wall);
    put_var(&s->payload, c.ctr);
    put_var(&s->payload, s->own_seq);
    put_var(&s->payload, st.wall);
    put_var(&s->payload, st.ctr);
    return frame_out(s);
}

int sb_sync_request(sb_sync *s)
{
    int rc;
    if (!s)
        return SB_E_INVALID;
    rc = payload_begin(s, SB_SYNC_REQUEST, 0);
    if (rc)
        return rc;
    return frame_out(s);
}

const uint8_t *sb_sync_out(const sb_sync *s)
{
    return s ? s->out.p : NULL;
}

/* ---- decoding and merging -------------------------------------------------------- */

typedef struct wop {
    sb_sync_ts ts;
    uint32_t seq;
    int tomb;
    const uint8_t *key, *val;
    size_t klen, vlen;
} wop;

typedef struct vvrec {
    uint32_t id, vv;
    hlc complete;
} vvrec;

static void rd_write(sb_sync *s, rd *r, wop *w, int with_rid, uint32_t origin)
{
    w->ts.wall = rd_var(r, WALL_MAX);
    w->ts.ctr = (uint32_t)rd_var(r, UINT32_MAX);
    w->ts.rid = with_rid ? (uint32_t)rd_var(r, UINT32_MAX) : origin;
    if (with_rid)
        w->seq = (uint32_t)rd_var(r, UINT32_MAX);
    w->tomb = rd_u8(r);
    w->klen = (size_t)rd_cap(r, s->max_key);
    w->key = rd_bytes(r, w->klen);
    w->vlen = 0;
    w->val = NULL;
    if (!r->err && w->tomb == 0) {
        w->vlen = (size_t)rd_cap(r, s->max_value);
        w->val = rd_bytes(r, w->vlen);
    }
    if (r->err)
        return;
    if (w->tomb > 1 || !w->klen || !w->ts.rid || (with_rid && !w->seq))
        r->err = SB_E_BAD_FRAME;
}

/* Parse a whole OPS payload body into ops[] (validated before anything applies). */
static int parse_ops(sb_sync *s, rd *r, uint32_t origin, wop **out, size_t *nout)
{
    size_t n = (size_t)rd_cap(r, (uint64_t)s->max_keys + s->max_tomb);
    uint32_t prev = 0;
    wop *ops;
    if (r->err)
        return r->err;
    ops = calloc(n ? n : 1, sizeof *ops);
    if (!ops)
        return SB_E_NO_MEMORY;
    for (size_t i = 0; i < n && !r->err; i++) {
        ops[i].seq = (uint32_t)rd_var(r, UINT32_MAX);
        rd_write(s, r, &ops[i], 0, origin);
        if (!r->err && ops[i].seq <= prev)
            r->err = SB_E_BAD_FRAME; /* ascending, non-zero */
        prev = ops[i].seq;
    }
    if (!r->err && r->pos != r->n)
        r->err = SB_E_TRAILING_DATA;
    if (r->err) {
        free(ops);
        return r->err;
    }
    *out = ops;
    *nout = n;
    return 0;
}

static int merge_ops(sb_sync *s, rd *r, uint32_t origin)
{
    wop *ops = NULL;
    size_t n = 0;
    peer *p;
    int rc = parse_ops(s, r, origin, &ops, &n);
    if (rc)
        return rc;
    p = peer_get(s, origin);
    if (!p) {
        free(ops);
        return SB_E_TOO_LARGE;
    }
    peer_alive(p);
    for (size_t i = 0; i < n; i++) {
        wop *w = &ops[i];
        hlc th = ts_hlc(&w->ts);
        if (covered(s, origin, w->seq))
            continue; /* duplicate, or superseded and collected */
        if (stamp_ok(s, th.wall)) {
            rc = apply(s, w->key, w->klen, &w->ts, w->seq, w->tomb, w->val, w->vlen, 1);
            if (rc < 0)
                break; /* a cap: the ops before this one stay applied (each stands alone) */
            clock_seen(s, th);
        } else {
            th = p->last_ts; /* claim completeness up to what we took, no further */
        }
        /* A refused write still counts as received: waiting for it would
         * hold repair and GC back for good. */
        peer_mark(p, w->seq, th);
        rc = 0;
    }
    free(ops);
    return rc < 0 ? rc : 0;
}

static const vvrec *vv_lookup(const vvrec *v, size_t n, uint32_t id)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].id == id)
            return &v[i];
    return NULL;
}

static int merge_snapshot(sb_sync *s, rd *r, uint32_t origin)
{
    hlc clk, st;
    size_t nv, ne;
    vvrec *vv = NULL;
    wop *ents = NULL;
    peer *sender;
    int rc = 0;
    clk.wall = rd_var(r, WALL_MAX);
    clk.ctr = (uint32_t)rd_var(r, UINT32_MAX);
    st.wall = rd_var(r, WALL_MAX);
    st.ctr = (uint32_t)rd_var(r, UINT32_MAX);
    nv = (size_t)rd_cap(r, (uint64_t)s->max_peers + 1);
    if (r->err)
        return r->err;
    vv = calloc(nv ? nv : 1, sizeof *vv);
    if (!vv)
        return SB_E_NO_MEMORY;
    for (size_t i = 0; i < nv && !r->err; i++) {
        vv[i].id = (uint32_t)rd_var(r, UINT32_MAX);
        vv[i].vv = (uint32_t)rd_var(r, UINT32_MAX);
        vv[i].complete.wall = rd_var(r, WALL_MAX);
        vv[i].complete.ctr = (uint32_t)rd_var(r, UINT32_MAX);
        if (!r->err && (!vv[i].id || vv_lookup(vv, i, vv[i].id)))
            r->err = SB_E_BAD_FRAME;
    }
    ne = (size_t)rd_cap(r, (uint64_t)s->max_keys + s->max_tomb);
    if (!r->err) {
        ents = calloc(ne ? ne : 1, sizeof *ents);
        if (!ents)
            r->err = SB_E_NO_MEMORY;
    }
    for (size_t i = 0; i < ne && !r->err; i++)
        rd_write(s, r, &ents[i], 1, 0);
    if (!r->err && r->pos != r->n)
        r->err = SB_E_TRAILING_DATA;
    if (!r->err && !vv_lookup(vv, nv, origin))
        r->err = SB_E_BAD_FRAME; /* the sender always lists itself */
    if (r->err) {
        rc = r->err;
        goto done;
    }
    /* A snapshot may come from storage written by a long-gone tab, so it
     * does not make its sender live (live traffic and presence do). */
    sender = peer_get(s, origin);
    if (!sender) {
        rc = SB_E_TOO_LARGE;
        goto done;
    }
    for (size_t i = 0; i < s->tab_cap; i++)
        s->tab[i].mark = 0;
    for (size_t i = 0; i < ne; i++) {
        wop *w = &ents[i];
        uint32_t h = hash_key(w->key, w->klen);
        entry *e = find(s, w->key, w->klen, h);
        if (e)
            e->mark = 1;
        if (covered(s, w->ts.rid, w->seq) || !stamp_ok(s, w->ts.wall))
            continue;
        rc = apply(s, w->key, w->klen, &w->ts, w->seq, w->tomb, w->val, w->vlen, 1);
        if (rc < 0)
            goto done; /* without the version vector: nothing claims more than we hold */
        if (rc > 0 && !e) {
            e = find(s, w->key, w->klen, h);
            e->mark = 1;
        }
        clock_seen(s, ts_hlc(&w->ts));
        rc = 0;
    }
    /* An entry the sender lacks although it has seen the entry's write was
     * superseded there by a delete whose tombstone is already collected. */
    for (size_t i = 0; i < s->tab_cap; i++) {
        entry *e = &s->tab[i];
        const vvrec *v;
        if (!e->used || e->mark || e->dirty || !e->seq)
            continue;
        v = vv_lookup(vv, nv, e->ts.rid);
        if (v && v->vv >= e->seq) {
            if (!e->tomb) {
                uint32_t vlen = e->vlen;
                e->tomb = 1;
                e->vlen = 0;
                rc = record_change(s, e);
                e->tomb = 0;
                e->vlen = vlen;
                if (rc) {
                    rc = SB_E_NO_MEMORY;
                    goto done;
                }
            }
            remove_entry(s, e);
            i--; /* the backward shift may have moved an unvisited entry here */
        }
    }
    for (size_t i = 0; i < nv; i++) {
        peer *p;
        if (vv[i].id == s->id)
            continue;
        p = peer_get(s, vv[i].id);
        if (!p)
            continue; /* table full of live peers: we just claim less */
        peer_raise_vv(p, vv[i].vv);
        p->complete = hlc_max(p->complete, vv[i].complete);
        if (vv[i].vv > p->adv_seq)
            p->adv_seq = vv[i].vv;
    }
    /* peer_get above may have moved peers around: look the sender up again. */
    sender = peer_find(s, origin);
    if (sender)
        sender->stable = hlc_max(sender->stable, st);
    if (stamp_ok(s, clk.wall))
        clock_seen(s, clk);
done:
    free(vv);
    free(ents);
    return rc;
}

static int merge_digest(sb_sync *s, rd *r, uint32_t origin)
{
    hlc clk, st;
    uint32_t last;
    peer *p;
    clk.wall = rd_var(r, WALL_MAX);
    clk.ctr = (uint32_t)rd_var(r, UINT32_MAX);
    last = (uint32_t)rd_var(r, UINT32_MAX);
    st.wall = rd_var(r, WALL_MAX);
    st.ctr = (uint32_t)rd_var(r, UINT32_MAX);
    if (!r->err && r->pos != r->n)
        r->err = SB_E_TRAILING_DATA;
    if (r->err)
        return r->err;
    p = peer_get(s, origin);
    if (!p)
        return SB_E_TOO_LARGE;
    peer_alive(p);
    if (last > p->adv_seq)
        p->adv_seq = last;
    p->stable = hlc_max(p->stable, st);
    if (!stamp_ok(s, clk.wall))
        return 0;
    /* The sender stamps nothing at or below clk from now on, so holding all
     * its writes up to `last` means holding all of them up to clk. */
    if (p->vv >= last)
        p->complete = hlc_max(p->complete, clk);
    clock_seen(s, clk);
    return 0;
}

int sb_sync_merge(sb_sync *s, double now_ms, const uint8_t *in, uint32_t n)
{
    sb_frame f;
    rd r;
    int type, rc;
    uint32_t origin;
    if (!s || (!in && n))
        return SB_E_INVALID;
    policy_now(s, now_ms);
    s->now = wall_of(now_ms);
    s->skewed = 0;
    s->changes.len = 0;
    s->nchanges = 0;
    s->last_type = 0;
    s->last_origin = 0;
    rc = sb_frame_decode(in, n, s->max_msg, &f);
    if (rc < 0)
        return rc;
    if (f.kind != SB_FRAME_STATE_OP || (f.flags & SB_FRAME_F_COMPRESSED))
        return SB_E_BAD_FRAME;
    r.p = f.payload;
    r.n = f.payload_len;
    r.pos = 0;
    r.err = 0;
    type = rd_u8(&r);
    origin = (uint32_t)rd_var(&r, UINT32_MAX);
    if (r.err)
        return r.err;
    if (type < SB_SYNC_OPS || type > SB_SYNC_REQUEST || !origin)
        return SB_E_BAD_FRAME;
    s->last_type = type;
    s->last_origin = origin;
    if (origin == s->id)
        return 0; /* our own message echoed back (or a replayed snapshot of ours) */
    /* Late traffic from a tab presence says has left is still merged (its
     * writes are data: dropping them would diverge from tabs that got them);
     * it only does not make that tab live again. */
    switch (type) {
    case SB_SYNC_OPS:
        rc = merge_ops(s, &r, origin);
        break;
    case SB_SYNC_SNAPSHOT:
        rc = merge_snapshot(s, &r, origin);
        break;
    case SB_SYNC_DIGEST:
        rc = merge_digest(s, &r, origin);
        break;
    default:
        if (r.pos != r.n)
            return SB_E_TRAILING_DATA;
        {
            peer *p = peer_get(s, origin);
            if (!p)
                return SB_E_TOO_LARGE;
            peer_alive(p);
        }
        rc = 0;
    }
    if (rc < 0)
        return rc;
    policy_merged(s, type, origin);
    return s->nchanges;
}

int sb_sync_last_type(const sb_sync *s)
{
    return s ? s->last_type : 0;
}

uint32_t sb_sync_last_origin(const sb_sync *s)
{
    return s ? s->last_origin : 0;
}

const uint8_t *sb_sync_changes(const sb_sync *s)
{
    return s ? s->changes.p : NULL;
}

int sb_sync_changes_len(const sb_sync *s)
{
    return s ? (int)s->changes.len : 0;
}

int sb_sync_dump(sb_sync *s)
{
    if (!s)
        return SB_E_INVALID;
    s->changes.len = 0;
    s->nchanges = 0;
    for (size_t i = 0; i < s->tab_cap; i++)
        if (s->tab[i].used && !s->tab[i].tomb && record_change(s, &s->tab[i]))
            return SB_E_NO_MEMORY;
    return s->nchanges;
}

/* ---- presence and GC --------------------------------------------------------------- */

int sb_sync_peer_join(sb_sync *s, uint32_t id)
{
    peer *p;
    if (!s || !id)
        return SB_E_INVALID;
    if (id == s->id)
        return 0;
    p = peer_get(s, id);
    if (!p)
        return SB_E_TOO_LARGE;
    p->gone = 0; /* presence saw it again (it was only silent, e.g. busy) */
    p->live = 1;
    return 0;
}

int sb_sync_peer_leave(sb_sync *s, uint32_t id)
{
    peer *p;
    if (!s || !id)
        return SB_E_INVALID;
    p = peer_find(s, id);
    if (!p)
        return SB_E_NOT_FOUND;
    p->live = 0;
    p->gone = 1; /* its own traffic no longer revives it; only presence does */
    return 0;
}

int sb_sync_missing(const sb_sync *s)
{
    int n = 0;
    if (!s)
        return 0;
    for (uint32_t i = 0; i < s->npeers; i++)
        if (s->peers[i].live && s->peers[i].adv_seq > s->peers[i].vv)
            n++;
    return n;
}

int sb_sync_gc(sb_sync *s)
{
    hlc g;
    int n = 0;
    if (!s)
        return SB_E_INVALID;
    g = self_stable(s);
    for (uint32_t i = 0; i < s->npeers; i++)
        if (s->peers[i].live && hlc_cmp(s->peers[i].stable, g) < 0)
            g = s->peers[i].stable;
    for (size_t i = 0; i < s->tab_cap; i++) {
        entry *e = &s->tab[i];
        if (e->used && e->tomb && !e->dirty && e->seq && hlc_cmp(ts_hlc(&e->ts), g) < 0) {
            remove_entry(s, e);
            n++;
            i--; /* re-examine the slot the backward shift refilled */
        }
    }
    return n;
}

int sb_sync_count(const sb_sync *s)
{
    return s ? (int)s->count : 0;
}

int sb_sync_tombstones(const sb_sync *s)
{
    return s ? (int)s->ntomb : 0;
}

uint32_t sb_sync_id(const sb_sync *s)
{
    return s ? s->id : 0;
}

int sb_sync_lookup(const sb_sync *s, const uint8_t *key, size_t klen, sb_sync_ts *ts,
                   const uint8_t **val, size_t *vlen, int *tombstone)
{
    const entry *e;
    if (!s || !key)
        return SB_E_INVALID;
    e = find(s, key, klen, hash_key(key, klen));
    if (!e)
        return SB_E_NOT_FOUND;
    if (ts)
        *ts = e->ts;
    if (val)
        *val = e->kv + e->klen;
    if (vlen)
        *vlen = e->vlen;
    if (tombstone)
        *tombstone = e->tomb;
    return 0;
}

int sb_sync_next(const sb_sync *s, size_t *cursor, const uint8_t **key, size_t *klen,
                 const uint8_t **val, size_t *vlen)
{
    for (size_t i = *cursor; i < s->tab_cap; i++) {
        const entry *e = &s->tab[i];
        if (e->used && !e->tomb) {
            *key = e->kv;
            *klen = e->klen;
            *val = e->kv + e->klen;
            *vlen = e->vlen;
            *cursor = i + 1;
            return 1;
        }
    }
    *cursor = s->tab_cap;
    return 0;
}

/* ---- the policy: what is sent, and when (docs/tabs.md, "Timing") ---------------- */

enum { PH_IDLE, PH_JOINING, PH_LIVE, PH_CLOSING, PH_DONE };

/* Deadlines are on the caller's clock (the glue's Date.now(), the clock
 * stamps come from). When it steps back (the system clock was set back),
 * every armed time moves back with it, so the next timer is never hours
 * away; a step forward only makes them due early. */
static double policy_now(sb_sync *s, double now_ms)
{
    /* NaN or out of range: keep the last. Within +-2^53, now + 1 > now, so
     * a period of >= 1 ms always moves a deadline forward. */
    if (now_ms > -(double)WALL_MAX && now_ms < (double)WALL_MAX) {
        if (now_ms < s->pnow)
            for (int i = 0; i < T_N_; i++)
                s->at[i] -= s->pnow - now_ms;
        s->pnow = now_ms;
    }
    return s->pnow;
}

/* The leader saves a while after a change (one save per burst); the others
 * save only when they close. */
static void arm_persist(sb_sync *s)
{
    if (s->persist && s->phase < PH_CLOSING && s->leader == s->id && s->at[T_SAVE] == INFINITY)
        s->at[T_SAVE] = s->pnow + SB_SYNC_PERSIST_MS;
}

static void joined(sb_sync *s)
{
    s->phase = PH_LIVE;
    s->at[T_JOIN] = INFINITY;
    s->at[T_DIGEST] = s->pnow + s->digest_ms;
    s->events |= SB_SYNC_EV_JOINED;
}

static void policy_merged(sb_sync *s, int type, uint32_t origin)
{
    if (s->nchanges)
        arm_persist(s);
    if (s->phase == PH_IDLE || s->phase >= PH_CLOSING)
        return;
    if (type == SB_SYNC_SNAPSHOT && s->phase == PH_JOINING)
        joined(s); /* a live tab's state: nothing to wait for */
    /* The leader answers; every tab does while none is known (several
     * snapshots merge to the same state), and when the leader asks.
     * Requests that arrive together get one snapshot. */
    if (type == SB_SYNC_REQUEST && (s->leader == s->id || !s->leader || s->leader == origin))
        s->at[T_ANSWER] = s->pnow;
    /* A digest shows writes we never got: ask for a snapshot, at most one
     * request per SB_SYNC_REPAIR_MS (a deferred one is dropped if a
     * snapshot repaired the gap meanwhile). */
    if (type == SB_SYNC_DIGEST && sb_sync_missing(s) && s->at[T_REQ] == INFINITY)
        s->at[T_REQ] = s->at[T_ASKED] + SB_SYNC_REPAIR_MS;
}

int sb_sync_start(sb_sync *s, double now_ms, double join_ms, double digest_ms, double batch_ms,
                  int persist)
{
    /* NaN (what the glue's `undefined` becomes) takes the default; an
     * infinite time is "never" (no join timeout, no digests, no batch
     * timer: writes then leave with the next digest, answer or close). */
    join_ms = join_ms == join_ms ? join_ms : SB_SYNC_JOIN_MS;
    digest_ms = digest_ms == digest_ms ? digest_ms : SB_SYNC_DIGEST_MS;
    if (!s || join_ms < 0 || !(digest_ms >= 1) || batch_ms < 0)
        return SB_E_INVALID;
    if (s->phase != PH_IDLE)
        return SB_E_BAD_STATE;
    s->digest_ms = digest_ms;
    s->batch_ms = batch_ms == batch_ms ? batch_ms : 0;
    s->persist = persist != 0;
    s->phase = PH_JOINING;
    s->at[T_REQ] = policy_now(s, now_ms); /* the join request */
    s->at[T_JOIN] = s->pnow + join_ms;
    return 0;
}

int sb_sync_leader(sb_sync *s, double now_ms, uint32_t leader)
{
    if (!s)
        return SB_E_INVALID;
    policy_now(s, now_ms);
    s->leader = leader;
    if (leader == s->id)
        arm_persist(s); /* a new leader saves what it holds */
    else
        s->at[T_SAVE] = INFINITY; /* the leader saves, not us */
    return 0;
}

int sb_sync_close(sb_sync *s, double now_ms)
{
    if (!s)
        return SB_E_INVALID;
    if (s->phase != PH_DONE)
        s->phase = PH_CLOSING; /* flush, then save: this tab may be the last */
    s->at[T_CLOSE] = policy_now(s, now_ms);
    return 0;
}

int sb_sync_poll(sb_sync *s, double now_ms)
{
    double now;
    int rc;
    if (!s)
        return SB_E_INVALID;
    now = policy_now(s, now_ms);
    s->out_kind = SB_SYNC_OUT_BROADCAST;
    if (s->phase == PH_IDLE || s->phase == PH_DONE)
        return 0;
    if (now >= s->at[T_REQ] && s->phase < PH_CLOSING) {
        s->at[T_REQ] = INFINITY;
        if (s->phase == PH_JOINING || sb_sync_missing(s)) {
            s->at[T_ASKED] = now;
            return sb_sync_request(s);
        }
    }
    if (now >= s->at[T_JOIN])
        joined(s); /* nobody answered: alone, or everyone is new */
    /* Every write leaves as an op before anything that reports on it. */
    if (!s->ndirty)
        s->at[T_FLUSH] = INFINITY; /* a remote write superseded the pending ones */
    else if (now >= s->at[T_FLUSH] || now >= s->at[T_CLOSE] || now >= s->at[T_ANSWER] ||
             now >= s->at[T_DIGEST] || now >= s->at[T_SAVE])
        return sb_sync_flush(s);
    if (s->phase == PH_CLOSING) {
        s->phase = PH_DONE;
        if (!s->persist)
            return 0;
        s->out_kind = SB_SYNC_OUT_PERSIST;
        return sb_sync_snapshot(s, now);
    }
    if (now >= s->at[T_ANSWER]) {
        s->at[T_ANSWER] = INFINITY;
        return sb_sync_snapshot(s, now);
    }
    if (now >= s->at[T_DIGEST]) {
        s->at[T_DIGEST] = now + s->digest_ms;
        rc = sb_sync_digest(s, now);
        if (rc > 0)
            sb_sync_gc(s); /* after the digest: it reports what we held */
        return rc;
    }
    if (now >= s->at[T_SAVE]) {
        s->at[T_SAVE] = INFINITY;
        s->out_kind = SB_SYNC_OUT_PERSIST;
        return sb_sync_snapshot(s, now);
    }
    return 0;
}

int sb_sync_out_kind(const sb_sync *s)
{
    return s ? s->out_kind : 0;
}

int sb_sync_events(sb_sync *s)
{
    int e = 0;
    if (s) {
        e = s->events;
        s->events = 0;
    }
    return e;
}

double sb_sync_deadline(const sb_sync *s)
{
    double d = INFINITY;
    if (!s || s->phase == PH_IDLE || s->phase == PH_DONE)
        return -1;
    for (int i = 0; i < T_ASKED; i++)
        if (s->at[i] < d)
            d = s->at[i];
    return d < INFINITY ? d : -1;
}
