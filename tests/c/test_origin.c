#include "origin.h"
#include "sbtest.h"

static int norm(const char *in, char *out)
{
    return sb_origin_normalize(in, strlen(in), out, SB_ORIGIN_MAX + 1);
}

static void test_normalize(void)
{
    static const struct {
        const char *in, *out;
    } ok[] = {
        {"https://example.com", "https://example.com"},
        {"HTTPS://Example.COM", "https://example.com"},
        {"https://example.com:443", "https://example.com"},
        {"https://example.com:0443", "https://example.com"},
        {"http://example.com:80/", "http://example.com"},
        {"http://example.com:443", "http://example.com:443"},
        {"https://example.com:80", "https://example.com:80"},
        {"wss://a.b:443", "wss://a.b"},
        {"ws://a.b:80", "ws://a.b"},
        {"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
        {"http://[::1]:3000", "http://[::1]:3000"},
        {"http://[::FFFF:7f00:1]", "http://[::ffff:7f00:1]"},
        {"null", "null"},
        {"chrome-extension://abcdef", "chrome-extension://abcdef"},
        {"https://xn--bcher-kva.example", "https://xn--bcher-kva.example"},
        {"http://localhost:65535", "http://localhost:65535"},
        {"http://a.com:0000000080", "http://a.com"},
    };
    static const char *bad[] = {
        "", "example.com", "https://", "https:/example.com", "https://example.com/path",
        "https://example.com//", "https://example.com:", "https://example.com:65536",
        "https://example.com:-1", "https://example.com:8a", "https://user@example.com",
        "https://exa mple.com", "https://example..com", "https://.example.com",
        "https://example.com.", "https://*.example.com", "*", "NULL", "https://b\xc3\xbc.de",
        "https://[::1", "https://[::1]x", "https://[zz]", "1http://a.com", "https://a.com?x",
        "https://a.com#f", "https://a.com\\", "https://a.com:9999999999", "https://a.com:4294967376",
        "https://a.com:00000000080",
    };
    char out[SB_ORIGIN_MAX + 1];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int n = norm(ok[i].in, out);
        CHECK_EQ(n, (int)strlen(ok[i].out));
        CHECK(n > 0 && strcmp(out, ok[i].out) == 0);
        if (n < 0 || strcmp(out, ok[i].out))
            fprintf(stderr, "  normalize(%s) -> %d %s\n", ok[i].in, n, out);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int n = norm(bad[i], out);
        CHECK_EQ(n, SB_E_BAD_ORIGIN);
        if (n != SB_E_BAD_ORIGIN)
            fprintf(stderr, "  accepted bad origin %s\n", bad[i]);
    }
    /* small output buffer */
    CHECK_EQ(sb_origin_normalize("https://a.com", 13, out, 5), SB_E_BUFFER_TOO_SMALL);
    /* over-long input */
    {
        char big[400];
        memset(big, 'a', sizeof big);
        memcpy(big, "https://", 8);
        CHECK_EQ(sb_origin_normalize(big, sizeof big, out, sizeof out), SB_E_BAD_ORIGIN);
    }
}

static int m(sb_origin_list *l, const char *o)
{
    return sb_origin_list_match(l, o, strlen(o));
}

static int add(sb_origin_list *l, const char *p)
{
    return sb_origin_list_add(l, p, strlen(p));
}

static void test_exact_and_wildcard(void)
{
    sb_origin_list *l = sb_origin_list_create(8);
    CHECK_EQ(add(l, "https://example.com"), 0);
    CHECK_EQ(add(l, "https://*.example.com"), 1);
    CHECK_EQ(add(l, "HTTPS://EXAMPLE.com:443/"), 0); /* same entry */
    CHECK_EQ(sb_origin_list_count(l), 2);
    CHECK(sb_origin_list_is_exact(l, 0));
    CHECK(!sb_origin_list_is_exact(l, 1));
    CHECK(strcmp(sb_origin_list_entry(l, 1), "https://*.example.com") == 0);

    CHECK_EQ(m(l, "https://example.com"), 0);
    CHECK_EQ(m(l, "https://example.com:443"), 0);
    CHECK_EQ(m(l, "https://a.example.com"), 1);
    CHECK_EQ(m(l, "https://a.b.example.com"), 1);
    CHECK_EQ(m(l, "https://evil-example.com"), SB_E_ORIGIN_REJECTED);
    CHECK_EQ(m(l, "https://example.com.evil.com"), SB_E_ORIGIN_REJECTED);
    CHECK_EQ(m(l, "https://aexample.com"), SB_E_ORIGIN_REJECTED);
    CHECK_EQ(m(l, "http://example.com"), SB_E_ORIGIN_REJECTED);
    CHECK_EQ(m(l, "http://a.example.com"), SB_E_ORIGIN_REJECTED);
    CHECK_EQ(m(l, "https://a.example.com:8443"), SB_E_ORIGIN_REJECTED);
    CHECK_EQ(m(l, "https://example.com:8443"), SB_E_ORIGIN_REJECTED);
    CHECK_EQ(m(l, "null"), SB_E_ORIGIN_REJECTED);
    CHECK_EQ(m(l, "garbage"), SB_E_BAD_ORIGIN);
    sb_origin_list_destroy(l);

    /* wildcard bare domain is never implied; port written explicitly */
    l = sb_origin_list_create(4);
    CHECK_EQ(add(l, "https://*.example.com:8443"), 0);
    CHECK_EQ(m(l, "https://example.com:8443"), SB_E_ORIGIN_REJECTED);
    CHECK_EQ(m(l, "https://x.example.com:8443"), 0);
    CHECK_EQ(m(l, "https://x.example.com"), SB_E_ORIGIN_REJECTED);
    /* wildcards over IPs and in the wrong place do not parse */
    CHECK_EQ(add(l, "http://*.0.0.1"), SB_E_BAD_ORIGIN);
    CHECK_EQ(add(l, "http://*.[::1]"), SB_E_BAD_ORIGIN);
    CHECK_EQ(add(l, "https://a.*.example.com"), SB_E_BAD_ORIGIN);
    CHECK_EQ(add(l, "https://*example.com"), SB_E_BAD_ORIGIN);
    CHECK_EQ(add(l, "*://example.com"), SB_E_BAD_ORIGIN);
    CHECK_EQ(add(l, "https://*."), SB_E_BAD_ORIGIN);
    sb_origin_list_destroy(l);
}

static void test_star_and_null_only_when_explicit(void)
{
    sb_origin_list *l = sb_origin_list_create(4);
    /* empty list denies everything */
    CHECK_EQ(m(l, "https://example.com"), SB_E_ORIGIN_REJECTED);
    CHECK_EQ(m(l, "null"), SB_E_ORIGIN_REJECTED);
    CHECK_EQ(add(l, "*"), 0);
    CHECK_EQ(m(l, "https://anything.test:1234"), 0);
    CHECK_EQ(m(l, "null"), SB_E_ORIGIN_REJECTED); /* "*" does not imply opaque */
    CHECK_EQ(add(l, "null"), 1);
    CHECK_EQ(m(l, "null"), 1);
    sb_origin_list_clear(l);
    CHECK_EQ(add(l, "null"), 0);
    CHECK_EQ(m(l, "https://example.com"), SB_E_ORIGIN_REJECTED);
    CHECK_EQ(m(l, "null"), 0);
    sb_origin_list_destroy(l);
}

static void test_caps(void)
{
    sb_origin_list *l = sb_origin_list_create(2);
    CHECK(sb_origin_list_create(0) == NULL);
    CHECK(sb_origin_list_create(5000) == NULL);
    CHECK_EQ(add(l, "https://a.com"), 0);
    CHECK_EQ(add(l, "https://b.com"), 1);
    CHECK_EQ(add(l, "https://c.com"), SB_E_TOO_LARGE);
    CHECK_EQ(add(l, "https://a.com"), 0);
    CHECK(sb_origin_list_entry(l, 2) == NULL);
    CHECK_EQ(sb_origin_list_match(NULL, "https://a.com", 13), SB_E_INVALID);
    sb_origin_list_destroy(l);
    sb_origin_list_destroy(NULL);
}

int main(void)
{
    RUN(test_normalize);
    RUN(test_exact_and_wildcard);
    RUN(test_star_and_null_only_when_explicit);
    RUN(test_caps);
    TEST_MAIN_END();
}
