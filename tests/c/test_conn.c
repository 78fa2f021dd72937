#include "conn.h"
#include "sbtest.h"

/* connect 1000 ms, ping every 500 ms, pong within 200 ms, backoff
 * 100..3200 x2, unlimited attempts. */
static sb_conn *mk(uint32_t seed)
{
    return sb_conn_create(1000, 500, 200, 100, 3200, 2, 0, seed);
}

static void test_create_args(void)
{
    CHECK(sb_conn_create(0, 500, 200, 100, 3200, 2, 0, 1) == NULL);
    CHECK(sb_conn_create(1000, 500, 0, 100, 3200, 2, 0, 1) == NULL);
    CHECK(sb_conn_create(1000, 500, 200, 0, 3200, 2, 0, 1) == NULL);
    sb_conn *c = sb_conn_create(1000, 0, 0, 100, 100, 1, 0, 1);
    CHECK(c != NULL);
    CHECK_EQ(sb_conn_state(c), SB_CONN_IDLE);
    CHECK_EQ(sb_conn_next_deadline(c), -1);
    CHECK_EQ(sb_conn_opened(c, 0), SB_E_BAD_STATE);
    sb_conn_destroy(c);
    sb_conn_destroy(NULL);
}

static void test_open_and_user_close(void)
{
    sb_conn *c = mk(1);
    int a = sb_conn_start(c, 0);
    CHECK_EQ(a, SB_CONN_DO_CONNECT | SB_CONN_CHANGED);
    CHECK_EQ(sb_conn_state(c), SB_CONN_CONNECTING);
    CHECK_EQ(sb_conn_reason(c), SB_CONN_R_START);
    CHECK_EQ(sb_conn_start(c, 0), SB_E_BAD_STATE);
    CHECK_EQ(sb_conn_next_deadline(c), 1000);
    CHECK_EQ(sb_conn_tick(c, 999), 0);
    CHECK_EQ(sb_conn_opened(c, 10), SB_CONN_CHANGED);
    CHECK_EQ(sb_conn_state(c), SB_CONN_OPEN);
    CHECK_EQ(sb_conn_reason(c), SB_CONN_R_OPENED);
    CHECK_EQ(sb_conn_opens(c), 1);
    a = sb_conn_close(c, 20);
    CHECK_EQ(a, SB_CONN_DO_CLOSE | SB_CONN_CHANGED);
    CHECK_EQ(sb_conn_state(c), SB_CONN_CLOSING);
    CHECK_EQ(sb_conn_closed(c, 30, 0), SB_CONN_CHANGED);
    CHECK_EQ(sb_conn_state(c), SB_CONN_CLOSED);
    CHECK_EQ(sb_conn_reason(c), SB_CONN_R_USER_CLOSE);
    /* closed is final: nothing brings it back */
    CHECK_EQ(sb_conn_network(c, 40, 1), 0);
    CHECK_EQ(sb_conn_visibility(c, 40, 1), 0);
    CHECK_EQ(sb_conn_tick(c, 1e9), 0);
    CHECK_EQ(sb_conn_next_deadline(c), -1);
    sb_conn_destroy(c);
}

static void test_closing_gives_up_waiting(void)
{
    sb_conn *c = mk(1);
    sb_conn_start(c, 0);
    sb_conn_opened(c, 0);
    sb_conn_close(c, 100);
    CHECK_EQ(sb_conn_next_deadline(c), 1100);
    CHECK_EQ(sb_conn_tick(c, 1099), 0);
    CHECK_EQ(sb_conn_tick(c, 1100), SB_CONN_CHANGED);
    CHECK_EQ(sb_conn_state(c), SB_CONN_CLOSED);
    sb_conn_destroy(c);
}

static void test_connect_timeout_then_backoff(void)
{
    sb_conn *c = mk(7);
    sb_conn_start(c, 0);
    int a = sb_conn_tick(c, 1000);
    CHECK_EQ(a, SB_CONN_DO_CLOSE | SB_CONN_CHANGED);
    CHECK_EQ(sb_conn_state(c), SB_CONN_RECONNECTING);
    CHECK_EQ(sb_conn_reason(c), SB_CONN_R_CONNECT_TIMEOUT);
    double d = sb_conn_retry_delay(c);
    CHECK(d >= 50 && d <= 100); /* jittered from the first attempt: [min/2, min] */
    CHECK(d != 100);
    CHECK_EQ(sb_conn_next_deadline(c), 1000 + d);
    CHECK_EQ(sb_conn_tick(c, 1000 + d - 1), 0);
    a = sb_conn_tick(c, 1000 + d);
    CHECK_EQ(a, SB_CONN_DO_CONNECT | SB_CONN_CHANGED);
    CHECK_EQ(sb_conn_reason(c), SB_CONN_R_RETRY);
    /* a late socket close from the abandoned attempt is ignored */
    sb_conn_destroy(c);
}

/* Delays grow (their ceiling doubles) and are jittered: two seeds differ,
 * and each stays inside [min/2, ceiling]. */
static void test_backoff_grows_with_jitter(void)
{
    sb_conn *a = mk(11), *b = mk(12);
    double now = 0, ceiling = 100;
    int differ = 0, above_floor = 0;
    sb_conn_start(a, 0);
    sb_conn_start(b, 0);
    for (int k = 0; k < 8; k++) {
        CHECK_EQ(sb_conn_closed(a, now, 0), SB_CONN_CHANGED);
        CHECK_EQ(sb_conn_closed(b, now, 0), SB_CONN_CHANGED);
        CHECK_EQ(sb_conn_reason(a), SB_CONN_R_PEER_CLOSED);
        double da = sb_conn_retry_delay(a), db = sb_conn_retry_delay(b);
        CHECK(da >= 50 && da <= ceiling);
        CHECK(db >= 50 && db <= ceiling);
        differ |= da != db;
        above_floor += da > 50 + (ceiling - 50) / 4;
        CHECK_EQ(sb_conn_attempt(a), k + 1);
        now += 5000;
        CHECK(sb_conn_tick(a, now) & SB_CONN_DO_CONNECT);
        CHECK(sb_conn_tick(b, now) & SB_CONN_DO_CONNECT);
        ceiling = ceiling * 2 > 3200 ? 3200 : ceiling * 2;
    }
    CHECK(differ);
    CHECK(above_floor >= 3);
    {
        /* the first attempt too: seeds 11 and 12 drew different first delays */
        sb_conn *x = mk(11), *y = mk(12);
        sb_conn_start(x, 0);
        sb_conn_start(y, 0);
        sb_conn_closed(x, 0, 0);
        sb_conn_closed(y, 0, 0);
        CHECK(sb_conn_retry_delay(x) != sb_conn_retry_delay(y));
        sb_conn_destroy(x);
        sb_conn_destroy(y);
    }
    /* an open that never proves itself does not reset the backoff... */
    sb_conn_opened(a, now);
    sb_conn_closed(a, now + 1, 0);
    CHECK_EQ(sb_conn_attempt(a), 9);
    /* ...but a message received does */
    sb_conn_tick(a, now + 10000);
    sb_conn_opened(a, now + 10000);
    sb_conn_received(a, now + 10001);
    CHECK_EQ(sb_conn_attempt(a), 0);
    sb_conn_closed(a, now + 10002, 0);
    CHECK(sb_conn_retry_delay(a) >= 50 && sb_conn_retry_delay(a) <= 100);
    sb_conn_destroy(a);
    sb_conn_destroy(b);
}

static void test_quiet_open_connection_earns_reset(void)
{
    sb_conn *c = sb_conn_create(1000, 0, 0, 100, 3200, 2, 0, 3);
    sb_conn_start(c, 0);
    sb_conn_closed(c, 0, 0);
    sb_conn_tick(c, 5000);
    sb_conn_closed(c, 5000, 0);
    sb_conn_tick(c, 10000);
    CHECK_EQ(sb_conn_attempt(c), 2);
    sb_conn_opened(c, 10000);
    CHECK_EQ(sb_conn_next_deadline(c), 11000);
    sb_conn_tick(c, 11000);
    CHECK_EQ(sb_conn_attempt(c), 0);
    CHECK_EQ(sb_conn_next_deadline(c), -1); /* no heartbeat configured */
    sb_conn_destroy(c);
}

static void test_max_attempts_gives_up(void)
{
    sb_conn *c = sb_conn_create(1000, 0, 0, 10, 100, 2, 2, 3);
    sb_conn_start(c, 0);
    sb_conn_closed(c, 0, 0);
    sb_conn_tick(c, 1000);
    sb_conn_closed(c, 1000, 0);
    sb_conn_tick(c, 2000);
    CHECK_EQ(sb_conn_closed(c, 2000, 0), SB_CONN_CHANGED);
    CHECK_EQ(sb_conn_state(c), SB_CONN_CLOSED);
    CHECK_EQ(sb_conn_reason(c), SB_CONN_R_GAVE_UP);
    sb_conn_destroy(c);
}

static void test_server_says_go_away(void)
{
    sb_conn *c = mk(1);
    sb_conn_start(c, 0);
    sb_conn_opened(c, 1);
    CHECK_EQ(sb_conn_closed(c, 2, 1), SB_CONN_CHANGED);
    CHECK_EQ(sb_conn_state(c), SB_CONN_CLOSED);
    CHECK_EQ(sb_conn_reason(c), SB_CONN_R_SERVER_CLOSE);
    sb_conn_destroy(c);
}

static void test_heartbeat_detects_silent_peer(void)
{
    sb_conn *c = mk(1);
    sb_conn_start(c, 0);
    sb_conn_opened(c, 0);
    CHECK_EQ(sb_conn_next_deadline(c), 500);
    CHECK_EQ(sb_conn_tick(c, 499), 0);
    CHECK_EQ(sb_conn_tick(c, 500), SB_CONN_DO_PING);
    CHECK_EQ(sb_conn_next_deadline(c), 700);
    /* a healthy peer answers; rtt measured */
    CHECK_EQ(sb_conn_pong(c, 530), 0);
    CHECK_EQ(sb_conn_rtt(c), 30);
    CHECK_EQ(sb_conn_next_deadline(c), 1030);
    /* traffic postpones the next ping */
    sb_conn_received(c, 900);
    CHECK_EQ(sb_conn_tick(c, 1030), 0);
    CHECK_EQ(sb_conn_tick(c, 1400), SB_CONN_DO_PING);
    /* now the peer goes silent without closing */
    CHECK_EQ(sb_conn_tick(c, 1599), 0);
    int a = sb_conn_tick(c, 1600);
    CHECK_EQ(a, SB_CONN_DO_CLOSE | SB_CONN_CHANGED);
    CHECK_EQ(sb_conn_state(c), SB_CONN_RECONNECTING);
    CHECK_EQ(sb_conn_reason(c), SB_CONN_R_HEARTBEAT_TIMEOUT);
    sb_conn_destroy(c);
}

/* A background tab's timer fires minutes late: the ping goes out late, the
 * pong arrives (events are not throttled), and the late verdict timer must
 * not kill the healthy connection; nor can a timer that never fires make a
 * dead one look alive once anyone checks. */
static void test_throttled_timers(void)
{
    sb_conn *c = mk(1);
    sb_conn_start(c, 0);
    sb_conn_opened(c, 0);
    CHECK_EQ(sb_conn_tick(c, 60000), SB_CONN_DO_PING);
    sb_conn_pong(c, 60005);
    CHECK_EQ(sb_conn_tick(c, 120000), SB_CONN_DO_PING); /* next late tick: alive, ping again */
    CHECK_EQ(sb_conn_state(c), SB_CONN_OPEN);
    /* this time no answer; the timer comes back a minute later */
    CHECK(sb_conn_tick(c, 180000) & SB_CONN_DO_CLOSE);
    CHECK_EQ(sb_conn_reason(c), SB_CONN_R_HEARTBEAT_TIMEOUT);
    sb_conn_destroy(c);
}

static void test_visible_after_sleep_reconnects_at_once(void)
{
    sb_conn *c = mk(1);
    sb_conn_start(c, 0);
    sb_conn_opened(c, 0);
    sb_conn_received(c, 100);
    sb_conn_visibility(c, 200, 0);
    /* short absence: nothing to do */
    CHECK_EQ(sb_conn_visibility(c, 300, 1), 0);
    /* silent a bit longer than the ping interval: probe now */
    CHECK_EQ(sb_conn_visibility(c, 650, 1), SB_CONN_DO_PING);
    sb_conn_pong(c, 660);
    /* back after a long sleep: replace the socket right away */
    int a = sb_conn_visibility(c, 660 + 3600e3, 1);
    CHECK_EQ(a, SB_CONN_DO_CLOSE | SB_CONN_DO_CONNECT | SB_CONN_CHANGED);
    CHECK_EQ(sb_conn_state(c), SB_CONN_CONNECTING);
    CHECK_EQ(sb_conn_reason(c), SB_CONN_R_VISIBLE);
    /* visible while waiting out a backoff: try now */
    sb_conn_closed(c, 4e6, 0);
    CHECK_EQ(sb_conn_state(c), SB_CONN_RECONNECTING);
    a = sb_conn_visibility(c, 4e6 + 1, 1);
    CHECK_EQ(a, SB_CONN_DO_CONNECT | SB_CONN_CHANGED);
    CHECK_EQ(sb_conn_reason(c), SB_CONN_R_VISIBLE);
    sb_conn_destroy(c);
}

static void test_online_reconnects_at_once(void)
{
    sb_conn *c = mk(1);
    sb_conn_start(c, 0);
    sb_conn_opened(c, 0);
    /* online with no outage seen: keep the socket */
    CHECK_EQ(sb_conn_network(c, 10, 1), 0);
    CHECK_EQ(sb_conn_network(c, 20, 0), 0);
    int a = sb_conn_network(c, 30, 1);
    CHECK_EQ(a, SB_CONN_DO_CLOSE | SB_CONN_DO_CONNECT | SB_CONN_CHANGED);
    CHECK_EQ(sb_conn_reason(c), SB_CONN_R_ONLINE);
    sb_conn_closed(c, 40, 0);
    sb_conn_network(c, 41, 0);
    CHECK_EQ(sb_conn_state(c), SB_CONN_RECONNECTING);
    a = sb_conn_network(c, 50, 1);
    CHECK_EQ(a, SB_CONN_DO_CONNECT | SB_CONN_CHANGED);
    CHECK_EQ(sb_conn_reason(c), SB_CONN_R_ONLINE);
    sb_conn_destroy(c);
}

static void test_protocol_error_and_user_close_while_waiting(void)
{
    sb_conn *c = mk(1);
    sb_conn_start(c, 0);
    sb_conn_opened(c, 0);
    int a = sb_conn_fail(c, 5);
    CHECK_EQ(a, SB_CONN_DO_CLOSE | SB_CONN_CHANGED);
    CHECK_EQ(sb_conn_reason(c), SB_CONN_R_PROTOCOL_ERROR);
    CHECK_EQ(sb_conn_state(c), SB_CONN_RECONNECTING);
    CHECK_EQ(sb_conn_closed(c, 6, 0), 0); /* that socket's close is stale */
    a = sb_conn_close(c, 7);
    CHECK_EQ(a, SB_CONN_CHANGED);
    CHECK_EQ(sb_conn_state(c), SB_CONN_CLOSED);
    CHECK_EQ(sb_conn_next_deadline(c), -1);
    sb_conn_destroy(c);
}

static void test_random_events(void)
{
    sb_rng r;
    sb_rng_seed(&r, 99);
    for (int run = 0; run < 200; run++) {
        sb_conn *c = sb_conn_create(1000, 300, 100, 50, 2000, 2, 0, sb_rng_next(&r));
        double now = 0;
        sb_conn_start(c, now);
        for (int i = 0; i < 300; i++) {
            int a = 0;
            now += sb_rng_next(&r) % 700;
            switch (sb_rng_next(&r) % 9) {
            case 0: a = sb_conn_opened(c, now); break;
            case 1: a = sb_conn_received(c, now); break;
            case 2: a = sb_conn_closed(c, now, 0); break;
            case 3: a = sb_conn_network(c, now, sb_rng_next(&r) & 1); break;
            case 4: a = sb_conn_visibility(c, now, sb_rng_next(&r) & 1); break;
            case 5: a = sb_conn_pong(c, now); break;
            case 6: a = sb_conn_fail(c, now); break;
            default: a = sb_conn_tick(c, now); break;
            }
            CHECK(a >= 0 || a == SB_E_BAD_STATE);
            int s = sb_conn_state(c);
            CHECK(s >= SB_CONN_CONNECTING && s <= SB_CONN_RECONNECTING);
            if (a > 0 && (a & SB_CONN_DO_CONNECT))
                CHECK_EQ(s, SB_CONN_CONNECTING);
            double d = sb_conn_next_deadline(c);
            if (s == SB_CONN_CLOSED)
                CHECK_EQ(d, -1);
            else if (s != SB_CONN_OPEN)
                CHECK(d >= 0);
            /* after a tick at the deadline, the deadline moves on */
            if (d >= 0 && d <= now) {
                sb_conn_tick(c, now);
                double d2 = sb_conn_next_deadline(c);
                CHECK(d2 < 0 || d2 > now || sb_conn_state(c) != s);
            }
        }
        sb_conn_destroy(c);
    }
}

int main(void)
{
    RUN(test_create_args);
    RUN(test_open_and_user_close);
    RUN(test_closing_gives_up_waiting);
    RUN(test_connect_timeout_then_backoff);
    RUN(test_backoff_grows_with_jitter);
    RUN(test_quiet_open_connection_earns_reset);
    RUN(test_max_attempts_gives_up);
    RUN(test_server_says_go_away);
    RUN(test_heartbeat_detects_silent_peer);
    RUN(test_throttled_timers);
    RUN(test_visible_after_sleep_reconnects_at_once);
    RUN(test_online_reconnects_at_once);
    RUN(test_protocol_error_and_user_close_while_waiting);
    RUN(test_random_events);
    TEST_MAIN_END();
}
