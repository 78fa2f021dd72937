/* The tabs policy of src/sync.c (sb_sync_start .. sb_sync_deadline): join
 * completion, digests and GC, repair requests and their rate, who answers a
 * request, the leader's save after changes, the save on close, the batch
 * delay, and a clock that steps back. Time is driven by hand. */
#include <math.h>
#include <stdlib.h>

#include "frame.h"
#include "sbtest.h"
#include "sync.h"

#define K(s) (const uint8_t *)(s), (uint32_t)strlen(s)
#define T0 1700000000000.0 /* a plausible Date.now() */

static sb_sync *mk(uint32_t id)
{
    return sb_sync_create(id, 64, 32, 64, 64, 32);
}

/* One output of a poll: its sync message type (first payload byte), where
 * it goes, and a copy of its bytes. */
typedef struct out {
    int n, type, kind;
    uint8_t buf[4096];
} out;

static out poll1(sb_sync *s, double now)
{
    out o;
    sb_frame f;
    memset(&o, 0, sizeof o);
    o.n = sb_sync_poll(s, now);
    if (o.n > 0) {
        CHECK((size_t)o.n <= sizeof o.buf);
        memcpy(o.buf, sb_sync_out(s), (size_t)o.n);
        CHECK_EQ(sb_frame_decode(o.buf, (size_t)o.n, 1 << 20, &f), o.n);
        o.type = f.payload[0];
        o.kind = sb_sync_out_kind(s);
    }
    return o;
}

/* Poll until nothing is due; returns how many outputs; each goes to `to`
 * (those that are broadcast), and the last persisted one to *saved. */
static int drain(sb_sync *s, double now, sb_sync **to, int nto, out *saved)
{
    int count = 0;
    for (;;) {
        out o = poll1(s, now);
        CHECK(o.n >= 0);
        if (o.n <= 0)
            return count;
        count++;
        if (o.kind == SB_SYNC_OUT_PERSIST) {
            if (saved)
                *saved = o;
            continue;
        }
        CHECK_EQ(o.kind, SB_SYNC_OUT_BROADCAST);
        for (int i = 0; i < nto; i++)
            CHECK(sb_sync_merge(to[i], now, o.buf, (uint32_t)o.n) >= 0);
    }
}

/* A started replica that has finished joining (alone) at T0 + 150. */
static sb_sync *live(uint32_t id, double digest_ms, int persist)
{
    sb_sync *s = mk(id);
    CHECK_EQ(sb_sync_start(s, T0, NAN, digest_ms, NAN, persist), 0);
    CHECK_EQ(poll1(s, T0).type, SB_SYNC_REQUEST);
    CHECK_EQ(poll1(s, T0 + SB_SYNC_JOIN_MS).n, 0);
    CHECK_EQ(sb_sync_events(s), SB_SYNC_EV_JOINED);
    return s;
}

/* Replica `from` asks for a snapshot; merged into `to`. */
static void request_from(uint32_t from, sb_sync *to, double now)
{
    sb_sync *r = mk(from);
    int n = sb_sync_request(r);
    CHECK(n > 0);
    CHECK(sb_sync_merge(to, now, sb_sync_out(r), (uint32_t)n) >= 0);
    sb_sync_destroy(r);
}

static void test_join_alone_times_out(void)
{
    sb_sync *s = mk(1);
    out o;
    CHECK_EQ(sb_sync_deadline(s), -1); /* nothing before start */
    CHECK_EQ(sb_sync_poll(s, T0), 0);
    CHECK_EQ(sb_sync_start(s, T0, 150, 1000, 0, 0), 0);
    CHECK_EQ(sb_sync_deadline(s), T0); /* the join request is due now */
    o = poll1(s, T0);
    CHECK_EQ(o.type, SB_SYNC_REQUEST);
    CHECK_EQ(o.kind, SB_SYNC_OUT_BROADCAST);
    CHECK_EQ(poll1(s, T0).n, 0);
    CHECK_EQ(sb_sync_deadline(s), T0 + 150);
    CHECK_EQ(poll1(s, T0 + 149).n, 0);
    CHECK_EQ(sb_sync_events(s), 0);
    CHECK_EQ(poll1(s, T0 + 150).n, 0);
    CHECK_EQ(sb_sync_events(s), SB_SYNC_EV_JOINED);
    CHECK_EQ(sb_sync_events(s), 0); /* reading clears */
    /* Joined: the digests begin, one period after. */
    CHECK_EQ(sb_sync_deadline(s), T0 + 150 + 1000);
    CHECK_EQ(sb_sync_start(s, T0, 150, 1000, 0, 0), SB_E_BAD_STATE);
    sb_sync_destroy(s);
}

static void test_start_arguments(void)
{
    sb_sync *s = mk(1);
    CHECK_EQ(sb_sync_start(s, T0, -1, 1000, 0, 0), SB_E_INVALID);
    CHECK_EQ(sb_sync_start(s, T0, 150, 0, 0, 0), SB_E_INVALID);
    CHECK_EQ(sb_sync_start(s, T0, 150, -5, 0, 0), SB_E_INVALID);
    CHECK_EQ(sb_sync_start(s, T0, 150, 0.5, 0, 0), SB_E_INVALID); /* now + 0.5 may equal now */
    CHECK_EQ(sb_sync_start(s, T0, 150, 1000, -1, 0), SB_E_INVALID);
    CHECK_EQ(sb_sync_start(NULL, T0, 150, 1000, 0, 0), SB_E_INVALID);
    CHECK_EQ(sb_sync_deadline(s), -1); /* a refused start started nothing */
    /* NaN (the glue's undefined) takes the defaults. */
    CHECK_EQ(sb_sync_start(s, T0, NAN, NAN, NAN, 0), 0);
    CHECK_EQ(poll1(s, T0).type, SB_SYNC_REQUEST);
    CHECK_EQ(sb_sync_deadline(s), T0 + SB_SYNC_JOIN_MS);
    CHECK_EQ(poll1(s, T0 + SB_SYNC_JOIN_MS).n, 0);
    CHECK_EQ(sb_sync_deadline(s), T0 + SB_SYNC_JOIN_MS + SB_SYNC_DIGEST_MS);
    sb_sync_destroy(s);
    /* An infinite digest period: no digests at all. */
    s = live(2, INFINITY, 0);
    CHECK_EQ(sb_sync_deadline(s), -1);
    CHECK_EQ(poll1(s, T0 + 1e9).n, 0);
    sb_sync_destroy(s);
    /* An infinite join wait: joined only by a live snapshot. An infinite
     * batch delay: writes wait for the next answer, digest or close. */
    s = mk(3);
    CHECK_EQ(sb_sync_start(s, T0, INFINITY, INFINITY, INFINITY, 0), 0);
    CHECK_EQ(poll1(s, T0).type, SB_SYNC_REQUEST);
    CHECK_EQ(sb_sync_deadline(s), -1);
    CHECK_EQ(poll1(s, T0 + 1e12).n, 0);
    CHECK_EQ(sb_sync_events(s), 0);
    CHECK_EQ(sb_sync_set(s, T0 + 1, K("k"), K("1")), 0);
    CHECK_EQ(sb_sync_deadline(s), -1);
    CHECK_EQ(poll1(s, T0 + 2).n, 0);
    request_from(4, s, T0 + 3);
    CHECK_EQ(poll1(s, T0 + 3).type, SB_SYNC_OPS);
    CHECK_EQ(poll1(s, T0 + 3).type, SB_SYNC_SNAPSHOT);
    sb_sync_destroy(s);
}

/* A newcomer's join ends with the first live snapshot, before its wait. */
static void test_join_completes_on_snapshot(void)
{
    sb_sync *a = live(1, 1000, 0), *b = mk(2);
    char v[8];
    const uint8_t *val;
    size_t vl;
    CHECK_EQ(sb_sync_set(a, T0 + 200, K("k"), K("1")), 0);
    CHECK_EQ(poll1(a, T0 + 200).type, SB_SYNC_OPS);
    CHECK_EQ(sb_sync_start(b, T0 + 300, 150, 1000, 0, 0), 0);
    CHECK_EQ(drain(b, T0 + 300, &a, 1, NULL), 1); /* the request reaches a */
    CHECK_EQ(sb_sync_deadline(a), T0 + 300);      /* a answers at once (no leader known) */
    CHECK_EQ(drain(a, T0 + 301, &b, 1, NULL), 1);
    CHECK_EQ(sb_sync_events(b), SB_SYNC_EV_JOINED);
    CHECK_EQ(sb_sync_deadline(b), T0 + 301 + 1000); /* the join wait is over: digests next */
    CHECK_EQ(sb_sync_lookup(b, K("k"), NULL, &val, &vl, NULL), 0);
    memcpy(v, val, vl);
    CHECK_MEM(v, "1", 1);
    sb_sync_destroy(a);
    sb_sync_destroy(b);
}

/* The leader answers; every tab while none is known, or when the leader
 * asks; requests that arrive together get one snapshot. */
static void test_who_answers(void)
{
    sb_sync *l = live(1, INFINITY, 0), *x = live(2, INFINITY, 0), *y = mk(3), *lx[2];
    double t = T0 + 1000;
    lx[0] = l;
    lx[1] = x;
    sb_sync_leader(l, t, 1);
    sb_sync_leader(x, t, 1);
    CHECK_EQ(sb_sync_start(y, t, 150, INFINITY, 0, 0), 0);
    CHECK_EQ(drain(y, t, lx, 2, NULL), 1);
    CHECK_EQ(poll1(x, t).n, 0); /* not the leader, and the asker is not either */
    CHECK_EQ(sb_sync_deadline(x), -1);
    CHECK_EQ(poll1(l, t).type, SB_SYNC_SNAPSHOT);
    CHECK_EQ(poll1(l, t).n, 0);
    /* The leader itself asks: the others answer it. */
    request_from(1, x, t);
    CHECK_EQ(poll1(x, t).type, SB_SYNC_SNAPSHOT);
    /* No leader known: everyone answers; three requests, one snapshot. */
    sb_sync_leader(x, t, 0);
    for (uint32_t i = 3; i < 6; i++)
        request_from(i, x, t);
    CHECK_EQ(sb_sync_deadline(x), t);
    CHECK_EQ(poll1(x, t).type, SB_SYNC_SNAPSHOT);
    CHECK_EQ(poll1(x, t).n, 0);
    /* x leads: it answers anyone. */
    sb_sync_leader(x, t, 2);
    request_from(4, x, t);
    CHECK_EQ(poll1(x, t).type, SB_SYNC_SNAPSHOT);
    /* Pending local writes leave as ops before the snapshot that holds them. */
    CHECK_EQ(sb_sync_set(l, t, K("w"), K("2")), 0);
    request_from(3, l, t);
    CHECK_EQ(poll1(l, t).type, SB_SYNC_OPS);
    CHECK_EQ(poll1(l, t).type, SB_SYNC_SNAPSHOT);
    /* A tab that has not started (or has closed) answers nobody. */
    sb_sync_close(x, t);
    CHECK_EQ(poll1(x, t).n, 0);
    request_from(4, x, t);
    CHECK_EQ(poll1(x, t).n, 0);
    sb_sync_destroy(l);
    sb_sync_destroy(x);
    sb_sync_destroy(y);
}

/* Digests every period, after any pending writes, with GC after them. */
static void test_digest_timing_and_gc(void)
{
    sb_sync *a = live(1, 1000, 0);
    double j = T0 + SB_SYNC_JOIN_MS;
    CHECK_EQ(sb_sync_deadline(a), j + 1000);
    CHECK_EQ(poll1(a, j + 999).n, 0);
    CHECK_EQ(poll1(a, j + 1000).type, SB_SYNC_DIGEST);
    CHECK_EQ(poll1(a, j + 1000).n, 0);
    CHECK_EQ(sb_sync_deadline(a), j + 2000);
    /* A late timer: the next digest counts from when it went out. */
    CHECK_EQ(poll1(a, j + 2300).type, SB_SYNC_DIGEST);
    CHECK_EQ(sb_sync_deadline(a), j + 3300);
    /* A delete: the tombstone is collected after the digest that follows. */
    CHECK_EQ(sb_sync_set(a, j + 2400, K("k"), K("1")), 0);
    CHECK_EQ(poll1(a, j + 2400).type, SB_SYNC_OPS);
    CHECK_EQ(sb_sync_delete(a, j + 2500, K("k")), 1);
    CHECK_EQ(sb_sync_events(a), SB_SYNC_EV_FLUSHED);
    /* The digest is due with the delete still pending: the op goes first. */
    CHECK_EQ(poll1(a, j + 3300).type, SB_SYNC_OPS);
    CHECK_EQ(sb_sync_events(a), SB_SYNC_EV_FLUSHED);
    CHECK_EQ(sb_sync_tombstones(a), 1);
    CHECK_EQ(poll1(a, j + 3300).type, SB_SYNC_DIGEST);
    CHECK_EQ(sb_sync_tombstones(a), 0);
    sb_sync_destroy(a);
}

/* A digest that shows a gap asks for a snapshot, at most once per
 * SB_SYNC_REPAIR_MS, and not at all once the gap is repaired. */
static void test_repair_requests(void)
{
    sb_sync *a = live(1, 1000, 0), *b = live(2, INFINITY, 0);
    double t = T0 + 1000;
    out o;
    sb_sync_peer_join(a, 2);
    sb_sync_peer_join(b, 1);
    sb_sync_leader(a, t, 1);
    sb_sync_leader(b, t, 1);
    CHECK_EQ(sb_sync_set(a, t, K("lost"), K("42")), 0);
    CHECK_EQ(poll1(a, t).type, SB_SYNC_OPS); /* never reaches b */
    o = poll1(a, T0 + SB_SYNC_JOIN_MS + 1000);
    CHECK_EQ(o.type, SB_SYNC_DIGEST);
    t = T0 + SB_SYNC_JOIN_MS + 1000;
    CHECK(sb_sync_merge(b, t, o.buf, (uint32_t)o.n) >= 0);
    CHECK_EQ(sb_sync_missing(b), 1);
    CHECK(sb_sync_deadline(b) <= t); /* no request for a long time: due at once */
    o = poll1(b, t);
    CHECK_EQ(o.type, SB_SYNC_REQUEST);
    CHECK_EQ(poll1(b, t).n, 0);
    /* That request is lost too; the next digest comes 100 ms later: the
     * request waits until SB_SYNC_REPAIR_MS after the last one. */
    o = poll1(a, t + 1000);
    CHECK_EQ(o.type, SB_SYNC_DIGEST);
    CHECK(sb_sync_merge(b, t + 100, o.buf, (uint32_t)o.n) >= 0);
    CHECK_EQ(sb_sync_deadline(b), t + SB_SYNC_REPAIR_MS);
    CHECK_EQ(poll1(b, t + SB_SYNC_REPAIR_MS - 1).n, 0);
    /* More digests meanwhile do not queue more requests. */
    CHECK(sb_sync_merge(b, t + SB_SYNC_REPAIR_MS - 1, o.buf, (uint32_t)o.n) >= 0);
    CHECK_EQ(sb_sync_deadline(b), t + SB_SYNC_REPAIR_MS);
    o = poll1(b, t + SB_SYNC_REPAIR_MS);
    CHECK_EQ(o.type, SB_SYNC_REQUEST);
    CHECK_EQ(poll1(b, t + SB_SYNC_REPAIR_MS).n, 0);
    /* This one arrives: the leader answers and the gap closes. */
    CHECK(sb_sync_merge(a, t + SB_SYNC_REPAIR_MS, o.buf, (uint32_t)o.n) >= 0);
    CHECK_EQ(drain(a, t + SB_SYNC_REPAIR_MS, &b, 1, NULL), 1);
    CHECK_EQ(sb_sync_missing(b), 0);
    CHECK_EQ(sb_sync_lookup(b, K("lost"), NULL, NULL, NULL, NULL), 0);
    /* A deferred request is dropped when a snapshot repaired the gap first. */
    CHECK_EQ(sb_sync_set(a, t + 600, K("lost2"), K("1")), 0);
    CHECK_EQ(poll1(a, t + 600).type, SB_SYNC_OPS); /* lost */
    o = poll1(a, t + 2000);
    CHECK_EQ(o.type, SB_SYNC_DIGEST);
    CHECK(sb_sync_merge(b, t + 700, o.buf, (uint32_t)o.n) >= 0);
    CHECK_EQ(sb_sync_deadline(b), t + 2 * SB_SYNC_REPAIR_MS);
    request_from(3, a, t + 800);
    CHECK_EQ(drain(a, t + 800, &b, 1, NULL), 1); /* someone else's request repaired b */
    CHECK_EQ(sb_sync_missing(b), 0);
    CHECK_EQ(poll1(b, t + 2 * SB_SYNC_REPAIR_MS).n, 0);
    CHECK_EQ(sb_sync_deadline(b), -1);
    sb_sync_destroy(a);
    sb_sync_destroy(b);
}

/* The leader saves SB_SYNC_PERSIST_MS after the first change of a burst;
 * the others save only on close; every tab saves on close. */
static void test_persistence_timing(void)
{
    sb_sync *l = live(1, INFINITY, 1), *o = live(2, INFINITY, 1), *fresh;
    double t = T0 + 1000;
    out saved, x;
    memset(&saved, 0, sizeof saved);
    sb_sync_leader(o, t, 1);
    CHECK_EQ(sb_sync_deadline(o), -1);
    sb_sync_leader(l, t, 1); /* becoming leader: a save is due */
    CHECK_EQ(sb_sync_deadline(l), t + SB_SYNC_PERSIST_MS);
    x = poll1(l, t + SB_SYNC_PERSIST_MS);
    CHECK_EQ(x.kind, SB_SYNC_OUT_PERSIST);
    CHECK_EQ(x.type, SB_SYNC_SNAPSHOT);
    CHECK_EQ(sb_sync_deadline(l), -1);
    /* A burst of writes over 250 ms: one save, 100 ms after the first flush. */
    t += 1000;
    for (int i = 0; i < 5; i++) {
        char k[8];
        snprintf(k, sizeof k, "k%d", i);
        CHECK_EQ(sb_sync_set(l, t + 50 * i, K(k), K("1")), 0);
        CHECK_EQ(drain(l, t + 50 * i, &o, 1, &saved), 1 + (i == 2)); /* the ops, and at 100 ms the save */
        if (i == 2)
            CHECK_EQ(saved.kind, SB_SYNC_OUT_PERSIST);
    }
    CHECK_EQ(sb_sync_deadline(l), t + 150 + SB_SYNC_PERSIST_MS); /* from the first write after the save */
    /* Writes that are still pending when the save is due go out first. */
    CHECK_EQ(sb_sync_set(l, t + 250, K("late"), K("1")), 0);
    x = poll1(l, t + 300);
    CHECK_EQ(x.type, SB_SYNC_OPS);
    x = poll1(l, t + 300);
    CHECK_EQ(x.kind, SB_SYNC_OUT_PERSIST);
    /* The follower received every write it was sent and saved nothing. */
    CHECK_EQ(sb_sync_count(o), 5);
    CHECK_EQ(poll1(o, t + 1000).n, 0);
    /* A remote change arms the leader's save too. */
    CHECK_EQ(sb_sync_set(o, t + 400, K("from-o"), K("1")), 0);
    sb_sync *to_l = l;
    CHECK_EQ(drain(o, t + 400, &to_l, 1, NULL), 1);
    CHECK_EQ(sb_sync_deadline(l), t + 400 + SB_SYNC_PERSIST_MS);
    /* Losing the lead cancels it: the new leader saves. */
    sb_sync_leader(l, t + 450, 2);
    CHECK_EQ(sb_sync_deadline(l), -1);
    sb_sync_leader(o, t + 450, 2);
    CHECK_EQ(sb_sync_deadline(o), t + 450 + SB_SYNC_PERSIST_MS);
    /* Close: a pending write is flushed, then every tab saves, then nothing. */
    CHECK_EQ(sb_sync_set(l, t + 500, K("last"), K("\"bye\"")), 0);
    CHECK_EQ(sb_sync_close(l, t + 500), 0);
    CHECK_EQ(sb_sync_deadline(l), t + 500);
    x = poll1(l, t + 500);
    CHECK_EQ(x.type, SB_SYNC_OPS);
    CHECK_EQ(x.kind, SB_SYNC_OUT_BROADCAST);
    CHECK_EQ(sb_sync_events(l), SB_SYNC_EV_FLUSHED);
    x = poll1(l, t + 500);
    CHECK_EQ(x.kind, SB_SYNC_OUT_PERSIST);
    CHECK_EQ(poll1(l, t + 500).n, 0);
    CHECK_EQ(sb_sync_deadline(l), -1);
    CHECK_EQ(poll1(l, t + 5000).n, 0);
    /* What it saved restores everything, the last write included. */
    fresh = mk(7);
    CHECK_EQ(sb_sync_merge(fresh, t + 600, x.buf, (uint32_t)x.n), 8);
    CHECK_EQ(sb_sync_lookup(fresh, K("last"), NULL, NULL, NULL, NULL), 0);
    /* Without persist, close only flushes. */
    sb_sync_destroy(l);
    l = live(3, INFINITY, 0);
    sb_sync_leader(l, t, 3);
    CHECK_EQ(sb_sync_set(l, t, K("k"), K("1")), 0);
    CHECK_EQ(poll1(l, t).type, SB_SYNC_OPS);
    CHECK_EQ(sb_sync_deadline(l), -1); /* no save armed */
    CHECK_EQ(sb_sync_close(l, t), 0);
    CHECK_EQ(poll1(l, t).n, 0);
    CHECK_EQ(sb_sync_deadline(l), -1);
    sb_sync_destroy(l);
    sb_sync_destroy(o);
    sb_sync_destroy(fresh);
}

/* batchDelay: local writes wait that long from the first of a batch. */
static void test_batch_delay(void)
{
    sb_sync *s = mk(1);
    double t;
    CHECK_EQ(sb_sync_start(s, T0, 0, INFINITY, 20, 0), 0);
    CHECK_EQ(poll1(s, T0).type, SB_SYNC_REQUEST);
    CHECK_EQ(poll1(s, T0).n, 0);
    CHECK_EQ(sb_sync_events(s), SB_SYNC_EV_JOINED); /* a zero join wait */
    t = T0 + 100;
    CHECK_EQ(sb_sync_set(s, t, K("a"), K("1")), 0);
    CHECK_EQ(sb_sync_deadline(s), t + 20);
    CHECK_EQ(sb_sync_set(s, t + 10, K("b"), K("1")), 0);
    CHECK_EQ(sb_sync_deadline(s), t + 20); /* from the first write */
    CHECK_EQ(poll1(s, t + 19).n, 0);
    CHECK_EQ(sb_sync_events(s), 0);
    CHECK_EQ(poll1(s, t + 20).type, SB_SYNC_OPS);
    CHECK_EQ(sb_sync_events(s), SB_SYNC_EV_FLUSHED);
    CHECK_EQ(sb_sync_deadline(s), -1);
    /* A newer remote write supersedes the only pending one: nothing is due
     * (no timer spinning on a flush with nothing to send). */
    {
        sb_sync *r = mk(2);
        int n;
        CHECK_EQ(sb_sync_set(s, t + 21, K("a"), K("2")), 0);
        CHECK_EQ(sb_sync_set(r, t + 500, K("a"), K("3")), 0);
        n = sb_sync_flush(r);
        CHECK_EQ(sb_sync_merge(s, t + 22, sb_sync_out(r), (uint32_t)n), 1);
        CHECK_EQ(sb_sync_pending(s), 0);
        CHECK_EQ(poll1(s, t + 41).n, 0);
        CHECK_EQ(sb_sync_deadline(s), -1);
        sb_sync_destroy(r);
    }
    /* An explicit flush sends them at once, and says so the same way. */
    CHECK_EQ(sb_sync_set(s, t + 30, K("c"), K("1")), 0);
    CHECK(sb_sync_flush(s) > 0);
    CHECK_EQ(sb_sync_events(s), SB_SYNC_EV_FLUSHED);
    CHECK_EQ(sb_sync_deadline(s), -1);
    sb_sync_destroy(s);
}

/* The caller's clock steps back an hour (the system clock was set back):
 * armed times move with it, so the next deadline stays as near as it was. */
static void test_clock_steps_back(void)
{
    sb_sync *s = live(1, 1000, 1);
    double j = T0 + SB_SYNC_JOIN_MS, back = j + 400 - 3600000.0;
    sb_sync_leader(s, j, 1);
    CHECK_EQ(sb_sync_deadline(s), j + SB_SYNC_PERSIST_MS);
    CHECK_EQ(poll1(s, j + SB_SYNC_PERSIST_MS).kind, SB_SYNC_OUT_PERSIST);
    CHECK_EQ(sb_sync_deadline(s), j + 1000);
    CHECK_EQ(poll1(s, j + 400).n, 0);
    CHECK_EQ(poll1(s, back).n, 0); /* the same moment, an hour earlier */
    CHECK_EQ(sb_sync_deadline(s), back + 600);
    CHECK_EQ(poll1(s, back + 600).type, SB_SYNC_DIGEST);
    CHECK_EQ(sb_sync_deadline(s), back + 1600);
    /* A step forward only makes what is armed due at once. */
    CHECK_EQ(poll1(s, back + 86400000.0).type, SB_SYNC_DIGEST);
    /* NaN and infinities are not a time: the last one stands. */
    CHECK_EQ(poll1(s, NAN).n, 0);
    CHECK_EQ(poll1(s, -INFINITY).n, 0);
    CHECK_EQ(sb_sync_deadline(s), back + 86400000.0 + 1000);
    CHECK_EQ(poll1(s, 1e300).n, 0); /* out of range: ignored too */
    CHECK_EQ(sb_sync_deadline(s), back + 86400000.0 + 1000);
    sb_sync_destroy(s);
    /* At the top of the range a 1 ms period still moves the deadline on:
     * every poll loop ends. */
    s = mk(2);
    CHECK_EQ(sb_sync_start(s, 9007199254740000.0, 0, 1, 0, 0), 0);
    for (int i = 0; i < 4; i++) {
        int outs = 0;
        while (poll1(s, 9007199254740000.0 + i).n > 0 && outs < 10)
            outs++;
        CHECK(outs <= 2); /* the join request, then one digest */
    }
    sb_sync_destroy(s);
}

/* Closed before it started (open() failed on its options): the pending
 * writes leave, nothing else, and nothing stays armed. */
static void test_close_before_start(void)
{
    sb_sync *s = mk(1);
    CHECK_EQ(sb_sync_start(s, T0, 150, 0, 0, 1), SB_E_INVALID);
    CHECK_EQ(sb_sync_set(s, T0, K("k"), K("1")), 0);
    CHECK_EQ(sb_sync_close(s, T0 + 1), 0);
    CHECK(sb_sync_deadline(s) >= 0 && sb_sync_deadline(s) <= T0 + 1); /* due */
    CHECK_EQ(poll1(s, T0 + 1).type, SB_SYNC_OPS);
    CHECK_EQ(poll1(s, T0 + 1).n, 0); /* persist was never given */
    CHECK_EQ(sb_sync_deadline(s), -1);
    CHECK_EQ(poll1(s, T0 + 1e6).n, 0);
    CHECK_EQ(sb_sync_events(s), SB_SYNC_EV_FLUSHED);
    CHECK_EQ(sb_sync_start(s, T0, 150, 1000, 0, 0), SB_E_BAD_STATE);
    sb_sync_destroy(s);
    /* Before start, merges arm nothing either. */
    s = mk(2);
    request_from(3, s, T0);
    CHECK_EQ(sb_sync_deadline(s), -1);
    CHECK_EQ(poll1(s, T0).n, 0);
    sb_sync_destroy(s);
}

int main(void)
{
    RUN(test_join_alone_times_out);
    RUN(test_start_arguments);
    RUN(test_join_completes_on_snapshot);
    RUN(test_who_answers);
    RUN(test_digest_timing_and_gc);
    RUN(test_repair_requests);
    RUN(test_persistence_timing);
    RUN(test_batch_delay);
    RUN(test_clock_steps_back);
    RUN(test_close_before_start);
    TEST_MAIN_END();
}
