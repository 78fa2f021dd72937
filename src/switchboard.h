/* switchboard — public C API: error codes and shared conventions.
 *
 * Conventions every module follows (see docs/decisions.md):
 *  - opaque handles: sb_<mod>_create() / sb_<mod>_destroy();
 *  - functions return int: >= 0 success (often a count or length), < 0 an sb_err;
 *  - time is a double of milliseconds supplied by the caller (now_ms); the core
 *    never reads a clock, and reports its next deadline (or -1 for none);
 *  - randomness comes from a caller-supplied 32-bit seed (sb_rng below);
 *  - no globals, every buffer and table has a cap given at create time.
 */
#ifndef SB_SWITCHBOARD_H
#define SB_SWITCHBOARD_H

#include <stddef.h>
#include <stdint.h>

/* Marks a function that the wasm build exports (the list is generated from
 * these markers at configure time): what the JS glue or its Node tests call.
 * The rest is C API only; the linker drops what no export reaches. It
 * expands to nothing. */
#define SB_EXPORT
/* Like SB_EXPORT, for the relay's core alone (dist/switchboard-relay.wasm):
 * the server role of src/session.c, which no browser core links. */
#define SB_RELAY_EXPORT

/* Marks a struct whose memory the JS glue reads at fixed offsets
 * (`SB_LAYOUT typedef struct sb_x { fixed-width fields } sb_x;`):
 * .ci/constants.mjs writes its field offsets into js/constants.js. It
 * expands to nothing. */
#define SB_LAYOUT

/* Version of the wasm boundary (exported signatures, SB_LAYOUT structs),
 * bumped whenever it changes: sb_wasm_abi() returns it, and the JS loader,
 * which has it from js/constants.js, refuses a stale separately served
 * .wasm instead of misbehaving. */
#define SB_WASM_ABI 1

typedef enum sb_err {
    SB_OK = 0,
    SB_E_NO_MEMORY = -1,          /* allocation failed */
    SB_E_INVALID = -2,            /* bad argument from the caller */
    SB_E_TOO_LARGE = -3,          /* a configured cap was hit */
    SB_E_CORRUPT = -4,            /* compressed data is not valid */
    SB_E_BAD_CHECKSUM = -5,       /* CRC32 / Adler-32 / ISIZE mismatch */
    SB_E_TRUNCATED = -6,          /* input ended before the structure did */
    SB_E_TRAILING_DATA = -7,      /* bytes after a complete structure */
    SB_E_BAD_FRAME = -8,          /* frame does not decode */
    SB_E_BAD_VERSION = -9,        /* unknown protocol version */
    SB_E_TOO_DEEP = -10,          /* nesting deeper than allowed */
    SB_E_QUEUE_FULL = -11,        /* queue bound reached under the reject policy */
    SB_E_TIMEOUT = -12,           /* a deadline passed */
    SB_E_CLOSED = -13,            /* object already closed */
    SB_E_ORIGIN_REJECTED = -14,   /* origin not in the allowlist */
    SB_E_NOT_FOUND = -15,         /* no such id / handle / key */
    SB_E_BAD_STATE = -16,         /* call not valid in the current state */
    SB_E_CONNECTION_LOST = -17,   /* peer went away with work pending */
    SB_E_EXPIRED = -18,           /* message TTL elapsed before delivery */
    SB_E_BUFFER_TOO_SMALL = -19,  /* caller's output buffer is too small */
    SB_E_BAD_ORIGIN = -20,        /* origin string does not parse */
    SB_E_INTERNAL = -21,          /* a library bug: please report */
    SB_E_RATE_LIMITED = -22,      /* a peer sent more than its rate limit allows */
    SB_E_LAST_ = -23
} sb_err;

/* Human-readable message for an error code (static storage). */
SB_EXPORT const char *sb_strerror(int err);
/* Stable identifier used by the JS SwitchboardError.code, e.g. "TOO_LARGE". */
SB_EXPORT const char *sb_errname(int err);

/* Library version, "MAJOR.MINOR.PATCH". */
const char *sb_version(void);

/* Deterministic PRNG (xorshift32 variant) seeded by the caller; modules embed
 * one so jitter and ids are reproducible in tests. */
typedef struct sb_rng {
    uint32_t s;
} sb_rng;

static inline void sb_rng_seed(sb_rng *r, uint32_t seed)
{
    r->s = seed ? seed : 0x9e3779b9u;
}

static inline uint32_t sb_rng_next(sb_rng *r)
{
    uint32_t x = r->s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    r->s = x;
    return x * 0x2545f491u;
}

/* The earlier of two deadlines, where -1 means none. */
static inline double sb_min_deadline(double a, double b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

/* Uniform double in [0, 1). */
static inline double sb_rng_unit(sb_rng *r)
{
    return (double)(sb_rng_next(r) >> 8) * (1.0 / 16777216.0);
}

#endif
