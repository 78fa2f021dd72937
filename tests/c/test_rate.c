/* rate: the token bucket, time driven by hand. */
#include "rate.h"

#include "sbtest.h"

static void test_bad_arguments(void)
{
    CHECK(sb_rate_create(0, 10, 100, 0) == NULL);
    CHECK(sb_rate_create(-1, 10, 100, 0) == NULL);
    CHECK(sb_rate_create(10, 0.5, 100, 0) == NULL);
    CHECK(sb_rate_create(10, 10, -1, 0) == NULL);
    CHECK(sb_rate_create(10, 10, 2e9, 0) == NULL);
    CHECK(sb_rate_create(0.0 / 0.0, 10, 100, 0) == NULL);
    CHECK(sb_rate_create(10, 10, 100, 0.0 / 0.0) == NULL);
    CHECK_EQ(sb_rate_take(NULL, 1, 0), SB_E_INVALID);
    {
        sb_rate *r = sb_rate_create(10, 10, 100, 0);
        CHECK_EQ(sb_rate_take(r, -1, 0), SB_E_INVALID);
        CHECK_EQ(sb_rate_take(r, 0.0 / 0.0, 0), SB_E_INVALID);
        CHECK_EQ(sb_rate_take(r, 1, 0.0 / 0.0), SB_E_INVALID);
        CHECK_EQ(sb_rate_tokens(r, 0), 10);
        sb_rate_destroy(r);
    }
    sb_rate_destroy(NULL);
}

/* The burst is free, then the rate: a wait verdict is the time until the
 * debt is paid off. */
static void test_burst_then_rate(void)
{
    sb_rate *r = sb_rate_create(100, 50, 10000, 1000); /* 100/s = 1 per 10 ms */
    for (int i = 0; i < 50; i++)
        CHECK_EQ(sb_rate_take(r, 1, 1000), 0);
    CHECK_EQ(sb_rate_take(r, 1, 1000), 10); /* 1 in debt: 10 ms */
    CHECK_EQ(sb_rate_take(r, 4, 1000), 50);
    CHECK_EQ(sb_rate_tokens(r, 1000), -5);
    /* 50 ms later the debt is paid */
    CHECK_EQ(sb_rate_tokens(r, 1050), 0);
    CHECK_EQ(sb_rate_take(r, 1, 1060), 0);
    /* rounded up: 0.5 token short at 100/s = 5 ms; 0.25 = 2.5 -> 3 */
    CHECK_EQ(sb_rate_take(r, 0.5, 1060), 5);
    CHECK_EQ(sb_rate_take(r, 0.25, 1065), 3);
    /* a long quiet refills to the burst, never past it */
    CHECK_EQ(sb_rate_tokens(r, 1e9), 50);
    sb_rate_destroy(r);
}

/* A debt over max_wait is refused and not taken: the next small charge
 * is judged on the debt before it. */
static void test_refuse_past_tolerance(void)
{
    sb_rate *r = sb_rate_create(1000, 100, 500, 0); /* 1 per ms, 500 ms of debt at most */
    CHECK_EQ(sb_rate_take(r, 100, 0), 0);
    CHECK_EQ(sb_rate_take(r, 400, 0), 400);
    CHECK_EQ(sb_rate_take(r, 100, 0), 500); /* exactly at the tolerance */
    CHECK_EQ(sb_rate_take(r, 1, 0), SB_E_RATE_LIMITED);
    CHECK_EQ(sb_rate_tokens(r, 0), -500);
    /* a single charge larger than burst + tolerance is never taken */
    CHECK_EQ(sb_rate_take(r, 10000, 1e6), SB_E_RATE_LIMITED);
    CHECK_EQ(sb_rate_tokens(r, 1e6), 100);
    /* zero cost asks for the wait left */
    CHECK_EQ(sb_rate_take(r, 600, 1e6), 500);
    CHECK_EQ(sb_rate_take(r, 0, 1e6 + 100), 400);
    CHECK_EQ(sb_rate_take(r, 0, 1e6 + 500), 0);
    sb_rate_destroy(r);
}

/* Time that steps back refills nothing (and takes nothing away). */
static void test_clock_steps_back(void)
{
    sb_rate *r = sb_rate_create(10, 10, 10000, 5000);
    CHECK_EQ(sb_rate_take(r, 10, 5000), 0);
    CHECK_EQ(sb_rate_tokens(r, 4000), 0);
    CHECK_EQ(sb_rate_take(r, 1, 4000), 100);
    CHECK_EQ(sb_rate_tokens(r, 5100), 0);
    sb_rate_destroy(r);
}

/* Deterministic: the same charges at the same times give the same verdicts. */
static void test_deterministic(void)
{
    sb_rate *a = sb_rate_create(333, 77, 2000, 0), *b = sb_rate_create(333, 77, 2000, 0);
    double t = 0;
    for (int i = 0; i < 10000; i++) {
        double cost = (double)((i * 7919) % 13);
        t += (double)((i * 104729) % 7);
        CHECK_EQ(sb_rate_take(a, cost, t), sb_rate_take(b, cost, t));
    }
    CHECK(sb_rate_tokens(a, t) == sb_rate_tokens(b, t));
    sb_rate_destroy(a);
    sb_rate_destroy(b);
}

int main(void)
{
    RUN(test_bad_arguments);
    RUN(test_burst_then_rate);
    RUN(test_refuse_past_tolerance);
    RUN(test_clock_steps_back);
    RUN(test_deterministic);
    TEST_MAIN_END();
}
