/* lease — see lease.h and docs/tabs.md. */
#include "lease.h"

#include <stdlib.h>
#include <string.h>

#include "frame.h"

enum { MSG_HB = 1, MSG_BYE = 2 };
enum { F_VISIBLE = 1, F_CLAIM = 2, F_HELLO = 4, F_RESIGN = 8, F_MASK = 15 };

typedef struct lpeer {
    uint32_t id;
    int visible;
    double last_seen;
} lpeer;

struct sb_lease {
    uint32_t id;
    double hb, lease;
    uint32_t max_peers;
    int prefer_visible, external;
    int started, stopped, visible;
    int step_visible; /* visible at its last step: its timers ran unthrottled since */
    double next_hb, settle_until, last_step;
    lpeer *peers;
    uint32_t npeers;
    uint32_t leader, term, max_term;
    double leader_seen;
    int silent; /* external: the leader's lease ran out; nobody claimed since */
    int events;
    int send_now;   /* a heartbeat is owed at the next step */
    int send_flags; /* extra flags for it (HELLO, RESIGN) */
    uint8_t out[SB_LEASE_MSG_MAX];
};

sb_lease *sb_lease_create(uint32_t id, double heartbeat_ms, double lease_ms, uint32_t max_peers,
                          int prefer_visible, int external)
{
    sb_lease *l;
    if (!id || !(heartbeat_ms > 0) || !(lease_ms > heartbeat_ms) || lease_ms > 3600e3 ||
        !max_peers || max_peers > 65536)
        return NULL;
    l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->peers = calloc(max_peers, sizeof *l->peers);
    if (!l->peers) {
        free(l);
        return NULL;
    }
    l->id = id;
    l->hb = heartbeat_ms;
    l->lease = lease_ms;
    l->max_peers = max_peers;
    l->prefer_visible = !!prefer_visible;
    l->external = !!external;
    return l;
}

void sb_lease_destroy(sb_lease *l)
{
    if (!l)
        return;
    free(l->peers);
    free(l);
}

static void set_leader(sb_lease *l, uint32_t id, uint32_t term)
{
    if (id == l->leader && term == l->term)
        return;
    if (l->leader == l->id && id != l->id)
        l->events |= SB_LEASE_EV_LOST;
    if (id != l->leader)
        l->events |= SB_LEASE_EV_LEADER;
    if (id)
        l->silent = 0;
    l->leader = id;
    l->term = term;
    if (term > l->max_term)
        l->max_term = term;
}

static lpeer *peer_find(sb_lease *l, uint32_t id)
{
    for (uint32_t i = 0; i < l->npeers; i++)
        if (l->peers[i].id == id)
            return &l->peers[i];
    return NULL;
}

static void peer_remove(sb_lease *l, lpeer *p)
{
    if (p->id == l->leader)
        set_leader(l, 0, l->term);
    *p = l->peers[--l->npeers];
    l->events |= SB_LEASE_EV_PRESENCE;
}

static int encode(sb_lease *l, int type, int flags)
{
    uint8_t pl[32];
    size_t n = 0;
    sb_frame f;
    pl[n++] = (uint8_t)type;
    n += sb_varint_put(pl + n, l->id);
    pl[n++] = (uint8_t)((l->visible ? F_VISIBLE : 0) | (l->leader == l->id ? F_CLAIM : 0) | flags);
    n += sb_varint_put(pl + n, l->leader == l->id ? l->term : 0);
    n += sb_varint_put(pl + n, l->leader);
    sb_frame_init(&f, SB_FRAME_PING);
    f.flags = SB_FRAME_F_BINARY;
    f.payload = pl;
    f.payload_len = n;
    return sb_frame_write(&f, l->out, sizeof l->out);
}

/* The tab every member would pick given the same presence view. */
static uint32_t candidate(const sb_lease *l)
{
    int want_visible = 0;
    uint32_t best = 0;
    if (l->prefer_visible) {
        want_visible = l->visible;
        for (uint32_t i = 0; i < l->npeers && !want_visible; i++)
            want_visible = l->peers[i].visible;
    }
    if (!want_visible || l->visible)
        best = l->id;
    for (uint32_t i = 0; i < l->npeers; i++) {
        const lpeer *p = &l->peers[i];
        if (want_visible && !p->visible)
            continue;
        if (!best || p->id < best)
            best = p->id;
    }
    return best;
}

/* The visible tab with the lowest id (0: none): the one to steal a lock. */
static uint32_t thief(const sb_lease *l)
{
    uint32_t best = l->visible ? l->id : 0;
    for (uint32_t i = 0; i < l->npeers; i++)
        if (l->peers[i].visible && (!best || l->peers[i].id < best))
            best = l->peers[i].id;
    return best;
}

static int any_visible_peer(const sb_lease *l)
{
    for (uint32_t i = 0; i < l->npeers; i++)
        if (l->peers[i].visible)
            return 1;
    return 0;
}

/* Expire, elect, and emit a heartbeat if one is due. */
static int step(sb_lease *l, double now)
{
    int flags;
    if (!l->started || l->stopped)
        return 0;
    /* External mode: a leader that ran nothing for a lease (frozen, paused)
     * while a visible tab watched has had its lock taken (below): it steps
     * down before it acts on anything. A hidden tab's timers may be
     * throttled to the minute, so hidden tabs neither steal nor are taken
     * for frozen by this rule. */
    if (l->external && l->leader == l->id && now - l->last_step >= l->lease &&
        any_visible_peer(l)) {
        set_leader(l, 0, l->term);
        l->send_now = 1;
        l->send_flags |= F_RESIGN;
    }
    /* A visible tab that ran nothing for a lease (frozen, paused) has not
     * been listening either: its peers' silence is its own. It judges them
     * from now on, or a thawed tab finds itself alone (and a follower robs a
     * live leader) before it has read what they sent meanwhile. A hidden
     * tab's steps may be a minute apart by throttling: it expires as ever,
     * also at the step that finds it visible again. */
    if (l->visible && l->step_visible && now - l->last_step >= l->lease) {
        for (uint32_t i = 0; i < l->npeers; i++)
            l->peers[i].last_seen = now;
        l->leader_seen = now;
    }
    l->last_step = now;
    l->step_visible = l->visible;
    for (uint32_t i = 0; i < l->npeers;) {
        if (now - l->peers[i].last_seen >= l->lease) {
            l->silent |= l->external && l->peers[i].id == l->leader;
            peer_remove(l, &l->peers[i]);
        } else
            i++;
    }
    if (l->leader && l->leader != l->id && now - l->leader_seen >= l->lease) {
        l->silent = l->external;
        set_leader(l, 0, l->term);
    }
    if (l->silent && !l->leader && l->visible && thief(l) == l->id) {
        l->silent = 0;
        l->events |= SB_LEASE_EV_STEAL;
    }
    if (!l->external && l->leader == l->id && l->prefer_visible && !l->visible &&
        any_visible_peer(l)) {
        /* Hand over to a visible tab: it will find itself the candidate. */
        set_leader(l, 0, l->term);
        l->send_now = 1;
        l->send_flags |= F_RESIGN;
    }
    if (!l->external && !l->leader && now >= l->settle_until && candidate(l) == l->id) {
        set_leader(l, l->id, l->max_term + 1);
        l->send_now = 1;
    }
    if (!l->send_now && now < l->next_hb)
        return 0;
    flags = l->send_flags;
    l->send_now = 0;
    l->send_flags = 0;
    l->next_hb = now + l->hb;
    return encode(l, MSG_HB, flags);
}

int sb_lease_start(sb_lease *l, double now_ms, int visible)
{
    if (!l)
        return SB_E_INVALID;
    if (l->started)
        return SB_E_BAD_STATE;
    l->started = 1;
    l->visible = l->step_visible = !!visible;
    /* Give running tabs one heartbeat period to answer before claiming. */
    l->settle_until = now_ms + l->hb;
    l->next_hb = now_ms + l->hb;
    l->last_step = now_ms;
    return encode(l, MSG_HB, F_HELLO);
}

int sb_lease_tick(sb_lease *l, double now_ms)
{
    return l ? step(l, now_ms) : SB_E_INVALID;
}

int sb_lease_recv(sb_lease *l, double now_ms, const uint8_t *in, uint32_t n)
{
    sb_frame f;
    uint64_t id, term, leader;
    size_t pos = 0;
    int k, type, flags;
    lpeer *p;
    if (!l || (!in && n))
        return SB_E_INVALID;
    k = sb_frame_decode(in, n, SB_LEASE_MSG_MAX, &f);
    if (k < 0)
        return k;
    if (f.kind != SB_FRAME_PING || f.payload_len < 1)
        return SB_E_BAD_FRAME;
    type = f.payload[pos++];
    k = sb_varint_get(f.payload + pos, f.payload_len - pos, UINT32_MAX, &id);
    if (k <= 0)
        return k ? SB_E_BAD_FRAME : SB_E_TRUNCATED;
    pos += (size_t)k;
    if ((type != MSG_HB && type != MSG_BYE) || !id)
        return SB_E_BAD_FRAME;
    if (pos >= f.payload_len)
        return SB_E_TRUNCATED;
    flags = f.payload[pos++];
    if (flags & ~F_MASK)
        return SB_E_BAD_FRAME;
    k = sb_varint_get(f.payload + pos, f.payload_len - pos, UINT32_MAX, &term);
    if (k <= 0)
        return k ? SB_E_BAD_FRAME : SB_E_TRUNCATED;
    pos += (size_t)k;
    k = sb_varint_get(f.payload + pos, f.payload_len - pos, UINT32_MAX, &leader);
    if (k <= 0)
        return k ? SB_E_BAD_FRAME : SB_E_TRUNCATED;
    pos += (size_t)k;
    if (pos != f.payload_len)
        return SB_E_TRAILING_DATA;
    if (!l->started || l->stopped || id == l->id)
        return 0;
    p = peer_find(l, (uint32_t)id);
    if (type == MSG_BYE) {
        if (p)
            peer_remove(l, p);
        return step(l, now_ms);
    }
    if (!p) {
        if (l->npeers == l->max_peers)
            return SB_E_TOO_LARGE;
        p = &l->peers[l->npeers++];
        p->id = (uint32_t)id;
        p->visible = -1;
        l->events |= SB_LEASE_EV_PRESENCE;
    }
    if (p->visible != !!(flags & F_VISIBLE)) {
        if (p->visible != -1)
            l->events |= SB_LEASE_EV_PRESENCE;
        p->visible = !!(flags & F_VISIBLE);
    }
    p->last_seen = now_ms;
    if (term > l->max_term)
        l->max_term = (uint32_t)term;
    if (flags & F_CLAIM) {
        int better = !l->leader || term > l->term ||
                     (term == l->term && (uint32_t)id <= l->leader);
        if (better) {
            set_leader(l, (uint32_t)id, (uint32_t)term);
            l->leader_seen = now_ms;
        } else if (l->leader == l->id) {
            l->send_now = 1; /* our claim wins: tell the other claimant now */
        }
    } else if ((uint32_t)id == l->leader) {
        set_leader(l, 0, l->term); /* the leader resigned */
    }
    if (flags & F_HELLO)
        l->send_now = 1;
    return step(l, now_ms);
}

int sb_lease_set_visible(sb_lease *l, double now_ms, int visible)
{
    if (!l)
        return SB_E_INVALID;
    if (l->visible == !!visible)
        return 0;
    l->visible = !!visible;
    l->send_now = 1;
    return step(l, now_ms);
}

int sb_lease_stop(sb_lease *l, double now_ms)
{
    (void)now_ms;
    if (!l)
        return SB_E_INVALID;
    if (!l->started || l->stopped)
        return 0;
    if (l->leader == l->id)
        set_leader(l, 0, l->term);
    l->stopped = 1;
    return encode(l, MSG_BYE, 0);
}

int sb_lease_claim(sb_lease *l, double now_ms)
{
    if (!l)
        return SB_E_INVALID;
    if (!l->started || l->stopped)
        return SB_E_BAD_STATE;
    if (l->leader != l->id)
        set_leader(l, l->id, l->max_term + 1);
    l->send_now = 1;
    return step(l, now_ms);
}

int sb_lease_resign(sb_lease *l, double now_ms)
{
    if (!l)
        return SB_E_INVALID;
    if (l->leader != l->id)
        return 0;
    set_leader(l, 0, l->term);
    l->send_now = 1;
    l->send_flags |= F_RESIGN;
    return step(l, now_ms);
}

const uint8_t *sb_lease_out(const sb_lease *l)
{
    return l ? l->out : NULL;
}

double sb_lease_deadline(const sb_lease *l)
{
    double d;
    if (!l || !l->started || l->stopped)
        return -1;
    d = l->next_hb;
    for (uint32_t i = 0; i < l->npeers; i++)
        if (l->peers[i].last_seen + l->lease < d)
            d = l->peers[i].last_seen + l->lease;
    if (l->leader && l->leader != l->id && l->leader_seen + l->lease < d)
        d = l->leader_seen + l->lease;
    if (!l->leader && !l->external && l->settle_until < d)
        d = l->settle_until;
    return d;
}

int sb_lease_events(sb_lease *l)
{
    int e;
    if (!l)
        return 0;
    e = l->events;
    l->events = 0;
    return e;
}

uint32_t sb_lease_leader(const sb_lease *l)
{
    return l ? l->leader : 0;
}

int sb_lease_is_leader(const sb_lease *l)
{
    return l && l->leader && l->leader == l->id;
}

double sb_lease_term(const sb_lease *l)
{
    return l ? (double)l->term : 0;
}

int sb_lease_peer_count(const sb_lease *l)
{
    return l ? (int)l->npeers : 0;
}

uint32_t sb_lease_peer_id(const sb_lease *l, int i)
{
    return l && i >= 0 && (uint32_t)i < l->npeers ? l->peers[i].id : 0;
}

int sb_lease_peer_visible(const sb_lease *l, int i)
{
    return l && i >= 0 && (uint32_t)i < l->npeers ? l->peers[i].visible == 1 : 0;
}
