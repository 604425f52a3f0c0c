/*
 * Just enough JSON for chat templates and tool calls, with no library (the
 * engine links nothing but libc and libcrypto): check that text is one JSON
 * value and write it back out the way Jinja's `tojson` writes the parsed
 * value. Python's json.dumps(ensure_ascii=False) and @huggingface/jinja's
 * toJSON agree on the form: ", " and ": " between items (with an indent:
 * "," plus a newline, and ": "), keys in the order given, strings escaped
 * as JSON.stringify does (\" \\ \b \f \n \r \t, other controls as \u00xx,
 * lone surrogates as \udxxx, everything else raw). Numbers are written as
 * they were spelled: the two engines would respell 1.0 or 1e5 differently
 * from each other anyway.
 */
#include <stdio.h>

#include "engine/chat/chat.h"

#define MAX_DEPTH 128 /* deeper nesting is refused, not recursed into */

const bl_chat_json_style_t BL_CHAT_JSON_JINJA = {", ", ": ", 0};
const bl_chat_json_style_t BL_CHAT_JSON_COMPACT = {",", ":", 0};

typedef struct {
    const char *p, *end;
    sb_t *out; /* NULL: only check */
    const bl_chat_json_style_t *st;
} cur_t;

static void ws(cur_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static void emit(cur_t *c, const char *s, size_t n)
{
    if (c->out)
        putn(c->out, s, n);
}

static void newline(cur_t *c, int level)
{
    if (!c->out || c->st->indent <= 0)
        return;
    putc_(c->out, '\n');
    for (int i = 0; i < level * c->st->indent; i++)
        putc_(c->out, ' ');
}

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char h = p[i];
        v <<= 4;
        if (h >= '0' && h <= '9')
            v |= h - '0';
        else if (h >= 'a' && h <= 'f')
            v |= h - 'a' + 10;
        else if (h >= 'A' && h <= 'F')
            v |= h - 'A' + 10;
        else
            return -1;
    }
    return v;
}

static void put_utf8(sb_t *b, unsigned cp)
{
    char u[4];
    size_t k;
    if (cp < 0x80) {
        u[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3F));
        k = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        k = 3;
    } else {
        u[0] = (char)(0xF0 | cp >> 18);
        u[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        k = 4;
    }
    putn(b, u, k);
}

/* Write code point cp as JSON.stringify would inside a string. */
static void put_escaped_cp(sb_t *b, unsigned cp)
{
    char e[16];
    switch (cp) {
    case '"':
        put(b, "\\\"");
        return;
    case '\\':
        put(b, "\\\\");
        return;
    case '\b':
        put(b, "\\b");
        return;
    case '\f':
        put(b, "\\f");
        return;
    case '\n':
        put(b, "\\n");
        return;
    case '\r':
        put(b, "\\r");
        return;
    case '\t':
        put(b, "\\t");
        return;
    }
    if (cp < 0x20 || (cp >= 0xD800 && cp < 0xE000)) { /* lone surrogates stay escaped */
        snprintf(e, sizeof e, "\\u%04x", cp);
        put(b, e);
    } else {
        put_utf8(b, cp);
    }
}

/* The string at c->p (at its opening quote): decoded into raw (a lone
 * surrogate becomes U+FFFD there), or re-escaped into esc, or only checked. */
static bool string_dec(cur_t *c, sb_t *raw, sb_t *esc)
{
    if (c->p >= c->end || *c->p != '"')
        return false;
    c->p++;
    if (esc)
        putc_(esc, '"');
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '"') {
            c->p++;
            if (esc)
                putc_(esc, '"');
            return true;
        }
        if (ch < 0x20)
            return false;
        if (ch != '\\') {
            const char *s = c->p;
            while (c->p < c->end && *c->p != '"' && *c->p != '\\' && (unsigned char)*c->p >= 0x20)
                c->p++;
            if (raw || esc)
                putn(raw ? raw : esc, s, (size_t)(c->p - s));
            continue;
        }
        if (c->end - c->p < 2)
            return false;
        char e = c->p[1];
        c->p += 2;
        static const char names[] = "\"\\/bfnrt", map[] = "\"\\/\b\f\n\r\t";
        const char *simple = e ? strchr(names, e) : NULL;
        unsigned cp;
        if (simple) {
            cp = (unsigned char)map[simple - names];
        } else {
            int v = e == 'u' && c->end - c->p >= 4 ? hex4(c->p) : -1;
            if (v < 0)
                return false;
            c->p += 4;
            cp = (unsigned)v;
            if (v >= 0xD800 && v < 0xDC00 && c->end - c->p >= 6 && c->p[0] == '\\' &&
                c->p[1] == 'u') {
                int lo = hex4(c->p + 2);
                if (lo >= 0xDC00 && lo < 0xE000) {
                    c->p += 6;
                    cp = 0x10000 + (((unsigned)v - 0xD800) << 10) + ((unsigned)lo - 0xDC00);
                }
            }
        }
        if (raw)
            put_utf8(raw, cp >= 0xD800 && cp < 0xE000 ? 0xFFFD : cp);
        else if (esc)
            put_escaped_cp(esc, cp);
    }
    return false;
}

void bl_chat_json_put_string(sb_t *out, const char *s, size_t n)
{
    putc_(out, '"');
    for (size_t i = 0; i < n;) {
        size_t k = i;
        while (k < n && (unsigned char)s[k] >= 0x20 && s[k] != '"' && s[k] != '\\')
            k++;
        putn(out, s + i, k - i);
        if (k < n)
            put_escaped_cp(out, (unsigned char)s[k++]);
        i = k;
    }
    putc_(out, '"');
}

static bool string_val(cur_t *c)
{
    return string_dec(c, NULL, c->out);
}

static bool digits(cur_t *c)
{
    const char *s = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
        c->p++;
    return c->p > s;
}

static bool number(cur_t *c)
{
    const char *s = c->p;
    if (c->p < c->end && *c->p == '-')
        c->p++;
    if (c->p < c->end && *c->p == '0')
        c->p++;
    else if (!digits(c))
        return false;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (!digits(c))
            return false;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (!digits(c))
            return false;
    }
    emit(c, s, (size_t)(c->p - s));
    return true;
}

static bool word(cur_t *c, const char *w)
{
    size_t k = strlen(w);
    if ((size_t)(c->end - c->p) < k || memcmp(c->p, w, k))
        return false;
    emit(c, w, k);
    c->p += k;
    return true;
}

static bool value(cur_t *c, int level);

/* An array or object; members are "key": value when obj. */
static bool container(cur_t *c, int level, bool obj)
{
    char close = obj ? '}' : ']';
    c->p++;
    emit(c, obj ? "{" : "[", 1);
    ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        emit(c, &close, 1);
        return true;
    }
    for (bool first = true;; first = false) {
        if (!first)
            emit(c, c->st->indent > 0 ? "," : c->st->item_sep,
                 c->st->indent > 0 ? 1 : strlen(c->st->item_sep));
        newline(c, level + 1);
        ws(c);
        if (obj) {
            if (!string_val(c))
                return false;
            ws(c);
            if (c->p >= c->end || *c->p != ':')
                return false;
            c->p++;
            emit(c, c->st->key_sep, strlen(c->st->key_sep));
        }
        if (!value(c, level + 1))
            return false;
        ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == close) {
            c->p++;
            newline(c, level);
            emit(c, &close, 1);
            return true;
        }
        return false;
    }
}

static bool value(cur_t *c, int level)
{
    ws(c);
    if (c->p >= c->end || level > MAX_DEPTH)
        return false;
    switch (*c->p) {
    case '{':
        return container(c, level, true);
    case '[':
        return container(c, level, false);
    case '"':
        return string_val(c);
    case 't':
        return word(c, "true");
    case 'f':
        return word(c, "false");
    case 'n':
        return word(c, "null");
    default:
        return number(c);
    }
}

static bool whole(cur_t *c)
{
    if (!value(c, 0))
        return false;
    ws(c);
    return c->p == c->end;
}

bool bl_chat_json_write(sb_t *out, const char *s, size_t n, const bl_chat_json_style_t *st)
{
    if (!s)
        return false;
    sb_t tmp = {0};
    cur_t c = {s, s + n, out ? &tmp : NULL, st ? st : &BL_CHAT_JSON_JINJA};
    bool ok = whole(&c);
    if (ok && out && tmp.n)
        putn(out, tmp.p, tmp.n);
    if (out)
        out->oom |= tmp.oom;
    free(tmp.p);
    return ok;
}

int bl_chat_json_items(const char *s, size_t n, span_t **items, size_t *n_items)
{
    *items = NULL;
    *n_items = 0;
    cur_t c = {s, s + n, NULL, &BL_CHAT_JSON_JINJA};
    ws(&c);
    if (!s || c.p >= c.end || *c.p != '[')
        return BL_EINVAL;
    const char *start = c.p;
    if (!whole(&c)) /* checks everything, so the walk below cannot fail */
        return BL_EINVAL;
    c.p = start + 1;
    size_t cap = 0;
    for (;;) {
        ws(&c);
        if (*c.p == ']')
            return 0;
        const char *v = c.p;
        value(&c, 1);
        if (*n_items == cap) {
            cap = cap ? cap * 2 : 8;
            span_t *p = realloc(*items, cap * sizeof *p);
            if (!p) {
                free(*items);
                *items = NULL;
                *n_items = 0;
                return BL_ENOMEM;
            }
            *items = p;
        }
        (*items)[(*n_items)++] = (span_t){v, (size_t)(c.p - v)};
        ws(&c);
        if (*c.p == ',')
            c.p++;
    }
}

/* Take the value at c->p as a call's arguments: an object (or any JSON
 * value) written compactly, or a string that itself holds JSON. */
static bool call_args(cur_t *c, sb_t *args)
{
    if (*c->p != '"') {
        cur_t v = {c->p, c->end, args, &BL_CHAT_JSON_COMPACT};
        if (!value(&v, 1))
            return false;
        c->p = v.p;
        return true;
    }
    sb_t raw = {0};
    bool ok = string_dec(c, &raw, NULL) && !raw.oom &&
              bl_chat_json_write(args, raw.p ? raw.p : "", raw.n, &BL_CHAT_JSON_COMPACT);
    free(raw.p);
    return ok;
}

bool bl_chat_json_tool_call(const char *s, size_t n, sb_t *name, sb_t *args)
{
    cur_t c = {s, s + n, NULL, &BL_CHAT_JSON_COMPACT};
    bool have_name = false, have_args = false;
    name->n = args->n = 0;
    if (!s || !bl_chat_json_write(NULL, s, n, NULL))
        return false;
    ws(&c);
    if (*c.p != '{')
        return false;
    c.p++;
    ws(&c);
    while (*c.p == '"') {
        sb_t key = {0};
        string_dec(&c, &key, NULL);
        ws(&c);
        c.p++; /* ':' */
        ws(&c);
        bool is_name = key.n == 4 && !memcmp(key.p, "name", 4);
        bool is_args = (key.n == 9 && !memcmp(key.p, "arguments", 9)) ||
                       (key.n == 10 && !memcmp(key.p, "parameters", 10));
        bool oom = key.oom;
        free(key.p);
        if (oom)
            return false;
        if (is_name && !have_name && *c.p == '"') {
            string_dec(&c, name, NULL);
            have_name = true;
        } else if (is_args && !have_args) {
            if (!call_args(&c, args))
                return false;
            have_args = true;
        } else {
            value(&c, 1);
        }
        ws(&c);
        if (*c.p == ',')
            c.p++;
        ws(&c);
    }
    if (!have_args)
        put(args, "{}");
    return have_name && name->n > 0 && !name->oom && !args->oom && !memchr(name->p, '\0', name->n);
}
