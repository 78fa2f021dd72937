/* conn — the life of one logical connection over many transport sockets:
 * state machine, connect timeout, heartbeat and reconnect decisions. The
 * client role of the session (session.h) drives it: it reports what
 * happened (opened, closed, bytes arrived, tab became visible...) with the
 * current time, and acts on the returned action bits (open a socket, close
 * it, send a ping). Sequence numbers, acks and resume are the session's.
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
    SB_CONN_CHANGED = 16    /* state changed: read sb_conn_state / sb_conn_reason */
};

/* connect_timeout_ms > 0; ping_interval_ms 0 = no heartbeat, else > 0 with
 * pong_timeout_ms > 0; backoff_* and max_attempts as in backoff.h (0 =
 * retry forever); seed for jitter. Returns NULL on bad arguments. */
sb_conn *sb_conn_create(double connect_timeout_ms, double ping_interval_ms,
                        double pong_timeout_ms, double backoff_min_ms, double backoff_max_ms,
                        double backoff_factor, int max_attempts, uint32_t seed);
void sb_conn_destroy(sb_conn *c);

/* ---- events from the glue; each returns action bits or an sb_err ---- */

/* Begin the first attempt. */
int sb_conn_start(sb_conn *c, double now_ms);
/* The transport socket opened (for a framed protocol: after the handshake). */
int sb_conn_opened(sb_conn *c, double now_ms);
/* Something arrived (any frame, data or pong): proof of life. */
int sb_conn_received(sb_conn *c, double now_ms);
/* A pong arrived: proof of life and a round-trip sample. */
int sb_conn_pong(sb_conn *c, double now_ms);
/* The transport socket closed or failed. no_retry: the peer said not to come
 * back (e.g. a policy-violation close code), so the connection ends. */
int sb_conn_closed(sb_conn *c, double now_ms, int no_retry);
/* The peer sent something we refuse: close the socket and reconnect. */
int sb_conn_fail(sb_conn *c, double now_ms);
/* The user closes: no more attempts. */
int sb_conn_close(sb_conn *c, double now_ms);
/* navigator online/offline. */
int sb_conn_network(sb_conn *c, double now_ms, int online);
/* Page visibility. */
int sb_conn_visibility(sb_conn *c, double now_ms, int visible);
/* Deadlines: call when the glue's single timer fires (early calls are harmless). */
int sb_conn_tick(sb_conn *c, double now_ms);
/* Next time sb_conn_tick has something to do, or -1. */
double sb_conn_next_deadline(const sb_conn *c);

/* ---- state ---- */
int sb_conn_state(const sb_conn *c);
int sb_conn_reason(const sb_conn *c);
/* Attempts made since the last connection that proved alive (0 when healthy). */
int sb_conn_attempt(const sb_conn *c);
/* The backoff delay drawn for the current RECONNECTING wait (ms), or -1. */
double sb_conn_retry_delay(const sb_conn *c);
/* Last measured ping round trip in ms, or -1. */
double sb_conn_rtt(const sb_conn *c);
/* Times the connection opened (1 on the first open). */
double sb_conn_opens(const sb_conn *c);

#endif
