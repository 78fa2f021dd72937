/* The bridge handshake transitions in src/router.c, time driven by hand:
 * offer / probe / hello / welcome, READY / SYN / ACK on the port, duplicate
 * hellos, a reload, restart vs close, and the deadlines. */
#include "router.h"
#include "sbtest.h"

#define S(x) x, strlen(x)
#define PARENT_ORIGIN "https://app.example"
#define CHILD_ORIGIN "https://widget.example"
#define NO_STR NULL, 0

static const uint8_t RND1[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t RND2[16] = {0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88,
                                 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x00};

static const int32_t *ev(sb_router *r, int i)
{
    return sb_router_events(r) + 4 * i;
}

/* event i is `kind` on ep with id `id` */
static int is_ev(sb_router *r, int i, int kind, int ep, int id)
{
    return ev(r, i)[0] == kind && ev(r, i)[1] == ep && ev(r, i)[2] == id;
}

/* The endpoint's nonce (which 0: ours, 1: the peer's) as a C string. */
static const char *nonce(sb_router *r, int ep, int which, char *buf)
{
    const uint8_t *p = sb_router_nonce(r, ep, which);
    memcpy(buf, p + 1, p[0]);
    buf[p[0]] = 0;
    return buf;
}

static int open_ep(sb_router *r, int role, uint32_t src, const char *allow, double now)
{
    int ep = sb_router_open(r, S("ch"), src, role, 100, 350, 1000, now);
    CHECK(ep > 0);
    if (allow)
        CHECK_EQ(sb_router_allow(r, ep, S(allow)), 0);
    return ep;
}

/* A window message from `src` at `origin`. */
static int win(sb_router *r, uint32_t src, const char *origin, const char *t, const char *n,
               const char *m, int ports, const uint8_t *rnd, double now)
{
    return sb_router_window(r, src, S("ch"), S(t), n, n ? strlen(n) : 0, m, m ? strlen(m) : 0,
                            S(origin), ports, rnd, now);
}

static void test_parent_offer_ready_ack(void)
{
    sb_router *r = sb_router_create(4, 8, 2);
    int ep = open_ep(r, SB_BR_PARENT, 1, CHILD_ORIGIN, 0);
    char mine[80], peer[80];
    /* one exact target: offer the port at once, with a nonce from the bytes */
    CHECK_EQ(sb_router_start(r, ep, 1, 1, RND1, 0), 1);
    CHECK(is_ev(r, 0, SB_RT_SEND, ep, SB_BS_OFFER));
    CHECK(strcmp(nonce(r, ep, 0, mine), "abacadaeafagahaiajakalamanaoapba") == 0);
    CHECK_EQ(sb_router_state(r, ep), SB_EP_OFFERED);
    /* a READY with somebody else's nonce is refused and changes nothing */
    CHECK_EQ(sb_router_port(r, ep, SB_BM_READY, S("0102030405060708090a0b0c0d0e0f11"),
                            S("child-nonce-1"), 0, 5), 1);
    CHECK(is_ev(r, 0, SB_RT_REJECT, ep, SB_RR_BAD_NONCE));
    CHECK_EQ(sb_router_state(r, ep), SB_EP_OFFERED);
    /* ours with the child's: ACK it, connected */
    CHECK_EQ(sb_router_port(r, ep, SB_BM_READY, S(mine), S("child-nonce-1"), 0, 6), 2);
    CHECK(is_ev(r, 0, SB_RT_SEND, ep, SB_BS_ACK));
    CHECK(is_ev(r, 1, SB_RT_CONNECTED, ep, 0));
    CHECK(strcmp(nonce(r, ep, 1, peer), "child-nonce-1") == 0);
    /* the child's hello that crossed the offer is a duplicate now */
    CHECK_EQ(win(r, 1, CHILD_ORIGIN, SB_BRIDGE_HELLO, "child-nonce-1", NULL, 0, RND2, 7), 0);
    CHECK_EQ(sb_router_state(r, ep), SB_EP_CONNECTED);
    /* a late repeat of READY is nothing; an ACK is not the parent's */
    CHECK_EQ(sb_router_port(r, ep, SB_BM_READY, S(mine), NO_STR, 0, 8), 0);
    CHECK_EQ(sb_router_port(r, ep, SB_BM_ACK, S(mine), NO_STR, 0, 8), 1);
    CHECK(is_ev(r, 0, SB_RT_REJECT, ep, SB_RR_BAD_STATE));
    CHECK_EQ(sb_router_port(r, ep, SB_BM_PING, NO_STR, NO_STR, 0, 8), 1);
    CHECK(is_ev(r, 0, SB_RT_REJECT, ep, SB_RR_BAD_STATE));
    /* the connect deadline is gone once connected: only the heartbeat is due */
    CHECK(sb_router_next_deadline(r) == 106);
    sb_router_destroy(r);
}

static void test_parent_probe_hello_welcome(void)
{
    sb_router *r = sb_router_create(4, 8, 2);
    int ep = open_ep(r, SB_BR_PARENT, 1, "https://*.example", 0);
    char mine[80], peer[80];
    /* several candidates (or "*"): probe, no nonce out yet */
    CHECK_EQ(sb_router_start(r, ep, 2, 1, RND1, 0), 1);
    CHECK(is_ev(r, 0, SB_RT_SEND, ep, SB_BS_PROBE));
    CHECK_EQ(sb_router_state(r, ep), SB_EP_WAITING);
    CHECK_EQ(sb_router_nonce(r, ep, 0)[0], 0);
    CHECK_EQ(sb_router_start(r, ep, 1, 0, RND1, 0), 1); /* just "*" */
    CHECK(is_ev(r, 0, SB_RT_SEND, ep, SB_BS_PROBE));
    CHECK_EQ(sb_router_start(r, ep, 0, 0, RND1, 0), 0); /* nobody to post to */
    CHECK_EQ(sb_router_start(r, ep, 1, 1, NULL, 0), SB_E_INVALID);
    /* the hello: remember its nonce, welcome with a fresh one of ours */
    CHECK_EQ(win(r, 1, CHILD_ORIGIN, SB_BRIDGE_HELLO, "child-nonce-1", NULL, 0, RND2, 10), 1);
    CHECK(is_ev(r, 0, SB_RT_SEND, ep, SB_BS_WELCOME));
    CHECK(strcmp(nonce(r, ep, 0, mine), "ppoonnmmllkkjjiihhggffeeddccbbaa") == 0);
    CHECK(strcmp(nonce(r, ep, 1, peer), "child-nonce-1") == 0);
    /* the same hello again (the child's own and the probe's answer): nothing */
    CHECK_EQ(win(r, 1, CHILD_ORIGIN, SB_BRIDGE_HELLO, "child-nonce-1", NULL, 0, RND1, 11), 0);
    CHECK(strcmp(nonce(r, ep, 0, mine), "ppoonnmmllkkjjiihhggffeeddccbbaa") == 0);
    /* the child's READY echoes ours, without a nonce of its own: no ACK */
    CHECK_EQ(sb_router_port(r, ep, SB_BM_READY, S(mine), NO_STR, 0, 12), 1);
    CHECK(is_ev(r, 0, SB_RT_CONNECTED, ep, 0));
    /* hellos that are not: malformed nonces, a probe, an offer to a parent */
    CHECK_EQ(win(r, 1, CHILD_ORIGIN, SB_BRIDGE_HELLO, "short", NULL, 0, RND1, 13), 1);
    CHECK(is_ev(r, 0, SB_RT_REJECT, ep, SB_RR_BAD_STATE));
    CHECK_EQ(win(r, 1, CHILD_ORIGIN, SB_BRIDGE_HELLO, "child nonce 2", NULL, 0, RND1, 13), 1);
    CHECK(is_ev(r, 0, SB_RT_REJECT, ep, SB_RR_BAD_STATE));
    CHECK_EQ(win(r, 1, CHILD_ORIGIN, SB_BRIDGE_HELLO, NULL, NULL, 0, RND1, 13), 1);
    CHECK_EQ(win(r, 1, CHILD_ORIGIN, SB_BRIDGE_PROBE, NULL, NULL, 0, RND1, 13), 1);
    CHECK_EQ(win(r, 1, CHILD_ORIGIN, SB_BRIDGE_OFFER, NULL, "x-nonce-123", 1, RND1, 13), 1);
    CHECK(is_ev(r, 0, SB_RT_REJECT, ep, SB_RR_BAD_STATE));
    CHECK_EQ(win(r, 1, CHILD_ORIGIN, "hellohellohellohello", "child-nonce-2", NULL, 0, RND1, 13),
             1);
    CHECK_EQ(sb_router_state(r, ep), SB_EP_CONNECTED);
    sb_router_destroy(r);
}

static void test_reload(void)
{
    sb_router *r = sb_router_create(4, 8, 2);
    int ep = open_ep(r, SB_BR_PARENT, 1, CHILD_ORIGIN, 0);
    char mine[80], peer[80];
    int a, b;
    sb_router_start(r, ep, 1, 1, RND1, 0);
    nonce(r, ep, 0, mine);
    CHECK_EQ(sb_router_port(r, ep, SB_BM_READY, S(mine), S("child-nonce-1"), 0, 1), 2);
    a = sb_router_call(r, ep, 2, 500);
    b = sb_router_call(r, ep, 2, 0);
    CHECK(a > 0 && b > 0);
    /* the child reloaded: same window, new nonce. Calls fail, disconnect
     * (reload), then a welcome on a new port with a new nonce of ours */
    CHECK_EQ(win(r, 1, CHILD_ORIGIN, SB_BRIDGE_HELLO, "child-nonce-2", NULL, 0, RND2, 3), 4);
    CHECK_EQ(ev(r, 0)[0], SB_RT_CALL_FAILED);
    CHECK_EQ(ev(r, 0)[3], SB_E_CONNECTION_LOST);
    CHECK_EQ(ev(r, 1)[0], SB_RT_CALL_FAILED);
    CHECK_EQ(ev(r, 0)[2] + ev(r, 1)[2], a + b);
    CHECK(is_ev(r, 2, SB_RT_DISCONNECTED, ep, SB_BW_RELOAD));
    CHECK(is_ev(r, 3, SB_RT_SEND, ep, SB_BS_WELCOME));
    CHECK_EQ(sb_router_pending(r, ep), 0);
    CHECK_EQ(sb_router_state(r, ep), SB_EP_OFFERED);
    CHECK(strcmp(nonce(r, ep, 1, peer), "child-nonce-2") == 0);
    /* the old nonce no longer connects; the new one does */
    CHECK_EQ(sb_router_port(r, ep, SB_BM_READY, S(mine), NO_STR, 0, 4), 1);
    CHECK(is_ev(r, 0, SB_RT_REJECT, ep, SB_RR_BAD_NONCE));
    CHECK_EQ(sb_router_port(r, ep, SB_BM_READY, S(nonce(r, ep, 0, mine)), NO_STR, 0, 4), 1);
    CHECK(is_ev(r, 0, SB_RT_CONNECTED, ep, 0));
    /* it reloads again (a disconnect), and again before answering (only a welcome) */
    CHECK_EQ(win(r, 1, CHILD_ORIGIN, SB_BRIDGE_HELLO, "child-nonce-3", NULL, 0, RND1, 5), 2);
    CHECK_EQ(win(r, 1, CHILD_ORIGIN, SB_BRIDGE_HELLO, "child-nonce-4", NULL, 0, RND2, 6), 1);
    CHECK(is_ev(r, 0, SB_RT_SEND, ep, SB_BS_WELCOME));
    sb_router_destroy(r);
}

static void test_child(void)
{
    sb_router *r = sb_router_create(4, 8, 2);
    int ep = open_ep(r, SB_BR_CHILD, 1, PARENT_ORIGIN, 0);
    char mine[80], peer[80];
    CHECK_EQ(sb_router_start(r, ep, 1, 1, RND1, 0), 1);
    CHECK(is_ev(r, 0, SB_RT_SEND, ep, SB_BS_HELLO));
    nonce(r, ep, 0, mine);
    /* a probe repeats the hello with the same nonce */
    CHECK_EQ(win(r, 1, PARENT_ORIGIN, SB_BRIDGE_PROBE, NULL, NULL, 0, RND2, 1), 1);
    CHECK(is_ev(r, 0, SB_RT_SEND, ep, SB_BS_HELLO));
    CHECK(strcmp(nonce(r, ep, 0, peer), mine) == 0);
    /* an offer needs its port and a nonce; then READY with both nonces */
    CHECK_EQ(win(r, 1, PARENT_ORIGIN, SB_BRIDGE_OFFER, NULL, "parent-nonce-1", 0, RND2, 2), 1);
    CHECK(is_ev(r, 0, SB_RT_REJECT, ep, SB_RR_BAD_STATE));
    CHECK_EQ(win(r, 1, PARENT_ORIGIN, SB_BRIDGE_OFFER, NULL, "parent-nonce-1", 2, RND2, 2), 1);
    CHECK_EQ(win(r, 1, PARENT_ORIGIN, SB_BRIDGE_OFFER, NULL, "parent-nonce-1", 1, RND2, 2), 1);
    CHECK(is_ev(r, 0, SB_RT_SEND, ep, SB_BS_READY_OWN));
    CHECK(strcmp(nonce(r, ep, 1, peer), "parent-nonce-1") == 0);
    CHECK_EQ(sb_router_state(r, ep), SB_EP_OFFERED);
    /* the parent's ACK must carry our nonce; a READY is not the child's */
    CHECK_EQ(sb_router_port(r, ep, SB_BM_ACK, S("parent-nonce-1"), NO_STR, 0, 3), 1);
    CHECK(is_ev(r, 0, SB_RT_REJECT, ep, SB_RR_BAD_NONCE));
    CHECK_EQ(sb_router_port(r, ep, SB_BM_READY, S(mine), NO_STR, 0, 3), 1);
    CHECK(is_ev(r, 0, SB_RT_REJECT, ep, SB_RR_BAD_STATE));
    CHECK_EQ(sb_router_port(r, ep, SB_BM_SYN, S(mine), NO_STR, 0, 3), 1);
    CHECK(is_ev(r, 0, SB_RT_REJECT, ep, SB_RR_BAD_STATE));
    CHECK_EQ(sb_router_port(r, ep, SB_BM_ACK, S(mine), NO_STR, 0, 3), 1);
    CHECK(is_ev(r, 0, SB_RT_CONNECTED, ep, 0));
    /* connected: every window message is out of order */
    CHECK_EQ(win(r, 1, PARENT_ORIGIN, SB_BRIDGE_WELCOME, mine, "parent-nonce-2", 1, RND2, 4), 1);
    CHECK(is_ev(r, 0, SB_RT_REJECT, ep, SB_RR_BAD_STATE));
    CHECK_EQ(win(r, 1, PARENT_ORIGIN, SB_BRIDGE_PROBE, NULL, NULL, 0, RND2, 4), 1);
    CHECK(is_ev(r, 0, SB_RT_REJECT, ep, SB_RR_BAD_STATE));
    sb_router_destroy(r);
}

static void test_child_welcome(void)
{
    sb_router *r = sb_router_create(4, 8, 2);
    int ep = open_ep(r, SB_BR_CHILD, 1, PARENT_ORIGIN, 0);
    char mine[80], peer[80];
    sb_router_start(r, ep, 1, 1, RND1, 0);
    nonce(r, ep, 0, mine);
    /* a welcome that does not echo our hello's nonce is a forgery or stale */
    CHECK_EQ(win(r, 1, PARENT_ORIGIN, SB_BRIDGE_WELCOME, "not-our-nonce", "parent-nonce-1", 1,
                 RND2, 1), 1);
    CHECK(is_ev(r, 0, SB_RT_REJECT, ep, SB_RR_BAD_NONCE));
    /* from another window or origin it never reaches the endpoint */
    CHECK_EQ(win(r, 2, PARENT_ORIGIN, SB_BRIDGE_WELCOME, mine, "parent-nonce-1", 1, RND2, 1), 1);
    CHECK(is_ev(r, 0, SB_RT_REJECT, ep, SB_RR_WRONG_SOURCE));
    CHECK_EQ(win(r, 1, "https://evil.example", SB_BRIDGE_WELCOME, mine, "parent-nonce-1", 1, RND2,
                 1), 1);
    CHECK(is_ev(r, 0, SB_RT_REJECT, ep, SB_RR_ORIGIN_REJECTED));
    CHECK_EQ(sb_router_window(r, 1, S("other"), S(SB_BRIDGE_WELCOME), S(mine), S("parent-nonce"),
                              S(PARENT_ORIGIN), 1, RND2, 1), 1);
    CHECK(is_ev(r, 0, SB_RT_REJECT, 0, SB_RR_NO_CHANNEL));
    CHECK_EQ(sb_router_state(r, ep), SB_EP_OFFERED);
    /* an offer raced it: the welcome that answers our hello still wins */
    CHECK_EQ(win(r, 1, PARENT_ORIGIN, SB_BRIDGE_OFFER, NULL, "parent-nonce-0", 1, RND2, 1), 1);
    CHECK_EQ(win(r, 1, PARENT_ORIGIN, SB_BRIDGE_WELCOME, mine, "parent-nonce-1", 1, RND2, 2), 2);
    CHECK(is_ev(r, 0, SB_RT_SEND, ep, SB_BS_READY));
    CHECK(is_ev(r, 1, SB_RT_CONNECTED, ep, 0));
    CHECK(strcmp(nonce(r, ep, 1, peer), "parent-nonce-1") == 0);
    /* the ACK for the offer's READY, late: nothing */
    CHECK_EQ(sb_router_port(r, ep, SB_BM_ACK, S(mine), NO_STR, 0, 3), 0);
    sb_router_destroy(r);
}

static void test_port_syn_ack(void)
{
    sb_router *r = sb_router_create(4, 8, 2);
    int ep = open_ep(r, SB_BR_PORT, 0, NULL, 0);
    char mine[80];
    CHECK_EQ(sb_router_start(r, ep, 1, 1, RND1, 0), 1);
    CHECK(is_ev(r, 0, SB_RT_SEND, ep, SB_BS_SYN));
    nonce(r, ep, 0, mine);
    /* the peer's SYN: echo it, each time */
    CHECK_EQ(sb_router_port(r, ep, SB_BM_SYN, S("peer-nonce-1"), NO_STR, 0, 1), 1);
    CHECK(is_ev(r, 0, SB_RT_SEND, ep, SB_BS_ACK));
    CHECK_EQ(sb_router_port(r, ep, SB_BM_SYN, S("peer-nonce-1"), NO_STR, 0, 1), 1);
    CHECK_EQ(sb_router_port(r, ep, SB_BM_SYN, S("peer\x01nonce-1"), NO_STR, 0, 1), 1);
    CHECK(is_ev(r, 0, SB_RT_REJECT, ep, SB_RR_BAD_STATE));
    CHECK_EQ(sb_router_port(r, ep, SB_BM_ACK, S(mine), NO_STR, 0, 2), 1);
    CHECK(is_ev(r, 0, SB_RT_CONNECTED, ep, 0));
    CHECK_EQ(sb_router_start(r, ep, 1, 1, RND1, 3), SB_E_BAD_STATE);
    /* a port does not come back: a bye closes it for good */
    CHECK(sb_router_call(r, ep, 3, 0) > 0);
    CHECK_EQ(sb_router_port(r, ep, SB_BM_BYE, NO_STR, NO_STR, 0, 4), 3);
    CHECK_EQ(ev(r, 0)[0], SB_RT_CALL_FAILED);
    CHECK(is_ev(r, 1, SB_RT_DISCONNECTED, ep, SB_BW_BYE));
    CHECK(is_ev(r, 2, SB_RT_CLOSED, ep, 0));
    CHECK_EQ(ev(r, 2)[3], SB_E_CONNECTION_LOST);
    CHECK_EQ(sb_router_state(r, ep), SB_E_NOT_FOUND);
    CHECK_EQ(sb_router_port(r, ep, SB_BM_ACK, S(mine), NO_STR, 0, 5), SB_E_NOT_FOUND);
    CHECK(sb_router_nonce(r, ep, 0) == NULL);
    sb_router_destroy(r);
}

static void test_restart_vs_close(void)
{
    sb_router *r = sb_router_create(4, 8, 2);
    int p = open_ep(r, SB_BR_PARENT, 1, CHILD_ORIGIN, 0);
    int c = open_ep(r, SB_BR_CHILD, 2, PARENT_ORIGIN, 0);
    char mine[80];
    sb_router_start(r, p, 1, 1, RND1, 0);
    sb_router_port(r, p, SB_BM_READY, S(nonce(r, p, 0, mine)), NO_STR, 0, 1);
    sb_router_start(r, c, 1, 1, RND2, 0);
    /* a window that is still there: start over (the glue calls start) */
    CHECK_EQ(sb_router_port(r, p, SB_BM_BYE, NO_STR, NO_STR, 0, 2), 2);
    CHECK(is_ev(r, 0, SB_RT_DISCONNECTED, p, SB_BW_BYE));
    CHECK(is_ev(r, 1, SB_RT_RESTART, p, 0));
    CHECK_EQ(sb_router_state(r, p), SB_EP_WAITING);
    CHECK_EQ(sb_router_nonce(r, p, 0)[0], 0);
    CHECK_EQ(sb_router_start(r, p, 1, 1, RND2, 2), 1);
    /* lost before connecting: no disconnect, still a restart */
    CHECK_EQ(sb_router_lost(r, c, SB_BW_PORT_CLOSED, 0), 1);
    CHECK(is_ev(r, 0, SB_RT_RESTART, c, 0));
    /* the frame is gone (removed, popup closed): closed for good */
    CHECK_EQ(sb_router_lost(r, p, SB_BW_REMOVED, 1), 1);
    CHECK(is_ev(r, 0, SB_RT_CLOSED, p, 0));
    CHECK_EQ(ev(r, 0)[3], SB_E_CONNECTION_LOST);
    CHECK_EQ(sb_router_lost(r, p, SB_BW_REMOVED, 1), SB_E_NOT_FOUND);
    /* we close: no disconnect before the handshake, CLOSED with our code */
    CHECK_EQ(sb_router_close(r, c, SB_E_CLOSED), 1);
    CHECK(is_ev(r, 0, SB_RT_CLOSED, c, 0));
    CHECK_EQ(ev(r, 0)[3], SB_E_CLOSED);
    sb_router_destroy(r);
}

static void test_deadlines(void)
{
    sb_router *r = sb_router_create(4, 8, 2);
    int ep = open_ep(r, SB_BR_PARENT, 1, CHILD_ORIGIN, 1000); /* connect by 2000 */
    int id;
    char mine[80];
    CHECK_EQ(sb_router_start(r, ep, 2, 2, RND1, 1000), 1); /* two targets: probe */
    CHECK(sb_router_next_deadline(r) == 2000);
    /* the hello and a welcome do not move the connect deadline */
    win(r, 1, CHILD_ORIGIN, SB_BRIDGE_HELLO, "child-nonce-1", NULL, 0, RND2, 1500);
    CHECK(sb_router_next_deadline(r) == 2000);
    CHECK_EQ(sb_router_port(r, ep, SB_BM_READY, S(nonce(r, ep, 0, mine)), NO_STR, 0, 1900), 1);
    /* connected at 1900: heartbeat at 2000, silence at 2250, no connect deadline */
    CHECK(sb_router_next_deadline(r) == 2000);
    CHECK_EQ(sb_router_poll(r, 2000), 1);
    CHECK(is_ev(r, 0, SB_RT_PING, ep, 0));
    id = sb_router_call(r, ep, 2010, 100);
    CHECK(sb_router_next_deadline(r) == 2100);
    CHECK_EQ(sb_router_settle(r, ep, (uint32_t)id, 2050), 0); /* an answer is liveness */
    CHECK(sb_router_next_deadline(r) == 2100);
    CHECK_EQ(sb_router_poll(r, 2100), 1);
    CHECK_EQ(sb_router_poll(r, 2300), 1);
    CHECK(sb_router_next_deadline(r) == 2400);
    CHECK_EQ(sb_router_poll(r, 2399), 0);
    CHECK_EQ(sb_router_poll(r, 2400), 1);
    CHECK(is_ev(r, 0, SB_RT_SILENT, ep, 0));
    CHECK_EQ(sb_router_lost(r, ep, SB_BW_TIMEOUT, 0), 2);
    CHECK(is_ev(r, 0, SB_RT_DISCONNECTED, ep, SB_BW_TIMEOUT));
    /* waiting again: nothing due (the connect deadline was the first one's) */
    CHECK_EQ(sb_router_start(r, ep, 2, 2, RND2, 2400), 1);
    CHECK(sb_router_next_deadline(r) == -1);
    sb_router_destroy(r);
}

/* Two routers wired together as the glue would: every SEND becomes the
 * message the other side receives, in order. The offer and the hello cross. */
static void test_pair_cross(void)
{
    sb_router *pr = sb_router_create(2, 4, 2), *cr = sb_router_create(2, 4, 2);
    int p = open_ep(pr, SB_BR_PARENT, 7, CHILD_ORIGIN, 0);
    int c = open_ep(cr, SB_BR_CHILD, 9, PARENT_ORIGIN, 0);
    char pn[80], cn[80], buf[80];
    CHECK_EQ(sb_router_start(cr, c, 1, 1, RND1, 0), 1); /* hello in flight */
    nonce(cr, c, 0, cn);
    CHECK_EQ(sb_router_start(pr, p, 1, 1, RND2, 0), 1); /* offer in flight */
    nonce(pr, p, 0, pn);
    /* the offer arrives first: READY [pn, cn] */
    CHECK_EQ(win(cr, 9, PARENT_ORIGIN, SB_BRIDGE_OFFER, NULL, pn, 1, RND2, 1), 1);
    CHECK(is_ev(cr, 0, SB_RT_SEND, c, SB_BS_READY_OWN));
    /* then the hello: a welcome on a new port, the offer's port dropped */
    CHECK_EQ(win(pr, 7, CHILD_ORIGIN, SB_BRIDGE_HELLO, cn, NULL, 0, RND1, 1), 1);
    CHECK(is_ev(pr, 0, SB_RT_SEND, p, SB_BS_WELCOME));
    /* the READY went to the dropped port: it never arrives. The welcome does */
    CHECK_EQ(win(cr, 9, PARENT_ORIGIN, SB_BRIDGE_WELCOME, nonce(pr, p, 1, buf),
                 nonce(pr, p, 0, pn), 1, RND2, 2), 2);
    CHECK(is_ev(cr, 1, SB_RT_CONNECTED, c, 0));
    CHECK_EQ(sb_router_port(pr, p, SB_BM_READY, S(nonce(cr, c, 1, buf)), NO_STR, 0, 3), 1);
    CHECK(is_ev(pr, 0, SB_RT_CONNECTED, p, 0));
    sb_router_destroy(pr);
    sb_router_destroy(cr);
}

int main(void)
{
    RUN(test_parent_offer_ready_ack);
    RUN(test_parent_probe_hello_welcome);
    RUN(test_reload);
    RUN(test_child);
    RUN(test_child_welcome);
    RUN(test_port_syn_ack);
    RUN(test_restart_vs_close);
    RUN(test_deadlines);
    RUN(test_pair_cross);
    TEST_MAIN_END();
}
