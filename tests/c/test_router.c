#include "router.h"
#include "sbtest.h"

#define S(x) x, strlen(x)

static const int32_t *ev(sb_router *r, int i)
{
    return sb_router_events(r) + 4 * i;
}

/* Open an endpoint and walk it through a full handshake. */
static int connected(sb_router *r, const char *ch, uint32_t src, double now)
{
    int ep = sb_router_open(r, S(ch), src, SB_BR_PARENT, 100, 350, 0, now);
    CHECK(ep > 0);
    CHECK_EQ(sb_router_allow(r, ep, S("http://127.0.0.1:8001")), 0);
    CHECK_EQ(sb_router_offer(r, ep, S("nonce-0123456789"), now), 0);
    CHECK_EQ(sb_router_confirm(r, ep, S("nonce-0123456789"), now), 0);
    CHECK_EQ(sb_router_state(r, ep), SB_EP_CONNECTED);
    return ep;
}

static void test_route_and_reasons(void)
{
    sb_router *r = sb_router_create(8, 16, 4);
    int a = sb_router_open(r, S("app"), 7, SB_BR_PARENT, 0, 0, 0, 0);
    int b = sb_router_open(r, S("app"), 9, SB_BR_PARENT, 0, 0, 0, 0);
    int c = sb_router_open(r, S("other"), 7, SB_BR_PARENT, 0, 0, 0, 0);
    CHECK(a > 0 && b > 0 && c > 0 && a != b && b != c);
    CHECK_EQ(sb_router_open(r, S("app"), 7, SB_BR_PARENT, 0, 0, 0, 0), SB_E_BAD_STATE);
    CHECK_EQ(sb_router_allow(r, a, S("http://127.0.0.1:8001")), 0);
    CHECK_EQ(sb_router_allow(r, b, S("https://*.example.com")), 0);
    CHECK_EQ(sb_router_allow(r, c, S("http://127.0.0.1:8001")), 0);

    /* right channel, right window, right origin */
    CHECK_EQ(sb_router_route(r, S("app"), 7, S("http://127.0.0.1:8001")), a);
    CHECK_EQ(sb_router_route(r, S("other"), 7, S("http://127.0.0.1:8001")), c);
    CHECK_EQ(sb_router_route(r, S("app"), 9, S("https://w.example.com")), b);
    /* two bridges on one channel do not see each other's traffic */
    CHECK_EQ(sb_router_route(r, S("app"), 9, S("http://127.0.0.1:8001")), SB_E_ORIGIN_REJECTED);
    CHECK_EQ(sb_router_reason(r), SB_RR_ORIGIN_REJECTED);
    CHECK_EQ(sb_router_reason_ep(r), b);
    /* allowed origin, wrong window (unknown source 0, or another one) */
    CHECK_EQ(sb_router_route(r, S("other"), 0, S("http://127.0.0.1:8001")), SB_E_ORIGIN_REJECTED);
    CHECK_EQ(sb_router_reason(r), SB_RR_WRONG_SOURCE);
    CHECK_EQ(sb_router_reason_ep(r), c);
    CHECK_EQ(sb_router_route(r, S("other"), 9, S("http://127.0.0.1:8001")), SB_E_ORIGIN_REJECTED);
    CHECK_EQ(sb_router_reason(r), SB_RR_WRONG_SOURCE);
    /* disallowed origin */
    CHECK_EQ(sb_router_route(r, S("other"), 0, S("http://localhost:8001")), SB_E_ORIGIN_REJECTED);
    CHECK_EQ(sb_router_reason(r), SB_RR_ORIGIN_REJECTED);
    CHECK_EQ(sb_router_route(r, S("other"), 7, S("http://127.0.0.1:8002")), SB_E_ORIGIN_REJECTED);
    CHECK_EQ(sb_router_reason(r), SB_RR_ORIGIN_REJECTED);
    CHECK_EQ(sb_router_route(r, S("other"), 7, S("not an origin")), SB_E_BAD_ORIGIN);
    CHECK_EQ(sb_router_reason(r), SB_RR_BAD_ORIGIN);
    /* nobody on that channel */
    CHECK_EQ(sb_router_route(r, S("nope"), 7, S("http://127.0.0.1:8001")), SB_E_NOT_FOUND);
    CHECK_EQ(sb_router_reason(r), SB_RR_NO_CHANNEL);
    CHECK_EQ(sb_router_reason_ep(r), 0);
    CHECK_EQ(sb_router_route(r, "", 0, 7, S("http://127.0.0.1:8001")), SB_E_NOT_FOUND);

    /* closed handles are stale, even after the slot is reused */
    CHECK_EQ(sb_router_close(r, c, SB_E_CLOSED), 1);
    CHECK_EQ(ev(r, 0)[0], SB_RT_CLOSED);
    CHECK_EQ(ev(r, 0)[1], c);
    CHECK_EQ(ev(r, 0)[3], SB_E_CLOSED);
    CHECK_EQ(sb_router_route(r, S("other"), 7, S("http://127.0.0.1:8001")), SB_E_NOT_FOUND);
    {
        int d = sb_router_open(r, S("other"), 7, SB_BR_PARENT, 0, 0, 0, 0);
        CHECK(d > 0 && d != c);
        CHECK_EQ(sb_router_state(r, c), SB_E_NOT_FOUND);
        CHECK_EQ(sb_router_allow(r, c, S("*")), SB_E_NOT_FOUND);
        /* no allowlist entry yet: default deny */
        CHECK_EQ(sb_router_route(r, S("other"), 7, S("http://127.0.0.1:8001")),
                 SB_E_ORIGIN_REJECTED);
    }
    sb_router_destroy(r);
}

static void test_handshake_nonce(void)
{
    sb_router *r = sb_router_create(2, 4, 2);
    int ep = sb_router_open(r, S("x"), 1, SB_BR_PARENT, 0, 0, 0, 0);
    /* confirm before offer is out of order */
    CHECK_EQ(sb_router_confirm(r, ep, S("whatever-123"), 0), SB_E_BAD_STATE);
    CHECK_EQ(sb_router_reason(r), SB_RR_BAD_STATE);
    CHECK_EQ(sb_router_call(r, ep, 0, 0), SB_E_BAD_STATE);
    CHECK_EQ(sb_router_offer(r, ep, S("short"), 0), SB_E_INVALID);
    CHECK_EQ(sb_router_offer(r, ep, S("AAAAAAAAAAAAAAAA"), 0), 0);
    CHECK_EQ(sb_router_state(r, ep), SB_EP_OFFERED);
    CHECK_EQ(sb_router_confirm(r, ep, S("AAAAAAAAAAAAAAAB"), 0), SB_E_ORIGIN_REJECTED);
    CHECK_EQ(sb_router_reason(r), SB_RR_BAD_NONCE);
    CHECK_EQ(sb_router_confirm(r, ep, S("AAAAAAAAAAAAAAA"), 0), SB_E_ORIGIN_REJECTED);
    CHECK_EQ(sb_router_confirm(r, ep, NULL, 0, 0), SB_E_ORIGIN_REJECTED);
    CHECK_EQ(sb_router_state(r, ep), SB_EP_OFFERED);
    CHECK_EQ(sb_router_confirm(r, ep, S("AAAAAAAAAAAAAAAA"), 0), 0);
    CHECK_EQ(sb_router_state(r, ep), SB_EP_CONNECTED);
    /* a replayed reply after connecting is out of order */
    CHECK_EQ(sb_router_confirm(r, ep, S("AAAAAAAAAAAAAAAA"), 0), SB_E_BAD_STATE);
    sb_router_destroy(r);
}

static void test_calls_settle_and_timeout(void)
{
    sb_router *r = sb_router_create(4, 4, 2);
    int ep = connected(r, "c", 3, 0);
    int other = connected(r, "d", 3, 0);
    int id1 = sb_router_call(r, ep, 0, 50);
    int id2 = sb_router_call(r, ep, 0, 0); /* no deadline */
    int id3 = sb_router_call(r, ep, 10, 20);
    CHECK(id1 > 0 && id2 > 0 && id3 > 0 && id1 != id2 && id2 != id3);
    CHECK_EQ(sb_router_pending(r, ep), 3);
    /* answers for another endpoint, unknown or repeated ids are refused */
    CHECK_EQ(sb_router_settle(r, other, (uint32_t)id1, 1), SB_E_NOT_FOUND);
    CHECK_EQ(sb_router_settle(r, ep, 0, 1), SB_E_NOT_FOUND);
    CHECK_EQ(sb_router_settle(r, ep, 0xffffffffu, 1), SB_E_NOT_FOUND);
    CHECK_EQ(sb_router_settle(r, ep, (uint32_t)id1 + (1u << 16), 1), SB_E_NOT_FOUND);
    CHECK_EQ(sb_router_settle(r, ep, (uint32_t)id1, 1), 0);
    CHECK_EQ(sb_router_settle(r, ep, (uint32_t)id1, 1), SB_E_NOT_FOUND);
    CHECK_EQ(sb_router_pending(r, ep), 2);
    /* a reused slot hands out a different id */
    {
        int id4 = sb_router_call(r, ep, 1, 0);
        CHECK(id4 > 0 && id4 != id1);
        CHECK_EQ(sb_router_settle(r, ep, (uint32_t)id1, 1), SB_E_NOT_FOUND);
        CHECK_EQ(sb_router_settle(r, ep, (uint32_t)id4, 1), 0);
    }
    /* deadline: id3 at 30; heartbeat pings at 100 */
    CHECK(sb_router_next_deadline(r) == 30);
    CHECK_EQ(sb_router_poll(r, 29), 0);
    CHECK_EQ(sb_router_poll(r, 30), 1);
    CHECK_EQ(ev(r, 0)[0], SB_RT_CALL_FAILED);
    CHECK_EQ(ev(r, 0)[1], ep);
    CHECK_EQ(ev(r, 0)[2], id3);
    CHECK_EQ(ev(r, 0)[3], SB_E_TIMEOUT);
    CHECK_EQ(sb_router_settle(r, ep, (uint32_t)id3, 31), SB_E_NOT_FOUND); /* late answer */
    CHECK_EQ(sb_router_pending(r, ep), 1);
    CHECK(sb_router_next_deadline(r) == 100);
    CHECK_EQ(sb_router_settle(r, ep, (uint32_t)id2, 40), 0);
    sb_router_destroy(r);
}

static void test_pending_cap(void)
{
    sb_router *r = sb_router_create(1, 3, 1);
    int ep = connected(r, "c", 1, 0);
    int ids[3];
    for (int i = 0; i < 3; i++)
        ids[i] = sb_router_call(r, ep, 0, 0);
    CHECK_EQ(sb_router_call(r, ep, 0, 0), SB_E_QUEUE_FULL);
    CHECK_EQ(sb_router_settle(r, ep, (uint32_t)ids[1], 0), 0);
    CHECK(sb_router_call(r, ep, 0, 0) > 0);
    CHECK_EQ(sb_router_call(r, ep, 0, 0), SB_E_QUEUE_FULL);
    CHECK_EQ(sb_router_call(r, ep, 0, -1), SB_E_INVALID);
    CHECK_EQ(sb_router_open(r, S("more"), 2, SB_BR_PARENT, 0, 0, 0, 0), SB_E_TOO_LARGE);
    CHECK(sb_router_create(0, 1, 1) == NULL);
    CHECK(sb_router_create(1, 70000, 1) == NULL);
    sb_router_destroy(r);
}

static void test_heartbeat_and_loss(void)
{
    sb_router *r = sb_router_create(2, 8, 2);
    int ep = connected(r, "hb", 5, 1000); /* heartbeat 100, dead 350 */
    int id = sb_router_call(r, ep, 1000, 0);
    CHECK(sb_router_next_deadline(r) == 1100);
    CHECK_EQ(sb_router_poll(r, 1100), 1);
    CHECK_EQ(ev(r, 0)[0], SB_RT_PING);
    CHECK_EQ(ev(r, 0)[1], ep);
    CHECK_EQ(sb_router_heard(r, ep, 1110), 0); /* pong */
    CHECK_EQ(sb_router_poll(r, 1200), 1);
    CHECK_EQ(sb_router_poll(r, 1300), 1);
    CHECK_EQ(sb_router_poll(r, 1400), 1);
    CHECK(sb_router_next_deadline(r) == 1460);
    /* silent since 1110: at 1460 the core asks the glue whether the window
     * is gone; asked again dead_ms later if the glue does not answer */
    CHECK_EQ(sb_router_poll(r, 1460), 1);
    CHECK_EQ(ev(r, 0)[0], SB_RT_SILENT);
    CHECK_EQ(ev(r, 0)[1], ep);
    CHECK_EQ(sb_router_state(r, ep), SB_EP_CONNECTED);
    CHECK(sb_router_next_deadline(r) == 1500); /* the next ping, then 1810 */
    CHECK_EQ(sb_router_poll(r, 1500), 1);
    CHECK_EQ(ev(r, 0)[0], SB_RT_PING);
    CHECK_EQ(sb_router_poll(r, 1810), 1);
    CHECK_EQ(ev(r, 0)[0], SB_RT_SILENT);
    /* the answer: lost, not gone: the pending call fails, then restart */
    CHECK_EQ(sb_router_lost(r, ep, SB_BW_TIMEOUT, 0), 3);
    CHECK_EQ(ev(r, 0)[0], SB_RT_CALL_FAILED);
    CHECK_EQ(ev(r, 0)[2], id);
    CHECK_EQ(ev(r, 0)[3], SB_E_CONNECTION_LOST);
    CHECK_EQ(ev(r, 1)[0], SB_RT_DISCONNECTED);
    CHECK_EQ(ev(r, 1)[2], SB_BW_TIMEOUT);
    CHECK_EQ(ev(r, 2)[0], SB_RT_RESTART);
    CHECK_EQ(ev(r, 2)[1], ep);
    CHECK_EQ(sb_router_state(r, ep), SB_EP_WAITING);
    CHECK_EQ(sb_router_pending(r, ep), 0);
    CHECK_EQ(sb_router_poll(r, 5000), 0);
    CHECK(sb_router_next_deadline(r) == -1);
    sb_router_destroy(r);
}

static void test_rehandshake_and_close_fail_pending(void)
{
    sb_router *r = sb_router_create(2, 8, 2);
    int ep = connected(r, "re", 5, 0);
    int a = sb_router_call(r, ep, 0, 1000), b = sb_router_call(r, ep, 0, 0);
    /* the child reloaded: a new offer fails what was in flight */
    CHECK_EQ(sb_router_offer(r, ep, S("second-nonce-xyz"), 5), 2);
    CHECK_EQ(ev(r, 0)[0], SB_RT_CALL_FAILED);
    CHECK_EQ(ev(r, 0)[3], SB_E_CONNECTION_LOST);
    CHECK_EQ(ev(r, 0)[2] + ev(r, 1)[2], a + b);
    CHECK_EQ(sb_router_call(r, ep, 5, 0), SB_E_BAD_STATE);
    CHECK_EQ(sb_router_confirm(r, ep, S("nonce-0123456789"), 6), SB_E_ORIGIN_REJECTED);
    CHECK_EQ(sb_router_confirm(r, ep, S("second-nonce-xyz"), 6), 0);
    a = sb_router_call(r, ep, 6, 1000);
    CHECK(a > 0);
    CHECK_EQ(sb_router_lost(r, ep, SB_BW_BYE, 0), 3); /* the peer said bye */
    CHECK_EQ(ev(r, 0)[2], a);
    CHECK_EQ(sb_router_state(r, ep), SB_EP_WAITING);
    CHECK_EQ(sb_router_settle(r, ep, (uint32_t)a, 7), SB_E_NOT_FOUND);
    CHECK_EQ(sb_router_offer(r, ep, S("third-nonce-xyzw"), 8), 0);
    CHECK_EQ(sb_router_confirm(r, ep, S("third-nonce-xyzw"), 8), 0);
    a = sb_router_call(r, ep, 8, 1000);
    CHECK_EQ(sb_router_close(r, ep, SB_E_CONNECTION_LOST), 3);
    CHECK_EQ(ev(r, 0)[2], a);
    CHECK_EQ(ev(r, 0)[3], SB_E_CONNECTION_LOST);
    CHECK_EQ(ev(r, 1)[0], SB_RT_DISCONNECTED);
    CHECK_EQ(ev(r, 1)[2], SB_BW_CLOSED);
    CHECK_EQ(ev(r, 2)[0], SB_RT_CLOSED);
    CHECK_EQ(ev(r, 2)[3], SB_E_CONNECTION_LOST);
    CHECK_EQ(sb_router_close(r, ep, SB_E_CLOSED), SB_E_NOT_FOUND);
    CHECK_EQ(sb_router_poll(r, 2000), 0); /* the closed call's deadline is gone */
    sb_router_destroy(r);
}

static void test_connect_timeout(void)
{
    sb_router *r = sb_router_create(2, 2, 1);
    int ep = sb_router_open(r, S("slow"), 1, SB_BR_PARENT, 0, 0, 250, 100);
    CHECK(sb_router_next_deadline(r) == 350);
    CHECK_EQ(sb_router_poll(r, 349), 0);
    CHECK_EQ(sb_router_poll(r, 350), 1);
    CHECK_EQ(ev(r, 0)[0], SB_RT_CLOSED);
    CHECK_EQ(ev(r, 0)[1], ep);
    CHECK_EQ(ev(r, 0)[3], SB_E_TIMEOUT);
    CHECK_EQ(sb_router_state(r, ep), SB_E_NOT_FOUND); /* closed for good */
    CHECK_EQ(sb_router_poll(r, 400), 0); /* reported once */
    sb_router_destroy(r);
}

int main(void)
{
    RUN(test_route_and_reasons);
    RUN(test_handshake_nonce);
    RUN(test_calls_settle_and_timeout);
    RUN(test_pending_cap);
    RUN(test_heartbeat_and_loss);
    RUN(test_rehandshake_and_close_fail_pending);
    RUN(test_connect_timeout);
    TEST_MAIN_END();
}
