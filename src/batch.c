/* batch — see batch.h. */
#include "batch.h"
#include "buf.h"

#include <stdlib.h>
#include <string.h>

#include "gzip.h"

#define DEFAULT_CAP (16u << 20)
#define FRAME_CAP (0x7fffffffu - SB_FRAME_MAX_HEADER)

/* ---- writer ------------------------------------------------------------- */

struct sb_batch {
    uint32_t max_messages, max_bytes, compress_above;
    double max_delay_ms;
    int mode, level;
    int need_fresh; /* deflater holds bytes the peer never saw: restart it */
    sb_z *z;        /* made at the first batch worth compressing (an idle link holds none) */
    sb_buf pend, out;
    uint32_t count;
    double first_at;
    double stats[6];
};

sb_batch *sb_batch_create(uint32_t max_messages, uint32_t max_bytes, double max_delay_ms,
                          uint32_t compress_above, int mode, int level)
{
    sb_batch *b;
    if (max_messages < 1 || max_bytes < 1 || !(max_delay_ms >= 0) || mode < SB_BATCH_PLAIN ||
        mode > SB_BATCH_SHARED || level < -1 || level > 9)
        return NULL;
    b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->max_messages = max_messages;
    b->max_bytes = max_bytes;
    b->max_delay_ms = max_delay_ms;
    b->compress_above = compress_above;
    b->mode = mode;
    b->level = level;
    b->need_fresh = 1;
    return b;
}

void sb_batch_destroy(sb_batch *b)
{
    if (!b)
        return;
    sb_z_destroy(b->z);
    free(b->pend.p);
    free(b->out.p);
    free(b);
}

/* Encode the pending frames into out. */
static int close_batch(sb_batch *b, int may_compress)
{
    sb_frame f;
    int size, rc;
    const uint8_t *payload = b->pend.p;
    size_t plen = b->pend.len;
    uint8_t flags = 0;

    b->out.len = 0;
    if (may_compress && b->mode != SB_BATCH_PLAIN && plen >= b->compress_above && plen > 0) {
        int fresh = b->mode == SB_BATCH_DEFLATE || b->need_fresh;
        int clen;
        /* zlib's deflate state is ~260 KiB: only a link that sends batches
         * worth compressing pays for it (a new deflater starts fresh). */
        /* Level 0 is stored blocks, never smaller than the batch: it is sent
         * as it is, as the size check below would decide, without a
         * deflater (a raw core's zlib has no stored coder: zlib-raw.patch). */
        if (b->level == 0)
            clen = 0;
        else if (!b->z && !(b->z = sb_z_create(SB_Z_DEFLATE, SB_Z_RAW, b->level, 15, 0)))
            clen = SB_E_NO_MEMORY;
        else if (fresh && sb_z_reset(b->z) < 0)
            clen = SB_E_INTERNAL;
        else
            clen = sb_z_message(b->z, b->pend.p, plen);
        /* Kept only when smaller, and never over max_bytes: a lone frame
         * larger than max_bytes may shrink and still not fit the peer's
         * payload cap, so it then travels as itself. */
        if (clen > 0 && (size_t)clen < plen && (size_t)clen <= b->max_bytes) {
            payload = sb_z_out(b->z);
            plen = (size_t)clen;
            flags = (uint8_t)(SB_FRAME_F_COMPRESSED | (fresh ? 0 : SB_FRAME_F_SHARED));
            b->need_fresh = 0;
            b->stats[SB_BATCH_STAT_COMPRESSED]++;
        } else {
            /* The window now holds bytes the peer will not see. */
            b->need_fresh = 1;
            b->stats[SB_BATCH_STAT_SKIPPED]++;
        }
    }
    if (b->count == 1 && !flags) {
        rc = sb_buf_put(&b->out, b->pend.p, b->pend.len);
    } else {
        sb_frame_init(&f, SB_FRAME_BATCH);
        f.flags = flags;
        f.payload = payload;
        f.payload_len = plen;
        size = sb_frame_size(&f);
        rc = size < 0 ? size : sb_buf_reserve(&b->out, (size_t)size);
        if (rc >= 0)
            b->out.len = (size_t)sb_frame_write(&f, b->out.p, b->out.cap);
    }
    /* Both copied into out: what a large batch grew goes back. */
    sb_buf_clear(&b->pend, SB_BUF_KEEP);
    sb_z_trim(b->z, SB_BUF_KEEP);
    b->count = 0;
    if (rc < 0) {
        b->out.len = 0;
        return rc;
    }
    b->stats[SB_BATCH_STAT_BATCHES]++;
    b->stats[SB_BATCH_STAT_OUT_BYTES] += (double)b->out.len;
    return (int)b->out.len;
}

int sb_batch_add(sb_batch *b, const uint8_t *frame, uint32_t n, double now_ms)
{
    sb_frame f;
    int rc, res = 0;
    if (!b)
        return SB_E_INVALID;
    rc = sb_frame_decode(frame, n, FRAME_CAP, &f);
    if (rc < 0)
        return rc;
    if (b->count > 0 && b->pend.len + n > b->max_bytes) {
        rc = close_batch(b, 1);
        if (rc < 0)
            return rc;
        res |= SB_BATCH_OUT;
    }
    rc = sb_buf_put(&b->pend, frame, n);
    if (rc < 0)
        return rc;
    if (b->count++ == 0)
        b->first_at = now_ms;
    b->stats[SB_BATCH_STAT_FRAMES]++;
    b->stats[SB_BATCH_STAT_RAW_BYTES] += n;
    if (b->count >= b->max_messages || b->pend.len >= b->max_bytes || b->max_delay_ms == 0)
        res |= SB_BATCH_DUE;
    return res;
}

int sb_batch_flush(sb_batch *b)
{
    return sb_batch_flush_as(b, 1);
}

int sb_batch_flush_as(sb_batch *b, int may_compress)
{
    if (!b)
        return SB_E_INVALID;
    if (b->count == 0) {
        b->out.len = 0;
        return 0;
    }
    return close_batch(b, may_compress);
}

void sb_batch_release(sb_batch *b)
{
    if (b)
        sb_buf_clear(&b->out, SB_BUF_KEEP);
}

void sb_batch_trim(sb_batch *b)
{
    if (!b || b->count)
        return;
    sb_buf_clear(&b->pend, 0);
    sb_buf_clear(&b->out, 0);
    sb_z_trim(b->z, 0);
}

size_t sb_batch_capacity(const sb_batch *b)
{
    return b ? b->pend.cap + b->out.cap + sb_z_capacity(b->z) : 0;
}

int sb_batch_poll(sb_batch *b, double now_ms)
{
    if (!b)
        return SB_E_INVALID;
    if (b->count && now_ms >= b->first_at + b->max_delay_ms)
        return close_batch(b, 1);
    return 0;
}

double sb_batch_deadline(const sb_batch *b)
{
    return (b && b->count) ? b->first_at + b->max_delay_ms : -1;
}

const uint8_t *sb_batch_out(const sb_batch *b)
{
    return b ? b->out.p : NULL;
}

uint32_t sb_batch_out_len(const sb_batch *b)
{
    return b ? (uint32_t)b->out.len : 0;
}

uint32_t sb_batch_pending(const sb_batch *b)
{
    return b ? b->count : 0;
}

uint32_t sb_batch_pending_bytes(const sb_batch *b)
{
    return b ? (uint32_t)b->pend.len : 0;
}

void sb_batch_reset_stream(sb_batch *b)
{
    if (b)
        b->need_fresh = 1;
}

double sb_batch_stat(const sb_batch *b, int which)
{
    if (!b || which < 0 || which > SB_BATCH_STAT_SKIPPED)
        return -1;
    return b->stats[which];
}

/* ---- reader ------------------------------------------------------------- */

typedef struct item {
    uint32_t off, len;
} item;

struct sb_unbatch {
    uint32_t max_payload;
    int max_depth;
    int have_window; /* a fresh compressed batch was inflated on this link */
    uint32_t max_inflated;
    sb_z *z;         /* made at the first compressed batch (an idle link holds none) */
    sb_buf in;           /* the message as fed */
    const uint8_t *base; /* in.p or the inflater's output: where items point */
    uint32_t bytes;      /* of the frames held */
    item *items;
    size_t nitems, cap_items, cur;
    int started;
    sb_frame_view view;
};

sb_unbatch *sb_unbatch_create(uint32_t max_payload, uint32_t max_inflated, int max_depth)
{
    sb_unbatch *u;
    if (max_depth < 0 || max_depth > 16 || max_inflated > (1u << 30))
        return NULL; /* what sb_z_create takes, checked now though the inflater comes later */
    u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->max_payload = max_payload ? max_payload : DEFAULT_CAP;
    if (u->max_payload > FRAME_CAP)
        u->max_payload = FRAME_CAP;
    u->max_depth = max_depth ? max_depth : 4;
    u->max_inflated = max_inflated ? max_inflated : DEFAULT_CAP;
    return u;
}

void sb_unbatch_destroy(sb_unbatch *u)
{
    if (!u)
        return;
    sb_z_destroy(u->z);
    free(u->in.p);
    free(u->items);
    free(u);
}

static int push_item(sb_unbatch *u, size_t off, size_t len)
{
    if (u->nitems == u->cap_items) {
        size_t cap = u->cap_items ? u->cap_items * 2 : 8; /* most messages are a few frames */
        item *p = realloc(u->items, cap * sizeof *p);
        if (!p)
            return SB_E_NO_MEMORY;
        u->items = p;
        u->cap_items = cap;
    }
    u->items[u->nitems].off = (uint32_t)off;
    u->items[u->nitems].len = (uint32_t)len;
    u->nitems++;
    return SB_OK;
}

/* Validate the frames in base[off..off+len) at nesting level depth and
 * index the non-batch ones. */
static int walk(sb_unbatch *u, const uint8_t *base, size_t off, size_t len, int depth)
{
    size_t pos = 0;
    while (pos < len) {
        sb_frame f;
        int r = sb_frame_parse(base + off + pos, len - pos, u->max_payload, &f);
        if (r < 0)
            return r;
        size_t used = (size_t)r;
        if (f.kind == SB_FRAME_BATCH) {
            if (depth + 1 > u->max_depth)
                return SB_E_TOO_DEEP;
            if (f.flags & SB_FRAME_F_COMPRESSED)
                return SB_E_BAD_FRAME;
            r = walk(u, base, (size_t)(f.payload - base), f.payload_len, depth + 1);
            if (r < 0)
                return r;
        } else if ((r = push_item(u, off + pos, used)) < 0) {
            return r;
        }
        pos += used;
    }
    return SB_OK;
}

int sb_unbatch_feed(sb_unbatch *u, const uint8_t *in, uint32_t n)
{
    sb_frame f;
    int rc;
    if (!u || (!in && n))
        return SB_E_INVALID;
    u->nitems = 0;
    u->cur = 0;
    u->started = 0;
    u->bytes = 0;
    sb_buf_clear(&u->in, SB_BUF_KEEP);
    if (n > u->max_payload + (uint32_t)SB_FRAME_MAX_HEADER)
        return SB_E_TOO_LARGE;
    rc = sb_buf_put(&u->in, in, n);
    if (rc < 0)
        return rc;
    rc = sb_frame_decode(u->in.p, n, u->max_payload, &f);
    if (rc < 0)
        return rc;
    if (f.kind != SB_FRAME_BATCH) {
        u->base = u->in.p;
        u->bytes = n;
        rc = push_item(u, 0, n);
        return rc < 0 ? rc : 1;
    }
    if (f.flags & SB_FRAME_F_COMPRESSED) {
        int dlen;
        if (!(f.flags & SB_FRAME_F_SHARED)) {
            if (!u->z && !(u->z = sb_z_create(SB_Z_INFLATE, SB_Z_RAW, 0, 15, u->max_inflated)))
                return SB_E_NO_MEMORY;
            if (sb_z_reset(u->z) < 0)
                return SB_E_INTERNAL;
            u->have_window = 1;
        } else if (!u->have_window) {
            return SB_E_CORRUPT;
        }
        dlen = sb_z_message(u->z, f.payload, f.payload_len);
        if (dlen < 0) {
            /* The window is lost with the stream: only a fresh batch recovers. */
            u->have_window = 0;
            return dlen;
        }
        /* The frames point into the inflater's output until the next feed. */
        u->base = sb_z_out(u->z);
        u->bytes = (uint32_t)dlen;
        rc = walk(u, u->base, 0, (size_t)dlen, 1);
    } else {
        u->base = u->in.p;
        u->bytes = n;
        rc = walk(u, u->in.p, (size_t)(f.payload - u->in.p), f.payload_len, 1);
    }
    if (rc < 0) {
        u->nitems = 0;
        u->bytes = 0;
        return rc;
    }
    return (int)u->nitems;
}

int sb_unbatch_next(sb_unbatch *u)
{
    sb_frame f;
    const uint8_t *p;
    if (!u)
        return SB_E_INVALID;
    if (u->started)
        u->cur++;
    u->started = 1;
    if (u->cur >= u->nitems) {
        /* All read: what a large message needed goes back. */
        sb_buf_clear(&u->in, SB_BUF_KEEP);
        sb_z_trim(u->z, SB_BUF_KEEP);
        return 0;
    }
    p = u->base + u->items[u->cur].off;
    if (sb_frame_decode(p, u->items[u->cur].len, u->max_payload, &f) < 0)
        return SB_E_INTERNAL; /* validated in feed */
    u->view.kind = f.kind;
    u->view.flags = f.flags;
    u->view.channel = f.channel;
    u->view.id = f.id;
    u->view.seq = f.seq;
    u->view.corr = f.corr;
    u->view.payload_off = (uint32_t)(f.payload - p);
    u->view.payload_len = (uint32_t)f.payload_len;
    u->view.deadline = f.deadline;
    return 1;
}

const sb_frame_view *sb_unbatch_view(const sb_unbatch *u)
{
    return u ? &u->view : NULL;
}

const uint8_t *sb_unbatch_frame(const sb_unbatch *u)
{
    return (u && u->started && u->cur < u->nitems) ? u->base + u->items[u->cur].off : NULL;
}

uint32_t sb_unbatch_frame_len(const sb_unbatch *u)
{
    return (u && u->started && u->cur < u->nitems) ? u->items[u->cur].len : 0;
}

uint32_t sb_unbatch_bytes(const sb_unbatch *u)
{
    return u ? u->bytes : 0;
}

size_t sb_unbatch_capacity(const sb_unbatch *u)
{
    return u ? u->in.cap + u->cap_items * sizeof *u->items + sb_z_capacity(u->z) : 0;
}

void sb_unbatch_trim(sb_unbatch *u)
{
    if (!u || (u->nitems && !(u->started && u->cur >= u->nitems)))
        return;
    sb_buf_clear(&u->in, 0);
    sb_z_trim(u->z, 0);
    free(u->items);
    u->items = NULL;
    u->nitems = u->cap_items = u->cur = 0;
    u->base = NULL;
}

int sb_unbatch_next_frame(sb_unbatch *u, sb_frame *f)
{
    int r = sb_unbatch_next(u);
    if (r <= 0)
        return r;
    r = sb_frame_decode(sb_unbatch_frame(u), sb_unbatch_frame_len(u), u->max_payload, f);
    return r < 0 ? r : 1;
}

void sb_unbatch_reset_stream(sb_unbatch *u)
{
    if (u)
        u->have_window = 0;
}
