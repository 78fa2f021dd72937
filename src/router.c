/* router — see router.h. */
#include "router.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* sb_router_events() hands the records out as int32 words. */
_Static_assert(sizeof(sb_router_record) == 4 * sizeof(int32_t), "sb_router_record layout");
_Static_assert(offsetof(sb_router_record, err) == 12, "sb_router_record layout");

#define EP_BITS 12
#define EP_MASK ((1 << EP_BITS) - 1)
#define SLOT_BITS 16
#define SLOT_MASK ((1u << SLOT_BITS) - 1)

typedef struct endpoint {
    int used;
    int gen;   /* bumped on close so stale handles stop resolving */
    int state, role;
    uint32_t source;
    char channel[SB_ROUTER_CHANNEL_MAX];
    int chlen;
    /* length byte, then the bytes: ours, and the peer's (a parent tells a
     * duplicate hello by it) */
    uint8_t mine[1 + SB_ROUTER_NONCE_MAX], peer[1 + SB_ROUTER_NONCE_MAX];
    sb_origin_list *allow;
    double heartbeat_ms, dead_ms, connect_deadline;
    double heard_ms, ping_at;
    int pending;
} endpoint;

typedef struct slot {
    uint32_t id;    /* 0 = free */
    uint32_t seq;   /* reuse counter folded into the id */
    int ep;         /* endpoint index */
    double deadline; /* 0 = none */
} slot;

struct sb_router {
    int max_ep, max_pending, max_origins;
    endpoint *ep;
    slot *slots;
    uint32_t *free_slots;
    int nfree;
    sb_router_record *events;
    int nevents, max_events;
    int reason, reason_ep;
};

sb_router *sb_router_create(int max_endpoints, int max_pending, int max_origins)
{
    sb_router *r;
    if (max_endpoints < 1 || max_endpoints > EP_MASK || max_pending < 1 ||
        max_pending > (int)SLOT_MASK || max_origins < 1 || max_origins > 256)
        return NULL;
    r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->max_ep = max_endpoints;
    r->max_pending = max_pending;
    r->max_origins = max_origins;
    /* every pending call fails at most once, every endpoint reports at most
     * one thing per poll and one message makes at most three more, so this
     * table never overflows */
    r->max_events = max_pending + 2 * max_endpoints + 4;
    r->ep = calloc((size_t)max_endpoints, sizeof *r->ep);
    r->slots = calloc((size_t)max_pending, sizeof *r->slots);
    r->free_slots = calloc((size_t)max_pending, sizeof *r->free_slots);
    r->events = calloc((size_t)r->max_events, sizeof *r->events);
    if (!r->ep || !r->slots || !r->free_slots || !r->events) {
        sb_router_destroy(r);
        return NULL;
    }
    for (int i = 0; i < max_pending; i++)
        r->free_slots[i] = (uint32_t)(max_pending - 1 - i);
    r->nfree = max_pending;
    return r;
}

void sb_router_destroy(sb_router *r)
{
    if (!r)
        return;
    if (r->ep)
        for (int i = 0; i < r->max_ep; i++)
            sb_origin_list_destroy(r->ep[i].allow);
    free(r->ep);
    free(r->slots);
    free(r->free_slots);
    free(r->events);
    free(r);
}

static int handle_of(const sb_router *r, int idx)
{
    return (r->ep[idx].gen << EP_BITS) | (idx + 1);
}

/* Endpoint index for a handle, or -1 if stale/invalid. */
static int lookup(const sb_router *r, int h)
{
    int idx;
    if (!r || h <= 0)
        return -1;
    idx = (h & EP_MASK) - 1;
    if (idx < 0 || idx >= r->max_ep || !r->ep[idx].used || handle_of(r, idx) != h)
        return -1;
    return idx;
}

static void emit_h(sb_router *r, int kind, int handle, uint32_t id, int err)
{
    sb_router_record *e;
    if (r->nevents >= r->max_events) /* cannot happen, see create() */
        return;
    e = &r->events[r->nevents++];
    e->kind = kind;
    e->endpoint = handle;
    e->id = (int32_t)id;
    e->err = err;
}

static void emit(sb_router *r, int kind, int ep_idx, uint32_t id, int err)
{
    emit_h(r, kind, handle_of(r, ep_idx), id, err);
}

static void free_slot(sb_router *r, uint32_t s)
{
    r->ep[r->slots[s].ep].pending--;
    r->slots[s].id = 0;
    r->free_slots[r->nfree++] = s;
}

static void fail_pending(sb_router *r, int idx, int err)
{
    for (int s = 0; s < r->max_pending && r->ep[idx].pending > 0; s++) {
        if (r->slots[s].id && r->slots[s].ep == idx) {
            emit(r, SB_RT_CALL_FAILED, idx, r->slots[s].id, err);
            free_slot(r, (uint32_t)s);
        }
    }
}

int sb_router_open(sb_router *r, const char *channel, size_t len, uint32_t source, int role,
                   double heartbeat_ms, double dead_ms, double connect_timeout_ms, double now_ms)
{
    int idx = -1;
    endpoint *e;
    if (!r || !channel || len == 0 || len > SB_ROUTER_CHANNEL_MAX || role < SB_BR_PARENT ||
        role > SB_BR_PORT || !(heartbeat_ms >= 0) ||
        !(dead_ms >= 0) || !(connect_timeout_ms >= 0))
        return SB_E_INVALID;
    for (int i = 0; i < r->max_ep; i++) {
        const endpoint *o = &r->ep[i];
        if (!o->used) {
            if (idx < 0)
                idx = i;
        } else if (source && o->source == source && o->chlen == (int)len &&
                   !memcmp(o->channel, channel, len)) {
            return SB_E_BAD_STATE;
        }
    }
    if (idx < 0)
        return SB_E_TOO_LARGE;
    e = &r->ep[idx];
    e->allow = sb_origin_list_create(r->max_origins);
    if (!e->allow)
        return SB_E_NO_MEMORY;
    e->used = 1;
    e->gen = (e->gen + 1) & 0x7ffff;
    if (!e->gen)
        e->gen = 1;
    e->state = SB_EP_WAITING;
    e->role = role;
    e->source = source;
    memcpy(e->channel, channel, len);
    e->chlen = (int)len;
    e->mine[0] = e->peer[0] = 0;
    e->heartbeat_ms = heartbeat_ms;
    e->dead_ms = dead_ms;
    e->connect_deadline = connect_timeout_ms > 0 ? now_ms + connect_timeout_ms : 0;
    e->heard_ms = now_ms;
    e->ping_at = 0;
    e->pending = 0;
    return handle_of(r, idx);
}

int sb_router_allow(sb_router *r, int ep, const char *pattern, size_t len)
{
    int idx = lookup(r, ep);
    if (idx < 0)
        return SB_E_NOT_FOUND;
    return sb_origin_list_add(r->ep[idx].allow, pattern, len);
}

/* Closed for good: the last event of the endpoint, its handle stale after. */
static void shut(sb_router *r, int idx, int err)
{
    endpoint *e = &r->ep[idx];
    fail_pending(r, idx, err);
    emit(r, SB_RT_CLOSED, idx, 0, err);
    sb_origin_list_destroy(e->allow);
    e->allow = NULL;
    e->used = 0;
    e->state = 0;
    memset(e->mine, 0, sizeof e->mine);
    memset(e->peer, 0, sizeof e->peer);
}

int sb_router_close(sb_router *r, int ep, int err)
{
    int idx = lookup(r, ep);
    if (idx < 0)
        return SB_E_NOT_FOUND;
    r->nevents = 0;
    err = err < 0 ? err : SB_E_CLOSED;
    fail_pending(r, idx, err);
    if (r->ep[idx].state == SB_EP_CONNECTED)
        emit(r, SB_RT_DISCONNECTED, idx, SB_BW_CLOSED, 0);
    shut(r, idx, err);
    return r->nevents;
}

int sb_router_state(const sb_router *r, int ep)
{
    int idx = lookup(r, ep);
    return idx < 0 ? SB_E_NOT_FOUND : r->ep[idx].state;
}

static int refuse(sb_router *r, int reason, int idx, int err)
{
    r->reason = reason;
    r->reason_ep = idx >= 0 ? handle_of(r, idx) : 0;
    return err;
}

int sb_router_route(sb_router *r, const char *channel, size_t clen, uint32_t source,
                    const char *origin, size_t olen)
{
    int first = -1, rc;
    if (!r)
        return SB_E_INVALID;
    r->reason = SB_RR_NONE;
    r->reason_ep = 0;
    if (!channel || clen == 0 || clen > SB_ROUTER_CHANNEL_MAX)
        return refuse(r, SB_RR_NO_CHANNEL, -1, SB_E_NOT_FOUND);
    for (int i = 0; i < r->max_ep; i++) {
        const endpoint *e = &r->ep[i];
        if (!e->used || e->chlen != (int)clen || memcmp(e->channel, channel, clen))
            continue;
        if (first < 0)
            first = i;
        if (source && e->source == source) {
            rc = sb_origin_list_match(e->allow, origin, olen);
            if (rc == SB_E_BAD_ORIGIN)
                return refuse(r, SB_RR_BAD_ORIGIN, i, rc);
            if (rc < 0)
                return refuse(r, SB_RR_ORIGIN_REJECTED, i, SB_E_ORIGIN_REJECTED);
            return handle_of(r, i);
        }
    }
    if (first < 0)
        return refuse(r, SB_RR_NO_CHANNEL, -1, SB_E_NOT_FOUND);
    /* Not the window we expect. Say whether the origin would have passed, so
     * a spoof from an allowed origin is told apart from a foreign one. */
    rc = sb_origin_list_match(r->ep[first].allow, origin, olen);
    if (rc == SB_E_BAD_ORIGIN)
        return refuse(r, SB_RR_BAD_ORIGIN, first, rc);
    if (rc < 0)
        return refuse(r, SB_RR_ORIGIN_REJECTED, first, SB_E_ORIGIN_REJECTED);
    return refuse(r, SB_RR_WRONG_SOURCE, first, SB_E_ORIGIN_REJECTED);
}

int sb_router_reason(const sb_router *r)
{
    return r ? r->reason : 0;
}

int sb_router_reason_ep(const sb_router *r)
{
    return r ? r->reason_ep : 0;
}

/* A nonce as the wire may carry it: 8..NONCE_MAX printable ASCII bytes (ours
 * are 32 hex digits), so it reads back into JS as the same string. */
static int nonce_ok(const char *n, size_t len)
{
    if (!n || len < 8 || len > SB_ROUTER_NONCE_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (n[i] < 0x21 || n[i] > 0x7e)
            return 0;
    return 1;
}

static void keep(uint8_t *dst, const char *n, size_t len)
{
    dst[0] = (uint8_t)len;
    memcpy(dst + 1, n, len);
}

int sb_router_offer(sb_router *r, int ep, const char *nonce, size_t len, double now_ms)
{
    int idx = lookup(r, ep);
    endpoint *e;
    if (idx < 0)
        return SB_E_NOT_FOUND;
    if (!nonce_ok(nonce, len))
        return SB_E_INVALID;
    e = &r->ep[idx];
    r->nevents = 0;
    if (e->state == SB_EP_CONNECTED)
        fail_pending(r, idx, SB_E_CONNECTION_LOST);
    keep(e->mine, nonce, len);
    e->state = SB_EP_OFFERED;
    e->heard_ms = now_ms;
    return r->nevents;
}

/* A fresh nonce of ours from the glue's random bytes, without resetting the
 * event table (a transition emits around it). */
static void fresh(endpoint *e, const uint8_t *rnd, double now_ms)
{
    /* two letters a..p per byte: 128 bits in 32 printable bytes */
    e->mine[0] = 32;
    for (int i = 0; i < 32; i++)
        e->mine[1 + i] = (uint8_t)('a' + ((rnd[i >> 1] >> (i & 1 ? 0 : 4)) & 15));
    e->state = SB_EP_OFFERED;
    e->heard_ms = now_ms;
}

static void connect_at(endpoint *e, double now_ms)
{
    e->state = SB_EP_CONNECTED;
    e->heard_ms = now_ms;
    e->ping_at = e->heartbeat_ms > 0 ? now_ms + e->heartbeat_ms : 0;
    e->connect_deadline = 0;
}

/* Does the peer's echo carry our nonce? SB_RR_NONE and CONNECTED if so,
 * else why not. */
static int echo(endpoint *e, const char *nonce, size_t len, double now_ms)
{
    unsigned diff = 0;
    if (e->state != SB_EP_OFFERED)
        return SB_RR_BAD_STATE;
    if (!nonce || len != e->mine[0])
        return SB_RR_BAD_NONCE;
    /* constant time: a probing peer learns nothing from how long this takes */
    for (size_t i = 0; i < len; i++)
        diff |= (unsigned)(unsigned char)(nonce[i] ^ (char)e->mine[1 + i]);
    if (diff)
        return SB_RR_BAD_NONCE;
    connect_at(e, now_ms);
    return SB_RR_NONE;
}

int sb_router_confirm(sb_router *r, int ep, const char *nonce, size_t len, double now_ms)
{
    int idx = lookup(r, ep), why;
    if (idx < 0)
        return SB_E_NOT_FOUND;
    r->reason = SB_RR_NONE;
    r->reason_ep = 0;
    why = echo(&r->ep[idx], nonce, len, now_ms);
    if (why)
        return refuse(r, why, idx, why == SB_RR_BAD_STATE ? SB_E_BAD_STATE : SB_E_ORIGIN_REJECTED);
    return 0;
}

/* Refused: a REJECT event for the endpoint of that channel, if any. */
static int reject(sb_router *r, int reason, int idx)
{
    r->reason = reason;
    emit_h(r, SB_RT_REJECT, idx >= 0 ? handle_of(r, idx) : r->reason_ep, (uint32_t)reason, 0);
    return r->nevents;
}

static void lose(sb_router *r, int idx, int why, int gone)
{
    endpoint *e = &r->ep[idx];
    fail_pending(r, idx, SB_E_CONNECTION_LOST);
    if (e->state == SB_EP_CONNECTED)
        emit(r, SB_RT_DISCONNECTED, idx, (uint32_t)why, 0);
    e->state = SB_EP_WAITING;
    e->mine[0] = e->peer[0] = 0;
    /* a port does not come back, nor a removed frame or a closed popup; a
     * window that is still there may load a page that says hello */
    if (e->role == SB_BR_PORT || gone)
        shut(r, idx, SB_E_CONNECTION_LOST);
    else
        emit(r, SB_RT_RESTART, idx, 0, 0);
}

int sb_router_lost(sb_router *r, int ep, int why, int gone)
{
    int idx = lookup(r, ep);
    if (idx < 0)
        return SB_E_NOT_FOUND;
    r->nevents = 0;
    lose(r, idx, why, gone);
    return r->nevents;
}

int sb_router_start(sb_router *r, int ep, int targets, int exact, const uint8_t *rnd,
                    double now_ms)
{
    int idx = lookup(r, ep);
    endpoint *e;
    if (idx < 0)
        return SB_E_NOT_FOUND;
    if (!rnd)
        return SB_E_INVALID;
    e = &r->ep[idx];
    if (e->state == SB_EP_CONNECTED)
        return SB_E_BAD_STATE;
    r->nevents = 0;
    e->peer[0] = 0;
    if (e->role == SB_BR_PARENT && (targets != 1 || exact != 1)) {
        /* several candidate origins (or "*"): a port can be transferred only
         * once, so ask the child to say hello instead */
        e->state = SB_EP_WAITING;
        e->mine[0] = 0;
        if (targets > 0)
            emit(r, SB_RT_SEND, idx, SB_BS_PROBE, 0);
        return r->nevents;
    }
    /* one exact origin: offer the port right away, in case the child loaded
     * before we listened (saves its hello and our welcome) */
    fresh(e, rnd, now_ms);
    emit(r, SB_RT_SEND, idx,
         e->role == SB_BR_PARENT ? SB_BS_OFFER : e->role == SB_BR_CHILD ? SB_BS_HELLO : SB_BS_SYN,
         0);
    return r->nevents;
}

/* The window message types, by their index + 1. */
static const char *const types[] = {SB_BRIDGE_OFFER, SB_BRIDGE_PROBE, SB_BRIDGE_HELLO,
                                    SB_BRIDGE_WELCOME};
enum { T_OFFER = 1, T_PROBE, T_HELLO, T_WELCOME };

/* A routed window message in the endpoint's role and state. */
static int window_step(sb_router *r, int idx, int type, const char *n, size_t nlen,
                       const char *m, size_t mlen, int ports, const uint8_t *rnd, double now_ms)
{
    endpoint *e = &r->ep[idx];
    int what, why = SB_RR_BAD_STATE;
    if (e->role == SB_BR_PARENT) {
        if (type != T_HELLO || !nonce_ok(n, nlen))
            goto refused;
        /* the same hello twice (the child's own and the one our probe asked
         * for, or one whose nonce came back in a READY): the answer is out */
        if (e->peer[0] == nlen && !memcmp(e->peer + 1, n, nlen))
            return r->nevents;
        /* a new nonce on the same window while connected: the child reloaded */
        if (e->state == SB_EP_CONNECTED) {
            fail_pending(r, idx, SB_E_CONNECTION_LOST);
            emit(r, SB_RT_DISCONNECTED, idx, SB_BW_RELOAD, 0);
        }
        keep(e->peer, n, nlen);
        fresh(e, rnd, now_ms);
        what = SB_BS_WELCOME;
    } else if (e->state == SB_EP_CONNECTED || e->role != SB_BR_CHILD) {
        goto refused; /* the handshake is over: nothing on the window */
    } else if (type == T_PROBE) {
        what = SB_BS_HELLO; /* repeat our hello, same nonce */
    } else if (ports != 1 || !nonce_ok(m, mlen)) {
        goto refused;
    } else if (type == T_OFFER) {
        /* the parent's port, unasked: echo its nonce with ours, connected once
         * ours comes back (ACK); a welcome that answers our hello still wins
         * (it races the parent's own offer) */
        what = SB_BS_READY_OWN;
    } else if (type == T_WELCOME && !(why = echo(e, n, nlen, now_ms))) {
        what = SB_BS_READY;
    } else {
        goto refused;
    }
    if (!e->mine[0]) /* a child between a loss and its restart */
        fresh(e, rnd, now_ms);
    if (what >= SB_BS_READY)
        keep(e->peer, m, mlen);
    emit(r, SB_RT_SEND, idx, (uint32_t)what, 0);
    if (what == SB_BS_READY)
        emit(r, SB_RT_CONNECTED, idx, 0, 0);
    return r->nevents;
refused:
    return reject(r, why, idx);
}

int sb_router_window(sb_router *r, uint32_t source, const char *channel, size_t clen,
                     const char *t, size_t tlen, const char *n, size_t nlen, const char *m,
                     size_t mlen, const char *origin, size_t olen, int ports,
                     const uint8_t *rnd, double now_ms)
{
    int ep, type = 0;
    if (!r || !rnd)
        return SB_E_INVALID;
    r->nevents = 0;
    ep = sb_router_route(r, channel, clen, source, origin, olen);
    if (ep < 0)
        return reject(r, r->reason, -1);
    for (int i = 0; i < 4; i++)
        if (t && tlen == strlen(types[i]) && !memcmp(t, types[i], tlen))
            type = i + 1;
    return window_step(r, lookup(r, ep), type, n, nlen, m, mlen, ports, rnd, now_ms);
}

int sb_router_port(sb_router *r, int ep, int kind, const char *a, size_t alen, const char *b,
                   size_t blen, int gone, double now_ms)
{
    int idx = lookup(r, ep), why = SB_RR_BAD_STATE;
    endpoint *e;
    if (idx < 0)
        return SB_E_NOT_FOUND;
    e = &r->ep[idx];
    r->nevents = 0;
    if (kind == SB_BM_BYE) {
        lose(r, idx, SB_BW_BYE, gone);
    } else if (kind == SB_BM_SYN && e->role == SB_BR_PORT && nonce_ok(a, alen)) {
        keep(e->peer, a, alen); /* the peer's nonce: echo it, as often as it comes */
        emit(r, SB_RT_SEND, idx, SB_BS_ACK, 0);
    } else if ((kind == SB_BM_READY && e->role == SB_BR_PARENT) ||
               (kind == SB_BM_ACK && e->role != SB_BR_PARENT)) {
        /* READY: the child got our port and echoes our nonce; ACK: ours came
         * back to a child after an offer, or to a port. A late repeat: nothing */
        if (e->state == SB_EP_CONNECTED)
            return 0;
        if ((why = echo(e, a, alen, now_ms)))
            return reject(r, why, idx);
        /* after an offer the child's nonce comes back here: echo it (ACK), and
         * keep it, so its hello, if that arrives late, is a duplicate */
        if (kind == SB_BM_READY && nonce_ok(b, blen)) {
            keep(e->peer, b, blen);
            emit(r, SB_RT_SEND, idx, SB_BS_ACK, 0);
        }
        emit(r, SB_RT_CONNECTED, idx, 0, 0);
    } else {
        return reject(r, why, idx);
    }
    return r->nevents;
}

const uint8_t *sb_router_nonce(const sb_router *r, int ep, int which)
{
    int idx = lookup(r, ep);
    if (idx < 0)
        return NULL;
    return which ? r->ep[idx].peer : r->ep[idx].mine;
}

int sb_router_heard(sb_router *r, int ep, double now_ms)
{
    int idx = lookup(r, ep);
    if (idx < 0)
        return SB_E_NOT_FOUND;
    if (now_ms > r->ep[idx].heard_ms)
        r->ep[idx].heard_ms = now_ms;
    return 0;
}

int sb_router_call(sb_router *r, int ep, double now_ms, double timeout_ms)
{
    int idx = lookup(r, ep);
    uint32_t s;
    slot *sl;
    if (idx < 0)
        return SB_E_NOT_FOUND;
    if (r->ep[idx].state != SB_EP_CONNECTED)
        return SB_E_BAD_STATE;
    if (!(timeout_ms >= 0))
        return SB_E_INVALID;
    if (r->nfree == 0)
        return SB_E_QUEUE_FULL;
    s = r->free_slots[--r->nfree];
    sl = &r->slots[s];
    sl->seq = (sl->seq + 1) & 0x7fff;
    if (!sl->seq)
        sl->seq = 1;
    sl->id = (sl->seq << SLOT_BITS) | s;
    sl->ep = idx;
    sl->deadline = timeout_ms > 0 ? now_ms + timeout_ms : 0;
    r->ep[idx].pending++;
    return (int)sl->id;
}

int sb_router_settle(sb_router *r, int ep, uint32_t id, double now_ms)
{
    int idx = lookup(r, ep);
    uint32_t s = id & SLOT_MASK;
    if (idx < 0)
        return SB_E_NOT_FOUND;
    if (s >= (uint32_t)r->max_pending || r->slots[s].id != id || id == 0 || r->slots[s].ep != idx)
        return SB_E_NOT_FOUND;
    free_slot(r, s);
    if (now_ms > r->ep[idx].heard_ms)
        r->ep[idx].heard_ms = now_ms;
    return 0;
}

int sb_router_pending(const sb_router *r, int ep)
{
    int idx = lookup(r, ep);
    return idx < 0 ? SB_E_NOT_FOUND : r->ep[idx].pending;
}

int sb_router_poll(sb_router *r, double now_ms)
{
    if (!r)
        return SB_E_INVALID;
    r->nevents = 0;
    for (int i = 0; i < r->max_ep; i++) {
        endpoint *e = &r->ep[i];
        if (!e->used)
            continue;
        if (e->state != SB_EP_CONNECTED) {
            /* only before the first handshake: confirm() clears it */
            if (e->connect_deadline > 0 && now_ms >= e->connect_deadline)
                shut(r, i, SB_E_TIMEOUT);
            continue;
        }
        if (e->dead_ms > 0 && now_ms - e->heard_ms >= e->dead_ms) {
            /* the glue answers with sb_router_lost() and whether the window is
             * gone; asked again after another dead_ms if it does not */
            e->heard_ms = now_ms;
            emit(r, SB_RT_SILENT, i, 0, 0);
        } else if (e->heartbeat_ms > 0 && now_ms >= e->ping_at) {
            e->ping_at = now_ms + e->heartbeat_ms;
            emit(r, SB_RT_PING, i, 0, 0);
        }
    }
    for (int s = 0; s < r->max_pending; s++) {
        slot *sl = &r->slots[s];
        if (sl->id && sl->deadline > 0 && now_ms >= sl->deadline) {
            emit(r, SB_RT_CALL_FAILED, sl->ep, sl->id, SB_E_TIMEOUT);
            free_slot(r, (uint32_t)s);
        }
    }
    return r->nevents;
}

static double earlier(double a, double b)
{
    return (a < 0 || (b >= 0 && b < a)) ? b : a;
}

double sb_router_next_deadline(const sb_router *r)
{
    double d = -1;
    if (!r)
        return -1;
    for (int i = 0; i < r->max_ep; i++) {
        const endpoint *e = &r->ep[i];
        if (!e->used)
            continue;
        if (e->state != SB_EP_CONNECTED) {
            if (e->connect_deadline > 0)
                d = earlier(d, e->connect_deadline);
            continue;
        }
        if (e->dead_ms > 0)
            d = earlier(d, e->heard_ms + e->dead_ms);
        if (e->heartbeat_ms > 0)
            d = earlier(d, e->ping_at);
    }
    for (int s = 0; s < r->max_pending; s++)
        if (r->slots[s].id && r->slots[s].deadline > 0)
            d = earlier(d, r->slots[s].deadline);
    return d;
}

const int32_t *sb_router_events(const sb_router *r)
{
    return r ? (const int32_t *)r->events : NULL;
}
