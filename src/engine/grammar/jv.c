/*
 * JSON text -> jv_t tree (RFC 8259). Recursive descent with a depth limit;
 * invalid UTF-8 is passed through inside strings (the schema compiler only
 * copies it back out), lone surrogate escapes are rejected.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ballast/errors.h>

#include "engine/grammar/jv.h"

#define MAX_DEPTH 64

typedef struct {
    const char *p;
    size_t n, i;
    char *err;
    size_t errlen;
} rd_t;

static int fail(rd_t *r, const char *why)
{
    if (r->err && r->errlen)
        snprintf(r->err, r->errlen, "offset %zu: %s", r->i, why);
    return BL_EFORMAT;
}

static void skip_ws(rd_t *r)
{
    while (r->i < r->n &&
           (r->p[r->i] == ' ' || r->p[r->i] == '\t' || r->p[r->i] == '\n' || r->p[r->i] == '\r'))
        r->i++;
}

typedef struct {
    char *b;
    size_t n, cap;
} sbuf_t;

static int sb_put(sbuf_t *s, const char *p, size_t n)
{
    if (s->n + n + 1 > s->cap) {
        size_t cap = (s->n + n + 1) * 2;
        char *b = realloc(s->b, cap);
        if (!b)
            return BL_ENOMEM;
        s->b = b;
        s->cap = cap;
    }
    memcpy(s->b + s->n, p, n);
    s->n += n;
    s->b[s->n] = '\0';
    return 0;
}

static int hex4(rd_t *r, uint32_t *out)
{
    if (r->n - r->i < 4)
        return fail(r, "truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        char c = r->p[r->i++];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return fail(r, "bad hex digit in \\u escape");
    }
    *out = v;
    return 0;
}

static int put_utf8(sbuf_t *s, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return sb_put(s, u, n);
}

/* r->p[r->i] is the opening quote. */
static int read_str(rd_t *r, char **out, size_t *len)
{
    sbuf_t s = {0};
    int rc = sb_put(&s, "", 0);
    r->i++;
    while (rc == 0) {
        if (r->i >= r->n) {
            rc = fail(r, "unterminated string");
            break;
        }
        unsigned char c = (unsigned char)r->p[r->i];
        if (c == '"') {
            r->i++;
            *out = s.b;
            *len = s.n;
            return 0;
        }
        if (c < 0x20) {
            rc = fail(r, "control character in string");
            break;
        }
        if (c != '\\') {
            size_t j = r->i;
            while (j < r->n && r->p[j] != '"' && r->p[j] != '\\' && (unsigned char)r->p[j] >= 0x20)
                j++;
            rc = sb_put(&s, r->p + r->i, j - r->i);
            r->i = j;
            continue;
        }
        if (++r->i >= r->n) {
            rc = fail(r, "unterminated escape");
            break;
        }
        char e = r->p[r->i++], ch;
        switch (e) {
        case '"':
            ch = '"';
            break;
        case '\\':
            ch = '\\';
            break;
        case '/':
            ch = '/';
            break;
        case 'b':
            ch = '\b';
            break;
        case 'f':
            ch = '\f';
            break;
        case 'n':
            ch = '\n';
            break;
        case 'r':
            ch = '\r';
            break;
        case 't':
            ch = '\t';
            break;
        case 'u': {
            uint32_t cp, lo;
            if ((rc = hex4(r, &cp)) < 0)
                goto out;
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                rc = fail(r, "lone low surrogate");
                goto out;
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (r->n - r->i < 2 || r->p[r->i] != '\\' || r->p[r->i + 1] != 'u') {
                    rc = fail(r, "lone high surrogate");
                    goto out;
                }
                r->i += 2;
                if ((rc = hex4(r, &lo)) < 0)
                    goto out;
                if (lo < 0xdc00 || lo > 0xdfff) {
                    rc = fail(r, "bad surrogate pair");
                    goto out;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            rc = put_utf8(&s, cp);
            continue;
        }
        default:
            rc = fail(r, "bad escape");
            goto out;
        }
        rc = sb_put(&s, &ch, 1);
    }
out:
    free(s.b);
    return rc;
}

static int read_value(rd_t *r, jv_t **out, int depth);

static int push_item(jv_t *v, jv_t *item, char *key, size_t key_len, size_t *cap)
{
    if (v->n_items == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        jv_t **items = realloc(v->items, nc * sizeof *items);
        if (!items)
            return BL_ENOMEM;
        v->items = items;
        if (v->kind == JV_OBJ) {
            char **keys = realloc(v->keys, nc * sizeof *keys);
            if (!keys)
                return BL_ENOMEM;
            v->keys = keys;
            size_t *kl = realloc(v->key_lens, nc * sizeof *kl);
            if (!kl)
                return BL_ENOMEM;
            v->key_lens = kl;
        }
        *cap = nc;
    }
    v->items[v->n_items] = item;
    if (v->kind == JV_OBJ) {
        v->keys[v->n_items] = key;
        v->key_lens[v->n_items] = key_len;
    }
    v->n_items++;
    return 0;
}

static int read_container(rd_t *r, jv_t *v, int depth)
{
    char close = v->kind == JV_OBJ ? '}' : ']';
    size_t cap = 0;
    r->i++;
    skip_ws(r);
    if (r->i < r->n && r->p[r->i] == close) {
        r->i++;
        return 0;
    }
    for (;;) {
        char *key = NULL;
        size_t key_len = 0;
        int rc;
        if (v->kind == JV_OBJ) {
            skip_ws(r);
            if (r->i >= r->n || r->p[r->i] != '"')
                return fail(r, "expected a member name");
            if ((rc = read_str(r, &key, &key_len)) < 0)
                return rc;
            skip_ws(r);
            if (r->i >= r->n || r->p[r->i] != ':') {
                free(key);
                return fail(r, "expected ':'");
            }
            r->i++;
        }
        jv_t *item = NULL;
        if ((rc = read_value(r, &item, depth + 1)) < 0) {
            free(key);
            return rc;
        }
        if ((rc = push_item(v, item, key, key_len, &cap)) < 0) {
            free(key);
            bl_jv_free(item);
            return rc;
        }
        skip_ws(r);
        if (r->i < r->n && r->p[r->i] == ',') {
            r->i++;
            continue;
        }
        if (r->i < r->n && r->p[r->i] == close) {
            r->i++;
            return 0;
        }
        return fail(r, v->kind == JV_OBJ ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static size_t digits(const rd_t *r, size_t j)
{
    while (j < r->n && r->p[j] >= '0' && r->p[j] <= '9')
        j++;
    return j;
}

static int read_number(rd_t *r, jv_t *v)
{
    size_t j = r->i;
    if (j < r->n && r->p[j] == '-')
        j++;
    if (j < r->n && r->p[j] == '0')
        j++;
    else if (j < r->n && r->p[j] >= '1' && r->p[j] <= '9')
        j = digits(r, j);
    else
        return fail(r, "bad number");
    if (j < r->n && r->p[j] == '.') {
        size_t k = digits(r, j + 1);
        if (k == j + 1)
            return fail(r, "bad number");
        j = k;
    }
    if (j < r->n && (r->p[j] == 'e' || r->p[j] == 'E')) {
        j++;
        if (j < r->n && (r->p[j] == '+' || r->p[j] == '-'))
            j++;
        size_t k = digits(r, j);
        if (k == j)
            return fail(r, "bad number");
        j = k;
    }
    v->s = malloc(j - r->i + 1);
    if (!v->s)
        return BL_ENOMEM;
    memcpy(v->s, r->p + r->i, j - r->i);
    v->n = j - r->i;
    v->s[v->n] = '\0';
    r->i = j;
    return 0;
}

static int read_value(rd_t *r, jv_t **out, int depth)
{
    *out = NULL;
    if (depth > MAX_DEPTH)
        return fail(r, "nesting deeper than 64 levels");
    skip_ws(r);
    if (r->i >= r->n)
        return fail(r, "expected a value");
    jv_t *v = calloc(1, sizeof *v);
    if (!v)
        return BL_ENOMEM;
    int rc = 0;
    char c = r->p[r->i];
    if (c == '{' || c == '[') {
        v->kind = c == '{' ? JV_OBJ : JV_ARR;
        rc = read_container(r, v, depth);
    } else if (c == '"') {
        v->kind = JV_STR;
        rc = read_str(r, &v->s, &v->n);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        v->kind = JV_NUM;
        rc = read_number(r, v);
    } else if (r->n - r->i >= 4 && !memcmp(r->p + r->i, "true", 4)) {
        v->kind = JV_TRUE;
        r->i += 4;
    } else if (r->n - r->i >= 5 && !memcmp(r->p + r->i, "false", 5)) {
        v->kind = JV_FALSE;
        r->i += 5;
    } else if (r->n - r->i >= 4 && !memcmp(r->p + r->i, "null", 4)) {
        v->kind = JV_NULL;
        r->i += 4;
    } else {
        rc = fail(r, "unexpected character");
    }
    if (rc < 0) {
        bl_jv_free(v);
        return rc;
    }
    *out = v;
    return 0;
}

int bl_jv_parse(const char *text, size_t len, jv_t **out, char *err, size_t errlen)
{
    rd_t r = {.p = text, .n = len, .err = err, .errlen = errlen};
    *out = NULL;
    if (!text)
        return fail(&r, "no text");
    jv_t *v;
    int rc = read_value(&r, &v, 0);
    if (rc < 0)
        return rc;
    skip_ws(&r);
    if (r.i != r.n) {
        bl_jv_free(v);
        return fail(&r, "text after the value");
    }
    *out = v;
    return 0;
}

void bl_jv_free(jv_t *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n_items; i++) {
        bl_jv_free(v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->key_lens);
    free(v->s);
    free(v);
}

const jv_t *bl_jv_get(const jv_t *obj, const char *key)
{
    if (!obj || obj->kind != JV_OBJ)
        return NULL;
    size_t kl = strlen(key);
    for (size_t i = 0; i < obj->n_items; i++)
        if (obj->key_lens[i] == kl && !memcmp(obj->keys[i], key, kl))
            return obj->items[i];
    return NULL;
}

static int put(char **buf, size_t *n, size_t *cap, const char *p, size_t len)
{
    if (*n + len > *cap) {
        size_t nc = (*n + len) * 2 + 16;
        char *b = realloc(*buf, nc);
        if (!b)
            return BL_ENOMEM;
        *buf = b;
        *cap = nc;
    }
    memcpy(*buf + *n, p, len);
    *n += len;
    return 0;
}

int bl_jv_dump_str(const char *s, size_t len, char **buf, size_t *n, size_t *cap)
{
    int rc = put(buf, n, cap, "\"", 1);
    for (size_t i = 0; i < len && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            rc = put(buf, n, cap, esc, 2);
        } else if (c == '\n') {
            rc = put(buf, n, cap, "\\n", 2);
        } else if (c == '\t') {
            rc = put(buf, n, cap, "\\t", 2);
        } else if (c == '\r') {
            rc = put(buf, n, cap, "\\r", 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            rc = put(buf, n, cap, esc, 6);
        } else {
            rc = put(buf, n, cap, (const char *)&s[i], 1);
        }
    }
    return rc < 0 ? rc : put(buf, n, cap, "\"", 1);
}

int bl_jv_dump(const jv_t *v, char **buf, size_t *n, size_t *cap)
{
    int rc = 0;
    switch (v->kind) {
    case JV_NULL:
        return put(buf, n, cap, "null", 4);
    case JV_TRUE:
        return put(buf, n, cap, "true", 4);
    case JV_FALSE:
        return put(buf, n, cap, "false", 5);
    case JV_NUM:
        return put(buf, n, cap, v->s, v->n);
    case JV_STR:
        return bl_jv_dump_str(v->s, v->n, buf, n, cap);
    case JV_ARR:
    case JV_OBJ:
        rc = put(buf, n, cap, v->kind == JV_OBJ ? "{" : "[", 1);
        for (size_t i = 0; i < v->n_items && rc == 0; i++) {
            if (i)
                rc = put(buf, n, cap, ",", 1);
            if (rc == 0 && v->kind == JV_OBJ) {
                rc = bl_jv_dump_str(v->keys[i], v->key_lens[i], buf, n, cap);
                if (rc == 0)
                    rc = put(buf, n, cap, ":", 1);
            }
            if (rc == 0)
                rc = bl_jv_dump(v->items[i], buf, n, cap);
        }
        return rc < 0 ? rc : put(buf, n, cap, v->kind == JV_OBJ ? "}" : "]", 1);
    }
    return BL_EINVAL;
}
