/* sse — see sse.h. */
#include "sse.h"
#include "buf.h"

#include "backoff.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* sb_sse_records() hands the records out as uint32 words. */
_Static_assert(sizeof(sb_sse_record) == SB_SSE_REC_WORDS * sizeof(uint32_t), "sb_sse_record layout");
_Static_assert(offsetof(sb_sse_record, id_units) == 20, "sb_sse_record layout");

#define SSE_DEFAULT_LINE (64u * 1024u)
#define SSE_DEFAULT_EVENT (1024u * 1024u)
#define SSE_MAX_CAP (1u << 28) /* keeps 3 * cap (worst-case UTF-8 repair) in 32 bits */


struct sb_sse {
    uint32_t max_line, max_event;
    /* parser */
    int bom;    /* BOM bytes matched at the stream start; 3 = past the start */
    int cr;     /* previous chunk ended with CR: a leading LF belongs to it */
    int failed; /* sticky error until sb_sse_end */
    sb_buf line; /* a line split across feeds */
    /* out: the committed events of this batch, then the pending event's data
     * (written in place so a dispatch copies nothing but type and id) */
    sb_buf out;
    size_t committed;
    uint32_t data_units;
    sb_buf type;
    uint32_t type_units;
    sb_buf id; /* last event ID buffer (pending) */
    uint32_t id_units;
    int id_dirty;
    sb_buf last; /* last event ID string (dispatched) */
    uint32_t last_units;
    int last_in_batch; /* `last` already written once in this batch */
    int type_in_batch; /* a type was written in this batch, at type_off */
    size_t type_off, type_len;
    sb_sse_record *rec;
    size_t nrec, rec_cap;
    double retry;
    /* connection */
    int state;
    int progress; /* this connection dispatched an event */
    int attempts, max_attempts;
    double min_ms, max_ms, factor, deadline;
    double hold; /* Retry-After for the next failure, ms (0 = none) */
    sb_rng rng;
};

/* memcpy for the short, unaligned copies of the hot path: wasm's libc
 * memcpy is a call with alignment prologues; 8-byte loads inline. */
static void copy_bytes(uint8_t *dst, const uint8_t *src, size_t n)
{
    while (n >= 8) {
        uint64_t x;
        memcpy(&x, src, 8);
        memcpy(dst, &x, 8);
        src += 8;
        dst += 8;
        n -= 8;
    }
    while (n--)
        *dst++ = *src++;
}

/* Copy n bytes to dst as valid UTF-8, replacing each maximal invalid subpart
 * with U+FFFD the way the WHATWG UTF-8 decoder does (so splitting the stream
 * at ASCII bytes, as lines and fields do, cannot change the decoded text).
 * dst needs room for 3 * n bytes. Returns the length in UTF-16 code units;
 * *written gets the bytes. */
static uint32_t utf8_clean(uint8_t *dst, const uint8_t *src, size_t n, size_t *written)
{
    size_t i = 0, o = 0;
    uint32_t units = 0;
    while (i < n) {
        uint8_t b = src[i];
        unsigned need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (b < 0x80) {
            /* ASCII run, eight bytes at a time */
            size_t j = i;
            while (n - j >= 8) {
                uint64_t x;
                memcpy(&x, src + j, 8);
                if (x & 0x8080808080808080ull)
                    break;
                j += 8;
            }
            while (j < n && src[j] < 0x80)
                j++;
            memcpy(dst + o, src + i, j - i);
            o += j - i;
            units += (uint32_t)(j - i);
            i = j;
            continue;
        }
        if (b >= 0xC2 && b <= 0xDF) {
            need = 1;
        } else if (b >= 0xE0 && b <= 0xEF) {
            need = 2;
            if (b == 0xE0)
                lo = 0xA0;
            else if (b == 0xED)
                hi = 0x9F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3;
            if (b == 0xF0)
                lo = 0x90;
            else if (b == 0xF4)
                hi = 0x8F;
        } else {
            need = 0;
        }
        {
            size_t j = i + 1;
            unsigned k = 0;
            while (k < need && j < n && src[j] >= lo && src[j] <= hi) {
                lo = 0x80;
                hi = 0xBF;
                j++;
                k++;
            }
            if (need && k == need) {
                memcpy(dst + o, src + i, j - i);
                o += j - i;
                units += need == 3 ? 2 : 1;
            } else {
                /* the offending byte (if any) is looked at again */
                dst[o++] = 0xEF;
                dst[o++] = 0xBF;
                dst[o++] = 0xBD;
                units++;
            }
            i = j;
        }
    }
    *written = o;
    return units;
}

/* Replace b's content by the repaired UTF-8 of src (a plain copy when the
 * caller knows it is ASCII); *units gets its UTF-16 length. */
static int set_clean(sb_buf *b, uint32_t *units, const uint8_t *src, size_t n, int ascii)
{
    size_t w = n;
    b->len = 0;
    if (sb_buf_reserve(b, ascii ? n : 3 * n) < 0)
        return SB_E_NO_MEMORY;
    if (ascii) {
        copy_bytes(b->p, src, n);
        *units = (uint32_t)n;
    } else {
        *units = utf8_clean(b->p, src, n, &w);
    }
    b->len = w;
    return SB_OK;
}

static int set_copy(sb_buf *dst, const sb_buf *src)
{
    dst->len = 0;
    if (sb_buf_reserve(dst, src->len) < 0)
        return SB_E_NO_MEMORY;
    copy_bytes(dst->p, src->p, src->len);
    dst->len = src->len;
    return SB_OK;
}

/* Blank line: commit the pending event (if it has data) to the batch. */
static int dispatch(sb_sse *s)
{
    size_t dlen = s->out.len - s->committed;
    size_t type_len = s->type.len;
    size_t id_len;
    sb_sse_record *r;
    if (s->id_dirty) {
        if (set_copy(&s->last, &s->id) < 0)
            return SB_E_NO_MEMORY;
        s->last_units = s->id_units;
        s->id_dirty = 0;
        s->last_in_batch = 0;
    }
    s->type.len = 0;
    if (dlen == 0) {
        s->type_units = 0;
        return SB_OK;
    }
    if (s->nrec == s->rec_cap) {
        size_t cap = s->rec_cap ? s->rec_cap * 2 : 16;
        sb_sse_record *p = realloc(s->rec, cap * sizeof *p);
        if (!p)
            return SB_E_NO_MEMORY;
        s->rec = p;
        s->rec_cap = cap;
    }
    id_len = s->last_in_batch ? 0 : s->last.len;
    if (sb_buf_reserve(&s->out, type_len + id_len) < 0)
        return SB_E_NO_MEMORY;
    r = &s->rec[s->nrec];
    s->out.len--; /* the LF after the last data line */
    r->data_bytes = (uint32_t)(dlen - 1);
    r->data_units = s->data_units - 1;
    if (type_len && s->type_in_batch && type_len == s->type_len &&
        memcmp(s->out.p + s->type_off, s->type.p, type_len) == 0) {
        r->type_bytes = SB_SSE_SAME; /* streams reuse a few types: no copy, no JS slice */
        r->type_units = SB_SSE_SAME;
    } else {
        if (type_len) {
            copy_bytes(s->out.p + s->out.len, s->type.p, type_len);
            s->type_in_batch = 1;
            s->type_off = s->out.len;
            s->type_len = type_len;
        }
        s->out.len += type_len;
        r->type_bytes = (uint32_t)type_len;
        r->type_units = s->type_units;
    }
    if (!s->last_in_batch) {
        copy_bytes(s->out.p + s->out.len, s->last.p, id_len);
        s->out.len += id_len;
        r->id_bytes = (uint32_t)id_len;
        r->id_units = s->last_units;
        s->last_in_batch = 1;
    } else {
        r->id_bytes = SB_SSE_SAME;
        r->id_units = SB_SSE_SAME;
    }
    s->nrec++;
    s->committed = s->out.len;
    s->data_units = 0;
    s->type_units = 0;
    s->progress = 1;
    return SB_OK;
}

/* ascii: the caller saw no byte >= 0x80 in the line, so no repair is needed. */
static int process_line(sb_sse *s, const uint8_t *l, size_t len, int ascii)
{
    const uint8_t *colon, *v;
    size_t flen, vlen;
    if (len == 0)
        return dispatch(s);
    if (l[0] == ':')
        return SB_OK; /* comment */
    /* field names are short: a plain loop beats a libc call */
    for (flen = 0; flen < len && l[flen] != ':'; flen++)
        ;
    colon = flen < len ? l + flen : NULL;
    v = colon ? colon + 1 : l + len;
    vlen = colon ? len - flen - 1 : 0;
    if (vlen && *v == ' ') {
        v++;
        vlen--;
    }
    switch (flen) {
    case 4:
        if (memcmp(l, "data", 4) == 0) {
            size_t w = vlen;
            if (sb_buf_reserve(&s->out, (ascii ? vlen : 3 * vlen) + 1) < 0)
                return SB_E_NO_MEMORY;
            if (ascii) {
                copy_bytes(s->out.p + s->out.len, v, vlen);
                s->data_units += (uint32_t)vlen + 1;
            } else {
                s->data_units += utf8_clean(s->out.p + s->out.len, v, vlen, &w) + 1;
            }
            s->out.len += w;
            s->out.p[s->out.len++] = '\n';
            if (s->out.len - s->committed > s->max_event)
                return SB_E_TOO_LARGE;
        }
        break;
    case 5:
        if (memcmp(l, "event", 5) == 0)
            return set_clean(&s->type, &s->type_units, v, vlen, ascii);
        if (memcmp(l, "retry", 5) == 0) {
            double ms = 0;
            size_t i;
            for (i = 0; i < vlen; i++) {
                if (v[i] < '0' || v[i] > '9')
                    return SB_OK; /* not only digits: ignored */
                if (ms < 1e15)
                    ms = ms * 10 + (v[i] - '0');
            }
            if (vlen)
                s->retry = ms;
        }
        break;
    case 2:
        if (memcmp(l, "id", 2) == 0 && !memchr(v, 0, vlen)) {
            s->id_dirty = 1;
            return set_clean(&s->id, &s->id_units, v, vlen, ascii);
        }
        break;
    default:
        break;
    }
    return SB_OK;
}

static int line_append(sb_sse *s, const uint8_t *p, size_t n)
{
    if (s->line.len + n > s->max_line)
        return SB_E_TOO_LARGE;
    if (sb_buf_reserve(&s->line, n) < 0)
        return SB_E_NO_MEMORY;
    memcpy(s->line.p + s->line.len, p, n);
    s->line.len += n;
    return SB_OK;
}

/* First CR or LF in [p, end), or end; eight bytes at a time. *hi gets
 * whether a byte >= 0x80 may be in [p, result) (a word read past the line
 * end can only make that a false "maybe", never a miss). */
static const uint8_t *find_eol(const uint8_t *p, const uint8_t *end, int *hi)
{
    /* one test per word: "some byte < 0x0E" (exact), then bytes for CR/LF;
     * a tab or other control byte only costs a byte loop over one word */
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t seen = 0;
    uint8_t tail = 0;
    for (;;) {
        const uint8_t *stop;
        while (end - p >= 8) {
            uint64_t x;
            memcpy(&x, p, 8);
            seen |= x;
            if ((x - ones * 0x0E) & ~x & highs)
                break;
            p += 8;
        }
        stop = end - p >= 8 ? p + 8 : end;
        while (p < stop) {
            if (*p == '\n' || *p == '\r') {
                *hi = ((seen & highs) != 0) | (tail >= 0x80);
                return p;
            }
            tail |= *p++;
        }
        if (p == end) {
            *hi = ((seen & highs) != 0) | (tail >= 0x80);
            return p;
        }
    }
}

static int fail(sb_sse *s, int rc)
{
    s->failed = rc;
    return rc;
}

int sb_sse_feed(sb_sse *s, const uint8_t *in, size_t n)
{
    static const uint8_t bom[3] = {0xEF, 0xBB, 0xBF};
    const uint8_t *p = in, *end = in + n;
    size_t pending;
    int rc;
    if (!s || (!in && n))
        return SB_E_INVALID;
    /* new batch: keep only the pending event's data, moved to the front */
    pending = s->out.len - s->committed;
    if (pending && s->committed)
        memmove(s->out.p, s->out.p + s->committed, pending);
    s->out.len = pending;
    s->committed = 0;
    s->nrec = 0;
    s->last_in_batch = 0;
    s->type_in_batch = 0;
    if (s->failed)
        return s->failed;
    while (s->bom < 3 && p < end) {
        if (*p == bom[s->bom]) {
            s->bom++;
            p++;
            continue;
        }
        /* not a BOM: the bytes held so far are ordinary text */
        rc = s->bom ? line_append(s, bom, (size_t)s->bom) : SB_OK;
        s->bom = 3;
        if (rc < 0)
            return fail(s, rc);
    }
    if (s->cr && p < end) {
        s->cr = 0;
        if (*p == '\n')
            p++;
    }
    while (p < end) {
        int hi;
        const uint8_t *e = find_eol(p, end, &hi);
        if (e == end) {
            rc = line_append(s, p, (size_t)(end - p));
            if (rc < 0)
                return fail(s, rc);
            break;
        }
        if (s->line.len) {
            rc = line_append(s, p, (size_t)(e - p));
            if (rc >= 0)
                rc = process_line(s, s->line.p, s->line.len, 0);
            s->line.len = 0;
        } else if ((size_t)(e - p) > s->max_line) {
            rc = SB_E_TOO_LARGE;
        } else {
            rc = process_line(s, p, (size_t)(e - p), !hi);
        }
        if (rc < 0)
            return fail(s, rc);
        p = e + 1;
        if (*e == '\r') {
            if (p == end)
                s->cr = 1;
            else if (*p == '\n')
                p++;
        }
    }
    return (int)s->nrec;
}

void sb_sse_end(sb_sse *s)
{
    if (!s)
        return;
    s->bom = 0;
    s->cr = 0;
    s->failed = 0;
    s->line.len = 0;
    s->out.len = s->committed;
    s->data_units = 0;
    s->type.len = 0;
    s->type_units = 0;
    /* the next stream's id buffer starts from the last dispatched id */
    if (set_copy(&s->id, &s->last) == SB_OK)
        s->id_units = s->last_units;
    s->id_dirty = 0;
}

int sb_sse_count(const sb_sse *s)
{
    return s ? (int)s->nrec : 0;
}

const uint8_t *sb_sse_text(const sb_sse *s)
{
    return s ? s->out.p : NULL;
}

size_t sb_sse_text_len(const sb_sse *s)
{
    return s ? s->committed : 0;
}

const uint32_t *sb_sse_records(const sb_sse *s)
{
    return s ? (const uint32_t *)s->rec : NULL;
}

const uint8_t *sb_sse_last_id(const sb_sse *s)
{
    return s ? s->last.p : NULL;
}

size_t sb_sse_last_id_len(const sb_sse *s)
{
    return s ? s->last.len : 0;
}

int sb_sse_set_last_id(sb_sse *s, const uint8_t *id, size_t n)
{
    int rc;
    if (!s || (!id && n) || (n && memchr(id, 0, n)))
        return SB_E_INVALID;
    if (n > s->max_line)
        return SB_E_TOO_LARGE;
    rc = set_clean(&s->last, &s->last_units, id, n, 0);
    if (rc == SB_OK)
        rc = set_clean(&s->id, &s->id_units, id, n, 0);
    s->id_dirty = 0;
    s->last_in_batch = 0;
    return rc;
}

double sb_sse_retry(const sb_sse *s)
{
    return s ? s->retry : -1;
}

sb_sse *sb_sse_create(uint32_t max_line, uint32_t max_event, double min_ms, double max_ms,
                      double factor, int max_attempts, uint32_t seed)
{
    sb_sse *s;
    if (max_line > SSE_MAX_CAP || max_event > SSE_MAX_CAP || !(min_ms >= 0) || min_ms > 1e12 ||
        !(max_ms >= 0) || max_ms > 1e12 || !(factor >= 1) || factor > 1e6 || max_attempts < 0)
        return NULL;
    s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->max_line = max_line ? max_line : SSE_DEFAULT_LINE;
    s->max_event = max_event ? max_event : SSE_DEFAULT_EVENT;
    s->retry = -1;
    s->min_ms = min_ms;
    s->max_ms = max_ms;
    s->factor = factor;
    s->max_attempts = max_attempts;
    s->deadline = -1;
    s->state = SB_SSE_IDLE;
    sb_rng_seed(&s->rng, seed);
    return s;
}

void sb_sse_destroy(sb_sse *s)
{
    if (!s)
        return;
    free(s->line.p);
    free(s->out.p);
    free(s->type.p);
    free(s->id.p);
    free(s->last.p);
    free(s->rec);
    free(s);
}

int sb_sse_connect(sb_sse *s, double now_ms)
{
    (void)now_ms;
    if (!s)
        return SB_E_INVALID;
    if (s->state != SB_SSE_IDLE && s->state != SB_SSE_WAITING)
        return SB_E_BAD_STATE;
    sb_sse_end(s);
    s->state = SB_SSE_CONNECTING;
    s->progress = 0;
    s->deadline = -1;
    return SB_OK;
}

int sb_sse_opened(sb_sse *s, double now_ms)
{
    (void)now_ms;
    if (!s)
        return SB_E_INVALID;
    if (s->state != SB_SSE_CONNECTING)
        return SB_E_BAD_STATE;
    s->state = SB_SSE_OPEN;
    return SB_OK;
}

void sb_sse_retry_after(sb_sse *s, double ms)
{
    if (s)
        s->hold = ms > 0 ? ms : 0;
}

int sb_sse_failed(sb_sse *s, double now_ms)
{
    double floor, hi, d, hold;
    if (!s)
        return SB_E_INVALID;
    if (s->state != SB_SSE_CONNECTING && s->state != SB_SSE_OPEN)
        return SB_E_BAD_STATE;
    sb_sse_end(s);
    if (s->progress)
        s->attempts = 0;
    s->progress = 0;
    if (s->max_attempts && s->attempts >= s->max_attempts) {
        s->state = SB_SSE_CLOSED;
        s->deadline = -1;
        return SB_E_CONNECTION_LOST;
    }
    /* the server's retry is a floor we never go under (the HTML standard
     * waits at least that long); our jitter and growth sit on top of it:
     * sb_backoff_delay draws from [min/2, ...], so asking with min = 2 floor
     * gives [floor, 2 floor] on the first attempt, growing from there, capped
     * at max_ms but never below 2 floor (a retry >= max_ms is jittered too) */
    floor = s->retry >= 0 ? s->retry : s->min_ms;
    if (floor < 1) /* retry: 0 still waits 1 ms, and growth needs a base */
        floor = 1;
    hi = s->max_ms > 2 * floor ? s->max_ms : 2 * floor;
    d = sb_backoff_delay(2 * floor, hi, s->factor, s->attempts, &s->rng);
    /* Retry-After raises this one wait, up to max_ms */
    hold = s->hold < s->max_ms ? s->hold : s->max_ms;
    s->hold = 0;
    s->deadline = now_ms + (d > hold ? d : hold);
    s->attempts++;
    s->state = SB_SSE_WAITING;
    return SB_OK;
}

void sb_sse_close(sb_sse *s)
{
    if (!s)
        return;
    sb_sse_end(s);
    s->state = SB_SSE_CLOSED;
    s->deadline = -1;
}

void sb_sse_progress(sb_sse *s)
{
    if (s)
        s->progress = 1;
}

int sb_sse_state(const sb_sse *s)
{
    return s ? s->state : SB_SSE_CLOSED;
}

double sb_sse_deadline(const sb_sse *s)
{
    return s && s->state == SB_SSE_WAITING ? s->deadline : -1;
}

int sb_sse_attempts(const sb_sse *s)
{
    return s ? s->attempts : 0;
}

/* ---- response classification ---------------------------------------------- */

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static double days_from_civil(int y, int m, int d)
{
    int era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (double)era * 146097 + doe - 719468;
}

static int digits(const uint8_t *p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

double sb_sse_parse_retry_after(const uint8_t *v, uint32_t n, double wall_ms)
{
    static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
    uint32_t a = 0, b = n;
    if (!v)
        return -1;
    while (a < b && (v[a] == ' ' || v[a] == '\t'))
        a++;
    while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
        b--;
    if (a == b)
        return -1;
    if (v[a] >= '0' && v[a] <= '9') { /* delay-seconds */
        double sec = 0;
        for (uint32_t i = a; i < b; i++) {
            if (v[i] < '0' || v[i] > '9' || i - a >= 10)
                return -1;
            sec = sec * 10 + (v[i] - '0');
        }
        return sec * 1000;
    }
    /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (29 bytes) */
    if (b - a != 29)
        return -1;
    {
        const uint8_t *p = v + a;
        int day = digits(p + 5, 2), year = digits(p + 12, 4), hh = digits(p + 17, 2),
            mm = digits(p + 20, 2), ss = digits(p + 23, 2), mon = -1;
        if (p[3] != ',' || p[4] != ' ' || p[7] != ' ' || p[11] != ' ' || p[16] != ' ' ||
            p[19] != ':' || p[22] != ':' || memcmp(p + 25, " GMT", 4) != 0)
            return -1;
        for (int i = 0; i < 12; i++)
            if (lower(p[8]) == months[3 * i] && lower(p[9]) == months[3 * i + 1] &&
                lower(p[10]) == months[3 * i + 2])
                mon = i + 1;
        if (mon < 0 || day < 1 || day > 31 || year < 0 || hh < 0 || hh > 23 || mm < 0 ||
            mm > 59 || ss < 0 || ss > 60)
            return -1;
        return ((days_from_civil(year, mon, day) * 24 + hh) * 60 + mm) * 60000 + ss * 1000.0 -
               wall_ms;
    }
}

int sb_sse_response(sb_sse *s, int status, const uint8_t *type, uint32_t ntype,
                    const uint8_t *retry_after, uint32_t nretry, double wall_ms)
{
    static const char want[] = "text/event-stream";
    uint32_t a = 0, b;
    if (status == 204)
        return SB_SSE_V_NO_CONTENT;
    if (status != 200) {
        int retry = status == 408 || status == 425 || status == 429 || status == 500 ||
                    status == 502 || status == 503 || status == 504;
        if (s && (status == 429 || status == 503) && nretry) {
            double ms = sb_sse_parse_retry_after(retry_after, nretry, wall_ms);
            if (ms > 0)
                sb_sse_retry_after(s, ms);
        }
        return retry ? SB_SSE_V_RETRY : SB_SSE_V_HTTP_ERROR;
    }
    /* the media type: before any parameter, trimmed, case-insensitive */
    if (!type)
        ntype = 0;
    for (b = 0; b < ntype && type[b] != ';'; b++)
        ;
    while (a < b && (type[a] == ' ' || type[a] == '\t'))
        a++;
    while (b > a && (type[b - 1] == ' ' || type[b - 1] == '\t'))
        b--;
    if (b - a != sizeof want - 1)
        return SB_SSE_V_BAD_TYPE;
    for (uint32_t i = 0; i < b - a; i++)
        if (lower(type[a + i]) != want[i])
            return SB_SSE_V_BAD_TYPE;
    return SB_SSE_V_OPEN;
}

