#include "backoff.h"
#include "sbtest.h"

static void test_growth_and_bounds(void)
{
    sb_backoff *b = sb_backoff_create(100, 5000, 2, 0, 42);
    double prev_ceiling = 0;
    for (int k = 0; k < 20; k++) {
        double c = sb_backoff_ceiling(b);
        CHECK(c >= prev_ceiling);
        CHECK(c <= 5000);
        double d = sb_backoff_next(b);
        CHECK(d >= 50 && d <= c); /* [min/2, ceiling] */
        prev_ceiling = c;
    }
    CHECK_EQ(sb_backoff_ceiling(b), 5000);
    CHECK_EQ(sb_backoff_attempts(b), 20);
    sb_backoff_reset(b);
    CHECK_EQ(sb_backoff_ceiling(b), 100);
    {
        double d = sb_backoff_next(b);
        CHECK(d >= 50 && d <= 100);
    }
    sb_backoff_destroy(b);
}

/* A server restart: every client's first reconnect draws from [min/2, min],
 * so a fleet does not come back at one instant; no delay is under min/2. */
static void test_first_attempt_is_jittered(void)
{
    double lo = 1e9, hi = 0;
    int distinct = 0;
    double prev = -1;
    for (uint32_t seed = 1; seed <= 1000; seed++) {
        sb_backoff *b = sb_backoff_create(1000, 30000, 2, 0, seed);
        double d = sb_backoff_next(b);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
        distinct += d != prev;
        prev = d;
        sb_backoff_destroy(b);
    }
    CHECK(lo >= 500 && lo < 520);
    CHECK(hi <= 1000 && hi > 980);
    CHECK(distinct > 900);
    /* also when min == max and when factor == 1 (the ceiling never grows) */
    {
        sb_rng r;
        int spread = 0;
        sb_rng_seed(&r, 5);
        for (int k = 0; k < 50; k++) {
            double a = sb_backoff_delay(300, 300, 2, k, &r), c = sb_backoff_delay(300, 9000, 1, k, &r);
            CHECK(a >= 150 && a <= 300 && c >= 150 && c <= 300);
            spread += a < 290 && c < 290;
        }
        CHECK(spread > 20);
    }
}

static void test_jitter_spreads_and_replays(void)
{
    sb_backoff *a = sb_backoff_create(10, 100000, 2, 0, 7);
    sb_backoff *b = sb_backoff_create(10, 100000, 2, 0, 7);
    sb_backoff *c = sb_backoff_create(10, 100000, 2, 0, 8);
    int same_seed_equal = 1, other_seed_differs = 0;
    for (int k = 0; k < 12; k++) {
        double x = sb_backoff_next(a), y = sb_backoff_next(b), z = sb_backoff_next(c);
        same_seed_equal &= x == y;
        other_seed_differs |= x != z;
    }
    CHECK(same_seed_equal);
    CHECK(other_seed_differs);
    /* draws at a fixed attempt cover the range, not one point */
    {
        sb_rng r;
        double lo = 1e9, hi = 0;
        sb_rng_seed(&r, 1);
        for (int i = 0; i < 1000; i++) {
            double d = sb_backoff_delay(10, 1000, 2, 6, &r);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        CHECK(lo < 100);
        CHECK(hi > 580);
        CHECK(hi <= 640);
    }
    sb_backoff_destroy(a);
    sb_backoff_destroy(b);
    sb_backoff_destroy(c);
}

static void test_max_attempts_and_args(void)
{
    sb_backoff *b = sb_backoff_create(1, 10, 1.5, 3, 1);
    CHECK(sb_backoff_next(b) >= 0);
    CHECK(sb_backoff_next(b) >= 0);
    CHECK(sb_backoff_next(b) >= 0);
    CHECK(sb_backoff_next(b) == -1);
    sb_backoff_destroy(b);
    CHECK(sb_backoff_create(0, 10, 2, 0, 1) == NULL);
    CHECK(sb_backoff_create(10, 5, 2, 0, 1) == NULL);
    CHECK(sb_backoff_create(1, 5, 0.5, 0, 1) == NULL);
    CHECK(sb_backoff_create(1, 5, 2, -1, 1) == NULL);
    /* a factor barely above 1 with unlimited attempts stays cheap and bounded */
    b = sb_backoff_create(10, 20, 1.0000001, 0, 1);
    for (int k = 0; k < 100000; k++)
        CHECK(sb_backoff_next(b) <= 20);
    sb_backoff_destroy(b);
    /* huge factor and attempt counts never overflow */
    b = sb_backoff_create(1, 1e9, 1e6, 0, 1);
    for (int k = 0; k < 1000; k++)
        CHECK(sb_backoff_next(b) <= 1e9);
    sb_backoff_destroy(b);
}

int main(void)
{
    RUN(test_growth_and_bounds);
    RUN(test_jitter_spreads_and_replays);
    RUN(test_first_attempt_is_jittered);
    RUN(test_max_attempts_and_args);
    TEST_MAIN_END();
}
