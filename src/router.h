/* router — the endpoint table behind the cross-document bridge.
 *
 * The glue owns every window, port, worker and JS value; the router owns the
 * decisions: which endpoint an incoming handshake message belongs to (channel
 * + expected source + origin allowlist), whether a handshake reply carries the
 * nonce we sent, which call ids are pending on which endpoint and until when,
 * when a heartbeat is due and when a silent peer counts as lost. Sources are
 * small integers the glue assigns to the windows/workers it expects (0 means
 * "not a window anybody expects").
 *
 * Endpoint life: WAITING --offer--> OFFERED --confirm--> CONNECTED.
 * A new offer on a CONNECTED endpoint (the child reloaded) or a lost peer
 * fails every pending call with SB_E_CONNECTION_LOST and starts over.
 *
 * Calls: sb_router_call() hands out an id; sb_router_settle() retires it when
 * the answer arrives (an id that is not pending on that endpoint is refused,
 * so late, duplicate or forged answers are dropped). Time is passed in; the
 * glue keeps one timer for sb_router_next_deadline() and calls
 * sb_router_poll() when it fires. Work the glue must do is reported as an
 * event table read with sb_router_events() (valid until the next call that
 * produces events). */
#ifndef SB_ROUTER_H
#define SB_ROUTER_H

#include "origin.h"
#include "switchboard.h"

#define SB_ROUTER_CHANNEL_MAX 64
#define SB_ROUTER_NONCE_MAX 64

/* The bridge's wire (docs/bridge.md, "What the core decides"). The router reads
 * none of it; the glue does. It lives here so every number of the protocol
 * has one home and reaches js/constants.js like the router's own
 * (BRIDGE_VERSION, BM_CALL). */
#define SB_BRIDGE_MARK "__switchboard_bridge" /* the key that marks a window handshake message */
#define SB_BRIDGE_VERSION 1                   /* ... and its value */

/* Port messages are arrays: [kind, id, a, b] for calls, replies and the
 * handshake on the port; [EVENT, name, data] and [BATCH, [name, data, ...]]. */
enum sb_bridge_msg {
    SB_BM_CALL = 1,   /* [CALL, id, name, args] */
    SB_BM_OK = 2,     /* [OK, id, value] */
    SB_BM_ERR = 3,    /* [ERR, id, {name, message, stack, code}] */
    SB_BM_EVENT = 4,  /* [EVENT, name, data]: no id slot, events are the bulk traffic */
    SB_BM_BATCH = 5,  /* [BATCH, [name, data, ...]] */
    SB_BM_PING = 6,
    SB_BM_PONG = 7,
    SB_BM_BYE = 8,    /* the peer closes or its page hides */
    SB_BM_READY = 9,  /* [READY, 0, echoed nonce, own nonce?] */
    SB_BM_SYN = 10,   /* [SYN, 0, nonce]: port / worker handshake */
    SB_BM_ACK = 11,   /* [ACK, 0, echoed nonce] */
    SB_BM_CALL1 = 12  /* [CALL1, id, name, arg]: one argument, one nesting level less to clone */
};

enum sb_ep_state {
    SB_EP_WAITING = 1,   /* no handshake yet */
    SB_EP_OFFERED = 2,   /* our nonce is out, waiting for it to come back */
    SB_EP_CONNECTED = 3
};

/* Event kinds in the table (one sb_router_record per event). */
enum sb_router_event {
    SB_RT_CALL_FAILED = 1,   /* call id failed with err (TIMEOUT or CONNECTION_LOST) */
    SB_RT_PING = 2,          /* send a heartbeat on the endpoint */
    SB_RT_LOST = 3,          /* peer silent past dead_ms: the endpoint is WAITING again */
    SB_RT_CONNECT_TIMEOUT = 4 /* no handshake before the connect deadline */
};

/* Why sb_router_route() / sb_router_confirm() refused a message. */
enum sb_route_reason {
    SB_RR_NONE = 0,
    SB_RR_NO_CHANNEL = 1,      /* nobody listens on that channel */
    SB_RR_BAD_ORIGIN = 2,      /* origin does not parse */
    SB_RR_ORIGIN_REJECTED = 3, /* origin not in the endpoint's allowlist */
    SB_RR_WRONG_SOURCE = 4,    /* allowed origin, but not the window we expect */
    SB_RR_BAD_NONCE = 5,       /* handshake reply does not carry our nonce */
    SB_RR_BAD_STATE = 6        /* handshake message out of order */
};

/* One event of the table from sb_router_events(): 4 int32 (the call id as
 * int32; read it unsigned). */
SB_LAYOUT typedef struct sb_router_record {
    int32_t kind;     /* enum sb_router_event */
    int32_t endpoint; /* handle */
    int32_t id;       /* call id (CALL_FAILED), else 0 */
    int32_t err;      /* sb_err (CALL_FAILED), else 0 */
} sb_router_record;

typedef struct sb_router sb_router;

/* max_endpoints 1..4095, max_pending 1..65535 calls in flight in total,
 * max_origins allowlist entries per endpoint (1..256). */
SB_EXPORT sb_router *sb_router_create(int max_endpoints, int max_pending, int max_origins);
void sb_router_destroy(sb_router *r);

/* New endpoint on a channel name (1..SB_ROUTER_CHANNEL_MAX bytes), expecting
 * messages from `source` (0 = none, e.g. an already private port).
 * heartbeat_ms 0 = no heartbeat; dead_ms: silence after which the peer is
 * lost (0 = never); connect_timeout_ms 0 = wait forever. Returns a handle
 * (> 0), SB_E_TOO_LARGE when the table is full, SB_E_BAD_STATE when another
 * endpoint already has that channel and source. */
SB_EXPORT int sb_router_open(sb_router *r, const char *channel, size_t len, uint32_t source,
                             double heartbeat_ms, double dead_ms, double connect_timeout_ms,
                             double now_ms);
/* Allow an origin pattern on the endpoint (origin.h syntax). */
SB_EXPORT int sb_router_allow(sb_router *r, int ep, const char *pattern, size_t len);
/* Close: every pending call of the endpoint is reported as CALL_FAILED with
 * err (SB_E_CONNECTION_LOST or SB_E_CLOSED); returns the event count. */
SB_EXPORT int sb_router_close(sb_router *r, int ep, int err);
int sb_router_state(const sb_router *r, int ep);

/* Which endpoint a handshake message on the window belongs to. Returns the
 * endpoint handle, or an sb_err with sb_router_reason() saying why (and
 * sb_router_reason_ep() the endpoint of that channel, if any, to report to). */
SB_EXPORT int sb_router_route(sb_router *r, const char *channel, size_t clen, uint32_t source,
                              const char *origin, size_t olen);
SB_EXPORT int sb_router_reason(const sb_router *r);
SB_EXPORT int sb_router_reason_ep(const sb_router *r);

/* Remember the nonce we are sending; from CONNECTED this is a re-handshake
 * and fails the endpoint's pending calls (events, count returned). */
SB_EXPORT int sb_router_offer(sb_router *r, int ep, const char *nonce, size_t len, double now_ms);
/* The peer answered with `nonce`: CONNECTED if it is ours (compared in
 * constant time), else SB_E_ORIGIN_REJECTED with reason BAD_NONCE. */
SB_EXPORT int sb_router_confirm(sb_router *r, int ep, const char *nonce, size_t len,
                                double now_ms);

/* The peer said goodbye (or its window is gone but the endpoint stays for
 * a reload): fail pending calls with CONNECTION_LOST, back to WAITING.
 * Returns the event count. */
SB_EXPORT int sb_router_lost(sb_router *r, int ep);

/* Traffic from the peer: refreshes liveness. */
SB_EXPORT int sb_router_heard(sb_router *r, int ep, double now_ms);

/* A call id (> 0) pending on ep until now + timeout_ms (0 = no deadline),
 * SB_E_BAD_STATE if ep is not connected, SB_E_QUEUE_FULL at max_pending. */
SB_EXPORT int sb_router_call(sb_router *r, int ep, double now_ms, double timeout_ms);
/* Retire a pending call: 0, or SB_E_NOT_FOUND if id is not pending on ep. */
SB_EXPORT int sb_router_settle(sb_router *r, int ep, uint32_t id, double now_ms);
int sb_router_pending(const sb_router *r, int ep);

/* Fire whatever is due at now_ms; returns the event count. */
SB_EXPORT int sb_router_poll(sb_router *r, double now_ms);
/* Earliest deadline (call, heartbeat, liveness, connect), -1 for none. */
SB_EXPORT double sb_router_next_deadline(const sb_router *r);
/* The event table: the records of the last call that produced events, as
 * int32 (4 per record). */
SB_EXPORT const int32_t *sb_router_events(const sb_router *r);

#endif
