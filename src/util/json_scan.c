#include "util/json_scan.h"

#include <string.h>

#include <ballast/errors.h>

typedef struct {
    const char *p;
    size_t n, i;
    const char *why;
} scanner_t;

static void ws(scanner_t *s)
{
    while (s->i < s->n) {
        char c = s->p[s->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            return;
        s->i++;
    }
}

static bool fail(scanner_t *s, const char *why)
{
    if (!s->why)
        s->why = why;
    return false;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* One UTF-8 sequence starting at s->i (first byte >= 0x80), RFC 3629. */
static bool utf8(scanner_t *s)
{
    const unsigned char *u = (const unsigned char *)s->p + s->i;
    size_t left = s->n - s->i;
    unsigned c = u[0];
    size_t len;
    unsigned min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        min = 0x10000;
    } else {
        return fail(s, "invalid UTF-8");
    }
    if (left < len)
        return fail(s, "truncated UTF-8");
    unsigned cp = c & (0xFFu >> (len + 1));
    for (size_t k = 1; k < len; k++) {
        if ((u[k] & 0xC0) != 0x80)
            return fail(s, "invalid UTF-8");
        cp = (cp << 6) | (u[k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return fail(s, "invalid UTF-8");
    s->i += len;
    return true;
}

static bool string(scanner_t *s)
{
    s->i++; /* opening quote */
    while (s->i < s->n) {
        unsigned char c = (unsigned char)s->p[s->i];
        if (c == '"') {
            s->i++;
            return true;
        }
        if (c < 0x20)
            return fail(s, "control character in string");
        if (c == '\\') {
            if (++s->i >= s->n)
                break;
            char e = s->p[s->i];
            if (e == 'u') {
                if (s->n - s->i < 5)
                    return fail(s, "truncated \\u escape");
                for (int k = 1; k <= 4; k++)
                    if (hexval(s->p[s->i + k]) < 0)
                        return fail(s, "bad \\u escape");
                s->i += 5;
            } else if (strchr("\"\\/bfnrt", e) && e) {
                s->i++;
            } else {
                return fail(s, "bad escape in string");
            }
            continue;
        }
        if (c >= 0x80) {
            if (!utf8(s))
                return false;
            continue;
        }
        s->i++;
    }
    return fail(s, "unterminated string");
}

static bool digits(scanner_t *s)
{
    size_t start = s->i;
    while (s->i < s->n && s->p[s->i] >= '0' && s->p[s->i] <= '9')
        s->i++;
    return s->i > start;
}

static bool number(scanner_t *s)
{
    if (s->p[s->i] == '-')
        s->i++;
    if (s->i < s->n && s->p[s->i] == '0')
        s->i++;
    else if (!digits(s))
        return fail(s, "bad number");
    if (s->i < s->n && s->p[s->i] == '.') {
        s->i++;
        if (!digits(s))
            return fail(s, "bad number");
    }
    if (s->i < s->n && (s->p[s->i] == 'e' || s->p[s->i] == 'E')) {
        s->i++;
        if (s->i < s->n && (s->p[s->i] == '+' || s->p[s->i] == '-'))
            s->i++;
        if (!digits(s))
            return fail(s, "bad number");
    }
    return true;
}

static bool literal(scanner_t *s, const char *lit)
{
    size_t n = strlen(lit);
    if (s->n - s->i < n || memcmp(s->p + s->i, lit, n))
        return fail(s, "unexpected token");
    s->i += n;
    return true;
}

static bool value(scanner_t *s, unsigned depth, bl_json_kind_t *kind);

static bool container(scanner_t *s, unsigned depth, bool is_object)
{
    char close = is_object ? '}' : ']';
    if (depth > BL_JSON_MAX_DEPTH)
        return fail(s, "nesting too deep");
    s->i++;
    ws(s);
    if (s->i < s->n && s->p[s->i] == close) {
        s->i++;
        return true;
    }
    for (;;) {
        if (is_object) {
            ws(s);
            if (s->i >= s->n || s->p[s->i] != '"')
                return fail(s, "expected a member name");
            if (!string(s))
                return false;
            ws(s);
            if (s->i >= s->n || s->p[s->i] != ':')
                return fail(s, "expected ':'");
            s->i++;
        }
        bl_json_kind_t k;
        if (!value(s, depth + 1, &k))
            return false;
        ws(s);
        if (s->i >= s->n)
            return fail(s, "unexpected end of input");
        if (s->p[s->i] == ',') {
            s->i++;
            continue;
        }
        if (s->p[s->i] == close) {
            s->i++;
            return true;
        }
        return fail(s, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static bool value(scanner_t *s, unsigned depth, bl_json_kind_t *kind)
{
    ws(s);
    if (s->i >= s->n)
        return fail(s, "unexpected end of input");
    switch (s->p[s->i]) {
    case '{': *kind = BL_JSON_OBJECT; return container(s, depth, true);
    case '[': *kind = BL_JSON_ARRAY; return container(s, depth, false);
    case '"': *kind = BL_JSON_STRING; return string(s);
    case 't': *kind = BL_JSON_TRUE; return literal(s, "true");
    case 'f': *kind = BL_JSON_FALSE; return literal(s, "false");
    case 'n': *kind = BL_JSON_NULL; return literal(s, "null");
    default:
        *kind = BL_JSON_NUMBER;
        if (s->p[s->i] == '-' || (s->p[s->i] >= '0' && s->p[s->i] <= '9'))
            return number(s);
        return fail(s, "unexpected character");
    }
}

/* Does the raw string token (with quotes) spell key? Keys we look for are
 * plain ASCII, so an escaped spelling simply does not match... except that a
 * client could write "mod\u0065l"; unescape when there is a backslash. */
static bool key_is(const char *tok, size_t n, const char *key)
{
    size_t kn = strlen(key);
    if (!memchr(tok, '\\', n))
        return n == kn + 2 && !memcmp(tok + 1, key, kn);
    char buf[64];
    long u = bl_json_unescape(tok, n, buf, sizeof buf);
    return u == (long)kn && !memcmp(buf, key, kn);
}

int bl_json_scan_object(const char *text, size_t n, bl_json_member_t *members, size_t n_members,
                        const char **why, size_t *where)
{
    scanner_t s = {.p = text, .n = n};
    for (size_t m = 0; m < n_members; m++) {
        members[m].kind = BL_JSON_NONE;
        members[m].off = members[m].len = 0;
        members[m].count = 0;
    }
    ws(&s);
    if (s.i >= s.n || s.p[s.i] != '{') {
        fail(&s, "expected a JSON object");
        goto bad;
    }
    s.i++;
    ws(&s);
    if (s.i < s.n && s.p[s.i] == '}') {
        s.i++;
        goto tail;
    }
    for (;;) {
        ws(&s);
        if (s.i >= s.n || s.p[s.i] != '"') {
            fail(&s, "expected a member name");
            goto bad;
        }
        size_t kstart = s.i;
        if (!string(&s))
            goto bad;
        size_t klen = s.i - kstart;
        ws(&s);
        if (s.i >= s.n || s.p[s.i] != ':') {
            fail(&s, "expected ':'");
            goto bad;
        }
        s.i++;
        ws(&s);
        size_t vstart = s.i;
        bl_json_kind_t kind;
        if (!value(&s, 1, &kind))
            goto bad;
        for (size_t m = 0; m < n_members; m++) {
            if (!key_is(text + kstart, klen, members[m].key))
                continue;
            members[m].kind = kind;
            members[m].off = vstart;
            members[m].len = s.i - vstart;
            members[m].count++;
        }
        ws(&s);
        if (s.i < s.n && s.p[s.i] == ',') {
            s.i++;
            continue;
        }
        if (s.i < s.n && s.p[s.i] == '}') {
            s.i++;
            break;
        }
        fail(&s, "expected ',' or '}'");
        goto bad;
    }
tail:
    ws(&s);
    if (s.i != s.n) {
        fail(&s, "unexpected data after the JSON object");
        goto bad;
    }
    return BL_OK;
bad:
    if (why)
        *why = s.why;
    if (where)
        *where = s.i;
    return BL_EFORMAT;
}

static void put_utf8(char *out, size_t *o, unsigned cp)
{
    if (cp < 0x80) {
        out[(*o)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*o)++] = (char)(0xC0 | (cp >> 6));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out[(*o)++] = (char)(0xE0 | (cp >> 12));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        out[(*o)++] = (char)(0xF0 | (cp >> 18));
        out[(*o)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    }
}

long bl_json_unescape(const char *s, size_t n, char *out, size_t cap)
{
    if (n < 2 || !cap)
        return -1;
    size_t o = 0;
    for (size_t i = 1; i + 1 < n; i++) {
        if (o + 4 >= cap)
            return -1;
        char c = s[i];
        if (c != '\\') {
            out[o++] = c;
            continue;
        }
        if (++i + 1 >= n)
            return -1;
        switch (s[i]) {
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            if (i + 4 >= n)
                return -1;
            unsigned cp = 0;
            for (int k = 1; k <= 4; k++)
                cp = cp << 4 | (unsigned)hexval(s[i + k]);
            i += 4;
            /* a surrogate pair spells one code point */
            if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 < n && s[i + 1] == '\\' && s[i + 2] == 'u') {
                unsigned lo = 0;
                for (int k = 3; k <= 6; k++)
                    lo = lo << 4 | (unsigned)hexval(s[i + k]);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
            }
            if (cp >= 0xD800 && cp <= 0xDFFF)
                cp = 0xFFFD; /* a lone surrogate */
            put_utf8(out, &o, cp);
            break;
        }
        default: out[o++] = s[i]; break;
        }
    }
    out[o] = '\0';
    return (long)o;
}
