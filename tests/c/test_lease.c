#include <stdlib.h>

#include "frame.h"
#include "lease.h"
#include "sbtest.h"

#define NT 6
#define HB 100.0
#define LEASE 400.0

typedef struct net {
    sb_lease *t[NT];
    int up[NT];       /* started and not crashed/closed */
    int reach[NT][NT]; /* reach[a][b]: a's broadcasts get to b */
    int lost[NT];     /* leadershiplost events seen */
    int leaderev[NT];
    int steal[NT];    /* SB_LEASE_EV_STEAL events seen */
    double now;
    uint8_t q[256][64];
    int qlen[256], qfrom[256], nq;
} net;

static void bcast(net *n, int from, int len)
{
    CHECK(len >= 0);
    if (len <= 0 || n->nq >= 256)
        return;
    memcpy(n->q[n->nq], sb_lease_out(n->t[from]), (size_t)len);
    n->qlen[n->nq] = len;
    n->qfrom[n->nq++] = from;
}

static void collect(net *n, int i)
{
    int e = sb_lease_events(n->t[i]);
    if (e & SB_LEASE_EV_LOST)
        n->lost[i]++;
    if (e & SB_LEASE_EV_LEADER)
        n->leaderev[i]++;
    if (e & SB_LEASE_EV_STEAL)
        n->steal[i]++;
}

static void pump(net *n)
{
    for (int k = 0; k < n->nq; k++) /* replies append to the queue */
        for (int j = 0; j < NT; j++)
            if (j != n->qfrom[k] && n->up[j] && n->reach[n->qfrom[k]][j]) {
                int r = sb_lease_recv(n->t[j], n->now, n->q[k], (uint32_t)n->qlen[k]);
                CHECK(r >= 0);
                bcast(n, j, r);
                collect(n, j);
            }
    n->nq = 0;
}

static void run(net *n, double until)
{
    while (n->now < until) {
        n->now += 10;
        for (int i = 0; i < NT; i++)
            if (n->up[i] && sb_lease_deadline(n->t[i]) <= n->now) {
                bcast(n, i, sb_lease_tick(n->t[i], n->now));
                collect(n, i);
            }
        pump(n);
    }
}

static void setup(net *n, int prefer_visible, int external)
{
    memset(n, 0, sizeof *n);
    n->now = 1000;
    for (int i = 0; i < NT; i++) {
        n->t[i] = sb_lease_create((uint32_t)(50 - i * 7), HB, LEASE, 16, prefer_visible, external);
        for (int j = 0; j < NT; j++)
            n->reach[i][j] = 1;
    }
}

static void start(net *n, int i, int visible)
{
    n->up[i] = 1;
    bcast(n, i, sb_lease_start(n->t[i], n->now, visible));
    pump(n);
}

static void teardown(net *n)
{
    for (int i = 0; i < NT; i++)
        sb_lease_destroy(n->t[i]);
}

/* Number of up tabs that think they lead; all up tabs agree on who. */
static int leaders(net *n, uint32_t *who)
{
    int c = 0;
    *who = 0;
    for (int i = 0; i < NT; i++) {
        if (!n->up[i])
            continue;
        if (sb_lease_is_leader(n->t[i]))
            c++;
        if (!*who)
            *who = sb_lease_leader(n->t[i]);
        else
            CHECK_EQ(sb_lease_leader(n->t[i]), *who);
    }
    return c;
}

static void test_elect_and_presence(void)
{
    net n;
    uint32_t who;
    setup(&n, 0, 0);
    start(&n, 0, 1); /* id 50 */
    run(&n, n.now + 50);
    CHECK_EQ(sb_lease_leader(n.t[0]), 0); /* still settling */
    run(&n, n.now + 200);
    CHECK(sb_lease_is_leader(n.t[0])); /* alone: leads */
    /* Later tabs (lower ids) join: the incumbent stays leader. */
    for (int i = 1; i < 4; i++)
        start(&n, i, i % 2);
    CHECK_EQ(sb_lease_leader(n.t[3]), 50); /* the hello got an answer at once */
    run(&n, n.now + 1000);
    CHECK_EQ(leaders(&n, &who), 1);
    CHECK_EQ(who, 50);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(sb_lease_peer_count(n.t[i]), 3);
    CHECK_EQ(sb_lease_peer_visible(n.t[0], 0) + sb_lease_peer_visible(n.t[0], 1) +
                 sb_lease_peer_visible(n.t[0], 2),
             2); /* tabs 1 and 3 visible, 2 hidden; tab 0 excluded */
    CHECK_EQ(n.lost[0], 0);

    /* Leader closes: BYE, the lowest remaining id takes over without waiting. */
    bcast(&n, 0, sb_lease_stop(n.t[0], n.now));
    n.up[0] = 0;
    pump(&n);
    run(&n, n.now + 10);
    CHECK_EQ(leaders(&n, &who), 1);
    CHECK_EQ(who, 50 - 3 * 7);

    /* Leader crashes: replaced once its lease is over, not before. */
    double crash = n.now;
    n.up[3] = 0;
    run(&n, crash + LEASE - 20);
    CHECK_EQ(sb_lease_leader(n.t[1]), 29);
    run(&n, crash + LEASE + HB);
    CHECK_EQ(leaders(&n, &who), 1);
    CHECK_EQ(who, 50 - 2 * 7);
    CHECK_EQ(sb_lease_peer_count(n.t[1]), 1);
    for (int i = 0; i < NT; i++)
        CHECK_EQ(n.lost[i], 0);
    teardown(&n);
}

static void test_split_claims_resolve(void)
{
    net n;
    uint32_t who;
    setup(&n, 0, 0);
    /* Two groups that cannot hear each other each elect a leader. */
    for (int a = 0; a < NT; a++)
        for (int b = 0; b < NT; b++)
            n.reach[a][b] = (a < 3) == (b < 3);
    for (int i = 0; i < NT; i++)
        start(&n, i, 1);
    run(&n, n.now + 500);
    CHECK(sb_lease_is_leader(n.t[2])); /* id 36, lowest of 50,43,36 */
    CHECK(sb_lease_is_leader(n.t[5])); /* id 15 */
    /* Heal: exactly one survives everywhere; the other hears it lost. */
    for (int a = 0; a < NT; a++)
        for (int b = 0; b < NT; b++)
            n.reach[a][b] = 1;
    run(&n, n.now + 300);
    CHECK_EQ(leaders(&n, &who), 1);
    CHECK_EQ(n.lost[2] + n.lost[5], 1);
    teardown(&n);
}

static void test_prefer_visible(void)
{
    net n;
    uint32_t who;
    setup(&n, 1, 0);
    start(&n, 5, 0); /* id 15, lowest, hidden */
    start(&n, 1, 1); /* id 43, visible */
    start(&n, 2, 0);
    run(&n, n.now + 500);
    CHECK_EQ(leaders(&n, &who), 1);
    CHECK_EQ(who, 43);
    /* The visible leader goes to the background and tab 5 comes forward. */
    bcast(&n, 5, sb_lease_set_visible(n.t[5], n.now, 1));
    bcast(&n, 1, sb_lease_set_visible(n.t[1], n.now, 0));
    pump(&n);
    run(&n, n.now + 200);
    CHECK_EQ(leaders(&n, &who), 1);
    CHECK_EQ(who, 15);
    CHECK_EQ(n.lost[1], 1);
    teardown(&n);
}

static void test_external_mode(void)
{
    net n;
    uint32_t who;
    setup(&n, 0, 1);
    for (int i = 0; i < 3; i++)
        start(&n, i, 1);
    run(&n, n.now + 1000);
    CHECK_EQ(leaders(&n, &who), 0); /* nobody claims without the lock */
    CHECK_EQ(who, 0);
    bcast(&n, 2, sb_lease_claim(n.t[2], n.now));
    pump(&n);
    CHECK_EQ(leaders(&n, &who), 1);
    CHECK_EQ(who, 36);
    CHECK_EQ(sb_lease_term(n.t[0]), 1);
    bcast(&n, 2, sb_lease_resign(n.t[2], n.now));
    collect(&n, 2);
    pump(&n);
    CHECK_EQ(leaders(&n, &who), 0);
    CHECK_EQ(n.lost[2], 1);
    bcast(&n, 0, sb_lease_claim(n.t[0], n.now));
    pump(&n);
    run(&n, n.now + 500);
    CHECK_EQ(leaders(&n, &who), 1);
    CHECK_EQ(who, 50);
    CHECK_EQ(sb_lease_term(n.t[1]), 2);
    teardown(&n);
}

/* A leader that goes silent while it holds the lock (a frozen tab): the
 * lowest visible tab, and only it, is told to steal; the old leader steps
 * down when it runs again. A leader that closes (BYE) is no steal. */
static void test_external_frozen_leader(void)
{
    net n;
    uint32_t who;
    setup(&n, 0, 1);
    for (int i = 0; i < 3; i++)
        start(&n, i, 1);
    bcast(&n, 0, sb_lease_claim(n.t[0], n.now)); /* id 50 holds the lock */
    pump(&n);
    run(&n, n.now + 1000);
    CHECK_EQ(leaders(&n, &who), 1);
    CHECK_EQ(who, 50);
    n.up[0] = 0; /* frozen: neither ticks nor hears */
    run(&n, n.now + LEASE - 2 * HB);
    CHECK_EQ(n.steal[1] + n.steal[2], 0); /* not before its lease ran out */
    run(&n, n.now + 3 * HB);
    CHECK_EQ(n.steal[1], 0);
    CHECK_EQ(n.steal[2], 1); /* id 36, the lowest */
    run(&n, n.now + 1000);
    CHECK_EQ(n.steal[2], 1); /* once */
    bcast(&n, 2, sb_lease_claim(n.t[2], n.now)); /* the glue stole the lock */
    pump(&n);
    CHECK_EQ(sb_lease_term(n.t[1]), 2);
    n.up[0] = 1; /* thawed: it still believes it leads, with term 1 */
    CHECK_EQ(sb_lease_is_leader(n.t[0]), 1);
    /* Its first step, before it has read anything: it steps down, and does
     * not take its own silence for its peers' (it is not alone). */
    bcast(&n, 0, sb_lease_tick(n.t[0], n.now));
    collect(&n, 0);
    CHECK_EQ(n.lost[0], 1);
    CHECK_EQ(sb_lease_peer_count(n.t[0]), 2);
    pump(&n);
    run(&n, n.now + 2 * HB);
    CHECK_EQ(n.lost[0], 1);
    CHECK_EQ(leaders(&n, &who), 1);
    CHECK_EQ(who, 36);
    /* A follower frozen for leases, thawed: it robs nobody, and lists everyone. */
    n.up[1] = 0;
    run(&n, n.now + 3 * LEASE);
    n.up[1] = 1;
    bcast(&n, 1, sb_lease_tick(n.t[1], n.now));
    collect(&n, 1);
    CHECK_EQ(n.steal[1], 0);
    CHECK_EQ(sb_lease_leader(n.t[1]), 36);
    CHECK_EQ(sb_lease_peer_count(n.t[1]), 2);
    pump(&n);
    run(&n, n.now + 1000);
    CHECK_EQ(n.steal[1], 0);
    CHECK_EQ(leaders(&n, &who), 1);
    CHECK_EQ(who, 36);
    /* The new leader closes: its BYE frees the lock, nobody steals. */
    bcast(&n, 2, sb_lease_stop(n.t[2], n.now));
    n.up[2] = 0;
    pump(&n);
    run(&n, n.now + 3 * LEASE);
    CHECK_EQ(n.steal[0] + n.steal[1], 0);
    teardown(&n);

    /* Hidden tabs (timers throttled): a quiet leader is neither robbed nor
     * steps down; it is simply not listed meanwhile. */
    setup(&n, 0, 1);
    for (int i = 0; i < 3; i++)
        start(&n, i, 0);
    bcast(&n, 0, sb_lease_claim(n.t[0], n.now));
    pump(&n);
    run(&n, n.now + 1000);
    n.up[0] = 0;
    run(&n, n.now + 3 * LEASE);
    CHECK_EQ(n.steal[1] + n.steal[2], 0);
    n.up[0] = 1;
    run(&n, n.now + 2 * HB);
    CHECK_EQ(n.lost[0], 0);
    CHECK_EQ(leaders(&n, &who), 1);
    CHECK_EQ(who, 50);
    teardown(&n);

    /* A hidden tab, its timers throttled past a lease, while the others died:
     * shown again, it does not take the gap for a freeze of its own. */
    setup(&n, 0, 0);
    start(&n, 0, 1);
    start(&n, 1, 0);
    run(&n, n.now + 1000);
    CHECK_EQ(sb_lease_peer_count(n.t[1]), 1);
    n.up[0] = n.up[1] = 0; /* one gone, the other throttled */
    n.now += 3 * LEASE;
    n.up[1] = 1;
    bcast(&n, 1, sb_lease_set_visible(n.t[1], n.now, 1));
    collect(&n, 1);
    CHECK_EQ(sb_lease_peer_count(n.t[1]), 0);
    CHECK(sb_lease_is_leader(n.t[1]));
    teardown(&n);
}

static void test_bad_input(void)
{
    sb_lease *l = sb_lease_create(1, 100, 400, 2, 0, 0);
    uint8_t junk[8] = {0x15, 0x10, 0, 3, 9, 9, 9, 9};
    CHECK(sb_lease_create(0, 100, 400, 2, 0, 0) == NULL);
    CHECK(sb_lease_create(1, 400, 100, 2, 0, 0) == NULL);
    sb_lease_start(l, 0, 1);
    CHECK(sb_lease_recv(l, 0, junk, sizeof junk) < 0);
    CHECK(sb_lease_recv(l, 0, junk, 0) < 0);
    /* The peer table is bounded. */
    {
        sb_lease *o[3];
        for (int i = 0; i < 3; i++) {
            o[i] = sb_lease_create((uint32_t)(10 + i), 100, 400, 2, 0, 0);
            int len = sb_lease_start(o[i], 0, 1);
            int r = sb_lease_recv(l, 0, sb_lease_out(o[i]), (uint32_t)len);
            CHECK(i < 2 ? r >= 0 : r == SB_E_TOO_LARGE);
            sb_lease_destroy(o[i]);
        }
    }
    sb_lease_destroy(l);
}

/* The wire vectors quoted in docs/tabs.md. */
static void test_wire_vectors(void)
{
    static const uint8_t hello[] = {0x15, 0x10, 0x00, 0x05, 0x01, 0x05, 0x05, 0x00, 0x00};
    static const uint8_t claim[] = {0x15, 0x10, 0x00, 0x05, 0x01, 0x05, 0x03, 0x01, 0x05};
    static const uint8_t bye[] = {0x15, 0x10, 0x00, 0x05, 0x02, 0x05, 0x01, 0x00, 0x00};
    sb_lease *l = sb_lease_create(5, 100, 400, 4, 0, 0);
    CHECK_EQ(sb_lease_start(l, 0, 1), sizeof hello);
    CHECK_MEM(sb_lease_out(l), hello, sizeof hello);
    CHECK_EQ(sb_lease_tick(l, 100), sizeof claim);
    CHECK_MEM(sb_lease_out(l), claim, sizeof claim);
    CHECK_EQ(sb_lease_stop(l, 200), sizeof bye);
    CHECK_MEM(sb_lease_out(l), bye, sizeof bye);
    sb_lease_destroy(l);
}

int main(void)
{
    RUN(test_wire_vectors);
    RUN(test_elect_and_presence);
    RUN(test_split_claims_resolve);
    RUN(test_prefer_visible);
    RUN(test_external_mode);
    RUN(test_external_frozen_leader);
    RUN(test_bad_input);
    TEST_MAIN_END();
}
