/* frame — see frame.h and docs/protocol.md. */
#include "frame.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* js/frame.js reads the view as Uint32Array[8] + Float64 at byte 32. */
_Static_assert(offsetof(sb_frame_view, payload_len) == 28, "sb_frame_view layout");
_Static_assert(offsetof(sb_frame_view, deadline) == 32, "sb_frame_view layout");

#define DEADLINE_MAX 9007199254740992.0 /* 2^53: exact in a double and in JS */
#define DEFAULT_MAX_PAYLOAD (16u << 20)

size_t sb_varint_put(uint8_t *out, uint64_t v)
{
    size_t i = 0;
    while (v >= 0x80) {
        out[i++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[i++] = (uint8_t)v;
    return i;
}

static size_t varint_len(uint64_t v)
{
    size_t i = 1;
    while (v >= 0x80) {
        v >>= 7;
        i++;
    }
    return i;
}

int sb_varint_get(const uint8_t *in, size_t n, uint64_t max, uint64_t *v)
{
    uint64_t x = 0;
    for (size_t i = 0; i < 10; i++) {
        uint8_t b;
        if (i >= n)
            return 0;
        b = in[i];
        if (i == 9 && b > 1)
            return -1; /* beyond 64 bits */
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            /* Shortest form only: a trailing zero group would give the
             * same value a second encoding. */
            if (i > 0 && b == 0)
                return -1;
            if (x > max)
                return -1;
            *v = x;
            return (int)(i + 1);
        }
    }
    return -1;
}

void sb_frame_init(sb_frame *f, int kind)
{
    memset(f, 0, sizeof *f);
    f->kind = (uint8_t)kind;
    f->deadline = -1;
}

static int check_frame(const sb_frame *f, unsigned *mask)
{
    unsigned m = 0;
    if (f->kind >= SB_FRAME_KIND_COUNT_ || (f->flags & ~SB_FRAME_F_MASK_))
        return SB_E_INVALID;
    if ((f->flags & SB_FRAME_F_SHARED) && !(f->flags & SB_FRAME_F_COMPRESSED))
        return SB_E_INVALID;
    if (f->payload_len > 0x7fffffffu || (f->payload_len && !f->payload))
        return SB_E_INVALID;
    if (f->deadline != -1) {
        if (!(f->deadline >= 0 && f->deadline <= DEADLINE_MAX) || floor(f->deadline) != f->deadline)
            return SB_E_INVALID;
        m |= SB_FRAME_HAS_DEADLINE;
    }
    if (f->channel)
        m |= SB_FRAME_HAS_CHANNEL;
    if (f->id)
        m |= SB_FRAME_HAS_ID;
    if (f->seq)
        m |= SB_FRAME_HAS_SEQ;
    if (f->corr)
        m |= SB_FRAME_HAS_CORR;
    *mask = m;
    return SB_OK;
}

int sb_frame_size(const sb_frame *f)
{
    unsigned m;
    size_t n = 3;
    int rc = f ? check_frame(f, &m) : SB_E_INVALID;
    if (rc < 0)
        return rc;
    if (m & SB_FRAME_HAS_CHANNEL)
        n += varint_len(f->channel);
    if (m & SB_FRAME_HAS_ID)
        n += varint_len(f->id);
    if (m & SB_FRAME_HAS_SEQ)
        n += varint_len(f->seq);
    if (m & SB_FRAME_HAS_CORR)
        n += varint_len(f->corr);
    if (m & SB_FRAME_HAS_DEADLINE)
        n += varint_len((uint64_t)f->deadline);
    n += varint_len(f->payload_len) + f->payload_len;
    if (n > 0x7fffffffu)
        return SB_E_TOO_LARGE;
    return (int)n;
}

int sb_frame_write(const sb_frame *f, uint8_t *out, size_t cap)
{
    unsigned m;
    size_t i = 0;
    int size = sb_frame_size(f);
    if (size < 0)
        return size;
    if ((size_t)size > cap || !out)
        return SB_E_BUFFER_TOO_SMALL;
    check_frame(f, &m);
    out[i++] = (uint8_t)(SB_FRAME_VERSION << SB_FRAME_VERSION_SHIFT | f->kind);
    out[i++] = f->flags;
    out[i++] = (uint8_t)m;
    if (m & SB_FRAME_HAS_CHANNEL)
        i += sb_varint_put(out + i, f->channel);
    if (m & SB_FRAME_HAS_ID)
        i += sb_varint_put(out + i, f->id);
    if (m & SB_FRAME_HAS_SEQ)
        i += sb_varint_put(out + i, f->seq);
    if (m & SB_FRAME_HAS_CORR)
        i += sb_varint_put(out + i, f->corr);
    if (m & SB_FRAME_HAS_DEADLINE)
        i += sb_varint_put(out + i, (uint64_t)f->deadline);
    i += sb_varint_put(out + i, f->payload_len);
    if (f->payload_len)
        memcpy(out + i, f->payload, f->payload_len);
    return size;
}

/* Reads one present u32 field: non-zero (a zero is written by omission). */
static int get_u32(const uint8_t *in, size_t n, size_t *pos, uint32_t *out)
{
    uint64_t v;
    int r = sb_varint_get(in + *pos, n - *pos, 0xffffffffu, &v);
    if (r == 0)
        return SB_E_TRUNCATED;
    if (r < 0 || v == 0)
        return SB_E_BAD_FRAME;
    *pos += (size_t)r;
    *out = (uint32_t)v;
    return SB_OK;
}

int sb_frame_parse(const uint8_t *in, size_t n, size_t max_payload, sb_frame *f)
{
    size_t pos = 3;
    unsigned ver, kind, flags, mask;
    uint64_t v;
    int r;
    if (!f || (!in && n))
        return SB_E_INVALID;
    sb_frame_init(f, 0);
    if (n < 1)
        return SB_E_TRUNCATED;
    ver = in[0] >> SB_FRAME_VERSION_SHIFT;
    kind = in[0] & SB_FRAME_KIND_MASK;
    if (ver != SB_FRAME_VERSION)
        return SB_E_BAD_VERSION;
    if (n < 3)
        return SB_E_TRUNCATED;
    flags = in[1];
    mask = in[2];
    if (kind >= SB_FRAME_KIND_COUNT_ || (flags & ~SB_FRAME_F_MASK_) || (mask & ~SB_FRAME_HAS_MASK_))
        return SB_E_BAD_FRAME;
    if ((flags & SB_FRAME_F_SHARED) && !(flags & SB_FRAME_F_COMPRESSED))
        return SB_E_BAD_FRAME;
    f->kind = (uint8_t)kind;
    f->flags = (uint8_t)flags;
    if ((mask & SB_FRAME_HAS_CHANNEL) && (r = get_u32(in, n, &pos, &f->channel)) < 0)
        return r;
    if ((mask & SB_FRAME_HAS_ID) && (r = get_u32(in, n, &pos, &f->id)) < 0)
        return r;
    if ((mask & SB_FRAME_HAS_SEQ) && (r = get_u32(in, n, &pos, &f->seq)) < 0)
        return r;
    if ((mask & SB_FRAME_HAS_CORR) && (r = get_u32(in, n, &pos, &f->corr)) < 0)
        return r;
    if (mask & SB_FRAME_HAS_DEADLINE) {
        r = sb_varint_get(in + pos, n - pos, (uint64_t)1 << 53, &v);
        if (r == 0)
            return SB_E_TRUNCATED;
        if (r < 0)
            return SB_E_BAD_FRAME;
        pos += (size_t)r;
        f->deadline = (double)v;
    }
    r = sb_varint_get(in + pos, n - pos, 0xffffffffu, &v);
    if (r == 0)
        return SB_E_TRUNCATED;
    if (r < 0)
        return SB_E_BAD_FRAME;
    pos += (size_t)r;
    if (v > max_payload || v > 0x7fffffffu - SB_FRAME_MAX_HEADER)
        return SB_E_TOO_LARGE;
    if (v > n - pos)
        return SB_E_TRUNCATED;
    f->payload = in + pos;
    f->payload_len = (size_t)v;
    return (int)(pos + (size_t)v);
}

int sb_frame_decode(const uint8_t *in, size_t n, size_t max_payload, sb_frame *f)
{
    int r = sb_frame_parse(in, n, max_payload, f);
    if (r >= 0 && (size_t)r != n)
        return SB_E_TRAILING_DATA;
    return r;
}

/* ---- codec object ------------------------------------------------------- */

struct sb_frame_codec {
    uint32_t max_payload;
    uint8_t *out;
    size_t cap;
    sb_frame_view view;
};

sb_frame_codec *sb_frame_codec_create(uint32_t max_payload)
{
    sb_frame_codec *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->max_payload = max_payload ? max_payload : DEFAULT_MAX_PAYLOAD;
    if (c->max_payload > 0x7fffffffu - SB_FRAME_MAX_HEADER)
        c->max_payload = 0x7fffffffu - SB_FRAME_MAX_HEADER;
    c->view.deadline = -1;
    return c;
}

size_t sb_frame_codec_capacity(const sb_frame_codec *c)
{
    return c ? c->cap : 0;
}

void sb_frame_codec_trim(sb_frame_codec *c)
{
    if (c) {
        free(c->out);
        c->out = NULL;
        c->cap = 0;
    }
}

void sb_frame_codec_destroy(sb_frame_codec *c)
{
    if (!c)
        return;
    free(c->out);
    free(c);
}

int sb_frame_codec_encode(sb_frame_codec *c, int kind, int flags, uint32_t channel, uint32_t id,
                          uint32_t seq, uint32_t corr, double deadline, const uint8_t *payload,
                          uint32_t payload_len)
{
    sb_frame f;
    int size;
    if (!c || kind < 0 || kind >= SB_FRAME_KIND_COUNT_ || flags < 0 || flags > 0xff)
        return SB_E_INVALID;
    if (payload_len > c->max_payload)
        return SB_E_TOO_LARGE;
    f.kind = (uint8_t)kind;
    f.flags = (uint8_t)flags;
    f.channel = channel;
    f.id = id;
    f.seq = seq;
    f.corr = corr;
    /* Any negative deadline means none; NaN stays and is refused as INVALID. */
    f.deadline = (deadline < 0) ? -1 : deadline;
    f.payload = payload;
    f.payload_len = payload_len;
    size = sb_frame_size(&f);
    if (size < 0)
        return size;
    if ((size_t)size > c->cap) {
        size_t cap = c->cap ? c->cap : 256;
        uint8_t *p;
        while (cap < (size_t)size)
            cap *= 2;
        p = realloc(c->out, cap);
        if (!p)
            return SB_E_NO_MEMORY;
        c->out = p;
        c->cap = cap;
    }
    return sb_frame_write(&f, c->out, c->cap);
}

const uint8_t *sb_frame_codec_out(const sb_frame_codec *c)
{
    return c ? c->out : NULL;
}

static int fill_view(sb_frame_codec *c, const uint8_t *in, const sb_frame *f)
{
    c->view.kind = f->kind;
    c->view.flags = f->flags;
    c->view.channel = f->channel;
    c->view.id = f->id;
    c->view.seq = f->seq;
    c->view.corr = f->corr;
    c->view.payload_off = (uint32_t)(f->payload - in);
    c->view.payload_len = (uint32_t)f->payload_len;
    c->view.deadline = f->deadline;
    return SB_OK;
}

int sb_frame_codec_decode(sb_frame_codec *c, const uint8_t *in, uint32_t n)
{
    sb_frame f;
    int r;
    if (!c)
        return SB_E_INVALID;
    r = sb_frame_decode(in, n, c->max_payload, &f);
    if (r < 0)
        return r;
    return fill_view(c, in, &f);
}

int sb_frame_codec_parse(sb_frame_codec *c, const uint8_t *in, uint32_t n)
{
    sb_frame f;
    int r;
    if (!c)
        return SB_E_INVALID;
    r = sb_frame_parse(in, n, c->max_payload, &f);
    if (r < 0)
        return r;
    fill_view(c, in, &f);
    return r;
}

const sb_frame_view *sb_frame_codec_view(const sb_frame_codec *c)
{
    return c ? &c->view : NULL;
}

const char *sb_frame_kind_name(int kind)
{
    static const char *const names[SB_FRAME_KIND_COUNT_] = {
        "message", "request", "response", "error", "ack",
        "ping", "pong", "hello", "state-op", "batch", "skip"};
    return (kind >= 0 && kind < SB_FRAME_KIND_COUNT_) ? names[kind] : "unknown";
}
