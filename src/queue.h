/* queue — reliable, ordered, exactly-once delivery over a link that may
 * lose, duplicate, reorder or drop out (docs/protocol.md §9).
 *
 * sb_outbox (sender): a bounded queue (count and bytes) with priorities and
 * an overflow policy; a window of many frames in flight; per-message TTL;
 * ack timeouts and retries with exponential backoff and full jitter (seeded);
 * cumulative + selective acks; serialize/restore so the glue can persist it.
 * Each reliable frame carries its channel and a per-channel sequence number
 * assigned at first transmission (so per-channel seq order = send order).
 *
 * sb_inbox (receiver): per-channel reorder buffer and dedup: delivers every
 * seq once, in order; answers with ack frames (cumulative seq + ranges held
 * beyond it). A SKIP frame from the sender moves the floor past messages the
 * sender gave up on, so the receiver never waits for them forever.
 *
 * Both are sans-I/O: the glue feeds frames and the time, pulls frames to
 * send and events to report, and keeps one timer at the reported deadline. */
#ifndef SB_QUEUE_H
#define SB_QUEUE_H

#include "frame.h"

enum sb_queue_policy {
    SB_QUEUE_REJECT = 0,      /* send fails with SB_E_QUEUE_FULL */
    SB_QUEUE_DROP_OLDEST = 1, /* evict the oldest unsent message of the lowest priority */
    SB_QUEUE_DROP_NEWEST = 2  /* the new message is dropped (and reported) */
};

#define SB_QUEUE_PRIORITIES 8 /* 0 (lowest) .. 7; higher goes first */

enum sb_outbox_event_type {
    SB_OUTBOX_EV_NONE = 0,
    SB_OUTBOX_EV_ACK = 1,        /* delivered; value = RTT of the last transmission (ms) */
    SB_OUTBOX_EV_DROP = 2,       /* removed by the overflow policy; code = QUEUE_FULL */
    SB_OUTBOX_EV_EXPIRED = 3,    /* TTL elapsed before the ack; code = EXPIRED */
    SB_OUTBOX_EV_TIMEOUT = 4,    /* no ack in time; value = delay before the retry (ms) */
    SB_OUTBOX_EV_DEADLETTER = 5  /* gave up after max_retries; code = TIMEOUT */
};

/* Fixed layout for JS: Uint32Array[6] (code as int32) + Float64 at byte 24
 * (offsets from js/constants.js). */
SB_LAYOUT typedef struct sb_outbox_event {
    uint32_t type, id, channel, seq, attempts;
    int32_t code;
    double value;
} sb_outbox_event;

enum sb_outbox_stat {
    SB_OUTBOX_STAT_DEPTH = 0,      /* messages held (queued + in flight) */
    SB_OUTBOX_STAT_BYTES = 1,      /* payload bytes held */
    SB_OUTBOX_STAT_IN_FLIGHT = 2,
    SB_OUTBOX_STAT_SENT = 3,       /* transmissions, retries included */
    SB_OUTBOX_STAT_RETRIES = 4,
    SB_OUTBOX_STAT_ACKED = 5,
    SB_OUTBOX_STAT_DROPS = 6,
    SB_OUTBOX_STAT_EXPIRED = 7,
    SB_OUTBOX_STAT_DEADLETTERS = 8,
    SB_OUTBOX_STAT_RTT = 9,        /* smoothed ack RTT (ms), -1 before the first */
    SB_OUTBOX_STAT_RTT_LAST = 10,
    SB_OUTBOX_STAT_EVENTS_LOST = 11, /* events dropped because nobody drained them */
    SB_OUTBOX_STAT_COUNT_ = 12
};

typedef struct sb_outbox sb_outbox;

/* max_count >= 1 messages and max_bytes >= 1 payload bytes (queued + in
 * flight); policy: sb_queue_policy; window >= 1 frames in flight;
 * ack_timeout_ms > 0; retries wait sb_backoff_delay(retry_min_ms,
 * retry_max_ms, 2, attempt) (0 < min <= max); max_retries 0 = until the TTL;
 * max_channels >= 1 caps per-channel state; seed drives the jitter. */
SB_EXPORT sb_outbox *sb_outbox_create(uint32_t max_count, double max_bytes, int policy, uint32_t window, double ack_timeout_ms, double retry_min_ms, double retry_max_ms, int max_retries, uint32_t max_channels, uint32_t seed);
SB_EXPORT void sb_outbox_destroy(sb_outbox *o);
/* Bytes of the buffers an idle outbox does not need (the event ring, the
 * last frame's output); sb_outbox_trim gives them back (the ring once
 * drained). */
size_t sb_outbox_capacity(const sb_outbox *o);
void sb_outbox_trim(sb_outbox *o);

/* Queue a message. kind: any frame kind but ack/batch/skip; flags are OR-ed
 * with ACK_REQ; priority 0..7; ttl_ms <= 0 = none. Returns the message id
 * (>= 1) or SB_E_QUEUE_FULL (reject policy, or nothing evictable),
 * SB_E_TOO_LARGE (bigger than max_bytes), SB_E_INVALID. Under drop-newest a
 * full queue still returns an id and reports a DROP event for it. */
SB_EXPORT int sb_outbox_send(sb_outbox *o, int kind, uint32_t channel, int priority, int flags, uint32_t corr, double ttl_ms, const uint8_t *payload, uint32_t n, double now_ms);
/* Drop the oldest message in flight (DROP event, and a SKIP so the
 * receiver does not wait for it): for a sender that must bound what a
 * disconnected peer is behind by. Returns 1, or 0 if nothing is in flight. */
int sb_outbox_evict_oldest(sb_outbox *o, double now_ms);
/* Runs timers, then returns the length of the next frame to transmit (bytes
 * at sb_outbox_out, valid until the next call) or 0 when nothing is due. */
SB_EXPORT int sb_outbox_next_frame(sb_outbox *o, double now_ms);
SB_EXPORT const uint8_t *sb_outbox_out(const sb_outbox *o);
/* Feed an encoded ACK frame from the peer (strictly decoded). Returns the
 * number of messages it acknowledged, or an sb_err. */
SB_EXPORT int sb_outbox_on_ack(sb_outbox *o, const uint8_t *frame, uint32_t n, double now_ms);
/* The same from decoded fields (sack = the ack frame's payload). */
int sb_outbox_ack(sb_outbox *o, uint32_t channel, uint32_t cum, const uint8_t *sack, size_t sack_len, double now_ms);
/* The peer has received up to seq on channel, past what this outbox ever
 * numbered there (its state is older than a write that reached the peer):
 * number on from seq + 1, so nothing new is taken for a duplicate. Returns
 * how many seqs it had never numbered (0: none). */
int sb_outbox_adopt(sb_outbox *o, uint32_t channel, uint32_t seq);
/* The id the next message will take. */
uint32_t sb_outbox_next_id(const sb_outbox *o);
/* Message id, still queued, takes the next id as if queued now: a restored
 * state gave it an id the lost state that sb_outbox_adopt found may have
 * given a request the peer answered. Returns the new id, or 0 if id is not
 * queued. */
uint32_t sb_outbox_renumber(sb_outbox *o, uint32_t id);
/* The peer has message id by other means (it answered the request): it
 * leaves the outbox as if acked (an ACK event). 1 if it was held, else 0. */
int sb_outbox_resolve(sb_outbox *o, uint32_t id, double now_ms);
/* Remove every message (queued or in flight) whose payload is over max_len
 * with a DROP event (code TOO_LARGE): the peer's caps, learnt after they
 * were queued, say it would refuse them. Returns how many. */
int sb_outbox_drop_over(sb_outbox *o, uint32_t max_len, double now_ms);
/* Expire TTLs and fire ack timeouts; returns the number of pending events. */
int sb_outbox_poll(sb_outbox *o, double now_ms);
/* Pop the next event (type, 0 = none); details in sb_outbox_event_view. */
SB_EXPORT int sb_outbox_next_event(sb_outbox *o);
SB_EXPORT const sb_outbox_event *sb_outbox_event_view(const sb_outbox *o);
/* The payload of the message the current DROP / EXPIRED / DEADLETTER event
 * is about (valid until the next sb_outbox_next_event), or NULL. */
const uint8_t *sb_outbox_event_payload(const sb_outbox *o, uint32_t *len);
/* Channel i (0 .. count-1) of the sender: its number, the last seq
 * assigned and the floor (lowest seq still unresolved, or the next one).
 * SB_E_NOT_FOUND past the last channel. */
int sb_outbox_chan_info(const sb_outbox *o, uint32_t i, uint32_t *channel, uint32_t *last_seq,
                        uint32_t *floor);
/* Earliest time something is due (retry, timeout, TTL, SKIP), or -1. */
SB_EXPORT double sb_outbox_deadline(const sb_outbox *o);
/* The same; sendable 0 leaves out "a queued message could go now", for a
 * host that cannot write at the moment (its transport is backed up). */
double sb_outbox_timers_deadline(const sb_outbox *o, int sendable);
/* Offline: nothing is transmitted and ack timers stop (TTLs still run).
 * Back online: every unacked frame is retransmitted at once (no attempt
 * counted), e.g. after a reconnect. */
SB_EXPORT void sb_outbox_set_online(sb_outbox *o, int online, double now_ms);
/* Whether a message frame carries its id (default yes: the Inbox reports
 * it). A receiver that identifies messages by channel and seq alone, as the
 * session does, needs none: no ids saves ~2 B a message after deflate. */
void sb_outbox_message_ids(sb_outbox *o, int on);
SB_EXPORT double sb_outbox_stat(const sb_outbox *o, int which);
/* Whole state (ids, per-channel seqs, every unacked message) as bytes at
 * sb_outbox_out; returns the length. */
SB_EXPORT int sb_outbox_serialize(sb_outbox *o);
/* Load a serialized state into an empty outbox (same or larger caps): unacked
 * messages go out again at once. SB_E_BAD_VERSION, SB_E_CORRUPT, SB_E_TOO_LARGE
 * (over this outbox's caps), SB_E_BAD_STATE (not empty). */
SB_EXPORT int sb_outbox_restore(sb_outbox *o, const uint8_t *blob, uint32_t n, double now_ms);

enum sb_inbox_stat {
    SB_INBOX_STAT_DELIVERED = 0,
    SB_INBOX_STAT_DUPLICATES = 1,  /* reliable frames seen before (dropped) */
    SB_INBOX_STAT_HELD = 2,        /* frames waiting for a gap to fill */
    SB_INBOX_STAT_REFUSED = 3,     /* beyond the window or the byte cap (not acked) */
    SB_INBOX_STAT_SKIPPED = 4,     /* seqs the sender gave up on */
    SB_INBOX_STAT_ACKS = 5,        /* ack frames produced */
    SB_INBOX_STAT_COUNT_ = 6
};

typedef struct sb_inbox sb_inbox;

/* window >= 1: how far past the next expected seq a frame is held;
 * max_bytes caps held + undelivered frames; max_channels >= 1;
 * ack_delay_ms >= 0 coalesces acks. */
SB_EXPORT sb_inbox *sb_inbox_create(uint32_t window, double max_bytes, uint32_t max_channels, double ack_delay_ms);
SB_EXPORT void sb_inbox_destroy(sb_inbox *in);
/* Bytes of the last serialization's buffer; sb_inbox_trim gives it back. */
size_t sb_inbox_capacity(const sb_inbox *in);
void sb_inbox_trim(sb_inbox *in);
/* Feed one frame (not a batch: unbatch first). Reliable frames (ACK_REQ
 * with a seq) are deduplicated and ordered per channel; SKIP frames move
 * the floor; other frames pass straight through. Returns how many frames
 * are ready for sb_inbox_next, or an sb_err (BAD_FRAME…, INVALID for an
 * ACK or BATCH frame, TOO_LARGE if max_channels is reached). */
SB_EXPORT int sb_inbox_push(sb_inbox *in, const uint8_t *frame, uint32_t n, double now_ms);
/* 1 = a frame is ready (sb_inbox_view / sb_inbox_frame), 0 = none. */
SB_EXPORT int sb_inbox_next(sb_inbox *in);
SB_EXPORT const sb_frame_view *sb_inbox_view(const sb_inbox *in);
SB_EXPORT const uint8_t *sb_inbox_frame(const sb_inbox *in);
SB_EXPORT uint32_t sb_inbox_frame_len(const sb_inbox *in);
/* Length of the next due ack frame (bytes at sb_inbox_out), 0 if none, or
 * SB_E_NO_MEMORY (that ack stays due). */
SB_EXPORT int sb_inbox_take_ack(sb_inbox *in, double now_ms);
SB_EXPORT const uint8_t *sb_inbox_out(const sb_inbox *in);
/* When the next ack is due, or -1. */
SB_EXPORT double sb_inbox_deadline(const sb_inbox *in);
/* The peer restarted without its state: forget every channel. */
SB_EXPORT void sb_inbox_reset(sb_inbox *in);
/* Channel i (0 .. count-1) of the receiver: its number and the last seq
 * delivered in order. SB_E_NOT_FOUND past the last channel. */
int sb_inbox_chan_info(const sb_inbox *in, uint32_t i, uint32_t *channel, uint32_t *cum);
SB_EXPORT double sb_inbox_stat(const sb_inbox *in, int which);
/* Whole receiver state as bytes at sb_inbox_out: per-channel delivered seq
 * (the dedup state), the frames held for order (already acked selectively,
 * so they must survive a restart) and undelivered ones. */
SB_EXPORT int sb_inbox_serialize(sb_inbox *in);
/* Into an empty inbox; SB_E_CORRUPT, SB_E_BAD_VERSION, SB_E_TOO_LARGE (caps),
 * SB_E_TRAILING_DATA, SB_E_BAD_STATE (not empty). Returns the channel count. */
SB_EXPORT int sb_inbox_restore(sb_inbox *in, const uint8_t *blob, uint32_t n);

#endif
