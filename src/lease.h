/* lease — tab presence and heartbeat-lease leader election (the fallback
 * when Web Locks are not available), driven entirely by the caller's clock.
 *
 * Every tab broadcasts a heartbeat every heartbeat_ms: its id, visibility,
 * and, if it leads, a claim with an election term. A tab not heard from for
 * lease_ms is gone (a BYE removes it at once). When there is no live leader,
 * every tab computes the same candidate from its presence view — the lowest
 * id, among visible tabs first when prefer_visible — and only the candidate
 * claims, with term = highest term seen + 1. Two claims resolve the same way
 * everywhere: higher term wins, then lower id, and the loser steps down (the
 * glue fires `leadershiplost`). A leader that closes sends BYE, so failover
 * is immediate; one that crashes is replaced once its lease runs out.
 *
 * In external mode (Web Locks) the object never claims on its own: the glue
 * calls sb_lease_claim() when it acquires the lock and sb_lease_resign()
 * when it lets go, and heartbeats carry presence and the leader's identity.
 * A leader whose lease runs out there still holds the lock (a crashed tab's
 * lock is freed at once, so it is frozen or hung): the visible tab with the
 * lowest id is told to steal it (SB_LEASE_EV_STEAL), and the old leader,
 * when it runs again a lease or more after its last step, steps down first
 * (SB_LEASE_EV_LOST). Hidden tabs do neither: their timers may be throttled.
 *
 * Messages are switchboard frames of kind PING (frame.h) with a small
 * payload (docs/tabs.md). */
#ifndef SB_LEASE_H
#define SB_LEASE_H

#include "switchboard.h"

/* No lease message is longer (the glue drops longer ones unread). */
#define SB_LEASE_MSG_MAX 64

typedef struct sb_lease sb_lease;

/* Event bits returned by sb_lease_events(). */
enum sb_lease_event {
    SB_LEASE_EV_LEADER = 1,   /* the leader (or its term) changed */
    SB_LEASE_EV_LOST = 2,     /* this tab was leader and no longer is */
    SB_LEASE_EV_PRESENCE = 4, /* a tab joined, left or changed visibility */
    SB_LEASE_EV_STEAL = 8     /* external mode: the leader went silent for a lease while it
                               * holds the lock (a frozen tab: a crash frees the lock) and
                               * this visible tab is the one to take it from it */
};

/* id non-zero and unique per tab; 0 < heartbeat_ms < lease_ms; external = 1
 * for Web Locks mode. Returns NULL on bad arguments. */
SB_EXPORT sb_lease *sb_lease_create(uint32_t id, double heartbeat_ms, double lease_ms, uint32_t max_peers, int prefer_visible, int external);
SB_EXPORT void sb_lease_destroy(sb_lease *l);

/* Join: returns the length of a hello heartbeat to broadcast (tabs that
 * hear it answer at once so the newcomer learns the leader quickly). */
SB_EXPORT int sb_lease_start(sb_lease *l, double now_ms, int visible);
/* Advance time: expire peers and leases, maybe claim. Returns the length of
 * a heartbeat to broadcast now, or 0. */
SB_EXPORT int sb_lease_tick(sb_lease *l, double now_ms);
/* A message from another tab. Returns the length of a reply to broadcast
 * (0 if none) or an sb_err for bytes that do not decode. */
SB_EXPORT int sb_lease_recv(sb_lease *l, double now_ms, const uint8_t *in, uint32_t n);
/* Visibility changed; returns the length of a heartbeat to send now. */
SB_EXPORT int sb_lease_set_visible(sb_lease *l, double now_ms, int visible);
/* Leaving (pagehide/close): returns the length of a BYE to broadcast. */
SB_EXPORT int sb_lease_stop(sb_lease *l, double now_ms);
/* External mode: this tab now holds the lock / gave it up. Returns the
 * length of a heartbeat to broadcast now. */
SB_EXPORT int sb_lease_claim(sb_lease *l, double now_ms);
SB_EXPORT int sb_lease_resign(sb_lease *l, double now_ms);

SB_EXPORT const uint8_t *sb_lease_out(const sb_lease *l);
/* When the glue must call sb_lease_tick next (-1 before start / after stop). */
SB_EXPORT double sb_lease_deadline(const sb_lease *l);
/* Events since the last call (enum sb_lease_event bits); reading clears. */
SB_EXPORT int sb_lease_events(sb_lease *l);

SB_EXPORT uint32_t sb_lease_leader(const sb_lease *l);
SB_EXPORT int sb_lease_is_leader(const sb_lease *l);
SB_EXPORT double sb_lease_term(const sb_lease *l);
/* Presence, this tab excluded: count, then id/visibility by index. */
SB_EXPORT int sb_lease_peer_count(const sb_lease *l);
SB_EXPORT uint32_t sb_lease_peer_id(const sb_lease *l, int i);
SB_EXPORT int sb_lease_peer_visible(const sb_lease *l, int i);

#endif
