/* conn — the life of one logical connection over many transport sockets:
 * state machine, connect timeout, heartbeat, reconnect decisions and the
 * sequence bookkeeping that resume needs. Sans-I/O: the glue owns the real
 * WebSocket and one timer; it reports what happened (opened, closed, bytes
 * arrived, tab became visible...) with the current time, and acts on the
 * returned action bits (open a socket, close it, send a ping, send an ack).
 *
 * States: CONNECTING -> OPEN -> (CLOSING ->) CLOSED, and RECONNECTING in
 * between attempts. Every transition records a reason.
 *
 * Liveness is a verdict from timestamps, not a count of timer ticks: a
 * connection is dead when a ping went out at t and nothing at all arrived
 * since t for pong_timeout_ms. A throttled background timer only delays the
 * verdict; it can neither fake liveness nor kill a healthy connection
 * (events are not throttled, so the pong's timestamp is recorded on time). */
#ifndef SB_CONN_H
#define SB_CONN_H

#include "switchboard.h"

typedef struct sb_conn sb_conn;

enum sb_conn_state {
    SB_CONN_IDLE = 0,        /* created, sb_conn_start not called yet */
    SB_CONN_CONNECTING = 1,  /* a socket is being opened */
    SB_CONN_OPEN = 2,        /* socket open (and handshake done) */
    SB_CONN_CLOSING = 3,     /* user asked to close; waiting for the socket */
    SB_CONN_CLOSED = 4,      /* final: no more attempts */
    SB_CONN_RECONNECTING = 5 /* waiting out a backoff delay */
};

/* Why the last transition happened. */
enum sb_conn_reason {
    SB_CONN_R_NONE = 0,
    SB_CONN_R_START = 1,             /* sb_conn_start */
    SB_CONN_R_OPENED = 2,            /* transport reported open */
    SB_CONN_R_CONNECT_TIMEOUT = 3,   /* open took longer than connect_timeout_ms */
    SB_CONN_R_HEARTBEAT_TIMEOUT = 4, /* ping unanswered for pong_timeout_ms */
    SB_CONN_R_PEER_CLOSED = 5,       /* transport closed/failed, not by us */
    SB_CONN_R_USER_CLOSE = 6,        /* sb_conn_close */
    SB_CONN_R_RETRY = 7,             /* backoff delay elapsed */
    SB_CONN_R_ONLINE = 8,            /* network came back */
    SB_CONN_R_VISIBLE = 9,           /* tab visible again after a long silence (sleep) */
    SB_CONN_R_GAVE_UP = 10,          /* max attempts used */
    SB_CONN_R_PROTOCOL_ERROR = 11,   /* peer sent bytes we refuse (sb_conn_fail) */
    SB_CONN_R_SERVER_CLOSE = 12      /* peer closed with a "do not come back" code */
};

/* Action bits returned by every event call and by sb_conn_tick.
 * DO_CLOSE while the state is CLOSING: close the socket and report
 * sb_conn_closed when it has closed. DO_CLOSE in any other state: the conn
 * already counts that socket as gone; close it and ignore its events. */
enum sb_conn_action {
    SB_CONN_DO_CONNECT = 1, /* open a new transport socket now */
    SB_CONN_DO_CLOSE = 2,   /* close the current transport socket */
    SB_CONN_DO_PING = 4,    /* send a heartbeat ping */
    SB_CONN_DO_ACK = 8,     /* send a cumulative ack of sb_conn_rx_seq() */
    SB_CONN_CHANGED = 16    /* state changed: read sb_conn_state / sb_conn_reason */
};

/* Result of sb_conn_rx_seq. */
enum sb_conn_rx {
    SB_CONN_RX_DUP = 0,  /* already delivered: drop it */
    SB_CONN_RX_NEW = 1,  /* next in order: deliver it */
    SB_CONN_RX_GAP = 2   /* later than expected: messages were lost upstream */
};

/* connect_timeout_ms > 0; ping_interval_ms 0 = no heartbeat, else > 0 with
 * pong_timeout_ms > 0; ack_delay_ms >= 0 and ack_every >= 1 bound how long
 * and how many received messages may wait for a cumulative ack; backoff_*
 * and max_attempts as in backoff.h (0 = retry forever); seed for jitter.
 * Returns NULL on bad arguments. */
SB_EXPORT sb_conn *sb_conn_create(double connect_timeout_ms, double ping_interval_ms,
                                  double pong_timeout_ms, double ack_delay_ms, int ack_every,
                                  double backoff_min_ms, double backoff_max_ms,
                                  double backoff_factor, int max_attempts, uint32_t seed);
SB_EXPORT void sb_conn_destroy(sb_conn *c);

/* ---- events from the glue; each returns action bits or an sb_err ---- */

/* Begin the first attempt. */
SB_EXPORT int sb_conn_start(sb_conn *c, double now_ms);
/* The transport socket opened (for a framed protocol: after the handshake). */
SB_EXPORT int sb_conn_opened(sb_conn *c, double now_ms);
/* Something arrived (any frame, data or pong): proof of life. */
SB_EXPORT int sb_conn_received(sb_conn *c, double now_ms);
/* A pong arrived: proof of life and a round-trip sample. */
SB_EXPORT int sb_conn_pong(sb_conn *c, double now_ms);
/* The transport socket closed or failed. no_retry: the peer said not to come
 * back (e.g. a policy-violation close code), so the connection ends. */
SB_EXPORT int sb_conn_closed(sb_conn *c, double now_ms, int no_retry);
/* The peer sent something we refuse: close the socket and reconnect. */
SB_EXPORT int sb_conn_fail(sb_conn *c, double now_ms);
/* The user closes: no more attempts. */
SB_EXPORT int sb_conn_close(sb_conn *c, double now_ms);
/* navigator online/offline. */
SB_EXPORT int sb_conn_network(sb_conn *c, double now_ms, int online);
/* Page visibility. */
SB_EXPORT int sb_conn_visibility(sb_conn *c, double now_ms, int visible);
/* Deadlines: call when the glue's single timer fires (early calls are harmless). */
SB_EXPORT int sb_conn_tick(sb_conn *c, double now_ms);
/* Next time sb_conn_tick has something to do, or -1. */
SB_EXPORT double sb_conn_next_deadline(const sb_conn *c);

/* ---- state ---- */
SB_EXPORT int sb_conn_state(const sb_conn *c);
SB_EXPORT int sb_conn_reason(const sb_conn *c);
/* Attempts made since the last connection that proved alive (0 when healthy). */
SB_EXPORT int sb_conn_attempt(const sb_conn *c);
/* The backoff delay drawn for the current RECONNECTING wait (ms), or -1. */
SB_EXPORT double sb_conn_retry_delay(const sb_conn *c);
/* Last measured ping round trip in ms, or -1. */
SB_EXPORT double sb_conn_rtt(const sb_conn *c);
/* Times the connection opened (1 on the first open). */
double sb_conn_opens(const sb_conn *c);

/* ---- resume bookkeeping: sequence numbers in both directions ----
 * Outbound: the glue numbers messages with sb_conn_tx_next; the peer's
 * cumulative ack moves acked forward; after a reconnect everything in
 * (acked, tx] is sent again. Inbound: rx_seq is the last seq delivered in
 * order; sb_conn_rx_seq classifies an arriving seq, and a delivered one
 * schedules a cumulative ack (SB_CONN_DO_ACK, bounded by ack_every and
 * ack_delay_ms). Sequence numbers start at 1; 0 means "nothing". */
SB_EXPORT uint32_t sb_conn_tx_next(sb_conn *c);
SB_EXPORT uint32_t sb_conn_tx_seq(const sb_conn *c);
/* Peer acknowledged everything up to seq; returns how many newly acked, or
 * SB_E_INVALID for an ack of something never sent. */
SB_EXPORT int sb_conn_acked(sb_conn *c, uint32_t seq);
SB_EXPORT uint32_t sb_conn_acked_seq(const sb_conn *c);
SB_EXPORT int sb_conn_rx_seq(sb_conn *c, double now_ms, uint32_t seq);
SB_EXPORT uint32_t sb_conn_rx_last(const sb_conn *c);
/* Call after sending an ack of sb_conn_rx_last(). */
SB_EXPORT void sb_conn_ack_sent(sb_conn *c);
/* Restore counters from persisted state (before start): tx = last seq
 * assigned, acked = last seq the peer confirmed, rx = last seq delivered. */
SB_EXPORT int sb_conn_restore(sb_conn *c, uint32_t tx, uint32_t acked, uint32_t rx);
/* Move the inbound position: after the peer lost our stream (rx = 0) or
 * reported a gap it cannot fill (rx = the seq before the next one it has). */
SB_EXPORT void sb_conn_set_rx(sb_conn *c, uint32_t rx);
/* The peer's hello says what it already has of ours (resume point): anything
 * up to seq needs no resend. Same as sb_conn_acked, but also valid when seq
 * is behind acked (the peer lost state): returns the seq to resend from. */
SB_EXPORT uint32_t sb_conn_resume_from(sb_conn *c, uint32_t peer_has);

#endif
