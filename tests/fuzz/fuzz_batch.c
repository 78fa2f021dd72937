/* Batch decode (with deflate and nesting) and the receiving queue: bounded,
 * no crash, every yielded frame re-decodes. The first byte picks caps. */
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "queue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sb_unbatch *u;
    sb_inbox *in;
    sb_outbox *o;
    uint8_t mode;
    int k;
    if (size < 1)
        return 0;
    mode = data[0];
    data++;
    size--;
    u = sb_unbatch_create(1u << 16, (mode & 1) ? 4096 : 1u << 20, 1 + (mode >> 5));
    in = sb_inbox_create(1 + (mode & 15), 1u << 16, 4, 0);
    o = sb_outbox_create(16, 4096, SB_QUEUE_REJECT, 4, 10, 1, 100, 2, 4, mode);
    sb_outbox_send(o, SB_FRAME_MESSAGE, 1, 0, 0, 0, 0, (const uint8_t *)"x", 1, 0);
    sb_outbox_next_frame(o, 0);
    /* Feed the input twice (the second time through a shared window, if any). */
    for (int round = 0; round < 2; round++) {
        k = sb_unbatch_feed(u, data, (uint32_t)size);
        if (k >= 0) {
            int got = 0;
            sb_frame f;
            while (sb_unbatch_next_frame(u, &f) == 1) {
                const uint8_t *p = sb_unbatch_frame(u);
                uint32_t n = sb_unbatch_frame_len(u);
                if (f.kind == SB_FRAME_BATCH)
                    abort(); /* batches are flattened */
                got++;
                if (f.kind == SB_FRAME_ACK) {
                    sb_outbox_on_ack(o, p, n, round);
                } else if (sb_inbox_push(in, p, n, round) >= 0) {
                    while (sb_inbox_next(in) == 1)
                        if (sb_inbox_view(in)->payload_off + sb_inbox_view(in)->payload_len > sb_inbox_frame_len(in))
                            abort();
                }
            }
            if (got != k)
                abort();
        }
        while (sb_inbox_take_ack(in, 10) > 0)
            ;
    }
    /* Restore paths read untrusted (persisted) bytes too. */
    {
        sb_outbox *r = sb_outbox_create(16, 4096, SB_QUEUE_REJECT, 4, 10, 1, 100, 2, 4, 1);
        sb_inbox *ri = sb_inbox_create(8, 4096, 4, 0);
        if (sb_outbox_restore(r, data, (uint32_t)size, 0) >= 0)
            while (sb_outbox_next_frame(r, 0) > 0)
                ;
        sb_inbox_restore(ri, data, (uint32_t)size);
        sb_outbox_destroy(r);
        sb_inbox_destroy(ri);
    }
    /* Writer -> reader round trip: the input cut into frames, batched with a
     * shared window over two batches, must come back identical. */
    {
        /* zlib set-up dominates a run, so these two live across runs; both
         * start a fresh window every run, so runs stay independent. */
        static sb_batch *ws[2];
        static sb_unbatch *rd;
        sb_batch *w;
        if (!ws[0]) {
            ws[0] = sb_batch_create(3, 1u << 16, 1, 0, SB_BATCH_SHARED, 1);
            ws[1] = sb_batch_create(8, 1u << 16, 1, 32, SB_BATCH_SHARED, 1);
            rd = sb_unbatch_create(1u << 16, 1u << 20, 4);
        }
        w = ws[(mode >> 6) & 1];
        sb_batch_reset_stream(w);
        sb_unbatch_reset_stream(rd);
        uint8_t *fb = malloc(size + SB_FRAME_MAX_HEADER);
        size_t pos = 0, back = 0;
        uint32_t seq = 0;
        while (pos < size) {
            size_t chunk = 1 + (data[pos] % 61);
            sb_frame f;
            int n, rc;
            if (chunk > size - pos)
                chunk = size - pos;
            sb_frame_init(&f, SB_FRAME_MESSAGE);
            f.seq = ++seq;
            f.payload = data + pos;
            f.payload_len = chunk;
            n = sb_frame_write(&f, fb, size + SB_FRAME_MAX_HEADER);
            rc = sb_batch_add(w, fb, (uint32_t)n, 0);
            pos += chunk;
            if (rc < 0)
                abort();
            for (int step = 0; step < 2; step++) {
                int len = (step == 0 && (rc & SB_BATCH_OUT)) ? (int)sb_batch_out_len(w)
                          : (step == 1 && ((rc & SB_BATCH_DUE) || pos >= size)) ? sb_batch_flush(w) : 0;
                sb_frame g;
                if (len <= 0)
                    continue;
                if (sb_unbatch_feed(rd, sb_batch_out(w), (uint32_t)len) < 0)
                    abort();
                while (sb_unbatch_next_frame(rd, &g) == 1) {
                    if (back + g.payload_len > size || memcmp(g.payload, data + back, g.payload_len) != 0)
                        abort();
                    back += g.payload_len;
                }
            }
        }
        if (back != size)
            abort();
        free(fb);
    }
    sb_unbatch_destroy(u);
    sb_inbox_destroy(in);
    sb_outbox_destroy(o);
    return 0;
}
