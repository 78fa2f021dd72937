/* rate — see rate.h. */
#include "rate.h"

#include <stdlib.h>

struct sb_rate {
    double rate, burst, max_wait, tokens, at;
};

sb_rate *sb_rate_create(double rate, double burst, double max_wait_ms, double now_ms)
{
    sb_rate *r;
    if (!(rate > 0) || !(burst >= 1) || !(max_wait_ms >= 0) || max_wait_ms > 1e9 || now_ms != now_ms)
        return NULL;
    r = malloc(sizeof *r);
    if (!r)
        return NULL;
    r->rate = rate / 1000; /* per ms */
    r->burst = burst;
    r->max_wait = max_wait_ms;
    r->tokens = burst;
    r->at = now_ms;
    return r;
}

void sb_rate_destroy(sb_rate *r)
{
    free(r);
}

double sb_rate_tokens(sb_rate *r, double now_ms)
{
    if (!r)
        return 0;
    if (now_ms > r->at) {
        r->tokens += (now_ms - r->at) * r->rate;
        if (r->tokens > r->burst)
            r->tokens = r->burst;
        r->at = now_ms;
    }
    return r->tokens;
}

int sb_rate_take(sb_rate *r, double cost, double now_ms)
{
    double left, wait;
    if (!r || !(cost >= 0) || now_ms != now_ms)
        return SB_E_INVALID;
    left = sb_rate_tokens(r, now_ms) - cost;
    if (left >= 0) {
        r->tokens = left;
        return 0;
    }
    wait = -left / r->rate;
    if (wait > r->max_wait)
        return SB_E_RATE_LIMITED;
    r->tokens = left;
    return (int)wait + ((double)(int)wait < wait);
}
