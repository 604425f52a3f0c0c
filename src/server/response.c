/* The request as the handler sees it, and writing responses: whole bodies
 * with Content-Length, streams with chunked encoding, and our own error
 * responses. Writes go out with one writev (uv_try_write) when the socket
 * takes them; only the part it does not take is copied into a pooled buffer
 * and queued. */
#include "server/server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writing --------------------------------------------------------------- */

static bl_wreq_t *wreq_get(bl_conn_t *c)
{
    bl_wreq_t *w = c->wfree;
    if (w) {
        c->wfree = w->next;
        return w;
    }
    w = calloc(1, sizeof *w);
    if (w)
        w->conn = c;
    return w;
}

static void wreq_put(bl_conn_t *c, bl_wreq_t *w)
{
    if (w->buf.cap > 64 * 1024)
        bl_buf_free(&w->buf);
    else
        bl_buf_reset(&w->buf);
    w->next = c->wfree;
    c->wfree = w;
}

void bl_srv_free_writes(bl_conn_t *c)
{
    while (c->wfree) {
        bl_wreq_t *w = c->wfree;
        c->wfree = w->next;
        bl_buf_free(&w->buf);
        free(w);
    }
}

static void on_write(uv_write_t *req, int status)
{
    bl_wreq_t *w = req->data;
    bl_conn_t *c = w->conn;
    c->n_writes--;
    wreq_put(c, w);
    if (c->handles_closing)
        return;
    if (status < 0) {
        bl_srv_close_now(c); /* a libuv callback: the abort may run here */
        return;
    }
    if (c->n_writes > 0)
        return;
    bl_http_req_t *r = &c->req;
    if (r->active && r->on_drain) {
        void (*fn)(void *) = r->on_drain;
        r->on_drain = NULL;
        fn(r->drain_ud); /* it may write, end the request, or close */
        if (c->handles_closing || c->n_writes > 0)
            return;
    }
    bl_srv_after_flush(c);
}

/* ---- corked streams ---------------------------------------------------------
 * An upstream hands a stream over in many small pieces (libcurl calls us once
 * per HTTP chunk, one per SSE event); writing each at once cost a syscall per
 * event and delayed the first bytes behind the rest. Streamed bytes are
 * gathered per connection and written once at the end of the loop turn
 * (uv_check), headers and first events together. */

static void drained(bl_conn_t *c)
{
    bl_http_req_t *r = &c->req;
    if (r->active && r->on_drain) {
        void (*fn)(void *) = r->on_drain;
        r->on_drain = NULL;
        fn(r->drain_ud); /* it may write, end the request, or close */
    }
}

static void on_cork_check(uv_check_t *h)
{
    bl_server_t *s = h->data;
    bl_conn_t *list = s->cork_list;
    s->cork_list = NULL;
    uv_check_stop(h);
    while (list) {
        bl_conn_t *c = list;
        list = c->cork_next;
        c->cork_next = NULL;
        c->corked = false;
        if (c->handles_closing || !c->cork.len)
            continue;
        uv_buf_t b = uv_buf_init(c->cork.data, (unsigned)c->cork.len);
        int rc = bl_srv_send(c, &b, 1);
        bl_buf_reset(&c->cork);
        if (rc == 0 && c->n_writes == 0 && !c->handles_closing)
            drained(c); /* all of it went to the kernel at once */
    }
}

static void on_cork_closed(uv_handle_t *h)
{
    bl_server_t *s = h->data;
    s->open_handles--;
    bl_srv_maybe_done(s);
}

void bl_srv_cork_close(bl_server_t *s)
{
    if (!s->cork_inited)
        return;
    s->cork_inited = false;
    uv_close((uv_handle_t *)&s->cork_check, on_cork_closed);
}

void bl_srv_uncork_forget(bl_conn_t *c)
{
    if (c->corked) {
        bl_conn_t **pp = &c->srv->cork_list;
        while (*pp && *pp != c)
            pp = &(*pp)->cork_next;
        if (*pp)
            *pp = c->cork_next;
        c->corked = false;
    }
    bl_buf_free(&c->cork);
}

static int cork(bl_conn_t *c, const uv_buf_t *bufs, unsigned n)
{
    bl_server_t *s = c->srv;
    if (c->broken || c->handles_closing)
        return BL_EIO;
    for (unsigned i = 0; i < n; i++)
        if (bl_buf_append(&c->cork, bufs[i].base, bufs[i].len))
            return BL_ENOMEM;
    if (!s->cork_inited) {
        if (uv_check_init(s->loop, &s->cork_check))
            return bl_srv_send(c, bufs, n); /* cannot cork: write now */
        s->cork_check.data = s;
        s->cork_inited = true;
        s->open_handles++;
    }
    if (!c->corked) {
        c->corked = true;
        c->cork_next = s->cork_list;
        s->cork_list = c;
        uv_check_start(&s->cork_check, on_cork_check);
    }
    return 0;
}

int bl_srv_send(bl_conn_t *c, const uv_buf_t *bufs, unsigned n)
{
    if (c->broken || c->handles_closing)
        return BL_EIO;
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += bufs[i].len;
    if (total == 0)
        return 0;
    size_t sent = 0;
    if (c->n_writes == 0) { /* never reorder behind queued bytes */
        int r = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
        if (r >= 0)
            sent = (size_t)r;
        else if (r != UV_EAGAIN && r != UV_ENOSYS)
            goto broken;
    }
    if (sent == total)
        return 0;
    bl_wreq_t *w = wreq_get(c);
    if (!w || bl_buf_reserve(&w->buf, total - sent) != 0) {
        if (w)
            wreq_put(c, w);
        goto broken;
    }
    for (unsigned i = 0; i < n; i++) {
        size_t len = bufs[i].len;
        if (sent >= len) {
            sent -= len;
            continue;
        }
        bl_buf_append(&w->buf, bufs[i].base + sent, len - sent); /* reserved above */
        sent = 0;
    }
    w->req.data = w;
    uv_buf_t b = uv_buf_init(w->buf.data, (unsigned)w->buf.len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
        wreq_put(c, w);
        goto broken;
    }
    c->n_writes++;
    return 0;
broken:
    bl_srv_mark_broken(c);
    return BL_EIO;
}

/* ---- status lines and heads ------------------------------------------------ */

const char *bl_http_status_text(int status)
{
    switch (status) {
#define XX(num, name, string)                                                                      \
    case num:                                                                                      \
        return #string;
        HTTP_STATUS_MAP(XX)
#undef XX
    default:
        return "Unknown";
    }
}

static char *put_u64(char *p, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

static bool is_tchar(unsigned char ch)
{
    /* RFC 7230 token characters */
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool valid_header(const bl_http_header_t *h)
{
    if (!h->name.p || h->name.n == 0 || (h->value.n && !h->value.p))
        return false;
    for (size_t i = 0; i < h->name.n; i++)
        if (!is_tchar((unsigned char)h->name.p[i]))
            return false;
    for (size_t i = 0; i < h->value.n; i++) {
        unsigned char ch = (unsigned char)h->value.p[i];
        if (ch == '\r' || ch == '\n' || ch == '\0') /* no header injection */
            return false;
    }
    return true;
}

enum { FRAME_LENGTH, FRAME_CHUNKED, FRAME_NONE };

/* Build the status line and headers into c->hbuf. Framing headers are ours;
 * a handler's "Connection: close" is honoured. */
static int build_head(bl_conn_t *c, int status, const bl_http_header_t *h, size_t n, int frame,
                      uint64_t length, bool *keep_alive)
{
    bl_buf_t *b = &c->hbuf;
    if (status < 100 || status > 999)
        return BL_EINVAL;
    size_t need = 256;
    for (size_t i = 0; i < n; i++) {
        if (!valid_header(&h[i]))
            return BL_EINVAL;
        need += h[i].name.n + h[i].value.n + 4;
    }
    bl_buf_reset(b);
    if (bl_buf_reserve(b, need) != 0)
        return BL_ENOMEM;
    char *p = b->data;
    memcpy(p, "HTTP/1.1 ", 9);
    p = put_u64(p + 9, (uint64_t)status);
    *p++ = ' ';
    const char *text = bl_http_status_text(status);
    size_t tl = strlen(text);
    memcpy(p, text, tl);
    p += tl;
    memcpy(p, "\r\n", 2);
    p += 2;
    const char *date = bl_srv_date(c->srv);
    size_t dl = strlen(date);
    memcpy(p, date, dl);
    p += dl;
    for (size_t i = 0; i < n; i++) {
        bl_str_t name = h[i].name;
        if (bl_str_ieq(name, "content-length") || bl_str_ieq(name, "transfer-encoding"))
            continue;
        if (bl_str_ieq(name, "connection")) {
            if (bl_str_ieq(h[i].value, "close"))
                *keep_alive = false;
            continue;
        }
        memcpy(p, name.p, name.n);
        p += name.n;
        *p++ = ':';
        *p++ = ' ';
        if (h[i].value.n)
            memcpy(p, h[i].value.p, h[i].value.n);
        p += h[i].value.n;
        *p++ = '\r';
        *p++ = '\n';
    }
    if (frame == FRAME_LENGTH) {
        memcpy(p, "Content-Length: ", 16);
        p = put_u64(p + 16, length);
        *p++ = '\r';
        *p++ = '\n';
    } else if (frame == FRAME_CHUNKED) {
        memcpy(p, "Transfer-Encoding: chunked\r\n", 28);
        p += 28;
    }
    const char *conn = *keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
    size_t cl = strlen(conn);
    memcpy(p, conn, cl);
    p += cl;
    b->len = (size_t)(p - b->data);
    b->data[b->len] = '\0';
    return 0;
}

/* The handler is done with the request (whatever rc says). */
static int end_request(bl_http_req_t *r, int rc)
{
    bl_conn_t *c = r->conn;
    r->active = false;
    r->on_drain = NULL;
    c->srv->n_active--;
    if (c->broken) {
        bl_srv_close_now(c); /* inactive now: no abort callback */
        return rc ? rc : BL_EIO;
    }
    if (c->n_writes == 0)
        bl_srv_response_done(c, true);
    else
        c->end_pending = true;
    return rc;
}

int bl_http_respond(bl_http_req_t *r, int status, const bl_http_header_t *headers, size_t n,
                    const void *body, size_t len)
{
    if (!r || !r->active || r->streaming || (n && !headers) || (len && !body))
        return BL_ESTATE;
    if (len > UINT32_MAX)
        return BL_ERANGE;
    bl_conn_t *c = r->conn;
    bool keep_alive = r->keep_alive && !c->srv->stopping;
    /* RFC 7230 3.3: these never carry a body */
    bool no_body = status < 200 || status == 204 || status == 304;
    int rc =
        build_head(c, status, headers, n, no_body ? FRAME_NONE : FRAME_LENGTH, len, &keep_alive);
    if (rc)
        return rc; /* the request stays the handler's */
    r->keep_alive = keep_alive;
    uv_buf_t bufs[2] = {uv_buf_init(c->hbuf.data, (unsigned)c->hbuf.len),
                        uv_buf_init((char *)body, (unsigned)len)};
    unsigned nb = (no_body || r->head_only || len == 0) ? 1 : 2;
    return end_request(r, bl_srv_send(c, bufs, nb));
}

int bl_http_stream_start(bl_http_req_t *r, int status, const bl_http_header_t *headers, size_t n)
{
    if (!r || !r->active || r->streaming || (n && !headers))
        return BL_ESTATE;
    bl_conn_t *c = r->conn;
    bool keep_alive = r->keep_alive && !c->srv->stopping && !r->raw_stream;
    /* HTTP/1.0 has no chunked encoding: the body ends when we close */
    int rc = build_head(c, status, headers, n, r->raw_stream ? FRAME_NONE : FRAME_CHUNKED, 0,
                        &keep_alive);
    if (rc)
        return rc;
    r->keep_alive = keep_alive;
    r->streaming = true;
    uv_buf_t b = uv_buf_init(c->hbuf.data, (unsigned)c->hbuf.len);
    return cork(c, &b, 1);
}

int bl_http_stream_write(bl_http_req_t *r, const void *data, size_t len)
{
    if (!r || !r->active || !r->streaming || (len && !data))
        return BL_ESTATE;
    if (len == 0 || r->head_only)
        return 0; /* an empty chunk would end the stream */
    if (len > UINT32_MAX)
        return BL_ERANGE;
    bl_conn_t *c = r->conn;
    if (r->raw_stream) {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        return cork(c, &b, 1);
    }
    static const char hex[] = "0123456789abcdef";
    char size[24];
    int i = (int)sizeof size;
    size[--i] = '\n';
    size[--i] = '\r';
    size_t v = len;
    do {
        size[--i] = hex[v & 15];
        v >>= 4;
    } while (v);
    uv_buf_t bufs[3] = {uv_buf_init(size + i, (unsigned)(sizeof size - (size_t)i)),
                        uv_buf_init((char *)data, (unsigned)len), uv_buf_init("\r\n", 2)};
    return cork(c, bufs, 3);
}

size_t bl_http_stream_pending(const bl_http_req_t *r)
{
    return r ? r->conn->tcp.write_queue_size + r->conn->cork.len : 0;
}

void bl_http_stream_on_drain(bl_http_req_t *r, void (*fn)(void *ud), void *ud)
{
    r->on_drain = fn;
    r->drain_ud = ud;
}

int bl_http_stream_end(bl_http_req_t *r)
{
    if (!r || !r->active || !r->streaming)
        return BL_ESTATE;
    /* what is corked and the last chunk go out together, now, so the
     * request ends with every byte handed over */
    bl_conn_t *c = r->conn;
    uv_buf_t b[2] = {uv_buf_init(c->cork.data, (unsigned)c->cork.len), uv_buf_init("0\r\n\r\n", 5)};
    unsigned nb = r->raw_stream || r->head_only ? 1 : 2;
    int rc = bl_srv_send(c, c->cork.len ? b : b + 1, c->cork.len ? nb : nb - 1);
    bl_buf_reset(&c->cork);
    return end_request(r, rc);
}

/* Our own 4xx/5xx, in the OpenAI error shape; the connection closes after. */
void bl_srv_send_error(bl_conn_t *c, int status, const char *code, const char *msg)
{
    char body[512];
    int bl = snprintf(body, sizeof body,
                      "{\"error\":{\"message\":\"%s\",\"type\":\"invalid_request_error\","
                      "\"code\":\"%s\"}}",
                      msg ? msg : "bad request", code ? code : "invalid_request");
    if (bl < 0 || (size_t)bl >= sizeof body)
        bl = 0;
    static const bl_http_header_t ct[] = {
        {BL_STR("Content-Type"), BL_STR("application/json")},
    };
    bool keep_alive = false;
    if (build_head(c, status, ct, 1, FRAME_LENGTH, (uint64_t)bl, &keep_alive) == 0) {
        uv_buf_t bufs[2] = {uv_buf_init(c->hbuf.data, (unsigned)c->hbuf.len),
                            uv_buf_init(body, (unsigned)bl)};
        if (bl_srv_send(c, bufs, 2) != 0) {
            bl_srv_close_now(c);
            return;
        }
    }
    bl_srv_begin_close(c);
}

/* ---- the request ----------------------------------------------------------- */

const char *bl_http_req_method(const bl_http_req_t *r)
{
    return r->method;
}

bl_str_t bl_http_req_path(const bl_http_req_t *r)
{
    return r->path;
}

bl_str_t bl_http_req_query(const bl_http_req_t *r)
{
    return r->query;
}

bl_str_t bl_http_req_header(const bl_http_req_t *r, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < r->n_headers; i++) {
        const bl_http_header_t *h = &r->headers[i];
        if (h->name.n == nl && bl_str_ieq(h->name, name))
            return h->value;
    }
    return (bl_str_t){NULL, 0};
}

size_t bl_http_req_n_headers(const bl_http_req_t *r)
{
    return r->n_headers;
}

const bl_http_header_t *bl_http_req_header_at(const bl_http_req_t *r, size_t i)
{
    return i < r->n_headers ? &r->headers[i] : NULL;
}

const char *bl_http_req_body(const bl_http_req_t *r, size_t *len)
{
    if (len)
        *len = r->body_len;
    return r->body;
}

const char *bl_http_req_peer(const bl_http_req_t *r)
{
    bl_conn_t *c = r->conn;
    if (c->peer[0])
        return c->peer;
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char ip[INET6_ADDRSTRLEN];
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0) {
        snprintf(c->peer, sizeof c->peer, "unknown");
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        uv_ip6_name(a, ip, sizeof ip);
        snprintf(c->peer, sizeof c->peer, "[%s]:%u", ip, (unsigned)ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        uv_ip4_name(a, ip, sizeof ip);
        snprintf(c->peer, sizeof c->peer, "%s:%u", ip, (unsigned)ntohs(a->sin_port));
    }
    return c->peer;
}

uint64_t bl_http_req_start_ns(const bl_http_req_t *r)
{
    return r->start_ns;
}

void bl_http_req_set_abort(bl_http_req_t *r, void (*on_abort)(void *ud), void *ud)
{
    r->on_abort = on_abort;
    r->abort_ud = ud;
}
