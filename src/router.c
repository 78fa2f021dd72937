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
    int state;
    uint32_t source;
    char channel[SB_ROUTER_CHANNEL_MAX];
    int chlen;
    char nonce[SB_ROUTER_NONCE_MAX];
    int nlen;
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
    /* every pending call fails at most once and every endpoint reports at
     * most two things per poll, so this table never overflows */
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

static void emit(sb_router *r, int kind, int ep_idx, uint32_t id, int err)
{
    sb_router_record *e;
    if (r->nevents >= r->max_events) /* cannot happen, see create() */
        return;
    e = &r->events[r->nevents++];
    e->kind = kind;
    e->endpoint = ep_idx >= 0 ? handle_of(r, ep_idx) : 0;
    e->id = (int32_t)id;
    e->err = err;
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

int sb_router_open(sb_router *r, const char *channel, size_t len, uint32_t source,
                   double heartbeat_ms, double dead_ms, double connect_timeout_ms, double now_ms)
{
    int idx = -1;
    endpoint *e;
    if (!r || !channel || len == 0 || len > SB_ROUTER_CHANNEL_MAX || !(heartbeat_ms >= 0) ||
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
    e->source = source;
    memcpy(e->channel, channel, len);
    e->chlen = (int)len;
    e->nlen = 0;
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

int sb_router_close(sb_router *r, int ep, int err)
{
    int idx = lookup(r, ep);
    endpoint *e;
    if (idx < 0)
        return SB_E_NOT_FOUND;
    r->nevents = 0;
    fail_pending(r, idx, err < 0 ? err : SB_E_CLOSED);
    e = &r->ep[idx];
    sb_origin_list_destroy(e->allow);
    e->allow = NULL;
    e->used = 0;
    e->state = 0;
    memset(e->nonce, 0, sizeof e->nonce);
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

int sb_router_offer(sb_router *r, int ep, const char *nonce, size_t len, double now_ms)
{
    int idx = lookup(r, ep);
    endpoint *e;
    if (idx < 0)
        return SB_E_NOT_FOUND;
    if (!nonce || len < 8 || len > SB_ROUTER_NONCE_MAX)
        return SB_E_INVALID;
    e = &r->ep[idx];
    r->nevents = 0;
    if (e->state == SB_EP_CONNECTED)
        fail_pending(r, idx, SB_E_CONNECTION_LOST);
    memcpy(e->nonce, nonce, len);
    e->nlen = (int)len;
    e->state = SB_EP_OFFERED;
    e->heard_ms = now_ms;
    return r->nevents;
}

int sb_router_confirm(sb_router *r, int ep, const char *nonce, size_t len, double now_ms)
{
    int idx = lookup(r, ep);
    endpoint *e;
    unsigned diff = 0;
    if (idx < 0)
        return SB_E_NOT_FOUND;
    e = &r->ep[idx];
    r->reason = SB_RR_NONE;
    r->reason_ep = 0;
    if (e->state != SB_EP_OFFERED)
        return refuse(r, SB_RR_BAD_STATE, idx, SB_E_BAD_STATE);
    if (!nonce || (int)len != e->nlen)
        return refuse(r, SB_RR_BAD_NONCE, idx, SB_E_ORIGIN_REJECTED);
    /* constant time: a probing peer learns nothing from how long this takes */
    for (size_t i = 0; i < len; i++)
        diff |= (unsigned)(unsigned char)(nonce[i] ^ e->nonce[i]);
    if (diff)
        return refuse(r, SB_RR_BAD_NONCE, idx, SB_E_ORIGIN_REJECTED);
    e->state = SB_EP_CONNECTED;
    e->heard_ms = now_ms;
    e->ping_at = e->heartbeat_ms > 0 ? now_ms + e->heartbeat_ms : 0;
    e->connect_deadline = 0;
    return 0;
}

int sb_router_lost(sb_router *r, int ep)
{
    int idx = lookup(r, ep);
    if (idx < 0)
        return SB_E_NOT_FOUND;
    r->nevents = 0;
    fail_pending(r, idx, SB_E_CONNECTION_LOST);
    r->ep[idx].state = SB_EP_WAITING;
    r->ep[idx].nlen = 0;
    return r->nevents;
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
            if (e->connect_deadline > 0 && now_ms >= e->connect_deadline) {
                e->connect_deadline = 0;
                emit(r, SB_RT_CONNECT_TIMEOUT, i, 0, SB_E_TIMEOUT);
            }
            continue;
        }
        if (e->dead_ms > 0 && now_ms - e->heard_ms >= e->dead_ms) {
            fail_pending(r, i, SB_E_CONNECTION_LOST);
            e->state = SB_EP_WAITING;
            e->nlen = 0;
            emit(r, SB_RT_LOST, i, 0, SB_E_CONNECTION_LOST);
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
