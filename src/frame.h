/* frame — the one binary envelope every channel shares (docs/protocol.md).
 *
 * Wire layout, version 1 (all integers little-endian; varints are unsigned
 * LEB128, shortest form only):
 *
 *   byte 0   version << 4 | kind          version = 1, kind = enum sb_frame_kind
 *   byte 1   flags                        enum sb_frame_flag; bit 0x80 must be 0
 *   byte 2   field mask                   enum sb_frame_field; bits 0x20..0x80 must be 0
 *   varint   channel    if SB_FRAME_HAS_CHANNEL   (u32, non-zero)
 *   varint   id         if SB_FRAME_HAS_ID        (u32, non-zero)
 *   varint   seq        if SB_FRAME_HAS_SEQ       (u32, non-zero)
 *   varint   corr       if SB_FRAME_HAS_CORR      (u32, non-zero)
 *   varint   deadline   if SB_FRAME_HAS_DEADLINE  (integer ms, 0..2^53)
 *   varint   payload length (u32), then that many payload bytes
 *
 * A zero channel/id/seq/corr is encoded by leaving the field out, so every
 * frame has exactly one encoding: decode then encode gives the same bytes.
 * A batch frame's payload is a run of complete frames back to back
 * (optionally deflated, see batch.h). */
#ifndef SB_FRAME_H
#define SB_FRAME_H

#include "switchboard.h"

#define SB_FRAME_VERSION 1
/* Byte 0 is version << SB_FRAME_VERSION_SHIFT | kind; byte 1 the flags. */
#define SB_FRAME_VERSION_SHIFT 4
#define SB_FRAME_KIND_MASK 0x0f
#define SB_FRAME_FLAGS_BYTE 1
/* Largest header: 3 fixed bytes + 4 u32 varints + deadline varint + length. */
#define SB_FRAME_MAX_HEADER (3 + 4 * 5 + 8 + 5)

enum sb_frame_kind {
    SB_FRAME_MESSAGE = 0,  /* one-way application message */
    SB_FRAME_REQUEST = 1,  /* expects a response/error with corr = this id */
    SB_FRAME_RESPONSE = 2, /* corr = the request's id */
    SB_FRAME_ERROR = 3,    /* corr = the request's id; payload = error text/JSON */
    SB_FRAME_ACK = 4,      /* seq = cumulative ack; payload = selective ack ranges */
    SB_FRAME_PING = 5,
    SB_FRAME_PONG = 6,     /* corr = the ping's id */
    SB_FRAME_HELLO = 7,    /* handshake; payload = a tagged handshake message (protocol.md §12) */
    SB_FRAME_STATE_OP = 8, /* tab-sync state operation */
    SB_FRAME_BATCH = 9,    /* payload = frames (see batch.h) */
    SB_FRAME_SKIP = 10,    /* queue floor: seqs below `seq` on `channel` are
                            * resolved by the sender (expired/dead-lettered);
                            * the receiver stops waiting for them */
    SB_FRAME_KIND_COUNT_ = 11
};

enum sb_frame_flag {
    SB_FRAME_F_COMPRESSED = 0x01, /* payload is raw deflate (batch.h) */
    SB_FRAME_F_SHARED = 0x02,     /* ... continuing the link's shared window (needs COMPRESSED) */
    SB_FRAME_F_LAST = 0x04,       /* last frame of a batch / multi-part message */
    SB_FRAME_F_ACK_REQ = 0x08,    /* sender tracks this frame and wants an ack */
    SB_FRAME_F_BINARY = 0x10,     /* payload is opaque bytes, not UTF-8 JSON */
    SB_FRAME_F_RETRY = 0x20,      /* retransmission (receiver may already have it) */
    SB_FRAME_F_FROM = 0x40,       /* MESSAGE from a server: the payload starts with the sender
                                   * it stamped (u8 length, UTF-8), then the message */
    SB_FRAME_F_MASK_ = 0x7f
};

enum sb_frame_field {
    SB_FRAME_HAS_CHANNEL = 0x01,
    SB_FRAME_HAS_ID = 0x02,
    SB_FRAME_HAS_SEQ = 0x04,
    SB_FRAME_HAS_CORR = 0x08,
    SB_FRAME_HAS_DEADLINE = 0x10,
    SB_FRAME_HAS_MASK_ = 0x1f
};

/* A decoded frame. payload points into the decoder's input (no copy). */
typedef struct sb_frame {
    uint8_t kind;
    uint8_t flags;
    uint32_t channel;
    uint32_t id;
    uint32_t seq;
    uint32_t corr;
    double deadline; /* absolute ms (Date.now() clock), -1 = none */
    const uint8_t *payload;
    size_t payload_len;
} sb_frame;

/* ---- pure functions (no object) ------------------------------------------ */

/* Zero the fields, deadline -1. */
void sb_frame_init(sb_frame *f, int kind);
/* Bytes sb_frame_write would produce, or an sb_err for an invalid frame. */
int sb_frame_size(const sb_frame *f);
/* Encode into out[0..cap); returns the length, SB_E_BUFFER_TOO_SMALL or
 * SB_E_INVALID (bad kind/flags, deadline not an integer in 0..2^53 or -1,
 * payload over 2^31). */
int sb_frame_write(const sb_frame *f, uint8_t *out, size_t cap);
/* Decode one frame from the front of in[0..n); returns the bytes it spans.
 * Errors: SB_E_TRUNCATED, SB_E_BAD_VERSION, SB_E_BAD_FRAME (unknown kind,
 * reserved bits, non-shortest varint, zero in a present field, SHARED
 * without COMPRESSED), SB_E_TOO_LARGE (payload over max_payload). */
int sb_frame_parse(const uint8_t *in, size_t n, size_t max_payload, sb_frame *f);
/* As sb_frame_parse, but the frame must span all of in: SB_E_TRAILING_DATA if not. */
int sb_frame_decode(const uint8_t *in, size_t n, size_t max_payload, sb_frame *f);

/* Varint helpers shared with batch/queue (shortest form, strict). */
size_t sb_varint_put(uint8_t *out, uint64_t v);
/* Returns bytes read, 0 if truncated, -1 if malformed or above max. */
int sb_varint_get(const uint8_t *in, size_t n, uint64_t max, uint64_t *v);

/* ---- codec object: the wasm/JS face ------------------------------------- */

/* Fixed layout on every platform (no pointers): JS reads it as
 * Uint32Array[8] + Float64 at byte 32 (offsets from js/constants.js).
 * payload_off is relative to the input given to sb_frame_codec_decode. */
SB_LAYOUT typedef struct sb_frame_view {
    uint32_t kind, flags, channel, id, seq, corr, payload_off, payload_len;
    double deadline;
} sb_frame_view;

typedef struct sb_frame_codec sb_frame_codec;

/* max_payload caps decoded and encoded payloads (0 = 16 MiB). */
SB_EXPORT sb_frame_codec *sb_frame_codec_create(uint32_t max_payload);
SB_EXPORT void sb_frame_codec_destroy(sb_frame_codec *c);
/* Encode one frame into the codec's buffer; returns its length (bytes at
 * sb_frame_codec_out, valid until the next call) or an sb_err. */
SB_EXPORT int sb_frame_codec_encode(sb_frame_codec *c, int kind, int flags, uint32_t channel, uint32_t id, uint32_t seq, uint32_t corr, double deadline, const uint8_t *payload, uint32_t payload_len);
SB_EXPORT const uint8_t *sb_frame_codec_out(const sb_frame_codec *c);
/* Bytes of the output buffer; sb_frame_codec_trim gives it back (what
 * sb_frame_codec_out pointed to is gone). */
size_t sb_frame_codec_capacity(const sb_frame_codec *c);
void sb_frame_codec_trim(sb_frame_codec *c);
/* Decode exactly one frame spanning in[0..n); fills the view. Returns 0 or an sb_err. */
SB_EXPORT int sb_frame_codec_decode(sb_frame_codec *c, const uint8_t *in, uint32_t n);
/* As decode but reads one frame from the front and returns its length. */
SB_EXPORT int sb_frame_codec_parse(sb_frame_codec *c, const uint8_t *in, uint32_t n);
SB_EXPORT const sb_frame_view *sb_frame_codec_view(const sb_frame_codec *c);

/* "message", "request", ... or "unknown". */
const char *sb_frame_kind_name(int kind);

#endif
