/* conn — see conn.h. */
#include "conn.h"

#include <stdlib.h>

#include "backoff.h"

struct sb_conn {
    /* configuration */
    double connect_timeout, ping_interval, pong_timeout;
    sb_backoff *bo;

    int state, reason;
    double attempt_at;   /* when the current CONNECTING attempt began */
    double retry_at;     /* RECONNECTING: when to try again */
    double retry_delay;  /* the delay drawn for that wait */
    double closing_at;   /* CLOSING: when the user asked */
    double opened_at;
    double last_rx;      /* last time anything arrived on the open socket */
    double ping_at;      /* outstanding ping sent at, or -1 */
    double rtt;
    double opens;
    int proved;          /* this connection showed it is alive: backoff reset */
    int offline_seen;    /* network went offline while this socket was up */
    int online;
};

sb_conn *sb_conn_create(double connect_timeout_ms, double ping_interval_ms,
                        double pong_timeout_ms, double backoff_min_ms, double backoff_max_ms,
                        double backoff_factor, int max_attempts, uint32_t seed)
{
    sb_conn *c;
    if (!(connect_timeout_ms > 0) || !(ping_interval_ms >= 0) ||
        (ping_interval_ms > 0 && !(pong_timeout_ms > 0)))
        return NULL;
    c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->bo = sb_backoff_create(backoff_min_ms, backoff_max_ms, backoff_factor, max_attempts, seed);
    if (!c->bo) {
        free(c);
        return NULL;
    }
    c->connect_timeout = connect_timeout_ms;
    c->ping_interval = ping_interval_ms;
    c->pong_timeout = pong_timeout_ms;
    c->state = SB_CONN_IDLE;
    c->retry_delay = -1;
    c->ping_at = -1;
    c->rtt = -1;
    c->online = 1;
    return c;
}

void sb_conn_destroy(sb_conn *c)
{
    if (!c)
        return;
    sb_backoff_destroy(c->bo);
    free(c);
}

static int set_state(sb_conn *c, int state, int reason)
{
    c->state = state;
    c->reason = reason;
    return SB_CONN_CHANGED;
}

static int begin_attempt(sb_conn *c, double now, int reason)
{
    c->attempt_at = now;
    c->retry_delay = -1;
    c->ping_at = -1;
    c->proved = 0;
    c->offline_seen = !c->online;
    return set_state(c, SB_CONN_CONNECTING, reason) | SB_CONN_DO_CONNECT;
}

/* The socket is gone (or given up on): wait a jittered delay, or stop. */
static int schedule_retry(sb_conn *c, double now, int reason)
{
    double d = sb_backoff_next(c->bo);
    c->ping_at = -1;
    if (d < 0) {
        c->retry_delay = -1;
        return set_state(c, SB_CONN_CLOSED, SB_CONN_R_GAVE_UP);
    }
    c->retry_delay = d;
    c->retry_at = now + d;
    return set_state(c, SB_CONN_RECONNECTING, reason);
}

/* Drop the current socket and start a fresh attempt at once. */
static int reconnect_now(sb_conn *c, double now, int reason)
{
    return SB_CONN_DO_CLOSE | begin_attempt(c, now, reason);
}

int sb_conn_start(sb_conn *c, double now_ms)
{
    if (!c)
        return SB_E_INVALID;
    if (c->state != SB_CONN_IDLE)
        return SB_E_BAD_STATE;
    return begin_attempt(c, now_ms, SB_CONN_R_START);
}

int sb_conn_opened(sb_conn *c, double now_ms)
{
    if (!c)
        return SB_E_INVALID;
    if (c->state != SB_CONN_CONNECTING)
        return SB_E_BAD_STATE;
    c->opened_at = now_ms;
    c->last_rx = now_ms;
    c->ping_at = -1;
    c->opens++;
    return set_state(c, SB_CONN_OPEN, SB_CONN_R_OPENED);
}

static void prove(sb_conn *c)
{
    if (!c->proved) {
        c->proved = 1;
        sb_backoff_reset(c->bo);
    }
}

int sb_conn_received(sb_conn *c, double now_ms)
{
    if (!c)
        return SB_E_INVALID;
    if (c->state != SB_CONN_OPEN && c->state != SB_CONN_CLOSING)
        return 0;
    if (now_ms > c->last_rx)
        c->last_rx = now_ms;
    /* Any traffic answers an outstanding ping: the peer is alive. */
    c->ping_at = -1;
    if (c->state == SB_CONN_OPEN)
        prove(c);
    return 0;
}

int sb_conn_pong(sb_conn *c, double now_ms)
{
    double sent;
    if (!c)
        return SB_E_INVALID;
    sent = c->ping_at;
    if (sent >= 0 && now_ms >= sent && c->state == SB_CONN_OPEN)
        c->rtt = now_ms - sent;
    return sb_conn_received(c, now_ms);
}

int sb_conn_closed(sb_conn *c, double now_ms, int no_retry)
{
    if (!c)
        return SB_E_INVALID;
    switch (c->state) {
    case SB_CONN_CLOSING:
        return set_state(c, SB_CONN_CLOSED, SB_CONN_R_USER_CLOSE);
    case SB_CONN_CONNECTING:
    case SB_CONN_OPEN:
        if (no_retry)
            return set_state(c, SB_CONN_CLOSED, SB_CONN_R_SERVER_CLOSE);
        return schedule_retry(c, now_ms, SB_CONN_R_PEER_CLOSED);
    default:
        return 0; /* a socket we already let go of */
    }
}

int sb_conn_fail(sb_conn *c, double now_ms)
{
    if (!c)
        return SB_E_INVALID;
    if (c->state != SB_CONN_CONNECTING && c->state != SB_CONN_OPEN)
        return 0;
    return SB_CONN_DO_CLOSE | schedule_retry(c, now_ms, SB_CONN_R_PROTOCOL_ERROR);
}

int sb_conn_close(sb_conn *c, double now_ms)
{
    if (!c)
        return SB_E_INVALID;
    switch (c->state) {
    case SB_CONN_CONNECTING:
    case SB_CONN_OPEN:
        c->closing_at = now_ms;
        c->ping_at = -1;
        return SB_CONN_DO_CLOSE | set_state(c, SB_CONN_CLOSING, SB_CONN_R_USER_CLOSE);
    case SB_CONN_IDLE:
    case SB_CONN_RECONNECTING:
        c->retry_delay = -1;
        return set_state(c, SB_CONN_CLOSED, SB_CONN_R_USER_CLOSE);
    default:
        return 0;
    }
}

int sb_conn_network(sb_conn *c, double now_ms, int online)
{
    if (!c)
        return SB_E_INVALID;
    c->online = online != 0;
    if (!online) {
        if (c->state == SB_CONN_OPEN || c->state == SB_CONN_CONNECTING)
            c->offline_seen = 1;
        return 0;
    }
    switch (c->state) {
    case SB_CONN_RECONNECTING:
        return begin_attempt(c, now_ms, SB_CONN_R_ONLINE);
    case SB_CONN_CONNECTING:
    case SB_CONN_OPEN:
        /* A socket that lived through an outage (the address may have
         * changed) is presumed dead; with resume a fresh one costs nothing. */
        if (c->offline_seen)
            return reconnect_now(c, now_ms, SB_CONN_R_ONLINE);
        return 0;
    default:
        return 0;
    }
}

int sb_conn_visibility(sb_conn *c, double now_ms, int visible)
{
    if (!c)
        return SB_E_INVALID;
    if (!visible)
        return 0;
    if (c->state == SB_CONN_RECONNECTING)
        return begin_attempt(c, now_ms, SB_CONN_R_VISIBLE);
    if (c->state == SB_CONN_OPEN && c->ping_interval > 0) {
        double silent = now_ms - c->last_rx;
        /* Silent for longer than the heartbeat allows: the timers were
         * asleep with the tab (or the machine), so nobody could check. */
        if (silent >= c->ping_interval + c->pong_timeout)
            return reconnect_now(c, now_ms, SB_CONN_R_VISIBLE);
        if (silent >= c->ping_interval && c->ping_at < 0) {
            c->ping_at = now_ms;
            return SB_CONN_DO_PING;
        }
    }
    return 0;
}

int sb_conn_tick(sb_conn *c, double now_ms)
{
    int act = 0;
    if (!c)
        return SB_E_INVALID;
    switch (c->state) {
    case SB_CONN_CONNECTING:
        if (now_ms - c->attempt_at >= c->connect_timeout)
            return SB_CONN_DO_CLOSE | schedule_retry(c, now_ms, SB_CONN_R_CONNECT_TIMEOUT);
        return 0;
    case SB_CONN_RECONNECTING:
        if (now_ms >= c->retry_at)
            return begin_attempt(c, now_ms, SB_CONN_R_RETRY);
        return 0;
    case SB_CONN_CLOSING:
        /* The socket never reported its close: stop waiting for it. */
        if (now_ms - c->closing_at >= c->connect_timeout)
            return set_state(c, SB_CONN_CLOSED, SB_CONN_R_USER_CLOSE);
        return 0;
    case SB_CONN_OPEN:
        break;
    default:
        return 0;
    }
    if (c->ping_interval > 0) {
        if (c->ping_at >= 0) {
            /* The verdict: a ping went out and nothing came back since. */
            if (c->last_rx < c->ping_at && now_ms - c->ping_at >= c->pong_timeout)
                return SB_CONN_DO_CLOSE | schedule_retry(c, now_ms, SB_CONN_R_HEARTBEAT_TIMEOUT);
        } else if (now_ms - c->last_rx >= c->ping_interval) {
            c->ping_at = now_ms;
            act |= SB_CONN_DO_PING;
        }
    }
    /* A connection that stays up as long as a connect may take has earned
     * a fresh backoff even if the peer never talks (plain servers). */
    if (!c->proved && now_ms - c->opened_at >= c->connect_timeout)
        prove(c);
    return act;
}


double sb_conn_next_deadline(const sb_conn *c)
{
    double d = -1;
    if (!c)
        return -1;
    switch (c->state) {
    case SB_CONN_CONNECTING:
        return c->attempt_at + c->connect_timeout;
    case SB_CONN_RECONNECTING:
        return c->retry_at;
    case SB_CONN_CLOSING:
        return c->closing_at + c->connect_timeout;
    case SB_CONN_OPEN:
        break;
    default:
        return -1;
    }
    if (c->ping_interval > 0)
        d = c->ping_at >= 0 ? c->ping_at + c->pong_timeout : c->last_rx + c->ping_interval;
    if (!c->proved)
        d = sb_min_deadline(d, c->opened_at + c->connect_timeout);
    return d;
}

int sb_conn_state(const sb_conn *c)
{
    return c ? c->state : SB_E_INVALID;
}

int sb_conn_reason(const sb_conn *c)
{
    return c ? c->reason : SB_E_INVALID;
}

int sb_conn_attempt(const sb_conn *c)
{
    return c ? sb_backoff_attempts(c->bo) : 0;
}

double sb_conn_retry_delay(const sb_conn *c)
{
    return c && c->state == SB_CONN_RECONNECTING ? c->retry_delay : -1;
}

double sb_conn_rtt(const sb_conn *c)
{
    return c ? c->rtt : -1;
}

double sb_conn_opens(const sb_conn *c)
{
    return c ? c->opens : 0;
}
