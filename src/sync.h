/* sync — replicated key/value state for tabs of one origin (docs/tabs.md).
 *
 * Each key is a last-writer-wins register stamped with a hybrid logical clock
 * (wall ms from the caller + counter) with the writing replica's id as the
 * tie-break, so every replica orders any two writes the same way. Deletes are
 * tombstones. Every write also carries a "dot" (writer id, per-writer
 * sequence number assigned at flush time); each replica keeps, per writer,
 * the highest contiguous sequence it has absorbed (a version vector). That
 * lets a replica (a) ignore a write it has already seen and since dropped,
 * and (b) drop an entry a peer's full snapshot proves was superseded, so
 * tombstones can be garbage-collected without deleted keys coming back.
 *
 * A tombstone is collected once it is causally stable: every live replica
 * has reported that it holds every write stamped before it (each replica
 * advertises that point in its digests). Merge is commutative, associative
 * and idempotent: merging the same messages in any order, any number of
 * times, gives the same map.
 *
 * Everything on the wire is one switchboard frame of kind STATE_OP (frame.h)
 * whose payload is the sync message described in docs/tabs.md. Every decoder
 * is bounded by the caps given at create time; a message that would exceed a
 * cap is refused as a whole with SB_E_TOO_LARGE. */
#ifndef SB_SYNC_H
#define SB_SYNC_H

#include "switchboard.h"

typedef struct sb_sync sb_sync;

/* Message types (first payload byte), reported by sb_sync_last_type(). */
enum sb_sync_msg {
    SB_SYNC_OPS = 1,      /* a batch of writes from one replica */
    SB_SYNC_SNAPSHOT = 2, /* full state: entries, tombstones, version vector */
    SB_SYNC_DIGEST = 3,   /* heartbeat: clock, last sequence, stable point */
    SB_SYNC_REQUEST = 4   /* "I just joined, please send a snapshot" */
};

/* Change-record flags in the buffer from sb_sync_changes(). */
enum sb_sync_change_flag {
    SB_SYNC_CH_DELETED = 1
};

/* replica_id must be non-zero and unique among the tabs (the glue draws it
 * from crypto.getRandomValues). Caps: live keys, key bytes, value bytes,
 * tombstones, known peers (live or departed). Returns NULL on bad args. */
SB_EXPORT sb_sync *sb_sync_create(uint32_t replica_id, uint32_t max_keys, uint32_t max_key_len, uint32_t max_value_len, uint32_t max_tombstones, uint32_t max_peers);
SB_EXPORT void sb_sync_destroy(sb_sync *s);
/* Further limits (defaults: no total beyond the per-key caps, 24 h of skew):
 * max_bytes (1 .. 2^30) caps the key + value bytes held (a tombstone holds
 * its key), and with it the largest message merge accepts; a remote stamp
 * more than max_skew_ms ahead of the caller's wall clock is ignored (see
 * sb_sync_skewed). Returns the largest message merge accepts, or SB_E_INVALID. */
SB_EXPORT int sb_sync_limits(sb_sync *s, uint32_t max_bytes, uint32_t max_skew_ms);

/* Local write; the op is queued until sb_sync_flush (bursts coalesce: a key
 * written ten times before a flush is sent once). Returns 0 or an sb_err
 * (SB_E_TOO_LARGE for key/value/key-count caps, SB_E_INVALID for an empty key). */
SB_EXPORT int sb_sync_set(sb_sync *s, double now_ms, const uint8_t *key, uint32_t klen, const uint8_t *val, uint32_t vlen);
/* Local delete: 1 if the key was live, 0 if there was nothing to delete. */
SB_EXPORT int sb_sync_delete(sb_sync *s, double now_ms, const uint8_t *key, uint32_t klen);
/* Local writes waiting for a flush. */
int sb_sync_pending(const sb_sync *s);

/* Each of these encodes one frame into the output buffer and returns its
 * length (0 from flush when nothing is pending). */
SB_EXPORT int sb_sync_flush(sb_sync *s);
/* Full state; SB_E_BAD_STATE while local writes are pending (flush first, so
 * every write travels as an op exactly once). */
SB_EXPORT int sb_sync_snapshot(sb_sync *s, double now_ms);
/* Heartbeat: clock, last sequence sent, stable point; SB_E_BAD_STATE while
 * local writes are pending (the digest promises nothing older is unsent). */
SB_EXPORT int sb_sync_digest(sb_sync *s, double now_ms);
SB_EXPORT int sb_sync_request(sb_sync *s);
SB_EXPORT const uint8_t *sb_sync_out(const sb_sync *s);

/* Merge one frame from another replica (or persisted storage). Returns the
 * number of change records (visible keys whose value changed) or an sb_err.
 * A message that does not decode changes nothing; a cap hit part-way through
 * an OPS batch keeps the writes before it (each write stands alone) and a
 * snapshot that hits a cap does not merge its version vector. Messages from
 * this replica are ignored. */
SB_EXPORT int sb_sync_merge(sb_sync *s, double now_ms, const uint8_t *in, uint32_t n);
/* Remote stamps the last merge ignored: more than max_skew ahead of now_ms,
 * or at the end of the clock's range. An ignored write is not applied but
 * counts as received (it is never asked for again); an ignored clock (digest,
 * snapshot) does not move ours. The rest of the message merges as usual. */
SB_EXPORT int sb_sync_skewed(const sb_sync *s);
/* enum sb_sync_msg of the last merged message, its sender's id. */
SB_EXPORT int sb_sync_last_type(const sb_sync *s);
SB_EXPORT uint32_t sb_sync_last_origin(const sb_sync *s);
/* Change records of the last merge (or of sb_sync_dump): repeated
 * { u8 flags, varint key length, key, varint value length, value }. */
SB_EXPORT const uint8_t *sb_sync_changes(const sb_sync *s);
SB_EXPORT int sb_sync_changes_len(const sb_sync *s);
/* Every live entry as change records; returns the count. */
int sb_sync_dump(sb_sync *s);

/* Presence from the glue: a live peer holds tombstones back until it has
 * reported seeing them; a departed one no longer does. Peers are also added
 * (as live) when live traffic (ops, digest, request) from them arrives,
 * unless presence said they left; only sb_sync_peer_join revives those.
 * Writes are merged whoever sent them. */
SB_EXPORT int sb_sync_peer_join(sb_sync *s, uint32_t id);
SB_EXPORT int sb_sync_peer_leave(sb_sync *s, uint32_t id);
/* Collect causally stable tombstones; returns how many. */
SB_EXPORT int sb_sync_gc(sb_sync *s);
/* Live peers whose digests announce writes we have not absorbed (dropped
 * messages): sb_sync_poll then sends a REQUEST so a snapshot repairs the gap. */
SB_EXPORT int sb_sync_missing(const sb_sync *s);

/* ---- The policy: what is sent, and when (docs/tabs.md, "Timing") ----
 * In the style of nghttp2's mem_send: after every call into this object the
 * glue calls sb_sync_poll(now) until it returns 0, sending each output where
 * sb_sync_out_kind() says, then reads sb_sync_events() and arms one timer
 * for sb_sync_deadline(). The core decides everything else: the join request
 * and when joining is over, digests and tombstone GC, repair requests and
 * their rate, who answers a request, when the leader saves, and the last
 * flush and save on close. */

#define SB_SYNC_JOIN_MS 150     /* default wait for a live tab's snapshot */
#define SB_SYNC_DIGEST_MS 1000  /* default digest period */
#define SB_SYNC_REPAIR_MS 500   /* at most one repair request per this */
#define SB_SYNC_PERSIST_MS 100  /* the leader saves this long after a change */

/* Where an output of sb_sync_poll goes. */
enum sb_sync_out_kind {
    SB_SYNC_OUT_BROADCAST = 1, /* to the other tabs */
    SB_SYNC_OUT_PERSIST = 2    /* a snapshot for storage */
};

/* Event bits from sb_sync_events(). */
enum sb_sync_event {
    SB_SYNC_EV_JOINED = 1, /* caught up (a live snapshot, or the join wait ran out) */
    SB_SYNC_EV_FLUSHED = 2 /* local writes left as ops: their `change` event is due */
};

/* Begin, after merging what storage held: queues the join request. Times in
 * ms; NaN takes the default (SB_SYNC_JOIN_MS, SB_SYNC_DIGEST_MS, batch 0:
 * writes leave at the glue's next poll). persist: this tab saves (the
 * leader after changes, every tab on close). SB_E_INVALID for a negative
 * join or batch time or a digest period under 1 ms; INFINITY is "never" (no
 * join timeout, no digests, no batch timer); SB_E_BAD_STATE if started
 * already. */
SB_EXPORT int sb_sync_start(sb_sync *s, double now_ms, double join_ms, double digest_ms, double batch_ms, int persist);
/* The group's leader (0 while none is known), from the glue's TabGroup. */
SB_EXPORT int sb_sync_leader(sb_sync *s, double now_ms, uint32_t leader);
/* Leaving: the next polls flush and (with persist) save, then nothing. */
SB_EXPORT int sb_sync_close(sb_sync *s, double now_ms);
/* The next output due at now_ms, in sb_sync_out (length), 0 when nothing is
 * due, or an sb_err (what failed is not retried, except a flush). */
SB_EXPORT int sb_sync_poll(sb_sync *s, double now_ms);
/* enum sb_sync_out_kind of the last output of sb_sync_poll. */
SB_EXPORT int sb_sync_out_kind(const sb_sync *s);
/* enum sb_sync_event bits since the last call; reading clears. */
SB_EXPORT int sb_sync_events(sb_sync *s);
/* When sb_sync_poll next has something to do, on the caller's clock (-1:
 * nothing until another call). When now_ms steps back, armed times move back
 * by as much. */
SB_EXPORT double sb_sync_deadline(const sb_sync *s);

int sb_sync_count(const sb_sync *s);
int sb_sync_tombstones(const sb_sync *s);
uint32_t sb_sync_id(const sb_sync *s);

/* Native-side inspection (tests): the entry for key, live or tombstone. */
typedef struct sb_sync_ts {
    uint64_t wall;
    uint32_t ctr;
    uint32_t rid;
} sb_sync_ts;
int sb_sync_lookup(const sb_sync *s, const uint8_t *key, size_t klen, sb_sync_ts *ts,
                   const uint8_t **val, size_t *vlen, int *tombstone);
/* Compare two stamps: <0, 0, >0. */
int sb_sync_ts_cmp(const sb_sync_ts *a, const sb_sync_ts *b);
/* Iterate live entries: call with *cursor = 0, returns 1 while there is one. */
int sb_sync_next(const sb_sync *s, size_t *cursor, const uint8_t **key, size_t *klen,
                 const uint8_t **val, size_t *vlen);

#endif
