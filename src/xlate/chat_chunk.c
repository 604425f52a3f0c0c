/*
 * Chat completion chunks read without a tree: the allocation-free JSON
 * scanner finds what the router and the chat reader need in each event of
 * a stream. Whenever it says it read a chunk, it read what jansson would.
 */
#include <string.h>

#include "util/json_scan.h"
#include "xlate/xlate.h"

/* The value of four hex digits at p[i], or -1. */
static long hex4(const char *p, size_t n, size_t i)
{
    if (i + 4 > n)
        return -1;
    long v = 0;
    for (size_t k = i; k < i + 4; k++) {
        char ch = p[k];
        int d = ch >= '0' && ch <= '9'   ? ch - '0'
                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                         : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* The index of the quote closing a string whose text starts at p[i] (just
 * past the opening quote), or n. memchr does the long runs: most of an
 * event's bytes are inside strings. */
static size_t str_close(const char *p, size_t n, size_t i)
{
    while (i < n) {
        const char *q = memchr(p + i, '"', n - i);
        if (!q)
            return n;
        size_t j = (size_t)(q - p), b = j;
        while (b > i && p[b - 1] == '\\')
            b--;
        if ((j - b) % 2 == 0)
            return j; /* not escaped */
        i = j + 1;
    }
    return n;
}

/* A "\u" escape jansson refuses: NUL or an unpaired surrogate. */
static bool bad_escapes(const char *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] != '\\')
            continue;
        if (p[i + 1] == 'u') {
            long cp = hex4(p, n, i + 2);
            if (cp == 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
                return true; /* NUL, or a lone low surrogate */
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                long lo = i + 7 < n && p[i + 6] == '\\' && p[i + 7] == 'u' ? hex4(p, n, i + 8) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return true; /* a high surrogate without its pair */
                i += 6;
            }
            i += 4;
        }
        i++;
    }
    return false;
}

/* Cases where jansson (json_loadb, flags 0) rejects what the scanner accepts:
 * "\u0000" or an unpaired surrogate escape in a string, and numbers that
 * overflow a long long or a double.
 * Conservative: any long digit run or exponent outside strings counts. */
static bool jansson_might_differ(const char *p, size_t n)
{
    size_t digits = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch == '"') {
            size_t e = str_close(p, n, i + 1);
            if (memchr(p + i + 1, '\\', e - (i + 1)) && bad_escapes(p + i + 1, e - (i + 1)))
                return true;
            i = e;
            digits = 0;
            continue;
        }
        if (ch >= '0' && ch <= '9') {
            if (++digits >= 16)
                return true;
            continue;
        }
        if ((ch == 'e' || ch == 'E') && digits)
            return true;
        digits = 0;
    }
    return false;
}

/* Walking JSON text the scanner already validated: no checks needed but
 * bounds, so finding members of nested objects costs one light pass instead
 * of another validating scan each. */
static size_t skip_ws(const char *p, size_t n, size_t i)
{
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    return i;
}

/* The end of the value starting at p[i]. */
static size_t skip_value(const char *p, size_t n, size_t i)
{
    unsigned depth = 0;
    for (; i < n; i++) {
        char ch = p[i];
        if (ch == '"') {
            i = str_close(p, n, i + 1);
            if (!depth)
                return i < n ? i + 1 : n;
        } else if (ch == '{' || ch == '[') {
            depth++;
        } else if (ch == '}' || ch == ']') {
            if (!depth)
                return i; /* a scalar ended by its container */
            if (--depth == 0)
                return i + 1;
        } else if (!depth && (ch == ',' || ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r')) {
            return i;
        }
    }
    return n;
}

static bl_json_kind_t kind_of(char ch)
{
    switch (ch) {
    case '"': return BL_JSON_STRING;
    case '{': return BL_JSON_OBJECT;
    case '[': return BL_JSON_ARRAY;
    case 't': return BL_JSON_TRUE;
    case 'f': return BL_JSON_FALSE;
    case 'n': return BL_JSON_NULL;
    default: return BL_JSON_NUMBER;
    }
}

/* bl_json_scan_object's member search on a validated object p[0..n), which
 * starts with '{'. -1 when a key has escapes or a member repeats: those
 * events go to jansson. */
static int find_members(const char *p, size_t n, bl_json_member_t *m, size_t nm)
{
    for (size_t k = 0; k < nm; k++) {
        m[k].kind = BL_JSON_NONE;
        m[k].off = m[k].len = 0;
        m[k].count = 0;
    }
    size_t i = skip_ws(p, n, 1);
    while (i < n && p[i] == '"') {
        size_t ks = i + 1, ke = ks;
        while (ke < n && p[ke] != '"' && p[ke] != '\\')
            ke++;
        if (ke >= n || p[ke] != '"')
            return -1;
        i = skip_ws(p, n, ke + 1);
        if (i >= n || p[i] != ':')
            return -1;
        i = skip_ws(p, n, i + 1);
        size_t vs = i;
        i = skip_value(p, n, i);
        for (size_t k = 0; k < nm; k++) {
            if (strlen(m[k].key) != ke - ks || memcmp(m[k].key, p + ks, ke - ks))
                continue;
            if (m[k].count++)
                return -1;
            m[k].kind = vs < n ? kind_of(p[vs]) : BL_JSON_NONE;
            m[k].off = vs;
            m[k].len = i - vs;
        }
        i = skip_ws(p, n, i);
        if (i < n && p[i] == ',')
            i = skip_ws(p, n, i + 1);
    }
    return 0;
}

/* The next element of a validated JSON array (p[0] == '['): *pos starts
 * at 0; false after the last element. */
static bool array_next(const char *a, size_t n, size_t *pos, bl_str_t *elem)
{
    size_t i = skip_ws(a, n, *pos ? *pos : 1);
    if (i >= n || a[i] == ']')
        return false;
    size_t end = skip_value(a, n, i);
    elem->p = a + i;
    elem->n = end - i;
    i = skip_ws(a, n, end);
    *pos = i < n && a[i] == ',' ? i + 1 : i;
    return true;
}

/* Validate once with the scanner, then walk. */
static int scan(const char *p, size_t n, bl_json_member_t *m, size_t nm)
{
    if (bl_json_scan_object(p, n, NULL, 0, NULL, NULL))
        return -1;
    size_t i = skip_ws(p, n, 0);
    size_t e = n;
    while (e > i && (p[e - 1] == ' ' || p[e - 1] == '\t' || p[e - 1] == '\n' || p[e - 1] == '\r'))
        e--;
    if (find_members(p + i, e - i, m, nm))
        return -1;
    for (size_t k = 0; k < nm; k++)
        m[k].off += i; /* offsets relative to p, as the scanner's are */
    return 0;
}

static bool nonempty_string(const bl_json_member_t *m)
{
    return m->kind == BL_JSON_STRING && m->len > 2; /* any escape spells >= 1 byte */
}

static bool present_not_null(const bl_json_member_t *m)
{
    return m->kind != BL_JSON_NONE && m->kind != BL_JSON_NULL;
}

int bl_xchat_chunk_read(const char *data, size_t n, bl_xchat_chunk_t *out)
{
    memset(out, 0, sizeof *out);
    if (jansson_might_differ(data, n))
        return -1;
    enum { R_ERROR, R_CHOICES, R_USAGE, R_N };
    bl_json_member_t root[R_N] = {{.key = "error"}, {.key = "choices"}, {.key = "usage"}};
    if (scan(data, n, root, R_N))
        return -1;
    out->error = root[R_ERROR].kind != BL_JSON_NONE;
    out->usage = root[R_USAGE];
    if (root[R_CHOICES].kind != BL_JSON_ARRAY)
        return 0;
    out->choices_array = true;
    const char *arr = data + root[R_CHOICES].off;
    size_t an = root[R_CHOICES].len, pos = 0;
    bl_str_t ch;
    while (array_next(arr, an, &pos, &ch)) {
        bool first = out->n_choices++ == 0;
        if (!ch.n || ch.p[0] != '{')
            continue; /* not an object: nothing in it counts */
        enum { C_TEXT, C_FINISH, C_DELTA, C_N };
        bl_json_member_t cm[C_N] = {{.key = "text"}, {.key = "finish_reason"}, {.key = "delta"}};
        if (find_members(ch.p, ch.n, cm, C_N))
            return -1;
        enum { D_CONTENT, D_REFUSAL, D_TOOLS, D_FUNC, D_N };
        bl_json_member_t dm[D_N] = {{.key = "content"}, {.key = "refusal"},
                                    {.key = "tool_calls"}, {.key = "function_call"}};
        bool delta = cm[C_DELTA].kind == BL_JSON_OBJECT;
        if (delta && find_members(ch.p + cm[C_DELTA].off, cm[C_DELTA].len, dm, D_N))
            return -1;
        bool tool = delta && (dm[D_TOOLS].kind != BL_JSON_NONE || dm[D_FUNC].kind != BL_JSON_NONE);
        if (nonempty_string(&cm[C_TEXT]) || present_not_null(&cm[C_FINISH]) ||
            (delta && (nonempty_string(&dm[D_CONTENT]) || nonempty_string(&dm[D_REFUSAL]) || tool)))
            out->any_shows = true;
        if (!first)
            continue;
        out->tool0 = tool;
        out->finished0 = present_not_null(&cm[C_FINISH]);
        const bl_json_member_t *t = delta ? &dm[D_CONTENT] : &cm[C_TEXT];
        const char *base = delta ? ch.p + cm[C_DELTA].off : ch.p;
        if (t->kind == BL_JSON_STRING)
            out->text0 = (bl_str_t){base + t->off, t->len};
    }
    return 0;
}

int bl_xchat_usage_read(const char *p, size_t n, long long vals[3], bool have[3])
{
    bl_json_member_t m[3] = {
        {.key = "prompt_tokens"}, {.key = "completion_tokens"}, {.key = "total_tokens"}};
    if (jansson_might_differ(p, n) || scan(p, n, m, 3))
        return -1;
    for (size_t i = 0; i < 3; i++) {
        have[i] = false;
        if (m[i].kind != BL_JSON_NUMBER || m[i].len > 20)
            continue;
        const char *v = p + m[i].off;
        if (memchr(v, '.', m[i].len) || memchr(v, 'e', m[i].len) || memchr(v, 'E', m[i].len))
            continue; /* a real, which jansson does not count as an integer */
        /* at most 15 digits (longer runs went to jansson): no overflow */
        bool neg = v[0] == '-';
        long long x = 0;
        for (size_t k = neg; k < m[i].len; k++)
            x = x * 10 + (v[k] - '0');
        vals[i] = neg ? -x : x;
        have[i] = true;
    }
    return 0;
}
