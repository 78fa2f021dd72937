/* Error strings and version: the only module-free part of the public API. */
#include "switchboard.h"

static const struct {
    const char *name;
    const char *msg;
} sb_errors[] = {
    {"OK", "success"},
    {"NO_MEMORY", "out of memory"},
    {"INVALID", "invalid argument"},
    {"TOO_LARGE", "size limit exceeded"},
    {"CORRUPT", "corrupt compressed data"},
    {"BAD_CHECKSUM", "checksum or length mismatch"},
    {"TRUNCATED", "input truncated"},
    {"TRAILING_DATA", "trailing data after end of stream"},
    {"BAD_FRAME", "malformed frame"},
    {"BAD_VERSION", "unsupported protocol version"},
    {"TOO_DEEP", "nesting too deep"},
    {"QUEUE_FULL", "queue full"},
    {"TIMEOUT", "timed out"},
    {"CLOSED", "closed"},
    {"ORIGIN_REJECTED", "origin not allowed"},
    {"NOT_FOUND", "not found"},
    {"BAD_STATE", "operation not valid in this state"},
    {"CONNECTION_LOST", "connection lost"},
    {"EXPIRED", "message expired"},
    {"BUFFER_TOO_SMALL", "output buffer too small"},
    {"BAD_ORIGIN", "malformed origin"},
    {"INTERNAL", "internal error"},
    {"RATE_LIMITED", "rate limit exceeded"},
};

#define SB_NERR ((int)(sizeof sb_errors / sizeof sb_errors[0]))
_Static_assert(SB_NERR == -SB_E_LAST_, "sb_errors must list every sb_err");

const char *sb_strerror(int err)
{
    /* Range-check before negating: -INT_MIN is undefined. */
    return (err <= 0 && err > SB_E_LAST_) ? sb_errors[-err].msg : "unknown error";
}

const char *sb_errname(int err)
{
    return (err <= 0 && err > SB_E_LAST_) ? sb_errors[-err].name : "UNKNOWN";
}

const char *sb_version(void)
{
    return "0.1.0";
}
