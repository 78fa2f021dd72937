/* sse — Server-Sent Events: the WHATWG event-stream parser plus a small
 * reconnect state machine, sans I/O.
 *
 * Parser. Bytes are fed in arbitrary chunks; the result never depends on the
 * chunking. It implements the "text/event-stream" interpretation of the HTML
 * standard: one UTF-8 BOM skipped at the start of a stream, CR / LF / CRLF line
 * ends (a CR ending one chunk and an LF starting the next is one line end),
 * `data` lines joined with LF, `event`, `id` (ignored when it contains NUL),
 * `retry` (ASCII digits only), comments, fields without a colon, one leading
 * space stripped from the value, dispatch on a blank line, and an unterminated
 * event at the end of a stream is never dispatched. Text is decoded as UTF-8
 * with replacement: the output is always valid UTF-8 (invalid sequences become
 * U+FFFD exactly as the WHATWG decoder does) and each string also carries its
 * length in UTF-16 code units, so the JS glue decodes one buffer per feed and
 * slices it with substring().
 *
 * Output of one feed: sb_sse_count() events. Their strings live back to back
 * in sb_sse_text() and sb_sse_records() describes them, one sb_sse_record
 * (SB_SSE_REC_WORDS uint32) per event:
 *   data_bytes, data_units, type_bytes, type_units, id_bytes, id_units
 * The text of one event is data, then type, then id. type_bytes == 0 means the
 * type "message". SB_SSE_SAME in type_bytes means "the type of the last event
 * of this batch that carried type text", in id_bytes "the id of the previous
 * event of this batch"; either takes no text (an `id:` line followed by many
 * tiny events must not multiply the output, and most streams reuse a handful
 * of types). Both stay valid until the next call.
 *
 * Connection. The same object tracks one logical stream across reconnects:
 * IDLE -> CONNECTING -> OPEN -> WAITING -> CONNECTING ... -> CLOSED. On a
 * failure the delay before the next attempt is drawn with full jitter above a
 * floor: the floor is the server's last `retry:` (else min_ms), the ceiling
 * starts at twice the floor and grows by `factor` per failed attempt up to
 * max(max_ms, 2 floor). Attempts start again once a connection has delivered
 * an event, so the first reconnect after a healthy stream waits between
 * `retry` and 2 `retry` ms: never less than the server asked, and a fleet
 * of clients does not come back at one instant. */
#ifndef SB_SSE_H
#define SB_SSE_H

#include "switchboard.h"

#define SB_SSE_REC_WORDS 6
#define SB_SSE_SAME 0xFFFFFFFFu

enum sb_sse_state {
    SB_SSE_IDLE = 0,       /* created, never connected */
    SB_SSE_CONNECTING = 1, /* request in flight */
    SB_SSE_OPEN = 2,       /* response accepted, reading */
    SB_SSE_WAITING = 3,    /* lost, reconnect at sb_sse_deadline() */
    SB_SSE_CLOSED = 4      /* for good (caller, fatal answer or attempts used) */
};

SB_LAYOUT typedef struct sb_sse_record {
    uint32_t data_bytes, data_units, type_bytes, type_units, id_bytes, id_units;
} sb_sse_record;

typedef struct sb_sse sb_sse;

/* max_line caps one line in bytes (0 = 64 KiB); max_event caps the data of
 * one event (0 = 1 MiB); past either, feed returns SB_E_TOO_LARGE. Reconnect:
 * min_ms >= 0 is the floor until the server sends `retry:`, max_ms the cap on
 * growth, factor >= 1, max_attempts consecutive failures (0 = unlimited), seed
 * for the jitter. Returns NULL on bad arguments or no memory. */
SB_EXPORT sb_sse *sb_sse_create(uint32_t max_line, uint32_t max_event, double min_ms,
                                double max_ms, double factor, int max_attempts, uint32_t seed);
SB_EXPORT void sb_sse_destroy(sb_sse *s);

/* Parse n more bytes. Returns the number of events dispatched by this call
 * (read them with sb_sse_text/sb_sse_records), or SB_E_TOO_LARGE when a line
 * or an event passes its cap: the events before that point are still in the
 * output (sb_sse_count) and the stream stays failed until sb_sse_end(). */
SB_EXPORT int sb_sse_feed(sb_sse *s, const uint8_t *in, size_t n);
/* End of one stream (connection closed): discards a partial line and an
 * undispatched event, keeps the last event id and the retry value; the next
 * byte fed starts a new stream (BOM check included). */
SB_EXPORT void sb_sse_end(sb_sse *s);

SB_EXPORT int sb_sse_count(const sb_sse *s);
SB_EXPORT const uint8_t *sb_sse_text(const sb_sse *s);
SB_EXPORT size_t sb_sse_text_len(const sb_sse *s);
SB_EXPORT const uint32_t *sb_sse_records(const sb_sse *s);

/* The last event id as of the last dispatch (what Last-Event-ID resumes
 * from), UTF-8; and to seed it before the first connection. */
SB_EXPORT const uint8_t *sb_sse_last_id(const sb_sse *s);
SB_EXPORT size_t sb_sse_last_id_len(const sb_sse *s);
SB_EXPORT int sb_sse_set_last_id(sb_sse *s, const uint8_t *id, size_t n);
/* The server's reconnection time from `retry:`, or -1 if none seen yet. */
SB_EXPORT double sb_sse_retry(const sb_sse *s);

/* Connection state machine; each returns SB_OK or SB_E_BAD_STATE when the
 * transition is not valid from the current state. */
SB_EXPORT int sb_sse_connect(sb_sse *s, double now_ms);
SB_EXPORT int sb_sse_opened(sb_sse *s, double now_ms);
/* The connection failed or ended: ends the stream and schedules the next
 * attempt (sb_sse_deadline). Returns SB_OK, or SB_E_CONNECTION_LOST when
 * max_attempts are used up (the state is then CLOSED). */
SB_EXPORT int sb_sse_failed(sb_sse *s, double now_ms);
/* The server said how long to wait (Retry-After on a 429/503, in ms): the
 * next sb_sse_failed waits at least that long, at most max_ms (never less
 * than its own draw). One-shot; ms <= 0 clears it. */
SB_EXPORT void sb_sse_retry_after(sb_sse *s, double ms);
void sb_sse_close(sb_sse *s);
/* An event arrived by another path (the native EventSource transport): counts
 * as progress, like a dispatch by sb_sse_feed. */
SB_EXPORT void sb_sse_progress(sb_sse *s);
SB_EXPORT int sb_sse_state(const sb_sse *s);

/* What an HTTP response to a stream request means (sb_sse_response). */
enum sb_sse_verdict {
    SB_SSE_V_OPEN = 0,       /* 200 and text/event-stream: read it (sb_sse_opened) */
    SB_SSE_V_RETRY = 1,      /* the server is alive but busy or broken for now (408,
                              * 425, 429, 500, 502, 503, 504): try again (sb_sse_failed) */
    SB_SSE_V_HTTP_ERROR = 2, /* any other status: it would fail the same way again */
    SB_SSE_V_NO_CONTENT = 3, /* 204: the server asks us not to reconnect */
    SB_SSE_V_BAD_TYPE = 4    /* 200 with another content type */
};
/* Classify a response: its status, its Content-Type header (bytes, may be
 * empty) and its Retry-After header (bytes, may be empty: delay-seconds or
 * an IMF-fixdate, read on 429 and 503 only and applied as sb_sse_retry_after;
 * now_ms is the wall clock the date is measured from). Returns the verdict. */
SB_EXPORT int sb_sse_response(sb_sse *s, int status, const uint8_t *type, uint32_t ntype,
                              const uint8_t *retry_after, uint32_t nretry, double wall_ms);
/* Retry-After as ms from wall_ms: delay-seconds, or an IMF-fixdate ("Sun, 06
 * Nov 1994 08:49:37 GMT", RFC 9110 5.6.7); -1 when it is neither. */
double sb_sse_parse_retry_after(const uint8_t *v, uint32_t n, double wall_ms);
/* When to reconnect (ms, caller's clock) while WAITING, else -1. */
SB_EXPORT double sb_sse_deadline(const sb_sse *s);
/* Consecutive failed attempts since the last connection that made progress. */
SB_EXPORT int sb_sse_attempts(const sb_sse *s);

#endif
