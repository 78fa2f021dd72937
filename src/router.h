/* router — the endpoint table and the handshake behind the cross-document
 * bridge.
 *
 * The glue owns every window, port, worker and JS value; the router owns the
 * decisions: which endpoint an incoming handshake message belongs to (channel
 * + expected source + origin allowlist), what that message means in the
 * endpoint's role and state (a reply, a duplicate, a reload, a forgery), what
 * to send back, when the bridge is connected, lost, restarted or closed for
 * good, which call ids are pending on which endpoint and until when, when a
 * heartbeat is due and when a silent peer counts as lost. Sources are small
 * integers the glue assigns to the windows/workers it expects (0 means "not a
 * window anybody expects").
 *
 * Endpoint life: WAITING --(our nonce out)--> OFFERED --(it came back)-->
 * CONNECTED. A reload (a hello with a new nonce on a CONNECTED parent), a bye,
 * a closed port or a silent peer fail every pending call with
 * SB_E_CONNECTION_LOST; then the endpoint starts over (RESTART) or, for a
 * port or a peer that is gone, closes for good (CLOSED). The transitions are
 * in docs/bridge.md ("Handshake").
 *
 * Calls: sb_router_call() hands out an id; sb_router_settle() retires it when
 * the answer arrives (an id that is not pending on that endpoint is refused,
 * so late, duplicate or forged answers are dropped). Time is passed in; the
 * glue keeps one timer for sb_router_next_deadline() and calls
 * sb_router_poll() when it fires. Work the glue must do is reported as an
 * event table read with sb_router_events() (valid until the next call that
 * produces events); every call that takes a message returns its count. The
 * glue brings randomness (16 bytes from crypto.getRandomValues wherever a
 * fresh nonce may be needed): nonces must be unguessable, and a PRNG seeded
 * once would let one peer that saw a nonce predict the next. */
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
/* Window messages are { [MARK]: VERSION, t, ch, n, m }: `n` is always the
 * child's nonce, `m` the parent's. Their `t`: */
#define SB_BRIDGE_OFFER "offer"     /* parent -> child, with a port: { m } */
#define SB_BRIDGE_PROBE "probe"     /* parent -> child: say hello */
#define SB_BRIDGE_HELLO "hello"     /* child -> parent: { n } */
#define SB_BRIDGE_WELCOME "welcome" /* parent -> child, with a port: { n, m } */
#define SB_BRIDGE_PORT "port"       /* page -> worker, with the port the bridge runs on */
#define SB_ROUTER_TYPE_MAX 16       /* a longer `t` is no handshake message */

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

/* What an endpoint is: which handshake it runs. */
enum sb_bridge_role {
    SB_BR_PARENT = 1, /* an iframe or popup's opener: offer or probe, welcome a hello */
    SB_BR_CHILD = 2,  /* inside the iframe or popup: hello, take an offer or a welcome */
    SB_BR_PORT = 3    /* a MessagePort or Worker: SYN/ACK on the private channel */
};

/* What the glue sends for a SEND event (the record's id). */
enum sb_bridge_send {
    SB_BS_OFFER = 1,     /* window: offer { m: own } with a new port, to the one target */
    SB_BS_PROBE = 2,     /* window: probe {} to every target */
    SB_BS_HELLO = 3,     /* window: hello { n: own } to every target */
    SB_BS_WELCOME = 4,   /* window: welcome { n: peer's, m: own } with a new port, to the
                          * origin of the hello */
    SB_BS_READY = 5,     /* take the message's port, send [READY, 0, peer's] on it */
    SB_BS_READY_OWN = 6, /* take the message's port, send [READY, 0, peer's, own] on it */
    SB_BS_ACK = 7,       /* port: [ACK, 0, peer's] */
    SB_BS_SYN = 8        /* port: [SYN, 0, own] */
};

/* Why a DISCONNECTED event (the record's id; the `disconnect` event's reason). */
enum sb_bridge_why {
    SB_BW_BYE = 1,         /* the peer said goodbye (it closed, or its page hid) */
    SB_BW_RELOAD = 2,      /* the child said hello again with a new nonce */
    SB_BW_TIMEOUT = 3,     /* silent past dead_ms */
    SB_BW_REMOVED = 4,     /* the glue saw the frame leave the document / the popup close */
    SB_BW_PORT_CLOSED = 5, /* the port's close event */
    SB_BW_CLOSED = 6       /* we closed */
};

enum sb_ep_state {
    SB_EP_WAITING = 1,   /* no handshake yet */
    SB_EP_OFFERED = 2,   /* our nonce is out, waiting for it to come back */
    SB_EP_CONNECTED = 3
};

/* Event kinds in the table (one sb_router_record per event). */
enum sb_router_event {
    SB_RT_CALL_FAILED = 1,  /* call id failed with err (TIMEOUT, CONNECTION_LOST, CLOSED) */
    SB_RT_PING = 2,         /* heartbeat due: if the peer's window is gone, answer with
                             * sb_router_lost(REMOVED, gone), else send PING */
    SB_RT_SILENT = 3,       /* peer silent past dead_ms: answer with
                             * sb_router_lost(TIMEOUT, gone) */
    SB_RT_CLOSED = 4,       /* the endpoint is closed for good (err says why); the
                             * handle is stale from here */
    SB_RT_SEND = 5,         /* send id (enum sb_bridge_send) */
    SB_RT_CONNECTED = 6,    /* the handshake completed */
    SB_RT_DISCONNECTED = 7, /* id (enum sb_bridge_why): a CONNECTED endpoint is not */
    SB_RT_RESTART = 8,      /* start the handshake again: sb_router_start() */
    SB_RT_REJECT = 9        /* a message refused: id = enum sb_route_reason, endpoint
                             * = the one of its channel, if any (0 = none) */
};

/* Why sb_router_route() / sb_router_confirm() refused a message. */
enum sb_route_reason {
    SB_RR_NONE = 0,
    SB_RR_NO_CHANNEL = 1,      /* nobody listens on that channel */
    SB_RR_BAD_ORIGIN = 2,      /* origin does not parse */
    SB_RR_ORIGIN_REJECTED = 3, /* origin not in the endpoint's allowlist */
    SB_RR_WRONG_SOURCE = 4,    /* allowed origin, but not the window we expect */
    SB_RR_BAD_NONCE = 5,       /* handshake reply does not carry our nonce */
    SB_RR_BAD_STATE = 6        /* handshake message out of order or malformed */
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

/* New endpoint on a channel name (1..SB_ROUTER_CHANNEL_MAX bytes) in a role
 * (enum sb_bridge_role), expecting messages from `source` (0 = none, e.g. an
 * already private port).
 * heartbeat_ms 0 = no heartbeat; dead_ms: silence after which the peer is
 * lost (0 = never); connect_timeout_ms 0 = wait forever. Returns a handle
 * (> 0), SB_E_TOO_LARGE when the table is full, SB_E_BAD_STATE when another
 * endpoint already has that channel and source. */
SB_EXPORT int sb_router_open(sb_router *r, const char *channel, size_t len, uint32_t source,
                             int role, double heartbeat_ms, double dead_ms, double connect_timeout_ms,
                             double now_ms);
/* Allow an origin pattern on the endpoint (origin.h syntax). */
SB_EXPORT int sb_router_allow(sb_router *r, int ep, const char *pattern, size_t len);
/* Close: every pending call of the endpoint is reported as CALL_FAILED with
 * err (SB_E_CONNECTION_LOST or SB_E_CLOSED), then DISCONNECTED (CLOSED) if it
 * was connected, then CLOSED with err; returns the event count. */
SB_EXPORT int sb_router_close(sb_router *r, int ep, int err);
int sb_router_state(const sb_router *r, int ep);

/* Start the handshake (after open, and on RESTART). targets: how many
 * origins the glue will post window messages to, exact: how many of them are
 * exact (not "*"). A parent offers its port when there is exactly one target
 * and it is exact (a port is transferred once) and probes otherwise; a child
 * says hello; a port sends SYN. rnd: 16 random bytes. Returns the event
 * count. */
SB_EXPORT int sb_router_start(sb_router *r, int ep, int targets, int exact, const uint8_t *rnd,
                              double now_ms);

/* A bridge-marked message on the window: route it (channel, source, origin)
 * and apply it to its endpoint: t is its type, n and m its nonce fields
 * (empty when absent or not strings), ports how many ports came with it, rnd
 * 16 random bytes. Every field is checked here: lengths, printable nonces of
 * 8..SB_ROUTER_NONCE_MAX bytes. Returns the event count (a refusal is a REJECT
 * event), SB_E_INVALID without a router. */
SB_EXPORT int sb_router_window(sb_router *r, uint32_t source, const char *channel, size_t clen,
                               const char *t, size_t tlen, const char *n, size_t nlen,
                               const char *m, size_t mlen, const char *origin, size_t olen,
                               int ports, const uint8_t *rnd, double now_ms);

/* A handshake message on the endpoint's port: kind READY, SYN, ACK or BYE
 * (enum sb_bridge_msg), a and b its nonce slots ([kind, 0, a, b]), gone
 * whether the glue sees the peer's window gone (for BYE). Returns the event
 * count (another kind, or one out of place, is a REJECT). */
SB_EXPORT int sb_router_port(sb_router *r, int ep, int kind, const char *a, size_t alen,
                             const char *b, size_t blen, int gone, double now_ms);

/* The peer is lost for `why` (enum sb_bridge_why); gone: its window is gone
 * for good. Fails pending calls with CONNECTION_LOST, DISCONNECTED if it was
 * connected, then CLOSED (a port, or gone) or RESTART. Returns the event
 * count. */
SB_EXPORT int sb_router_lost(sb_router *r, int ep, int why, int gone);

/* The endpoint's own nonce (which 0) or the peer's (1), as a length byte and
 * that many bytes; NULL for a stale handle. */
SB_EXPORT const uint8_t *sb_router_nonce(const sb_router *r, int ep, int which);

/* Which endpoint a window message belongs to (what sb_router_window uses, and
 * the glue to choose a target origin). Returns the endpoint handle, or an
 * sb_err with sb_router_reason() saying why (and sb_router_reason_ep() the
 * endpoint of that channel, if any). */
SB_EXPORT int sb_router_route(sb_router *r, const char *channel, size_t clen, uint32_t source,
                              const char *origin, size_t olen);
int sb_router_reason(const sb_router *r);
int sb_router_reason_ep(const sb_router *r);

/* The steps the transitions are made of, for the C tests and fuzzers: store
 * our nonce (from CONNECTED this fails the pending calls: events, count
 * returned), and check the peer's echo of it: 0 and CONNECTED if it is ours
 * (constant time), else SB_E_ORIGIN_REJECTED with reason BAD_NONCE, or
 * SB_E_BAD_STATE when nothing was offered. */
int sb_router_offer(sb_router *r, int ep, const char *nonce, size_t len, double now_ms);
int sb_router_confirm(sb_router *r, int ep, const char *nonce, size_t len, double now_ms);

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
