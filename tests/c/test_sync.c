#include <stdlib.h>

#include "frame.h"
#include "sbtest.h"
#include "sync.h"

#define K(s) (const uint8_t *)(s), (uint32_t)strlen(s)

static sb_sync *mk(uint32_t id)
{
    return sb_sync_create(id, 64, 32, 64, 64, 32);
}

/* Copy of the last output (valid until the next call on that replica). */
static uint8_t *take(sb_sync *s, int n, size_t *len)
{
    uint8_t *p = malloc(n > 0 ? (size_t)n : 1);
    if (n > 0)
        memcpy(p, sb_sync_out(s), (size_t)n);
    *len = n > 0 ? (size_t)n : 0;
    return p;
}

static int get_str(sb_sync *s, const char *key, char *out, size_t cap)
{
    sb_sync_ts ts;
    const uint8_t *v;
    size_t vl;
    int tomb;
    if (sb_sync_lookup(s, (const uint8_t *)key, strlen(key), &ts, &v, &vl, &tomb) < 0 || tomb)
        return -1;
    if (vl >= cap)
        return -1;
    memcpy(out, v, vl);
    out[vl] = 0;
    return (int)vl;
}

static void send(sb_sync *from, sb_sync *to, int n)
{
    size_t len;
    uint8_t *m = take(from, n, &len);
    CHECK(n > 0);
    CHECK(sb_sync_merge(to, 0, m, (uint32_t)len) >= 0);
    free(m);
}

static void test_basic_lww_and_frames(void)
{
    sb_sync *a = mk(1), *b = mk(2);
    char v[80];
    sb_frame f;
    CHECK_EQ(sb_sync_set(a, 1000, K("theme"), K("\"dark\"")), 0);
    CHECK_EQ(sb_sync_pending(a), 1);
    CHECK_EQ(sb_sync_snapshot(a, 1000), SB_E_BAD_STATE); /* flush first */
    int n = sb_sync_flush(a);
    CHECK(n > 0);
    /* The op travels as a STATE_OP frame. */
    CHECK(sb_frame_decode(sb_sync_out(a), (size_t)n, 1 << 20, &f) == n);
    CHECK_EQ(f.kind, SB_FRAME_STATE_OP);
    CHECK_EQ(f.payload[0], SB_SYNC_OPS);
    {
        size_t len;
        uint8_t *m = take(a, n, &len);
        CHECK_EQ(sb_sync_merge(b, 0, m, (uint32_t)len), 1);
        CHECK_EQ(sb_sync_last_type(b), SB_SYNC_OPS);
        CHECK_EQ(sb_sync_last_origin(b), 1);
        /* Change record: flags 0, key, value. */
        CHECK_EQ(sb_sync_changes_len(b), 1 + 1 + 5 + 1 + 6);
        CHECK_MEM(sb_sync_changes(b) + 2, "theme", 5);
        /* Idempotent: the same message again changes nothing. */
        CHECK_EQ(sb_sync_merge(b, 0, m, (uint32_t)len), 0);
        free(m);
    }
    CHECK_EQ(get_str(b, "theme", v, sizeof v), 6);
    CHECK(strcmp(v, "\"dark\"") == 0);
    CHECK_EQ(sb_sync_flush(a), 0); /* nothing pending */

    /* Concurrent writes in the same millisecond: the higher replica id wins
     * everywhere, whatever the delivery order. */
    sb_sync_set(a, 2000, K("x"), K("from-a"));
    sb_sync_set(b, 2000, K("x"), K("from-b"));
    {
        size_t la, lb;
        uint8_t *ma = take(a, sb_sync_flush(a), &la);
        uint8_t *mb = take(b, sb_sync_flush(b), &lb);
        CHECK_EQ(sb_sync_merge(a, 0, mb, (uint32_t)lb), 1);
        CHECK_EQ(sb_sync_merge(b, 0, ma, (uint32_t)la), 0);
        free(ma);
        free(mb);
    }
    CHECK_EQ(get_str(a, "x", v, sizeof v), 6);
    CHECK(strcmp(v, "from-b") == 0);
    CHECK_EQ(get_str(b, "x", v, sizeof v), 6);
    CHECK(strcmp(v, "from-b") == 0);

    /* A clock behind the other replica still wins when it writes later:
     * the HLC carries the max it has seen. */
    sb_sync_set(a, 50, K("x"), K("later-a"));
    send(a, b, sb_sync_flush(a));
    CHECK_EQ(get_str(b, "x", v, sizeof v), 7);

    /* Burst coalescing: ten writes of one key before a flush = one op. */
    for (int i = 0; i < 10; i++) {
        char val[16];
        snprintf(val, sizeof val, "%d", i);
        sb_sync_set(a, 3000 + i, K("burst"), (const uint8_t *)val, (uint32_t)strlen(val));
    }
    CHECK_EQ(sb_sync_pending(a), 1);
    send(a, b, sb_sync_flush(a));
    CHECK_EQ(get_str(b, "burst", v, sizeof v), 1);
    CHECK(strcmp(v, "9") == 0);

    /* Delete: tombstone, reported as a deleted change. */
    CHECK_EQ(sb_sync_delete(a, 4000, K("burst")), 1);
    CHECK_EQ(sb_sync_delete(a, 4000, K("burst")), 0);
    CHECK_EQ(sb_sync_delete(a, 4000, K("never")), 0);
    {
        size_t len;
        uint8_t *m = take(a, sb_sync_flush(a), &len);
        CHECK_EQ(sb_sync_merge(b, 0, m, (uint32_t)len), 1);
        CHECK_EQ(sb_sync_changes(b)[0], SB_SYNC_CH_DELETED);
        free(m);
    }
    CHECK_EQ(get_str(b, "burst", v, sizeof v), -1);
    CHECK_EQ(sb_sync_tombstones(b), 1);
    CHECK_EQ(sb_sync_count(b), 2);
    sb_sync_destroy(a);
    sb_sync_destroy(b);
}

static void test_caps_and_errors(void)
{
    sb_sync *a = sb_sync_create(7, 2, 4, 8, 1, 2);
    uint8_t big[16] = {0};
    CHECK(sb_sync_create(0, 1, 1, 1, 1, 1) == NULL);
    CHECK_EQ(sb_sync_set(a, 1, (const uint8_t *)"", 0, K("v")), SB_E_INVALID);
    CHECK_EQ(sb_sync_set(a, 1, K("toolong"), K("v")), SB_E_TOO_LARGE);
    CHECK_EQ(sb_sync_set(a, 1, K("k"), big, 9), SB_E_TOO_LARGE);
    CHECK_EQ(sb_sync_set(a, 1, K("k1"), K("v")), 0);
    CHECK_EQ(sb_sync_set(a, 1, K("k2"), K("v")), 0);
    CHECK_EQ(sb_sync_set(a, 1, K("k3"), K("v")), SB_E_TOO_LARGE);
    CHECK_EQ(sb_sync_set(a, 1, K("k1"), K("w")), 0); /* overwrite is fine */
    CHECK_EQ(sb_sync_delete(a, 2, K("k1")), 1);
    /* One tombstone allowed, and it is not yet stable (unflushed). */
    CHECK_EQ(sb_sync_delete(a, 2, K("k2")), SB_E_TOO_LARGE);
    /* A foreign snapshot bigger than our caps is refused whole. */
    {
        sb_sync *b = sb_sync_create(8, 8, 4, 8, 8, 4);
        size_t len;
        uint8_t *m;
        int before = sb_sync_count(a);
        for (int i = 0; i < 5; i++) {
            char k[4] = {'z', (char)('0' + i), 0};
            sb_sync_set(b, 5, (const uint8_t *)k, 2, K("v"));
        }
        sb_sync_flush(b);
        m = take(b, sb_sync_snapshot(b, 6), &len);
        CHECK_EQ(sb_sync_merge(a, 0, m, (uint32_t)len), SB_E_TOO_LARGE);
        CHECK_EQ(sb_sync_count(a), before);
        /* Garbage and truncation. */
        for (size_t cut = 0; cut < len; cut++)
            CHECK(sb_sync_merge(a, 0, m, (uint32_t)cut) < 0);
        free(m);
        sb_sync_destroy(b);
    }
    sb_sync_destroy(a);
}

/* Deletes are collected once stable, and a stale replica cannot bring them back. */
static void test_gc_and_no_resurrection(void)
{
    sb_sync *a = mk(1), *b = mk(2), *stale;
    size_t len;
    uint8_t *old;
    char v[80];
    sb_sync_peer_join(a, 2);
    sb_sync_peer_join(b, 1);
    sb_sync_set(a, 100, K("cart"), K("[1,2]"));
    send(a, b, sb_sync_flush(a));
    /* A third replica takes a snapshot, then goes away (e.g. persisted). */
    old = take(b, sb_sync_snapshot(b, 101), &len);
    sb_sync_delete(b, 200, K("cart"));
    send(b, a, sb_sync_flush(b));
    CHECK_EQ(sb_sync_gc(a), 0); /* b has not reported it stable yet */
    /* b's digest says b holds everything up to now, but b has not yet seen
     * a's writes up to the delete: still not stable. */
    send(b, a, sb_sync_digest(b, 250));
    CHECK_EQ(sb_sync_gc(a), 0);
    /* A digest announcing writes a never got keeps b's clock from counting. */
    {
        sb_sync *c = mk(9);
        sb_sync_peer_join(a, 9);
        sb_sync_set(c, 260, K("other"), K("1"));
        sb_sync_flush(c); /* lost */
        send(c, a, sb_sync_digest(c, 270));
        CHECK_EQ(sb_sync_missing(a), 1);
        send(c, a, sb_sync_snapshot(c, 271)); /* repair */
        CHECK_EQ(sb_sync_missing(a), 0);
        sb_sync_peer_leave(a, 9);
        sb_sync_destroy(c);
    }
    for (int round = 0; round < 2; round++) {
        send(a, b, sb_sync_digest(a, 300 + round));
        send(b, a, sb_sync_digest(b, 300 + round));
    }
    CHECK_EQ(sb_sync_gc(a), 1);
    CHECK_EQ(sb_sync_gc(b), 1);
    CHECK_EQ(sb_sync_tombstones(a), 0);
    /* The old snapshot (cart live) arrives: cart stays deleted. */
    CHECK_EQ(sb_sync_merge(a, 0, old, (uint32_t)len), 0);
    CHECK_EQ(get_str(a, "cart", v, sizeof v), -1);
    /* And a replica restored from it drops cart when it merges a live one. */
    stale = mk(3);
    CHECK_EQ(sb_sync_merge(stale, 0, old, (uint32_t)len), 1);
    CHECK_EQ(get_str(stale, "cart", v, sizeof v), 5);
    send(a, stale, sb_sync_snapshot(a, 400));
    CHECK_EQ(get_str(stale, "cart", v, sizeof v), -1);
    CHECK_EQ(sb_sync_count(stale), 1); /* only "other" */
    free(old);
    sb_sync_destroy(a);
    sb_sync_destroy(b);
    sb_sync_destroy(stale);
}

/* ---- property test -------------------------------------------------------- */

#define MAXR 12
#define NKEYS 10
#define MAXMSG 4096

typedef struct msg {
    int to;
    uint8_t *p;
    size_t n;
    int reliable;
} msg;

typedef struct world {
    sb_sync *r[MAXR];
    uint32_t id[MAXR];
    int live[MAXR];
    int nr;
    double t;
    double skew[MAXR];
    msg q[MAXMSG];
    int nq;
    sb_rng rng;
    /* per replica, per key: newest stamp ever seen (the view only moves forward) */
    sb_sync_ts seen[MAXR][NKEYS];
    /* truth: newest write per key over all replicas */
    sb_sync_ts truth_ts[NKEYS];
    char truth_val[NKEYS][24];
    int truth_del[NKEYS];
    int vcount;
    /* "persisted storage": an old snapshot a new tab may start from */
    uint8_t *stored;
    size_t stored_len;
    int collected; /* tombstones collected during the run */
} world;

static const char *keyname(int k)
{
    static const char *names[NKEYS] = {"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"};
    return names[k];
}

static double now_of(world *w, int i)
{
    return w->t + w->skew[i];
}

static void enqueue(world *w, int to, const uint8_t *p, size_t n, int reliable)
{
    CHECK(w->nq < MAXMSG); /* drops are chosen by the test, never by overflow */
    if (w->nq >= MAXMSG)
        return;
    w->q[w->nq].to = to;
    w->q[w->nq].p = malloc(n);
    memcpy(w->q[w->nq].p, p, n);
    w->q[w->nq].n = n;
    w->q[w->nq].reliable = reliable;
    w->nq++;
}

/* Broadcast the replica's last output: drops 10%, duplicates 10%. */
static void broadcast(world *w, int from, int n, int lossy)
{
    CHECK(n >= 0);
    if (n <= 0)
        return;
    for (int j = 0; j < w->nr; j++) {
        if (j == from || !w->live[j])
            continue;
        uint32_t roll = sb_rng_next(&w->rng) % 10;
        if (lossy && roll == 0)
            continue;
        enqueue(w, j, sb_sync_out(w->r[from]), (size_t)n, !lossy);
        if (lossy && roll == 1)
            enqueue(w, j, sb_sync_out(w->r[from]), (size_t)n, 0);
    }
}

static void check_forward(world *w, int i)
{
    for (int k = 0; k < NKEYS; k++) {
        sb_sync_ts ts;
        if (sb_sync_lookup(w->r[i], (const uint8_t *)keyname(k), 2, &ts, NULL, NULL, NULL) < 0)
            continue;
        if (sb_sync_ts_cmp(&ts, &w->seen[i][k]) < 0) {
            CHECK(!"per-key view moved backwards");
            return;
        }
        w->seen[i][k] = ts;
    }
}

static void deliver(world *w, int idx)
{
    msg m = w->q[idx];
    w->q[idx] = w->q[--w->nq];
    if (w->live[m.to]) {
        int rc = sb_sync_merge(w->r[m.to], now_of(w, m.to), m.p, (uint32_t)m.n);
        CHECK(rc >= 0);
        if (rc >= 0 && sb_sync_last_type(w->r[m.to]) == SB_SYNC_REQUEST) {
            sb_sync_flush(w->r[m.to]);
            int n = sb_sync_snapshot(w->r[m.to], now_of(w, m.to));
            CHECK(n > 0);
            /* answer the requester directly */
            for (int j = 0; j < w->nr; j++)
                if (w->live[j] && w->id[j] == sb_sync_last_origin(w->r[m.to]) && n > 0)
                    enqueue(w, j, sb_sync_out(w->r[m.to]), (size_t)n, 1);
        }
        /* What the glue does: a digest shows writes we never got -> ask
         * for a snapshot. */
        if (rc >= 0 && sb_sync_last_type(w->r[m.to]) == SB_SYNC_DIGEST && sb_sync_missing(w->r[m.to]))
            broadcast(w, m.to, sb_sync_request(w->r[m.to]), 1);
        check_forward(w, m.to);
    }
    free(m.p);
}

static void flush_bcast(world *w, int i, int lossy)
{
    broadcast(w, i, sb_sync_flush(w->r[i]), lossy);
}

static int add_replica(world *w)
{
    int i = w->nr++;
    w->id[i] = 100 + (uint32_t)i * 7919u;
    w->r[i] = sb_sync_create(w->id[i], 64, 8, 32, 256, 32);
    w->live[i] = 1;
    w->skew[i] = (double)(sb_rng_next(&w->rng) % 40);
    memset(w->seen[i], 0, sizeof w->seen[i]);
    for (int j = 0; j < i; j++) {
        if (!w->live[j])
            continue;
        sb_sync_peer_join(w->r[j], w->id[i]);
        sb_sync_peer_join(w->r[i], w->id[j]);
    }
    return i;
}

static void local_op(world *w, int i)
{
    int k = (int)(sb_rng_next(&w->rng) % NKEYS);
    sb_sync_ts ts;
    if (sb_rng_next(&w->rng) % 4 == 0) {
        int rc = sb_sync_delete(w->r[i], now_of(w, i), (const uint8_t *)keyname(k), 2);
        CHECK(rc >= 0);
        if (rc == 1) {
            sb_sync_lookup(w->r[i], (const uint8_t *)keyname(k), 2, &ts, NULL, NULL, NULL);
            if (sb_sync_ts_cmp(&ts, &w->truth_ts[k]) > 0) {
                w->truth_ts[k] = ts;
                w->truth_del[k] = 1;
            }
        }
    } else {
        char v[24];
        snprintf(v, sizeof v, "v%d", ++w->vcount);
        CHECK_EQ(sb_sync_set(w->r[i], now_of(w, i), (const uint8_t *)keyname(k), 2,
                             (const uint8_t *)v, (uint32_t)strlen(v)),
                 0);
        sb_sync_lookup(w->r[i], (const uint8_t *)keyname(k), 2, &ts, NULL, NULL, NULL);
        if (sb_sync_ts_cmp(&ts, &w->truth_ts[k]) > 0) {
            w->truth_ts[k] = ts;
            w->truth_del[k] = 0;
            memcpy(w->truth_val[k], v, sizeof v);
        }
    }
    check_forward(w, i);
}

static void leave(world *w, int i)
{
    /* pagehide: the last writes go out and a snapshot reaches one live tab. */
    flush_bcast(w, i, 0);
    for (int j = 0; j < w->nr; j++)
        if (j != i && w->live[j]) {
            enqueue(w, j, sb_sync_out(w->r[i]), (size_t)sb_sync_snapshot(w->r[i], now_of(w, i)), 1);
            break;
        }
    w->live[i] = 0;
    for (int j = 0; j < w->nr; j++)
        if (w->live[j])
            sb_sync_peer_leave(w->r[j], w->id[i]);
}

static int nlive(world *w)
{
    int n = 0;
    for (int i = 0; i < w->nr; i++)
        n += w->live[i];
    return n;
}

static int pick_live(world *w)
{
    for (;;) {
        int i = (int)(sb_rng_next(&w->rng) % (uint32_t)w->nr);
        if (w->live[i])
            return i;
    }
}

static void run_world(uint32_t seed, int steps, int *collected)
{
    world *w = calloc(1, sizeof *w);
    sb_rng_seed(&w->rng, seed);
    w->t = 1000;
    for (int i = 0; i < 5; i++)
        add_replica(w);
    for (int step = 0; step < steps; step++) {
        uint32_t a = sb_rng_next(&w->rng) % 100;
        w->t += (double)(sb_rng_next(&w->rng) % 3); /* often the same ms */
        if (a < 30) {
            local_op(w, pick_live(w));
        } else if (a < 40) {
            flush_bcast(w, pick_live(w), 1);
        } else if (a < 75) {
            /* deliver a few, in random order (the network keeps up on average) */
            for (int k = (int)(sb_rng_next(&w->rng) % 12); k >= 0 && w->nq; k--)
                deliver(w, (int)(sb_rng_next(&w->rng) % (uint32_t)w->nq));
        } else if (a < 82) {
            int i = pick_live(w);
            flush_bcast(w, i, 1);
            broadcast(w, i, sb_sync_digest(w->r[i], now_of(w, i)), 1);
        } else if (a < 86) {
            int n = sb_sync_gc(w->r[pick_live(w)]);
            CHECK(n >= 0);
            w->collected += n;
        } else if (a < 87) {
            /* persist a snapshot (a later tab may restore this stale state) */
            int i = pick_live(w);
            flush_bcast(w, i, 1);
            int n = sb_sync_snapshot(w->r[i], now_of(w, i));
            CHECK(n > 0);
            free(w->stored);
            w->stored = malloc((size_t)n);
            memcpy(w->stored, sb_sync_out(w->r[i]), (size_t)n);
            w->stored_len = (size_t)n;
        } else if (a < 89) {
            /* anti-entropy: a snapshot to one random peer (repairs drops) */
            int i = pick_live(w), j = pick_live(w);
            if (i != j) {
                flush_bcast(w, i, 1);
                int n = sb_sync_snapshot(w->r[i], now_of(w, i));
                CHECK(n > 0);
                enqueue(w, j, sb_sync_out(w->r[i]), (size_t)n, 0);
            }
        } else if (a < 91 && w->nr < MAXR) {
            int i = add_replica(w);
            if (w->stored && sb_rng_next(&w->rng) % 2) {
                CHECK(sb_sync_merge(w->r[i], now_of(w, i), w->stored, (uint32_t)w->stored_len) >= 0);
                check_forward(w, i);
            }
            int n = sb_sync_request(w->r[i]);
            broadcast(w, i, n, 1);
        } else if (a < 93 && nlive(w) > 5) {
            leave(w, pick_live(w));
        }
    }
    /* Repair: deliver everything, then full snapshot exchange, then digests. */
    while (w->nq)
        deliver(w, (int)(sb_rng_next(&w->rng) % (uint32_t)w->nq));
    for (int i = 0; i < w->nr; i++)
        if (w->live[i])
            flush_bcast(w, i, 0);
    while (w->nq)
        deliver(w, 0);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < w->nr; i++)
            if (w->live[i])
                broadcast(w, i, sb_sync_snapshot(w->r[i], now_of(w, i)), 0);
        while (w->nq)
            deliver(w, (int)(sb_rng_next(&w->rng) % (uint32_t)w->nq));
    }
    /* Every live replica holds the same map, and it is the newest write per key. */
    for (int i = 0; i < w->nr; i++) {
        if (!w->live[i])
            continue;
        for (int k = 0; k < NKEYS; k++) {
            char v[80];
            int got = get_str(w->r[i], keyname(k), v, sizeof v);
            int exists = w->truth_ts[k].rid != 0 && !w->truth_del[k];
            if (exists) {
                CHECK(got >= 0 && strcmp(v, w->truth_val[k]) == 0);
                if (!(got >= 0 && strcmp(v, w->truth_val[k]) == 0))
                    fprintf(stderr, "seed %u replica %d key %d: got %s want %s (ts %llu.%u@%u)\n", seed, i, k,
                            got >= 0 ? v : "(none)", w->truth_val[k],
                            (unsigned long long)w->truth_ts[k].wall, w->truth_ts[k].ctr, w->truth_ts[k].rid);
            } else {
                CHECK_EQ(got, -1);
            }
        }
    }
    /* Digest rounds make every tombstone stable; GC then collects all of them
     * and the maps are still equal. */
    w->t += 10;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < w->nr; i++)
            if (w->live[i])
                broadcast(w, i, sb_sync_digest(w->r[i], now_of(w, i)), 0);
        while (w->nq)
            deliver(w, 0);
    }
    for (int i = 0; i < w->nr; i++)
        if (w->live[i]) {
            sb_sync_gc(w->r[i]);
            CHECK_EQ(sb_sync_tombstones(w->r[i]), 0);
            CHECK_EQ(sb_sync_missing(w->r[i]), 0);
        }
    {
        int ref = -1;
        for (int i = 0; i < w->nr; i++) {
            if (!w->live[i])
                continue;
            if (ref < 0) {
                ref = i;
                continue;
            }
            CHECK_EQ(sb_sync_count(w->r[i]), sb_sync_count(w->r[ref]));
            size_t cur = 0, kl, vl, kl2, vl2;
            const uint8_t *kp, *vp, *vp2;
            while (sb_sync_next(w->r[i], &cur, &kp, &kl, &vp, &vl)) {
                sb_sync_ts ts;
                int tomb;
                CHECK(sb_sync_lookup(w->r[ref], kp, kl, &ts, &vp2, &vl2, &tomb) == 0 && !tomb &&
                      vl2 == vl && memcmp(vp, vp2, vl) == 0);
                (void)kl2;
            }
        }
    }
    for (int i = 0; i < w->nr; i++)
        sb_sync_destroy(w->r[i]);
    *collected += w->collected;
    free(w->stored);
    free(w);
}

static void test_property_converges(void)
{
    int collected = 0;
    for (uint32_t seed = 1; seed <= 40; seed++)
        run_world(seed * 2654435761u, 3000, &collected);
    /* GC really ran while writes were in flight, not only at the end. */
    CHECK(collected > 100);
    printf("tombstones collected mid-run: %d\n", collected);
}

/* The wire vectors quoted in docs/tabs.md. */
static void test_wire_vectors(void)
{
    static const uint8_t ops[] = {0x18, 0x10, 0x00, 0x0e, 0x01, 0x01, 0x01, 0x01, 0xe8,
                                  0x07, 0x00, 0x00, 0x01, 0x6b, 0x03, 0x22, 0x78, 0x22};
    static const uint8_t digest[] = {0x18, 0x10, 0x00, 0x09, 0x03, 0x01, 0xe9,
                                     0x07, 0x00, 0x01, 0xe9, 0x07, 0x00};
    static const uint8_t request[] = {0x18, 0x10, 0x00, 0x02, 0x04, 0x01};
    static const uint8_t snap[] = {0x18, 0x10, 0x00, 0x1b, 0x02, 0x01, 0xea, 0x07, 0x00, 0xea,
                                   0x07, 0x00, 0x01, 0x01, 0x01, 0xea, 0x07, 0x00, 0x01, 0xe8,
                                   0x07, 0x00, 0x01, 0x01, 0x00, 0x01, 0x6b, 0x03, 0x22, 0x78,
                                   0x22};
    static const uint8_t del[] = {0x18, 0x10, 0x00, 0x0a, 0x01, 0x01, 0x01,
                                  0x02, 0xeb, 0x07, 0x00, 0x01, 0x01, 0x6b};
    sb_sync *a = sb_sync_create(1, 16, 16, 16, 16, 4), *b = mk(2);
    char v[8];
    sb_sync_set(a, 1000, K("k"), K("\"x\""));
    CHECK_EQ(sb_sync_flush(a), sizeof ops);
    CHECK_MEM(sb_sync_out(a), ops, sizeof ops);
    CHECK_EQ(sb_sync_digest(a, 1001), sizeof digest);
    CHECK_MEM(sb_sync_out(a), digest, sizeof digest);
    CHECK_EQ(sb_sync_request(a), sizeof request);
    CHECK_MEM(sb_sync_out(a), request, sizeof request);
    CHECK_EQ(sb_sync_snapshot(a, 1002), sizeof snap);
    CHECK_MEM(sb_sync_out(a), snap, sizeof snap);
    sb_sync_delete(a, 1003, K("k"));
    CHECK_EQ(sb_sync_flush(a), sizeof del);
    CHECK_MEM(sb_sync_out(a), del, sizeof del);
    /* And they decode: the snapshot fills b, the delete empties it. */
    CHECK_EQ(sb_sync_merge(b, 0, snap, sizeof snap), 1);
    CHECK_EQ(get_str(b, "k", v, sizeof v), 3);
    CHECK_EQ(sb_sync_merge(b, 0, del, sizeof del), 1);
    CHECK_EQ(get_str(b, "k", v, sizeof v), -1);
    sb_sync_destroy(a);
    sb_sync_destroy(b);
}

/* One OPS message by hand: writer `origin`, one set of key=val stamped
 * (wall, ctr), sequence seq. Returns the frame length in out. */
static size_t craft_ops(uint8_t *out, size_t cap, uint32_t origin, uint32_t seq, uint64_t wall,
                        uint32_t ctr, const char *key, const char *val)
{
    uint8_t pay[128];
    size_t n = 0;
    sb_frame f;
    pay[n++] = SB_SYNC_OPS;
    n += sb_varint_put(pay + n, origin);
    n += sb_varint_put(pay + n, 1);
    n += sb_varint_put(pay + n, seq);
    n += sb_varint_put(pay + n, wall);
    n += sb_varint_put(pay + n, ctr);
    pay[n++] = 0;
    n += sb_varint_put(pay + n, strlen(key));
    memcpy(pay + n, key, strlen(key));
    n += strlen(key);
    n += sb_varint_put(pay + n, strlen(val));
    memcpy(pay + n, val, strlen(val));
    n += strlen(val);
    sb_frame_init(&f, SB_FRAME_STATE_OP);
    f.flags = SB_FRAME_F_BINARY;
    f.payload = pay;
    f.payload_len = n;
    return (size_t)sb_frame_write(&f, out, cap);
}

/* A remote clock at the end of the range (wall 2^53, counter UINT32_MAX)
 * must not push the next local tick past what the decoders accept: the group
 * keeps replicating and snapshots keep loading. Time is driven by hand. */
static void test_remote_clock_bound(void)
{
    const double now = 1.7e12; /* a 2023 wall clock */
    const uint64_t day = 86400000u;
    sb_sync *a = mk(1), *b = mk(2), *c = mk(3);
    uint8_t m[160];
    size_t len;
    char v[16];
    sb_sync_ts ts;

    /* the crafted message: a tab that says it is at the end of time */
    len = craft_ops(m, sizeof m, 9, 1, (uint64_t)1 << 53, UINT32_MAX, "evil", "1");
    CHECK(sb_sync_merge(a, now, m, (uint32_t)len) >= 0);
    CHECK_EQ(sb_sync_skewed(a), 1);
    CHECK_EQ(get_str(a, "evil", v, sizeof v), -1); /* ignored... */
    CHECK_EQ(sb_sync_merge(a, now, m, (uint32_t)len), 0);
    CHECK_EQ(sb_sync_skewed(a), 0); /* ...and counted as received: not again */
    /* a's next write still encodes and merges everywhere */
    CHECK_EQ(sb_sync_set(a, now, K("k"), K("after")), 0);
    {
        uint8_t *w = take(a, sb_sync_flush(a), &len);
        CHECK_EQ(sb_sync_merge(b, now, w, (uint32_t)len), 1);
        free(w);
    }
    CHECK_EQ(get_str(b, "k", v, sizeof v), 5);
    CHECK(sb_sync_lookup(b, (const uint8_t *)"k", 1, &ts, NULL, NULL, NULL) == 0);
    CHECK(ts.wall == (uint64_t)now);
    /* a's snapshot (the one it would persist) loads */
    {
        uint8_t *snap = take(a, sb_sync_snapshot(a, now), &len);
        CHECK_EQ(sb_sync_merge(c, now, snap, (uint32_t)len), 1);
        free(snap);
    }
    CHECK_EQ(get_str(c, "k", v, sizeof v), 5);

    /* The skew bound: 2 days ahead is ignored, 1 hour ahead is taken. */
    len = craft_ops(m, sizeof m, 10, 1, (uint64_t)now + 2 * day, 0, "far", "1");
    CHECK(sb_sync_merge(b, now, m, (uint32_t)len) >= 0);
    CHECK_EQ(sb_sync_skewed(b), 1);
    CHECK_EQ(get_str(b, "far", v, sizeof v), -1);
    len = craft_ops(m, sizeof m, 10, 2, (uint64_t)now + 3600000, 0, "near", "1");
    CHECK_EQ(sb_sync_merge(b, now, m, (uint32_t)len), 1);
    CHECK_EQ(sb_sync_skewed(b), 0);
    /* No repair loop for the refused write: its dot counts as received. */
    CHECK_EQ(sb_sync_missing(b), 0);
    /* ...and the same stamp is fine once our own clock has caught up. */
    len = craft_ops(m, sizeof m, 11, 1, (uint64_t)now + 2 * day, 0, "later", "1");
    CHECK_EQ(sb_sync_merge(b, now + 2 * day, m, (uint32_t)len), 1);
    /* The bound is configurable; 0 = no stamp ahead of our clock at all. */
    CHECK(sb_sync_limits(c, 1 << 20, 0) > 0);
    len = craft_ops(m, sizeof m, 12, 1, (uint64_t)now + 1, 0, "ahead", "1");
    CHECK(sb_sync_merge(c, now, m, (uint32_t)len) >= 0);
    CHECK_EQ(sb_sync_skewed(c), 1);
    CHECK_EQ(sb_sync_limits(c, 0, 0), SB_E_INVALID);
    CHECK_EQ(sb_sync_limits(c, (1u << 30) + 1, 0), SB_E_INVALID);
    /* A digest or snapshot clock beyond the bound does not move ours either. */
    {
        sb_sync *far = mk(13);
        uint8_t *d;
        sb_sync_set(far, now + 2 * day, K("x"), K("1"));
        sb_sync_flush(far);
        d = take(far, sb_sync_digest(far, now + 2 * day), &len);
        CHECK_EQ(sb_sync_merge(a, now, d, (uint32_t)len), 0);
        CHECK_EQ(sb_sync_skewed(a), 1);
        free(d);
        d = take(far, sb_sync_snapshot(far, now + 2 * day), &len);
        CHECK_EQ(sb_sync_merge(a, now, d, (uint32_t)len), 0);
        CHECK_EQ(sb_sync_skewed(a), 2); /* the entry and the clock */
        free(d);
        sb_sync_set(a, now, K("k2"), K("1"));
        CHECK(sb_sync_lookup(a, (const uint8_t *)"k2", 2, &ts, NULL, NULL, NULL) == 0);
        CHECK(ts.wall == (uint64_t)now);
        sb_sync_destroy(far);
    }
    sb_sync_destroy(a);
    sb_sync_destroy(b);
    sb_sync_destroy(c);
}

/* A total of key + value bytes, and with it the largest message accepted. */
static void test_total_bytes_cap(void)
{
    sb_sync *a = mk(1), *b = mk(2);
    uint8_t val[60];
    int max = sb_sync_limits(a, 200, 86400000);
    memset(val, 'v', sizeof val);
    /* 64 keys + 64 tombstones x 48, 32 peers x 40, + 64 + 200 */
    CHECK_EQ(max, 200 + 128 * 48 + 32 * 40 + 64);
    CHECK_EQ(sb_sync_set(a, 1, K("k1"), val, 60), 0);
    CHECK_EQ(sb_sync_set(a, 1, K("k2"), val, 60), 0);
    CHECK_EQ(sb_sync_set(a, 1, K("k3"), val, 60), 0);
    CHECK_EQ(sb_sync_set(a, 1, K("k4"), val, 60), SB_E_TOO_LARGE); /* 248 > 200 */
    CHECK_EQ(sb_sync_set(a, 1, K("k3"), val, 40), 0);               /* shrinking is fine */
    CHECK_EQ(sb_sync_set(a, 1, K("k4"), val, 60), SB_E_TOO_LARGE);  /* 166 + 62 */
    CHECK_EQ(sb_sync_delete(a, 2, K("k1")), 1);                     /* the tombstone keeps 2 */
    CHECK_EQ(sb_sync_set(a, 3, K("k4"), val, 60), 0);
    /* b holds more than a may: a refuses b's snapshot whole (TOO_LARGE). */
    for (int i = 0; i < 5; i++) {
        char k[4] = {'z', (char)('0' + i), 0};
        sb_sync_set(b, 5, (const uint8_t *)k, 2, val, 60);
    }
    sb_sync_flush(b);
    {
        size_t len;
        uint8_t *snap = take(b, sb_sync_snapshot(b, 6), &len);
        CHECK_EQ(sb_sync_merge(a, 6, snap, (uint32_t)len), SB_E_TOO_LARGE);
        free(snap);
    }
    CHECK_EQ(sb_sync_count(a), 3);
    sb_sync_destroy(a);
    sb_sync_destroy(b);
}

/* A small peer table: departed peers make room; live ones never do. */
static void test_peer_table_eviction(void)
{
    sb_sync *a = sb_sync_create(1, 16, 8, 8, 16, 2);
    char v[8];
    for (uint32_t id = 10; id < 16; id++) {
        sb_sync *o = sb_sync_create(id, 16, 8, 8, 16, 4);
        char key[4] = {'k', (char)('0' + id - 10), 0};
        sb_sync_set(o, 100 + id, (const uint8_t *)key, 2, K("v"));
        sb_sync_flush(o);
        int n = sb_sync_snapshot(o, 200);
        CHECK(sb_sync_merge(a, 0, sb_sync_out(o), (uint32_t)n) >= 0);
        sb_sync_peer_leave(a, id);
        sb_sync_destroy(o);
    }
    CHECK_EQ(sb_sync_count(a), 6);
    CHECK_EQ(get_str(a, "k5", v, sizeof v), 1);
    /* Two live peers fill the table: a third is refused, not mixed up. */
    sb_sync_peer_join(a, 20);
    sb_sync_peer_join(a, 21);
    CHECK_EQ(sb_sync_peer_join(a, 22), SB_E_TOO_LARGE);
    sb_sync_destroy(a);
}

/* A tab presence wrongly declared gone (busy for longer than the lease):
 * its writes are still merged, and presence can bring it back. */
static void test_silent_peer_is_not_dropped(void)
{
    sb_sync *a = mk(1), *b = mk(2);
    char v[8];
    sb_sync_peer_join(a, 2);
    sb_sync_peer_leave(a, 2);
    sb_sync_set(b, 10, K("k"), K("late"));
    send(b, a, sb_sync_flush(b));
    CHECK_EQ(get_str(a, "k", v, sizeof v), 4);
    /* It does not hold GC back while presence says it is gone... */
    sb_sync_delete(a, 20, K("k"));
    sb_sync_flush(a);
    send(b, a, sb_sync_digest(b, 30));
    CHECK_EQ(sb_sync_gc(a), 1);
    /* ...and once presence sees it again, it does. */
    CHECK_EQ(sb_sync_peer_join(a, 2), 0);
    sb_sync_delete(a, 40, K("other"));
    sb_sync_set(a, 41, K("x"), K("1"));
    sb_sync_delete(a, 42, K("x"));
    sb_sync_flush(a);
    CHECK_EQ(sb_sync_gc(a), 0);
    sb_sync_destroy(a);
    sb_sync_destroy(b);
}

int main(void)
{
    RUN(test_wire_vectors);
    RUN(test_remote_clock_bound);
    RUN(test_total_bytes_cap);
    RUN(test_silent_peer_is_not_dropped);
    RUN(test_peer_table_eviction);
    RUN(test_basic_lww_and_frames);
    RUN(test_caps_and_errors);
    RUN(test_gc_and_no_resurrection);
    RUN(test_property_converges);
    TEST_MAIN_END();
}
