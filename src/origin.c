/* origin — see origin.h. */
#include "origin.h"

#include <stdlib.h>
#include <string.h>

/* A parsed origin: the normalized text plus where its parts sit in it. */
typedef struct parsed {
    char text[SB_ORIGIN_MAX + 1];
    int len;
    int scheme_len;          /* text[0..scheme_len) */
    int host_off, host_len;  /* host as written after "://", wildcard "*." included */
    int port;                /* -1: none or the scheme's default */
    int wildcard;            /* host starts with "*." (patterns only) */
    int opaque;              /* "null" */
} parsed;

enum entry_kind { ENTRY_EXACT = 0, ENTRY_WILDCARD = 1, ENTRY_ANY = 2, ENTRY_NULL = 3 };

typedef struct entry {
    int kind;
    parsed p;
} entry;

struct sb_origin_list {
    int count, max;
    entry *e;
};

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static int is_alpha(char c)
{
    c = lower(c);
    return c >= 'a' && c <= 'z';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The first c in [s, end), or NULL: libc's memchr reads by words and is
 * 0.15 KB gzipped of the bridge core, for strings of a few dozen bytes. */
static const char *find(const char *s, const char *end, char c)
{
    for (; s < end; s++)
        if (*s == c)
            return s;
    return NULL;
}

static int default_port(const char *scheme, int n)
{
    if (n == 4 && !memcmp(scheme, "http", 4))
        return 80;
    if (n == 5 && !memcmp(scheme, "https", 5))
        return 443;
    if (n == 2 && !memcmp(scheme, "ws", 2))
        return 80;
    if (n == 3 && !memcmp(scheme, "wss", 3))
        return 443;
    if (n == 3 && !memcmp(scheme, "ftp", 3))
        return 21;
    return -1;
}

static int append(parsed *p, const char *s, int n)
{
    if (p->len + n > SB_ORIGIN_MAX)
        return -1;
    memcpy(p->text + p->len, s, (size_t)n);
    p->len += n;
    p->text[p->len] = 0;
    return 0;
}

/* Domain host: dot-separated labels of [a-z0-9_-], 1..63 each, no empty
 * label (so no leading, trailing or doubled dot). Written lowercased. */
static int parse_domain(parsed *p, const char *s, int n)
{
    int label = 0;
    if (n == 0 || n > 253)
        return -1;
    for (int i = 0; i < n; i++) {
        char c = lower(s[i]);
        if (c == '.') {
            if (label == 0)
                return -1;
            label = 0;
        } else if (is_alpha(c) || is_digit(c) || c == '-' || c == '_') {
            if (++label > 63)
                return -1;
        } else {
            return -1;
        }
        if (append(p, &c, 1))
            return -1;
    }
    return label == 0 ? -1 : 0;
}

/* Bracketed IPv6 literal, kept as written but lowercased. */
static int parse_ipv6(parsed *p, const char *s, int n)
{
    if (n < 4 || s[0] != '[' || s[n - 1] != ']')
        return -1;
    for (int i = 0; i < n; i++) {
        char c = lower(s[i]);
        int ok = (i == 0 || i == n - 1) || is_digit(c) || (c >= 'a' && c <= 'f') || c == ':' ||
                 c == '.';
        if (!ok || append(p, &c, 1))
            return -1;
    }
    return 0;
}

/* Last label all digits: an IPv4 address (or something a browser would
 * treat as one), which a wildcard must never cover. */
static int ends_numeric(const char *s, int n)
{
    int i = n;
    while (i > 0 && s[i - 1] != '.')
        i--;
    if (i == n)
        return 0;
    for (int k = i; k < n; k++)
        if (!is_digit(s[k]))
            return 0;
    return 1;
}

static int parse(const char *in, size_t len, int allow_wildcard, parsed *p)
{
    const char *s = in, *end;
    int i = 0, n;
    memset(p, 0, sizeof *p);
    p->port = -1;
    if (!in || len == 0 || len > SB_ORIGIN_MAX)
        return -1;
    n = (int)len;
    if (n == 4 && !memcmp(in, "null", 4)) {
        p->opaque = 1;
        return append(p, "null", 4);
    }
    /* scheme */
    if (!is_alpha(s[0]))
        return -1;
    while (i < n && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '+' || s[i] == '-' ||
                     s[i] == '.'))
        i++;
    if (i > 32 || n - i < 3 || memcmp(s + i, "://", 3))
        return -1;
    for (int k = 0; k < i; k++) {
        char c = lower(s[k]);
        if (append(p, &c, 1))
            return -1;
    }
    p->scheme_len = i;
    if (append(p, "://", 3))
        return -1;
    s += i + 3;
    n -= i + 3;
    if (n > 0 && s[n - 1] == '/') /* one trailing slash, as in "https://a.com/" */
        n--;
    end = s + n;
    /* host ends at the port colon (outside IPv6 brackets) */
    {
        const char *h = s, *colon = NULL;
        if (h < end && *h == '[') {
            const char *rb = find(h, end, ']');
            if (!rb)
                return -1;
            colon = rb + 1 < end ? rb + 1 : NULL;
            if (colon && *colon != ':')
                return -1;
        } else {
            colon = find(h, end, ':');
        }
        {
            int hn = (int)((colon ? colon : end) - h);
            p->host_off = p->len;
            if (allow_wildcard && hn > 2 && h[0] == '*' && h[1] == '.') {
                p->wildcard = 1;
                if (append(p, "*.", 2) || parse_domain(p, h + 2, hn - 2) ||
                    ends_numeric(h + 2, hn - 2))
                    return -1;
            } else if (hn > 0 && h[0] == '[') {
                if (parse_ipv6(p, h, hn))
                    return -1;
            } else if (parse_domain(p, h, hn)) {
                return -1;
            }
            p->host_len = p->len - p->host_off;
        }
        if (colon) {
            const char *d = colon + 1;
            long v = 0;
            int digits = (int)(end - d);
            if (digits < 1 || digits > 10)
                return -1;
            for (int k = 0; k < digits; k++) {
                if (!is_digit(d[k]))
                    return -1;
                v = v * 10 + (d[k] - '0');
                if (v > 65535) /* checked per digit: long is 32-bit in wasm */
                    return -1;
            }
            if (v != default_port(p->text, p->scheme_len)) {
                char buf[8];
                int bl = 0;
                long t = v;
                char rev[8];
                int rl = 0;
                do {
                    rev[rl++] = (char)('0' + t % 10);
                    t /= 10;
                } while (t);
                buf[bl++] = ':';
                while (rl)
                    buf[bl++] = rev[--rl];
                if (append(p, buf, bl))
                    return -1;
                p->port = (int)v;
            }
        }
    }
    return 0;
}

int sb_origin_normalize(const char *in, size_t len, char *out, size_t cap)
{
    parsed p;
    if (parse(in, len, 0, &p))
        return SB_E_BAD_ORIGIN;
    if (!out || cap < (size_t)p.len + 1)
        return SB_E_BUFFER_TOO_SMALL;
    memcpy(out, p.text, (size_t)p.len + 1);
    return p.len;
}

sb_origin_list *sb_origin_list_create(int max_entries)
{
    sb_origin_list *l;
    if (max_entries < 1 || max_entries > 4096)
        return NULL;
    l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->e = calloc((size_t)max_entries, sizeof *l->e);
    if (!l->e) {
        free(l);
        return NULL;
    }
    l->max = max_entries;
    return l;
}

void sb_origin_list_destroy(sb_origin_list *l)
{
    if (!l)
        return;
    free(l->e);
    free(l);
}

int sb_origin_list_add(sb_origin_list *l, const char *pattern, size_t len)
{
    entry e;
    if (!l)
        return SB_E_INVALID;
    memset(&e, 0, sizeof e);
    if (len == 1 && pattern && pattern[0] == '*') {
        e.kind = ENTRY_ANY;
        e.p.text[0] = '*';
        e.p.len = 1;
    } else {
        if (parse(pattern, len, 1, &e.p))
            return SB_E_BAD_ORIGIN;
        e.kind = e.p.opaque ? ENTRY_NULL : e.p.wildcard ? ENTRY_WILDCARD : ENTRY_EXACT;
    }
    for (int i = 0; i < l->count; i++)
        if (l->e[i].kind == e.kind && l->e[i].p.len == e.p.len &&
            !memcmp(l->e[i].p.text, e.p.text, (size_t)e.p.len))
            return i;
    if (l->count >= l->max)
        return SB_E_TOO_LARGE;
    l->e[l->count] = e;
    return l->count++;
}

int sb_origin_list_count(const sb_origin_list *l)
{
    return l ? l->count : 0;
}

void sb_origin_list_clear(sb_origin_list *l)
{
    if (l)
        l->count = 0;
}

/* host ends with ".suffix" with at least one label in front of it. */
static int wildcard_covers(const entry *w, const parsed *o)
{
    const char *suffix = w->p.text + w->p.host_off + 1; /* ".example.com" */
    int sn = w->p.host_len - 1;
    const char *host = o->text + o->host_off;
    if (o->scheme_len != w->p.scheme_len || memcmp(o->text, w->p.text, (size_t)o->scheme_len))
        return 0;
    if (o->port != w->p.port || o->host_len <= sn || host[0] == '[')
        return 0;
    return !memcmp(host + o->host_len - sn, suffix, (size_t)sn);
}

int sb_origin_list_match(const sb_origin_list *l, const char *origin, size_t len)
{
    parsed o;
    if (!l)
        return SB_E_INVALID;
    if (parse(origin, len, 0, &o))
        return SB_E_BAD_ORIGIN;
    for (int i = 0; i < l->count; i++) {
        const entry *e = &l->e[i];
        switch (e->kind) {
        case ENTRY_ANY:
            if (!o.opaque)
                return i;
            break;
        case ENTRY_NULL:
            if (o.opaque)
                return i;
            break;
        case ENTRY_EXACT:
            if (!o.opaque && e->p.len == o.len && !memcmp(e->p.text, o.text, (size_t)o.len))
                return i;
            break;
        case ENTRY_WILDCARD:
            if (!o.opaque && wildcard_covers(e, &o))
                return i;
            break;
        }
    }
    return SB_E_ORIGIN_REJECTED;
}

const char *sb_origin_list_entry(const sb_origin_list *l, int i)
{
    return (l && i >= 0 && i < l->count) ? l->e[i].p.text : NULL;
}

int sb_origin_list_is_exact(const sb_origin_list *l, int i)
{
    return (l && i >= 0 && i < l->count) ? l->e[i].kind == ENTRY_EXACT : 0;
}
