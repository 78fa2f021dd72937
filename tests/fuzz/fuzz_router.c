/* Fuzz the bridge handshake (src/router.c) with hostile window and port
 * messages, losses, restarts and time: never a crash, every event well
 * formed, and an endpoint becomes CONNECTED only on a message that carried
 * its own nonce back. The input is a run of ops: [op][len][bytes...]. */
#include <stdlib.h>
#include <string.h>

#include "router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NEP 3

static void check_events(sb_router *r, int n)
{
    const int32_t *t = sb_router_events(r);
    if (n < 0)
        return;
    for (int i = 0; i < n; i++) {
        int kind = t[4 * i];
        if (kind < SB_RT_CALL_FAILED || kind > SB_RT_REJECT)
            abort();
        if (kind == SB_RT_SEND && (t[4 * i + 2] < SB_BS_OFFER || t[4 * i + 2] > SB_BS_SYN))
            abort();
        if (kind == SB_RT_DISCONNECTED && (t[4 * i + 2] < SB_BW_BYE || t[4 * i + 2] > SB_BW_CLOSED))
            abort();
        if (kind != SB_RT_REJECT && t[4 * i + 1] <= 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const types[] = {SB_BRIDGE_HELLO, SB_BRIDGE_OFFER, SB_BRIDGE_WELCOME,
                                        SB_BRIDGE_PROBE, "port", "x"};
    static const char *const origins[] = {"https://a.example", "https://b.example", "null",
                                          "not an origin"};
    static const int kinds[] = {SB_BM_READY, SB_BM_SYN, SB_BM_ACK, SB_BM_BYE, SB_BM_PING};
    sb_router *r = sb_router_create(NEP, 8, 2);
    int ep[NEP];
    double now = 0;
    uint8_t rnd[16] = {0};
    if (!r)
        abort();
    for (int i = 0; i < NEP; i++) {
        ep[i] = sb_router_open(r, "ch", 2, (uint32_t)(i + 1), i + 1, 10, 35, 500, 0);
        sb_router_allow(r, ep[i], "https://a.example", 17);
        sb_router_allow(r, ep[i], "null", 4);
        check_events(r, sb_router_start(r, ep[i], 1 + i % 2, 1, rnd, 0));
    }
    while (size >= 2) {
        int op = data[0], len = data[1];
        const char *s = (const char *)data + 2;
        int e = ep[op % NEP], before, n = 0;
        char own[SB_ROUTER_NONCE_MAX + 1] = {0};
        const uint8_t *mine = sb_router_nonce(r, e, 0);
        size_t half, olen = 0;
        data += 2, size -= 2;
        if ((size_t)len > size)
            len = (int)size;
        half = (size_t)len / 2;
        if (mine)
            memcpy(own, mine + 1, mine[0]), olen = mine[0];
        /* half the time the nonce slot is the endpoint's own, as an honest
         * peer would echo it; the rest is the input's */
        const char *a = (op & 0x40) ? own : s;
        size_t alen = (op & 0x40) ? olen : half;
        before = sb_router_state(r, e);
        rnd[op & 15] ^= (uint8_t)len;
        switch ((op >> 2) & 7) {
        case 0:
        case 1:
            n = sb_router_window(r, (op & 0x80) ? 0 : (uint32_t)(op % NEP + 1), "ch", 2, types[(op >> 5) % 6],
                                 strlen(types[(op >> 5) % 6]), a, alen, s + half, len - half,
                                 origins[len & 3], strlen(origins[len & 3]), (op >> 4) & 1, rnd,
                                 now);
            break;
        case 2:
        case 3:
            n = sb_router_port(r, e, kinds[(op >> 4) % 5], a, alen, s + half, len - half, op & 1,
                               now);
            break;
        case 4:
            n = sb_router_lost(r, e, 1 + len % 6, op & 1);
            break;
        case 5:
            n = sb_router_start(r, e, len & 3, (len >> 2) & 3, rnd, now);
            break;
        case 6:
            n = sb_router_call(r, e, now, len);
            n = n > 0 ? sb_router_settle(r, e, (uint32_t)n ^ (uint32_t)(len & 1), now) : n;
            n = 0;
            break;
        default:
            now += len;
            n = sb_router_poll(r, now);
            if (sb_router_next_deadline(r) < -1)
                abort();
        }
        check_events(r, n);
        /* a handshake completes only on our own nonce coming back */
        if (before != SB_EP_CONNECTED && sb_router_state(r, e) == SB_EP_CONNECTED &&
            (!olen || alen != olen || memcmp(a, own, olen)))
            abort();
        /* a closed endpoint opens again, so the run goes on */
        if (sb_router_state(r, e) == SB_E_NOT_FOUND) {
            int i = op % NEP;
            ep[i] = sb_router_open(r, "ch", 2, (uint32_t)(i + 1), i + 1, 10, 35, 500, now);
            sb_router_allow(r, ep[i], "https://a.example", 17);
        }
        data += len, size -= (size_t)len;
    }
    sb_router_destroy(r);
    return 0;
}
