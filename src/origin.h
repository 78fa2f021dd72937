/* origin — parse, normalize and match web origins against an allowlist.
 *
 * An origin is "scheme://host[:port]" (RFC 6454 serialization, what
 * MessageEvent.origin carries) or the opaque "null". Normalization lowercases
 * scheme and host, drops the scheme's default port (http/ws 80, https/wss 443,
 * ftp 21), strips leading zeros from the port and accepts one trailing "/".
 * Hosts arrive already IDNA-encoded (the browser punycodes them), so non-ASCII
 * bytes are rejected rather than guessed at.
 *
 * Allowlist entries are one of:
 *   "https://app.example.com[:port]"  exact origin (normalized before storing)
 *   "https://" "*" ".example.com[:port]"  any subdomain, any depth, of example.com,
 *                                     same scheme and same port only; never the
 *                                     bare example.com itself
 *   "*"                               any well-formed non-opaque origin
 *   "null"                            the opaque origin (sandboxed frames, file:)
 * "*" and "null" only ever match because the caller added them: nothing is
 * allowed by default, and "*" does not imply "null". */
#ifndef SB_ORIGIN_H
#define SB_ORIGIN_H

#include "switchboard.h"

/* Longest origin string accepted (scheme + host + port); longer is BAD_ORIGIN. */
#define SB_ORIGIN_MAX 300

/* Normalize in[0..len) into out (cap bytes, NUL-terminated when room).
 * Returns the normalized length, SB_E_BAD_ORIGIN if it does not parse, or
 * SB_E_BUFFER_TOO_SMALL. */
SB_EXPORT int sb_origin_normalize(const char *in, size_t len, char *out, size_t cap);

typedef struct sb_origin_list sb_origin_list;

/* max_entries caps the list (1..4096). */
SB_EXPORT sb_origin_list *sb_origin_list_create(int max_entries);
SB_EXPORT void sb_origin_list_destroy(sb_origin_list *l);

/* Add one entry (see above). Returns its index, SB_E_BAD_ORIGIN for a pattern
 * that does not parse (including wildcards anywhere but the leftmost label,
 * or over an IP address), SB_E_TOO_LARGE when the list is full. Adding an
 * entry that is already present returns the existing index. */
SB_EXPORT int sb_origin_list_add(sb_origin_list *l, const char *pattern, size_t len);
int sb_origin_list_count(const sb_origin_list *l);
void sb_origin_list_clear(sb_origin_list *l);

/* Index of the first entry that allows the origin, SB_E_ORIGIN_REJECTED if
 * none does, SB_E_BAD_ORIGIN if the origin does not parse. */
SB_EXPORT int sb_origin_list_match(const sb_origin_list *l, const char *origin, size_t len);

/* The normalized text of entry i (NUL-terminated), or NULL. For exact
 * entries this is the targetOrigin to post to. */
const char *sb_origin_list_entry(const sb_origin_list *l, int i);
/* 1 if entry i is an exact origin (usable as a postMessage targetOrigin). */
int sb_origin_list_is_exact(const sb_origin_list *l, int i);

#endif
