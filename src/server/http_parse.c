/* Request assembly on top of http-parser: offsets into the caller's buffer,
 * limits, and the mapping of every failure to one HTTP status. */
#include "server/http_parse.h"

#include <stdlib.h>
#include <string.h>

static bl_hp_t *hp_of(http_parser *p)
{
    return (bl_hp_t *)p->data;
}

/* Callbacks report failures by setting the status and returning non-zero;
 * http-parser then stops with a CB_* errno. */
static int fail(bl_hp_t *hp, int status, const char *code, const char *msg)
{
    bl_hp_fail(hp, status, code, msg);
    return -1;
}

static int too_large_head(bl_hp_t *hp)
{
    return fail(hp, 431, "request_header_fields_too_large", "request headers are too large");
}

/* Bytes the callbacks saw, plus ": " and CRLF per field: a close lower bound
 * of the head size, checked as the head arrives so one large read cannot
 * slip past the limit. */
static int count_head(bl_hp_t *hp, size_t len)
{
    hp->head_bytes += len;
    if (hp->head_bytes + 4u * hp->n_fields > hp->lim.max_header_bytes)
        return too_large_head(hp);
    return 0;
}

static void note_end(bl_hp_t *hp, size_t off, size_t len)
{
    if (off + len > hp->keep_end)
        hp->keep_end = off + len;
}

static int on_message_begin(http_parser *p)
{
    bl_hp_t *hp = hp_of(p);
    hp->phase = BL_HP_HEAD;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    bl_hp_t *hp = hp_of(p);
    size_t off = (size_t)(at - hp->base);
    if (hp->url_len == 0)
        hp->url_off = off;
    else if (off != hp->url_off + hp->url_len)
        return fail(hp, 400, "invalid_request", "malformed request line");
    hp->url_len += len;
    if (hp->url_len > hp->lim.max_url_bytes)
        return fail(hp, 414, "uri_too_long", "request target is too long");
    note_end(hp, off, len);
    return count_head(hp, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    bl_hp_t *hp = hp_of(p);
    if (hp->phase >= BL_HP_BODY) /* chunked trailers: counted, not kept */
        return count_head(hp, len);
    size_t off = (size_t)(at - hp->base);
    bl_hp_field_t *last = hp->n_fields ? &hp->fields[hp->n_fields - 1] : NULL;
    if (last && !hp->in_value && off == last->name_off + last->name_len) {
        last->name_len += len; /* the name continues across two reads */
    } else {
        if (hp->n_fields >= hp->lim.max_headers)
            return fail(hp, 431, "request_header_fields_too_large", "too many request headers");
        if (hp->n_fields == hp->cap_fields) {
            unsigned cap = hp->cap_fields ? hp->cap_fields * 2 : 16;
            if (cap > hp->lim.max_headers)
                cap = hp->lim.max_headers;
            bl_hp_field_t *f = realloc(hp->fields, cap * sizeof *f);
            if (!f)
                return fail(hp, 503, "server_overloaded", "out of memory");
            hp->fields = f;
            hp->cap_fields = cap;
        }
        hp->fields[hp->n_fields++] = (bl_hp_field_t){off, len, off + len, 0};
    }
    hp->in_value = false;
    note_end(hp, off, len);
    return count_head(hp, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    bl_hp_t *hp = hp_of(p);
    if (hp->phase >= BL_HP_BODY)
        return count_head(hp, len);
    if (hp->n_fields == 0) /* http-parser never does this; be safe */
        return fail(hp, 400, "invalid_request", "malformed header");
    size_t off = (size_t)(at - hp->base);
    bl_hp_field_t *f = &hp->fields[hp->n_fields - 1];
    if (!hp->in_value) {
        f->value_off = off;
        f->value_len = len;
    } else if (off == f->value_off + f->value_len) {
        f->value_len += len;
    } else {
        /* obs-fold (RFC 7230 3.2.4): a server may reject it with 400 */
        return fail(hp, 400, "invalid_request", "folded header lines are not supported");
    }
    hp->in_value = true;
    note_end(hp, off, len);
    return count_head(hp, len);
}

static bool field_is(const bl_hp_t *hp, const bl_hp_field_t *f, const char *name)
{
    return bl_strn_ieq(hp->base + f->name_off, f->name_len, name);
}

static bl_str_t trimmed_value(const bl_hp_t *hp, const bl_hp_field_t *f)
{
    bl_str_t v = {hp->base + f->value_off, f->value_len};
    while (v.n && (v.p[v.n - 1] == ' ' || v.p[v.n - 1] == '\t'))
        v.n--;
    return v;
}

/* RFC 7230 tchar. Debian's http-parser is built non-strict and lets a space
 * into a field name; "Transfer-Encoding :" style names smuggle requests. */
static bool valid_name(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || (ch && strchr("!#$%&'*+-.^_`|~", ch));
        if (!ok)
            return false;
    }
    return true;
}

static int on_headers_complete(http_parser *p)
{
    bl_hp_t *hp = hp_of(p);
    hp->phase = BL_HP_BODY;
    if (p->http_major != 1)
        return fail(hp, 505, "http_version_not_supported", "only HTTP/1.x is supported");
    for (unsigned i = 0; i < hp->n_fields; i++) {
        const bl_hp_field_t *f = &hp->fields[i];
        if (!valid_name(hp->base + f->name_off, f->name_len))
            return fail(hp, 400, "invalid_request", "invalid character in a header name");
    }
    hp->keep_alive = http_should_keep_alive(p) && !p->upgrade;
    if (p->http_minor >= 1) { /* HTTP/1.0 clients' Expect is ignored (RFC 7231 5.1.1) */
        for (unsigned i = 0; i < hp->n_fields; i++) {
            const bl_hp_field_t *f = &hp->fields[i];
            if (f->name_len != 6 || !field_is(hp, f, "expect"))
                continue;
            if (!bl_str_ieq(trimmed_value(hp, f), "100-continue"))
                return fail(hp, 417, "expectation_failed", "unsupported Expect header value");
            hp->expect_continue = true;
        }
    }
    if (!(p->flags & F_CHUNKED) && (p->flags & F_CONTENTLENGTH)) {
        if (p->content_length > hp->lim.max_body_bytes)
            return fail(hp, 413, "request_too_large", "request body is too large");
        /* reserve up front, but not a declared 8 MiB for a client that
         * may never send it */
        if (bl_buf_reserve(&hp->body, BL_MIN((size_t)p->content_length, (size_t)1 << 20)))
            return fail(hp, 503, "server_overloaded", "out of memory");
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    bl_hp_t *hp = hp_of(p);
    if (len > hp->lim.max_body_bytes - hp->body.len)
        return fail(hp, 413, "request_too_large", "request body is too large");
    if (bl_buf_append(&hp->body, at, len))
        return fail(hp, 503, "server_overloaded", "out of memory");
    return 0;
}

static int on_chunk_header(http_parser *p)
{
    bl_hp_t *hp = hp_of(p);
    /* the chunk's size is in content_length: refuse before reading it */
    if (p->content_length > hp->lim.max_body_bytes - hp->body.len)
        return fail(hp, 413, "request_too_large", "request body is too large");
    return 0;
}

static int on_message_complete(http_parser *p)
{
    bl_hp_t *hp = hp_of(p);
    hp->phase = BL_HP_DONE;
    http_parser_pause(p, 1); /* one request at a time */
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_chunk_header = on_chunk_header,
};

void bl_hp_init(bl_hp_t *hp, const bl_hp_limits_t *lim)
{
    memset(hp, 0, sizeof *hp);
    hp->lim = *lim;
    if (hp->lim.max_headers == 0)
        hp->lim.max_headers = 1;
    http_parser_init(&hp->parser, HTTP_REQUEST);
    hp->parser.data = hp;
}

void bl_hp_free(bl_hp_t *hp)
{
    free(hp->fields);
    hp->fields = NULL;
    hp->n_fields = hp->cap_fields = 0;
    bl_buf_free(&hp->body);
}

void bl_hp_next(bl_hp_t *hp)
{
    hp->phase = BL_HP_IDLE;
    hp->url_off = hp->url_len = 0;
    hp->n_fields = 0;
    hp->in_value = false;
    hp->head_bytes = 0;
    hp->keep_end = 0;
    hp->expect_continue = false;
    hp->keep_alive = false;
    hp->err_status = 0;
    hp->err_code = hp->err_msg = NULL;
    /* a large body's memory is not kept for the next, likely small, one */
    if (hp->body.cap > 256 * 1024)
        bl_buf_free(&hp->body);
    else
        bl_buf_reset(&hp->body);
    if (HTTP_PARSER_ERRNO(&hp->parser) == HPE_PAUSED)
        http_parser_pause(&hp->parser, 0);
}

void bl_hp_fail(bl_hp_t *hp, int status, const char *code, const char *msg)
{
    hp->phase = BL_HP_ERROR;
    hp->err_status = status;
    hp->err_code = code;
    hp->err_msg = msg;
}

size_t bl_hp_execute(bl_hp_t *hp, const char *base, size_t off, size_t len)
{
    /* len 0 would tell http-parser the stream ended */
    if (len == 0 || hp->phase == BL_HP_DONE || hp->phase == BL_HP_ERROR)
        return 0;
    hp->base = base;
    size_t n = http_parser_execute(&hp->parser, &settings, base + off, len);
    hp->base = NULL;
    enum http_errno e = HTTP_PARSER_ERRNO(&hp->parser);
    if (hp->phase == BL_HP_ERROR)
        return n;
    if (e != HPE_OK && e != HPE_PAUSED) {
        if (e == HPE_HEADER_OVERFLOW)
            too_large_head(hp);
        else
            bl_hp_fail(hp, 400, "invalid_request", http_errno_description(e));
        return n;
    }
    if (e == HPE_OK && n < len && hp->phase != BL_HP_DONE) {
        /* http-parser stops early without an error only after an upgrade /
         * CONNECT head; we do not switch protocols. */
        bl_hp_fail(hp, 400, "invalid_request", "protocol upgrade is not supported");
        return n;
    }
    if (hp->phase <= BL_HP_HEAD) {
        /* the exact count of buffered head bytes, blank lines included */
        size_t fed = off + n;
        if (fed > hp->lim.max_header_bytes)
            too_large_head(hp);
    }
    return n;
}

void bl_hp_split_target(const char *url, size_t n, bool is_connect, bl_str_t *path, bl_str_t *query)
{
    *path = (bl_str_t){url, 0};
    *query = (bl_str_t){url, 0};
    if (n == 0)
        return;
    if (url[0] == '/' || (n == 1 && url[0] == '*')) {
        size_t i = 0;
        while (i < n && url[i] != '?' && url[i] != '#')
            i++;
        *path = (bl_str_t){url, i};
        if (i < n && url[i] == '?') {
            size_t j = i + 1;
            while (j < n && url[j] != '#')
                j++;
            *query = (bl_str_t){url + i + 1, j - i - 1};
        }
        return;
    }
    if (is_connect) {
        *path = (bl_str_t){url, n};
        return;
    }
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (n > 0xffff || http_parser_parse_url(url, n, 0, &u) != 0)
        return;
    if (u.field_set & (1u << UF_PATH))
        *path = (bl_str_t){url + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len};
    else
        *path = BL_STR("/");
    if (u.field_set & (1u << UF_QUERY))
        *query = (bl_str_t){url + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len};
}
