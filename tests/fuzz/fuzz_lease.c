/* Fuzz the lease heartbeat decoder with foreign bytes: errors or state
 * changes, never a crash; exactly one leader view stays consistent. */
#include <stdlib.h>

#include "frame.h"
#include "lease.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sb_lease *l = sb_lease_create(7, 100, 400, 4, 1, 0);
    uint8_t buf[96];
    double now = 0;
    sb_lease_start(l, now, 1);
    /* The input is a run of [len:u8][payload]; each payload is wrapped in a
     * valid PING frame when len is odd, so the fuzzer reaches the payload. */
    while (size) {
        size_t n = data[0] >> 1;
        int wrap = data[0] & 1;
        data++, size--;
        if (n > size)
            n = size;
        if (wrap) {
            sb_frame f;
            sb_frame_init(&f, SB_FRAME_PING);
            f.flags = SB_FRAME_F_BINARY;
            f.payload = data;
            f.payload_len = n;
            int k = sb_frame_write(&f, buf, sizeof buf);
            if (k > 0)
                sb_lease_recv(l, now, buf, (uint32_t)k);
        } else {
            sb_lease_recv(l, now, data, (uint32_t)n);
        }
        now += 37;
        sb_lease_tick(l, now);
        if (sb_lease_is_leader(l) && sb_lease_leader(l) != 7)
            abort();
        data += n, size -= n;
    }
    sb_lease_stop(l, now);
    sb_lease_destroy(l);
    return 0;
}
