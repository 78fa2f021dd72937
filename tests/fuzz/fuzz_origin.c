/* Origins come straight from MessageEvent.origin and from user config: any
 * bytes must parse or be refused without touching memory out of bounds, and
 * a normalized origin must be a fixed point and match itself. The router's
 * handshake entry points take the same untrusted strings (channel, origin,
 * nonce from another window), so they are driven with them too. */
#include <stdlib.h>
#include <string.h>

#include "origin.h"
#include "router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char a[SB_ORIGIN_MAX + 1], b[SB_ORIGIN_MAX + 1];
    const char *s = (const char *)data;
    size_t split = size ? data[0] % (size + 1) : 0;
    sb_origin_list *l = sb_origin_list_create(4);
    int n = sb_origin_normalize(s, size, a, sizeof a);
    if (n >= 0) {
        int n2 = sb_origin_normalize(a, (size_t)n, b, sizeof b);
        if (n2 != n || memcmp(a, b, (size_t)n))
            abort();
        if (sb_origin_list_add(l, a, (size_t)n) < 0 || sb_origin_list_match(l, s, size) < 0)
            abort();
        sb_origin_list_clear(l);
    }
    /* first part as a pattern, the rest as an origin */
    if (size) {
        int i = sb_origin_list_add(l, s + 1, split > 0 ? split - 1 : 0);
        int r = sb_origin_list_match(l, s + split, size - split);
        if (r >= 0 && i < 0)
            abort();
        if (i >= 0 && sb_origin_list_entry(l, i) == NULL)
            abort();
    }
    sb_origin_list_destroy(l);

    /* router: channel = first part, origin = rest, nonce = whole input */
    {
        sb_router *r = sb_router_create(2, 4, 2);
        int ep = sb_router_open(r, "c", 1, 3, SB_BR_PARENT, 10, 30, 0, 0);
        int got;
        if (!r || ep <= 0)
            abort();
        sb_router_allow(r, ep, "https://*.example.com", 21);
        sb_router_allow(r, ep, s, split);
        got = sb_router_route(r, s, split, 3, s + split, size - split);
        if (got > 0 && got != ep)
            abort();
        if (sb_router_offer(r, ep, "0123456789abcdef", 16, 0) < 0)
            abort();
        if (sb_router_confirm(r, ep, s, size, 1) == 0 &&
            (size != 16 || memcmp(s, "0123456789abcdef", 16)))
            abort();
        sb_router_destroy(r);
    }
    return 0;
}
