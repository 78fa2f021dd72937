/* Minimal test harness: one executable per module, each TEST registered in
 * main() through RUN(). Failures print file:line and continue the test
 * binary; the exit code is the number of failed checks (capped). */
#ifndef SB_TEST_H
#define SB_TEST_H

#include <stdio.h>
#include <string.h>

static int sbt_failures;
static int sbt_checks;

#define CHECK(cond)                                                        \
    do {                                                                   \
        sbt_checks++;                                                      \
        if (!(cond)) {                                                     \
            sbt_failures++;                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__,        \
                    __LINE__, #cond);                                      \
        }                                                                  \
    } while (0)

#define CHECK_EQ(a, b)                                                     \
    do {                                                                   \
        long long sbt_a = (long long)(a), sbt_b = (long long)(b);          \
        sbt_checks++;                                                      \
        if (sbt_a != sbt_b) {                                              \
            sbt_failures++;                                                \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld vs %lld)\n", \
                    __FILE__, __LINE__, #a, #b, sbt_a, sbt_b);             \
        }                                                                  \
    } while (0)

#define CHECK_MEM(a, b, n) CHECK(memcmp((a), (b), (n)) == 0)

#define RUN(fn)                                                            \
    do {                                                                   \
        int sbt_before = sbt_failures;                                     \
        fn();                                                              \
        printf("%s %s\n", sbt_failures == sbt_before ? "ok  " : "FAIL", #fn); \
    } while (0)

#define TEST_MAIN_END()                                                    \
    do {                                                                   \
        printf("%d checks, %d failed\n", sbt_checks, sbt_failures);        \
        return sbt_failures > 100 ? 100 : sbt_failures;                    \
    } while (0)

#endif
