/* Fuzz the sync decoder/merger with foreign bytes: any input either fails
 * with an sb_err or merges; merging it again changes nothing (idempotent),
 * whatever it asked of the policy ends within a few outputs (a poll loop
 * always returns 0), and the resulting state survives a snapshot round trip. */
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "sync.h"

static sb_sync *seeded(uint32_t id)
{
    sb_sync *s = sb_sync_create(id, 32, 16, 64, 32, 8);
    sb_sync_limits(s, 1024, 100000); /* a total cap and a skew bound in reach of the fuzzer */
    sb_sync_set(s, 1000, (const uint8_t *)"a", 1, (const uint8_t *)"1", 1);
    sb_sync_set(s, 1001, (const uint8_t *)"b", 1, (const uint8_t *)"\"x\"", 3);
    sb_sync_delete(s, 1002, (const uint8_t *)"a", 1);
    sb_sync_flush(s);
    sb_sync_peer_join(s, 2);
    /* Started, leading and saving, so every policy is in reach. */
    sb_sync_start(s, 1500, 0, 1000, 0, 1);
    sb_sync_leader(s, 1500, 1);
    while (sb_sync_poll(s, 1500) > 0)
        ;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sb_sync *s = seeded(1), *copy;
    uint8_t *wrapped = NULL;
    int rc;
    /* Odd first byte: the rest is a sync payload, wrapped in a valid frame
     * here so the fuzzer spends its time inside the sync decoder. */
    if (size && (data[0] & 1)) {
        sb_frame f;
        sb_frame_init(&f, SB_FRAME_STATE_OP);
        f.flags = SB_FRAME_F_BINARY;
        f.payload = data + 1;
        f.payload_len = size - 1;
        wrapped = malloc(size + SB_FRAME_MAX_HEADER);
        rc = sb_frame_write(&f, wrapped, size + SB_FRAME_MAX_HEADER);
        if (rc < 0)
            abort();
        data = wrapped;
        size = (size_t)rc;
    }
    rc = sb_sync_merge(s, 2000, data, (uint32_t)size);
    if (rc >= 0) {
        int t = sb_sync_last_type(s);
        int again = sb_sync_merge(s, 2000, data, (uint32_t)size);
        if (again < 0 || ((t == SB_SYNC_OPS || t == SB_SYNC_SNAPSHOT) && again != 0))
            abort();
        /* A request, an answer, a save: each once, then nothing is due. */
        for (int i = 0; (rc = sb_sync_poll(s, 2000)) != 0; i++)
            if (rc < 0 || i > 4)
                abort();
        if (sb_sync_deadline(s) >= 0 && sb_sync_deadline(s) <= 2000)
            abort(); /* nothing left due now: the glue's timer would spin */
        sb_sync_gc(s);
        int n = sb_sync_snapshot(s, 3000);
        if (n <= 0)
            abort();
        uint8_t *snap = malloc((size_t)n);
        memcpy(snap, sb_sync_out(s), (size_t)n);
        copy = sb_sync_create(3, 32, 16, 64, 32, 8);
        if (sb_sync_merge(copy, 3000, snap, (uint32_t)n) < 0 || sb_sync_count(copy) != sb_sync_count(s))
            abort();
        free(snap);
        sb_sync_destroy(copy);
    }
    sb_sync_destroy(s);
    free(wrapped);
    return 0;
}
