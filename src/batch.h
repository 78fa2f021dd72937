/* batch — many frames in one transport message, optionally deflated.
 *
 * Writer (sb_batch): collects encoded frames and closes a batch on max count,
 * max bytes or max delay, whichever comes first. The delay is reported as a
 * deadline (sb_batch_deadline); the glue keeps one timer and calls
 * sb_batch_poll. A batch whose frames total at least compress_above bytes is
 * deflated, and sent deflated only if that is actually smaller.
 *
 * Output: a lone uncompressed frame is sent as is; anything else is a frame
 * of kind SB_FRAME_BATCH whose payload is the frames back to back, raw
 * deflate (per message, sync-flushed, 00 00 ff ff tail dropped) when
 * SB_FRAME_F_COMPRESSED is set. In shared mode consecutive compressed batches
 * continue one deflate window (SB_FRAME_F_SHARED); a compressed batch without
 * SHARED starts a fresh window, which the reader follows. So the writer can
 * drop a compressed result that did not help and restart the window, and a
 * new connection starts fresh after sb_batch_reset_stream.
 *
 * Reader (sb_unbatch): takes one transport message, validates all of it
 * (depth, sizes, every inner frame) before yielding anything, then yields the
 * frames one by one. Nested batches are allowed up to max_depth levels
 * (the outer batch is level 1); only the outer one may be compressed. */
#ifndef SB_BATCH_H
#define SB_BATCH_H

#include "frame.h"

enum sb_batch_mode {
    SB_BATCH_PLAIN = 0,  /* never compress */
    SB_BATCH_DEFLATE = 1, /* each compressed batch is its own deflate stream */
    SB_BATCH_SHARED = 2  /* one window for the life of the link (best ratio) */
};

/* sb_batch_add result bits. */
enum sb_batch_result {
    SB_BATCH_OUT = 1, /* a batch was closed to make room: send sb_batch_out now */
    SB_BATCH_DUE = 2  /* the pending batch is full: call sb_batch_flush */
};

typedef struct sb_batch sb_batch;

/* max_messages >= 1; max_bytes caps the frames of one batch before
 * compression (a single larger frame travels alone); max_delay_ms >= 0;
 * level 0..9 or -1 (= 6). Returns NULL on bad arguments. */
SB_EXPORT sb_batch *sb_batch_create(uint32_t max_messages, uint32_t max_bytes, double max_delay_ms, uint32_t compress_above, int mode, int level);
SB_EXPORT void sb_batch_destroy(sb_batch *b);
/* Add one encoded frame (validated). Returns a mask of SB_BATCH_OUT /
 * SB_BATCH_DUE (0 = keep collecting) or an sb_err. Read SB_BATCH_OUT's bytes
 * before calling sb_batch_flush. */
SB_EXPORT int sb_batch_add(sb_batch *b, const uint8_t *frame, uint32_t n, double now_ms);
/* Close the pending batch; returns its encoded length (0 if nothing pending). */
SB_EXPORT int sb_batch_flush(sb_batch *b);
/* The same; may_compress 0 sends it uncompressed (latency-bound frames:
 * a lone request or ping is not worth a deflate call on both ends). */
int sb_batch_flush_as(sb_batch *b, int may_compress);
/* sb_batch_out has been read: an output buffer grown past SB_BUF_KEEP
 * for a large batch is given back (the pending frames and the compressor's
 * output are given back as each batch closes). */
void sb_batch_release(sb_batch *b);
/* Bytes of buffers held (pending frames, output, the compressor's output). */
size_t sb_batch_capacity(const sb_batch *b);
/* Nothing pending: every buffer goes back, whatever its size (an idle
 * link; the compressor's window stays). */
void sb_batch_trim(sb_batch *b);
/* Flush if the delay deadline has passed; returns the length or 0. */
SB_EXPORT int sb_batch_poll(sb_batch *b, double now_ms);
/* When the pending batch must be flushed, or -1 if nothing is pending. */
SB_EXPORT double sb_batch_deadline(const sb_batch *b);
SB_EXPORT const uint8_t *sb_batch_out(const sb_batch *b);
SB_EXPORT uint32_t sb_batch_out_len(const sb_batch *b);
SB_EXPORT uint32_t sb_batch_pending(const sb_batch *b);
SB_EXPORT uint32_t sb_batch_pending_bytes(const sb_batch *b);
/* New link: the next compressed batch starts a fresh window. */
SB_EXPORT void sb_batch_reset_stream(sb_batch *b);

enum sb_batch_stat {
    SB_BATCH_STAT_FRAMES = 0,     /* frames added */
    SB_BATCH_STAT_BATCHES = 1,    /* transport messages produced */
    SB_BATCH_STAT_RAW_BYTES = 2,  /* bytes of frames added */
    SB_BATCH_STAT_OUT_BYTES = 3,  /* bytes produced */
    SB_BATCH_STAT_COMPRESSED = 4, /* batches sent compressed */
    SB_BATCH_STAT_SKIPPED = 5     /* compressions dropped because not smaller */
};
SB_EXPORT double sb_batch_stat(const sb_batch *b, int which);

typedef struct sb_unbatch sb_unbatch;

/* max_payload: cap per frame payload and per transport message (0 = 16 MiB);
 * max_inflated: cap on a decompressed batch (0 = 16 MiB); max_depth 1..16
 * (0 = 4). */
SB_EXPORT sb_unbatch *sb_unbatch_create(uint32_t max_payload, uint32_t max_inflated, int max_depth);
SB_EXPORT void sb_unbatch_destroy(sb_unbatch *u);
/* Take one transport message (copied). Returns the number of frames it
 * holds, or an sb_err (then it yields nothing): TRUNCATED, BAD_VERSION,
 * BAD_FRAME, TOO_LARGE, TRAILING_DATA, TOO_DEEP, CORRUPT (bad deflate or
 * SHARED with no window). */
SB_EXPORT int sb_unbatch_feed(sb_unbatch *u, const uint8_t *in, uint32_t n);
/* Advance to the next frame: 1 = ready, 0 = no more. */
SB_EXPORT int sb_unbatch_next(sb_unbatch *u);
/* The current frame: view (payload_off relative to sb_unbatch_frame) and
 * its encoded bytes, valid until the next feed. */
SB_EXPORT const sb_frame_view *sb_unbatch_view(const sb_unbatch *u);
SB_EXPORT const uint8_t *sb_unbatch_frame(const sb_unbatch *u);
SB_EXPORT uint32_t sb_unbatch_frame_len(const sb_unbatch *u);
/* Bytes of the frames the last feed holds (after inflating). Once the last
 * frame has been yielded (sb_unbatch_next returned 0) a buffer that grew
 * past SB_BUF_KEEP for a large message is given back. */
uint32_t sb_unbatch_bytes(const sb_unbatch *u);
/* Bytes of buffers held (the message, its frame list, the inflater's output). */
size_t sb_unbatch_capacity(const sb_unbatch *u);
/* Every frame fed has been yielded: every buffer goes back (an idle link;
 * the inflater's window stays). */
void sb_unbatch_trim(sb_unbatch *u);
/* C convenience: next frame decoded into f (payload points into u). */
int sb_unbatch_next_frame(sb_unbatch *u, sb_frame *f);
/* New link: forget the shared window. */
SB_EXPORT void sb_unbatch_reset_stream(sb_unbatch *u);

#endif
