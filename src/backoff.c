/* backoff — see backoff.h. */
#include "backoff.h"

#include <stdlib.h>

struct sb_backoff {
    double min_ms, max_ms, factor;
    int max_attempts;
    int attempts;
    sb_rng rng;
};

static double ceiling_for(double min_ms, double max_ms, double factor, int k)
{
    /* min * factor^k by squaring: O(log k) steps, and no libm pow() (which
     * would add 5 KB of tables to the wasm). Overflow to +inf compares fine. */
    double c = min_ms, f = factor;
    while (k > 0 && c < max_ms) {
        if (k & 1)
            c *= f;
        f *= f;
        k >>= 1;
    }
    return c < max_ms ? c : max_ms;
}

double sb_backoff_delay(double min_ms, double max_ms, double factor, int k, sb_rng *rng)
{
    double hi = ceiling_for(min_ms, max_ms, factor, k), lo = min_ms / 2;
    return lo + (hi - lo) * sb_rng_unit(rng);
}

sb_backoff *sb_backoff_create(double min_ms, double max_ms, double factor, int max_attempts,
                              uint32_t seed)
{
    sb_backoff *b;
    if (!(min_ms > 0) || !(max_ms >= min_ms) || !(factor >= 1) || max_attempts < 0 ||
        max_ms > 1e12 || factor > 1e6)
        return NULL;
    b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->min_ms = min_ms;
    b->max_ms = max_ms;
    b->factor = factor;
    b->max_attempts = max_attempts;
    sb_rng_seed(&b->rng, seed);
    return b;
}

void sb_backoff_destroy(sb_backoff *b)
{
    free(b);
}

double sb_backoff_next(sb_backoff *b)
{
    double d;
    if (!b || (b->max_attempts && b->attempts >= b->max_attempts))
        return -1;
    d = sb_backoff_delay(b->min_ms, b->max_ms, b->factor, b->attempts, &b->rng);
    if (b->attempts < 0x7fffffff) /* unlimited attempts: saturate, never wrap */
        b->attempts++;
    return d;
}

double sb_backoff_ceiling(const sb_backoff *b)
{
    return b ? ceiling_for(b->min_ms, b->max_ms, b->factor, b->attempts) : -1;
}

void sb_backoff_reset(sb_backoff *b)
{
    if (b)
        b->attempts = 0;
}

int sb_backoff_attempts(const sb_backoff *b)
{
    return b ? b->attempts : 0;
}
