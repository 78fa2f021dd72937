/* rate — a token bucket: `rate` tokens a second, at most `burst` saved up.
 *
 * sb_rate_take charges `cost` tokens at now_ms. The bucket may go into
 * debt: what arrived has arrived, and the verdict is how long the sender
 * should wait (stop reading it) until the debt is paid off. A charge whose
 * debt would take longer than max_wait_ms to pay off is refused and not
 * taken. Deterministic: time comes in as an argument; a clock that steps
 * back refills nothing. Used by the server role of sb_session for the
 * per-connection message and byte limits (docs/socket.md, "Limits"). */
#ifndef SB_RATE_H
#define SB_RATE_H

#include "switchboard.h"

typedef struct sb_rate sb_rate;

/* rate > 0 tokens per second, burst >= 1 (the bucket starts full),
 * 0 <= max_wait_ms <= 1e9. now_ms starts the refill clock. NULL on bad arguments
 * or no memory. */
sb_rate *sb_rate_create(double rate, double burst, double max_wait_ms, double now_ms);
void sb_rate_destroy(sb_rate *r);
/* Charge cost >= 0 tokens: 0 = within the budget, > 0 = taken, now wait
 * this many ms (rounded up) before sending more, SB_E_RATE_LIMITED = the
 * debt would need more than max_wait_ms (nothing taken), SB_E_INVALID. */
int sb_rate_take(sb_rate *r, double cost, double now_ms);
/* Tokens available at now_ms (negative: the debt). */
double sb_rate_tokens(sb_rate *r, double now_ms);

#endif
