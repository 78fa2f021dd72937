/* gzip — see gzip.h. zlib does the coding; this file owns buffers, caps,
 * multi-member framing and the mapping of zlib's results to sb_err codes. */
#include "gzip.h"

#include <stdlib.h>
#include <string.h>

#include "zlib.h"

#define SB_Z_DEFAULT_MAX ((size_t)64 << 20)
/* Deflate output is bounded by deflateBound(), not by a bomb cap; this only
 * keeps one call's output within the int the API returns. */
#define SB_Z_DEFLATE_MAX ((size_t)0x7fffff00)
#define SB_Z_MIN_CHUNK 1024
/* A buffer grown past this by one large call is released at the next reset,
 * so a single 64 MiB gunzip does not pin 64 MiB of wasm memory for good. */
#define SB_Z_KEEP_BYTES ((size_t)1 << 20)

enum z_state {
    ZS_ACTIVE,  /* inside a stream (or member) */
    ZS_BETWEEN, /* gzip inflate: a member ended, the next may follow */
    ZS_DONE,    /* stream ended: only more nothing is acceptable */
    ZS_FAILED   /* an error happened: reset before reuse */
};

struct sb_z {
    z_stream zs;
    int mode, format, level, wbits;
    int state;
    size_t max_out;
    size_t produced; /* toward max_out: per stream, or per message */
    uint8_t magic[2]; /* gzip member magic collected while ZS_BETWEEN */
    int nmagic;
    uint8_t *out;
    size_t out_len, out_cap;
    double total_in, total_out;
};

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    /* Zeroed memory keeps deflate's output a function of its input only. */
    return calloc(items, size);
}

static void z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    free(p);
}

static int wbits_for(int format, int wbits)
{
    switch (format) {
    case SB_Z_GZIP: return wbits + 16;
    case SB_Z_ZLIB: return wbits;
    default: return -wbits;
    }
}

static int z_init(sb_z *z)
{
    int rc;
    memset(&z->zs, 0, sizeof z->zs);
    z->zs.zalloc = z_alloc;
    z->zs.zfree = z_free;
    if (z->mode == SB_Z_DEFLATE)
        rc = deflateInit2(&z->zs, z->level, Z_DEFLATED, wbits_for(z->format, z->wbits),
                          z->wbits >= 15 ? 8 : (z->wbits > 9 ? z->wbits - 7 : 2),
                          Z_DEFAULT_STRATEGY);
    else
        rc = inflateInit2(&z->zs, wbits_for(z->format, z->wbits));
    return rc == Z_OK ? SB_OK : (rc == Z_MEM_ERROR ? SB_E_NO_MEMORY : SB_E_INVALID);
}

sb_z *sb_z_create(int mode, int format, int level, int window_bits, double max_out)
{
    sb_z *z;
    if (mode != SB_Z_DEFLATE && mode != SB_Z_INFLATE)
        return NULL;
    if (format < SB_Z_GZIP || format > SB_Z_RAW)
        return NULL;
    if (level == -1)
        level = 6;
    if (level < 0 || level > 9)
        return NULL;
    if (window_bits == 0)
        window_bits = 15;
    /* zlib cannot write raw deflate with an 8-bit window; 9 is the floor. */
    if (window_bits < 9 || window_bits > 15)
        return NULL;
    if (!(max_out >= 0) || max_out > (double)((size_t)1 << 30))
        return NULL;
    z = calloc(1, sizeof *z);
    if (!z)
        return NULL;
    z->mode = mode;
    z->format = format;
    z->level = level;
    /* inflate accepts any smaller window too, so always allow the largest. */
    z->wbits = mode == SB_Z_INFLATE ? 15 : window_bits;
    if (mode == SB_Z_DEFLATE)
        z->max_out = max_out > 0 ? (size_t)max_out : SB_Z_DEFLATE_MAX;
    else
        z->max_out = max_out > 0 ? (size_t)max_out : SB_Z_DEFAULT_MAX;
    if (z_init(z) != SB_OK) {
        free(z);
        return NULL;
    }
    return z;
}

void sb_z_destroy(sb_z *z)
{
    if (!z)
        return;
    if (z->mode == SB_Z_DEFLATE)
        deflateEnd(&z->zs);
    else
        inflateEnd(&z->zs);
    free(z->out);
    free(z);
}

int sb_z_reset(sb_z *z)
{
    int rc;
    if (!z)
        return SB_E_INVALID;
    rc = z->mode == SB_Z_DEFLATE ? deflateReset(&z->zs) : inflateReset(&z->zs);
    if (rc != Z_OK)
        return SB_E_INTERNAL;
    z->state = ZS_ACTIVE;
    z->produced = 0;
    z->nmagic = 0;
    z->out_len = 0;
    z->total_in = z->total_out = 0;
    if (z->out_cap > SB_Z_KEEP_BYTES) {
        free(z->out);
        z->out = NULL;
        z->out_cap = 0;
    }
    return SB_OK;
}

void sb_z_trim(sb_z *z, size_t keep)
{
    if (!z)
        return;
    z->out_len = 0;
    if (z->out_cap > keep) {
        free(z->out);
        z->out = NULL;
        z->out_cap = 0;
    }
}

size_t sb_z_capacity(const sb_z *z)
{
    return z ? z->out_cap : 0;
}

/* Make room for at least `want` more output bytes, never beyond the cap
 * (plus one byte, so that overshooting the cap is detectable). */
static int reserve(sb_z *z, size_t want)
{
    size_t limit = z->max_out - z->produced + 1;
    size_t need, cap;
    if (want > limit)
        want = limit;
    need = z->out_len + want;
    if (need <= z->out_cap)
        return SB_OK;
    /* Double for amortized growth, but never past what the cap can use. */
    cap = z->out_cap ? z->out_cap * 2 : SB_Z_MIN_CHUNK;
    if (cap < need)
        cap = need;
    if (cap > z->out_len + limit)
        cap = z->out_len + limit;
    {
        uint8_t *p = realloc(z->out, cap);
        if (!p)
            return SB_E_NO_MEMORY;
        z->out = p;
        z->out_cap = cap;
    }
    return SB_OK;
}

static int fail(sb_z *z, int err)
{
    z->state = ZS_FAILED;
    z->out_len = 0;
    return err;
}

static int map_inflate_error(const z_stream *zs, int rc)
{
    if (rc == Z_MEM_ERROR)
        return SB_E_NO_MEMORY;
    if (rc == Z_DATA_ERROR && zs->msg &&
        (strcmp(zs->msg, "incorrect data check") == 0 ||
         strcmp(zs->msg, "incorrect length check") == 0))
        return SB_E_BAD_CHECKSUM;
    return SB_E_CORRUPT;
}

/* Run inflate over next_in until the input is used up (or an error). */
static int inflate_run(sb_z *z, int zflush)
{
    z_stream *zs = &z->zs;
    for (;;) {
        size_t room, before_out;
        int rc;
        if (z->state == ZS_BETWEEN) {
            /* Between gzip members: the next bytes must be a new member. */
            while (zs->avail_in && z->nmagic < 2) {
                uint8_t b = *zs->next_in;
                if (b != (z->nmagic == 0 ? 0x1f : 0x8b))
                    return fail(z, SB_E_TRAILING_DATA);
                z->magic[z->nmagic++] = b;
                zs->next_in++;
                zs->avail_in--;
                z->total_in++;
            }
            if (z->nmagic < 2)
                return SB_OK;
            if (inflateReset(zs) != Z_OK)
                return fail(z, SB_E_INTERNAL);
            {
                Bytef *save_in = zs->next_in;
                uInt save_avail = zs->avail_in;
                zs->next_in = z->magic;
                zs->avail_in = 2;
                zs->next_out = z->out + z->out_len;
                zs->avail_out = 0;
                rc = inflate(zs, Z_NO_FLUSH);
                zs->next_in = save_in;
                zs->avail_in = save_avail;
                if (rc != Z_OK && rc != Z_BUF_ERROR)
                    return fail(z, map_inflate_error(zs, rc));
            }
            z->nmagic = 0;
            z->state = ZS_ACTIVE;
        }
        if (z->state == ZS_DONE) {
            if (zs->avail_in)
                return fail(z, SB_E_TRAILING_DATA);
            return SB_OK;
        }
        room = z->out_cap - z->out_len;
        if (room == 0) {
            size_t want = (size_t)zs->avail_in * 4;
            if (want < SB_Z_MIN_CHUNK)
                want = SB_Z_MIN_CHUNK;
            if (want < z->out_cap)
                want = z->out_cap;
            rc = reserve(z, want);
            if (rc < 0)
                return fail(z, rc);
            room = z->out_cap - z->out_len;
            if (room == 0)
                return fail(z, SB_E_TOO_LARGE);
        }
        if (room > z->max_out - z->produced + 1)
            room = z->max_out - z->produced + 1;
        zs->next_out = z->out + z->out_len;
        zs->avail_out = (uInt)room;
        before_out = room;
        {
            uInt before_in = zs->avail_in;
            rc = inflate(zs, zflush);
            z->total_in += before_in - zs->avail_in;
        }
        {
            size_t made = before_out - zs->avail_out;
            z->out_len += made;
            z->produced += made;
            z->total_out += (double)made;
        }
        if (z->produced > z->max_out)
            return fail(z, SB_E_TOO_LARGE);
        if (rc == Z_STREAM_END) {
            z->state = z->format == SB_Z_GZIP ? ZS_BETWEEN : ZS_DONE;
            continue;
        }
        /* Out of room: the top of the loop grows the buffer (by at most one
         * byte past the cap, which tells a bomb from a stream that ends
         * exactly at it). */
        if (rc == Z_OK) {
            if (zs->avail_in == 0 && zs->avail_out > 0)
                return SB_OK;
            continue;
        }
        if (rc == Z_BUF_ERROR) {
            if (zs->avail_in == 0)
                return SB_OK; /* needs more input */
            if (zs->avail_out == 0)
                continue;
            return fail(z, SB_E_INTERNAL);
        }
        return fail(z, map_inflate_error(zs, rc));
    }
}

static int deflate_run(sb_z *z, int zflush)
{
    z_stream *zs = &z->zs;
    unsigned pending = 0;
    int bits = 0;
    int rc;
    /* Room for everything up front: deflate then finishes in one call. A
     * second sync-flush call with no room left would emit another empty
     * stored block (zlib.h on Z_SYNC_FLUSH). */
    deflatePending(zs, &pending, &bits);
    rc = reserve(z, (size_t)deflateBound(zs, zs->avail_in) + pending + 16);
    if (rc < 0)
        return fail(z, rc);
    for (;;) {
        size_t room;
        if (z->out_len == z->out_cap) {
            rc = reserve(z, z->out_cap);
            if (rc < 0)
                return fail(z, rc);
            if (z->out_cap == z->out_len)
                return fail(z, SB_E_TOO_LARGE);
        }
        room = z->out_cap - z->out_len;
        zs->next_out = z->out + z->out_len;
        zs->avail_out = (uInt)room;
        {
            uInt before_in = zs->avail_in;
            rc = deflate(zs, zflush);
            z->total_in += before_in - zs->avail_in;
        }
        {
            size_t made = room - zs->avail_out;
            z->out_len += made;
            z->produced += made;
            z->total_out += (double)made;
        }
        if (z->produced > z->max_out)
            return fail(z, SB_E_TOO_LARGE);
        if (rc == Z_STREAM_END) {
            z->state = ZS_DONE;
            return SB_OK;
        }
        if (rc == Z_BUF_ERROR) /* nothing to do: no input, nothing pending */
            return SB_OK;
        if (rc != Z_OK)
            return fail(z, SB_E_INTERNAL);
        if (zs->avail_out != 0 && zs->avail_in == 0 && zflush != Z_FINISH)
            return SB_OK;
    }
}

int sb_z_push(sb_z *z, const uint8_t *in, size_t n, int flush)
{
    int rc, zflush;
    if (!z || (!in && n) || n > (size_t)0x7fffffff)
        return SB_E_INVALID;
    if (flush != SB_Z_NO_FLUSH && flush != SB_Z_SYNC_FLUSH && flush != SB_Z_FINISH)
        return SB_E_INVALID;
    if (z->state == ZS_FAILED)
        return SB_E_BAD_STATE;
    z->out_len = 0;
    z->zs.next_in = (Bytef *)(uintptr_t)in;
    z->zs.avail_in = (uInt)n;
    if (z->mode == SB_Z_DEFLATE) {
        if (z->state == ZS_DONE)
            return n ? SB_E_CLOSED : 0;
        z->produced = 0; /* deflate's limit is per call */
        zflush = flush == SB_Z_FINISH ? Z_FINISH : (flush == SB_Z_SYNC_FLUSH ? Z_SYNC_FLUSH : Z_NO_FLUSH);
        rc = deflate_run(z, zflush);
    } else {
        rc = inflate_run(z, flush == SB_Z_SYNC_FLUSH ? Z_SYNC_FLUSH : Z_NO_FLUSH);
        if (rc == SB_OK && flush == SB_Z_FINISH) {
            if (z->state == ZS_ACTIVE)
                rc = fail(z, SB_E_TRUNCATED);
            else if (z->state == ZS_BETWEEN && z->nmagic)
                rc = fail(z, SB_E_TRAILING_DATA);
        }
    }
    z->zs.next_in = NULL;
    z->zs.avail_in = 0;
    if (rc < 0)
        return rc;
    return (int)z->out_len;
}

static const uint8_t sync_tail[4] = {0x00, 0x00, 0xff, 0xff};

int sb_z_message(sb_z *z, const uint8_t *in, size_t n)
{
    int rc;
    if (!z || z->format != SB_Z_RAW || (!in && n) || n > (size_t)0x7fffffff)
        return SB_E_INVALID;
    if (z->state == ZS_FAILED)
        return SB_E_BAD_STATE;
    z->produced = 0;
    if (z->mode == SB_Z_DEFLATE) {
        rc = sb_z_push(z, in, n, SB_Z_SYNC_FLUSH);
        if (rc < 0)
            return rc;
        if (z->out_len >= 4 && memcmp(z->out + z->out_len - 4, sync_tail, 4) == 0) {
            z->out_len -= 4;
        } else if (z->out_len == 0) {
            /* Nothing was pending: an empty stored block, 0x00 (RFC 7692 7.2.3.6),
             * keeps the receiver's "append the tail" rule valid. */
            rc = reserve(z, 1);
            if (rc < 0)
                return fail(z, rc);
            z->out[z->out_len++] = 0x00;
        }
        return (int)z->out_len;
    }
    /* Inflate: message bytes then the tail the sender dropped. */
    z->out_len = 0;
    if (z->state == ZS_DONE) {
        /* The peer ended its stream (BFINAL): start a new one. */
        if (inflateReset(&z->zs) != Z_OK)
            return fail(z, SB_E_INTERNAL);
        z->state = ZS_ACTIVE;
    }
    z->zs.next_in = (Bytef *)(uintptr_t)in;
    z->zs.avail_in = (uInt)n;
    rc = inflate_run(z, Z_SYNC_FLUSH);
    if (rc == SB_OK && z->state != ZS_DONE) {
        /* inflate_run appends to out, so the message's bytes stay. A final
         * block (ZS_DONE) had no tail stripped. Z_BLOCK makes inflate report
         * whether it ended on a block boundary (data_type bit 128): the tail
         * is an empty stored block, so a complete message always does, and a
         * truncated one has eaten the tail as data. */
        z->zs.next_in = (Bytef *)(uintptr_t)sync_tail;
        z->zs.avail_in = 4;
        rc = inflate_run(z, Z_BLOCK);
        if (rc == SB_OK && z->state != ZS_DONE && !(z->zs.data_type & 128))
            rc = fail(z, SB_E_TRUNCATED);
    }
    z->zs.next_in = NULL;
    z->zs.avail_in = 0;
    if (rc < 0)
        return rc;
    return (int)z->out_len;
}

const uint8_t *sb_z_out(const sb_z *z)
{
    return z ? z->out : NULL;
}

size_t sb_z_out_len(const sb_z *z)
{
    return z ? z->out_len : 0;
}

double sb_z_total_in(const sb_z *z)
{
    return z ? z->total_in : 0;
}

double sb_z_total_out(const sb_z *z)
{
    return z ? z->total_out : 0;
}

/* ---- one-shot ----------------------------------------------------------- */

struct sb_gzip {
    sb_z *def[3];
    int def_level[3];
    sb_z *inf[3];
    const uint8_t *last;
};

sb_gzip *sb_gzip_create(void)
{
    return calloc(1, sizeof(sb_gzip));
}

void sb_gzip_destroy(sb_gzip *g)
{
    int i;
    if (!g)
        return;
    for (i = 0; i < 3; i++) {
        sb_z_destroy(g->def[i]);
        sb_z_destroy(g->inf[i]);
    }
    free(g);
}

int sb_gzip_compress(sb_gzip *g, const uint8_t *in, size_t n, int level, int format)
{
    sb_z *z;
    int rc;
    if (!g || format < SB_Z_GZIP || format > SB_Z_RAW)
        return SB_E_INVALID;
    if (level == -1)
        level = 6;
    if (level < 0 || level > 9)
        return SB_E_INVALID;
    z = g->def[format];
    if (!z) {
        z = g->def[format] = sb_z_create(SB_Z_DEFLATE, format, level, 15, 0);
        if (!z)
            return SB_E_NO_MEMORY;
        g->def_level[format] = level;
    } else {
        if (sb_z_reset(z) < 0)
            return SB_E_INTERNAL;
        if (g->def_level[format] != level) {
            /* Right after a reset deflateParams only switches tables. */
            if (deflateParams(&z->zs, level, Z_DEFAULT_STRATEGY) != Z_OK)
                return SB_E_INTERNAL;
            z->level = level;
            g->def_level[format] = level;
        }
    }
    rc = sb_z_push(z, in, n, SB_Z_FINISH);
    g->last = z->out;
    return rc;
}

int sb_gzip_decompress(sb_gzip *g, const uint8_t *in, size_t n, int format, double max_out)
{
    sb_z *z;
    int rc;
    if (!g || format < SB_Z_GZIP || format > SB_Z_RAW || !(max_out >= 0) ||
        max_out > (double)((size_t)1 << 30))
        return SB_E_INVALID;
    z = g->inf[format];
    if (!z) {
        z = g->inf[format] = sb_z_create(SB_Z_INFLATE, format, 0, 15, max_out);
        if (!z)
            return SB_E_NO_MEMORY;
    } else if (sb_z_reset(z) < 0) {
        return SB_E_INTERNAL;
    }
    z->max_out = max_out > 0 ? (size_t)max_out : SB_Z_DEFAULT_MAX;
    if (n == 0) {
        g->last = z->out;
        return SB_E_TRUNCATED;
    }
    rc = sb_z_push(z, in, n, SB_Z_FINISH);
    g->last = z->out;
    return rc;
}

const uint8_t *sb_gzip_out(const sb_gzip *g)
{
    return g ? g->last : NULL;
}
