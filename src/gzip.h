/* gzip — deflate/inflate on zlib 1.2.13: one-shot, streaming and
 * per-message (RFC 7692 style shared window) compression, every output capped.
 *
 * One sb_z object is one zlib stream plus an output buffer it owns. Output of
 * a call is read with sb_z_out()/sb_z_out_len() and stays valid until the next
 * call on the same object. */
#ifndef SB_GZIP_H
#define SB_GZIP_H

#include "switchboard.h"

enum sb_z_format {
    SB_Z_GZIP = 0, /* RFC 1952 */
    SB_Z_ZLIB = 1, /* RFC 1950 */
    SB_Z_RAW = 2   /* RFC 1951 */
};

enum sb_z_mode {
    SB_Z_DEFLATE = 0,
    SB_Z_INFLATE = 1
};

enum sb_z_flush {
    SB_Z_NO_FLUSH = 0,
    SB_Z_SYNC_FLUSH = 2,
    SB_Z_FINISH = 4
};

typedef struct sb_z sb_z;

/* mode: sb_z_mode; format: sb_z_format; level 0..9 (or -1 = 6) for deflate;
 * window_bits 9..15 (0 = 15); max_out caps the bytes one stream (or one
 * message, in message mode) may produce: 0 = 64 MiB. Returns NULL on bad
 * arguments or no memory. */
SB_EXPORT sb_z *sb_z_create(int mode, int format, int level, int window_bits, double max_out);
SB_EXPORT void sb_z_destroy(sb_z *z);

/* Streaming: feed n bytes; flush is sb_z_flush. Returns the number of output
 * bytes this call produced (read them with sb_z_out), or an sb_err. For
 * inflate, SB_Z_FINISH means "this was the last input": a stream that is not
 * complete then is SB_E_TRUNCATED. gzip inflate reads every member of a
 * multi-member file; bytes after a member that do not start another one are
 * SB_E_TRAILING_DATA. After an error the stream must be reset before reuse. */
SB_EXPORT int sb_z_push(sb_z *z, const uint8_t *in, size_t n, int flush);

/* Back to a fresh stream with the same settings (keeps allocations). */
int sb_z_reset(sb_z *z);
/* The output has been read: an output buffer grown past keep bytes is
 * freed (the stream and its window stay). */
void sb_z_trim(sb_z *z, size_t keep);
/* Bytes of output buffer held. */
size_t sb_z_capacity(const sb_z *z);

/* Per-message mode over one long-lived raw stream (shared window):
 * deflate: sync-flush the message and drop the 00 00 ff ff tail;
 * inflate: append the tail back and inflate one message, capped at max_out.
 * Returns the output length or an sb_err. */
SB_EXPORT int sb_z_message(sb_z *z, const uint8_t *in, size_t n);

SB_EXPORT const uint8_t *sb_z_out(const sb_z *z);
size_t sb_z_out_len(const sb_z *z);
/* Total input and output bytes since create/reset (for stats). */
SB_EXPORT double sb_z_total_in(const sb_z *z);
SB_EXPORT double sb_z_total_out(const sb_z *z);

/* One-shot: compress or decompress a whole buffer with cached streams, so a
 * burst of small messages does not pay zlib's set-up cost each time. */
typedef struct sb_gzip sb_gzip;
SB_EXPORT sb_gzip *sb_gzip_create(void);
void sb_gzip_destroy(sb_gzip *g);
/* Returns the compressed length (read with sb_gzip_out) or an sb_err. */
SB_EXPORT int sb_gzip_compress(sb_gzip *g, const uint8_t *in, size_t n, int level, int format);
/* Returns the decompressed length or an sb_err; max_out 0 = 64 MiB. */
SB_EXPORT int sb_gzip_decompress(sb_gzip *g, const uint8_t *in, size_t n, int format, double max_out);
SB_EXPORT const uint8_t *sb_gzip_out(const sb_gzip *g);

#endif
