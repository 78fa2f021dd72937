/* backoff — exponential backoff with full jitter, drawn per attempt from a
 * seeded generator (so tests replay exactly).
 *
 * Attempt k (0-based) waits a delay drawn uniformly from
 * [min_ms / 2, min(max_ms, min_ms * factor^k)]: full jitter from the first
 * attempt (after a server restart a fleet comes back spread over min_ms / 2,
 * not at one instant, even with min_ms == max_ms or factor 1), above a floor
 * of min_ms / 2 so none of them spins at 0 ms (docs/decisions.md). */
#ifndef SB_BACKOFF_H
#define SB_BACKOFF_H

#include "switchboard.h"

typedef struct sb_backoff sb_backoff;

/* min_ms > 0, max_ms >= min_ms, factor >= 1, max_attempts 0 = unlimited.
 * Returns NULL on bad arguments. */
sb_backoff *sb_backoff_create(double min_ms, double max_ms, double factor,
                                        int max_attempts, uint32_t seed);
void sb_backoff_destroy(sb_backoff *b);

/* Delay before the next attempt, in ms, and counts the attempt; returns -1
 * once max_attempts have been used. */
double sb_backoff_next(sb_backoff *b);
/* Upper bound of the delay the next call would draw from (for UIs). */
double sb_backoff_ceiling(const sb_backoff *b);
/* After a success: start again from the first attempt's range. */
void sb_backoff_reset(sb_backoff *b);
int sb_backoff_attempts(const sb_backoff *b);

/* Stateless form for per-message retries: the delay for attempt k using a
 * caller-owned generator. */
double sb_backoff_delay(double min_ms, double max_ms, double factor, int k, sb_rng *rng);

#endif
