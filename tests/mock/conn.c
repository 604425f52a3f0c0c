/*
 * Connections of the mock: read and parse requests with http-parser, hand
 * each complete request to api_handle, then send the rendered response
 * paced by its plan (delays, drip, early close or reset).
 *
 * One response at a time per connection: while a response is being written
 * the parser is paused and further bytes wait in pending_in, but reading
 * goes on so a client that leaves is seen at once (disconnect stats).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

#define MAX_URL (8 * 1024)
#define MAX_HDRS (64 * 1024)
#define MAX_BODY (16 * 1024 * 1024)

typedef struct {
    uv_write_t req;
    conn_t *c;
} write_req_t;

static http_parser_settings g_settings;
static void conn_advance(conn_t *c);
static void feed(conn_t *c, const char *p, size_t n);

static void conn_free(uv_handle_t *h)
{
    conn_t *c = h->data;
    if (h == (uv_handle_t *)&c->tcp) {
        uv_close((uv_handle_t *)&c->timer, conn_free);
        return;
    }
    bl_buf_free(&c->url);
    bl_buf_free(&c->hdrs);
    bl_buf_free(&c->body);
    bl_buf_free(&c->out);
    bl_buf_free(&c->pending_in);
    bl_buf_free(&c->scratch);
    free(c);
}

static void unlink_conn(conn_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (g_mock.conns == c)
        g_mock.conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

void conn_close(conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    unlink_conn(c);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->tcp, conn_free);
}

static void conn_reset(conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    unlink_conn(c);
    uv_timer_stop(&c->timer);
    /* SO_LINGER 0: the peer gets RST instead of FIN */
    if (uv_tcp_close_reset(&c->tcp, conn_free) != 0)
        uv_close((uv_handle_t *)&c->tcp, conn_free);
}

const char *conn_header(const conn_t *c, const char *lname, size_t *len)
{
    const char *p = c->hdrs.data, *end = c->hdrs.data + c->hdrs.len;
    while (p && p < end) {
        size_t nl = strlen(p);
        const char *v = p + nl + 1;
        if (v >= end)
            break;
        size_t vl = strlen(v);
        if (strcmp(p, lname) == 0) {
            *len = vl;
            return v;
        }
        p = v + vl + 1;
    }
    *len = 0;
    return NULL;
}

/* ---- the response is fully written ---------------------------------------- */

static void response_done(conn_t *c)
{
    c->resp_active = false;
    c->busy = false;
    if (!c->keep_alive) {
        conn_close(c);
        return;
    }
    if (c->pending_in.len) {
        /* parse what arrived while we were answering */
        bl_buf_t in = c->pending_in;
        c->pending_in = (bl_buf_t){0};
        feed(c, in.data, in.len);
        bl_buf_free(&in);
    }
}

static void end_now(conn_t *c)
{
    if (c->end == END_RESET)
        conn_reset(c);
    else
        conn_close(c);
}

static void on_write(uv_write_t *req, int status)
{
    write_req_t *w = (write_req_t *)req;
    conn_t *c = w->c;
    free(w);
    c->writes_inflight--;
    if (c->closing)
        return;
    if (status < 0) {
        if (c->resp_active)
            g_mock.disconnects++;
        conn_close(c);
        return;
    }
    if (c->writes_inflight == 0) {
        if (c->end_when_drained) {
            end_now(c);
            return;
        }
        if (c->next_seg >= c->n_segs)
            response_done(c);
    }
}

/* Write out[from, to). Returns false if the connection was closed. */
static bool send_range(conn_t *c, size_t from, size_t to)
{
    if (to <= from)
        return true;
    uv_buf_t b = uv_buf_init(c->out.data + from, (unsigned)(to - from));
    int n = c->writes_inflight ? UV_EAGAIN : uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == (int)b.len)
        return true;
    if (n < 0 && n != UV_EAGAIN) {
        if (c->resp_active)
            g_mock.disconnects++;
        conn_close(c);
        return false;
    }
    if (n > 0) {
        b.base += n;
        b.len -= (size_t)n;
    }
    /* out is not touched until the response is done, so no copy is needed */
    write_req_t *w = malloc(sizeof *w);
    if (!w) {
        conn_close(c);
        return false;
    }
    w->c = c;
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
        free(w);
        conn_close(c);
        return false;
    }
    c->writes_inflight++;
    return true;
}

static void on_timer(uv_timer_t *t)
{
    conn_t *c = t->data;
    c->waited = true;
    conn_advance(c);
}

/* Send segments until a wait or the end. */
static void conn_advance(conn_t *c)
{
    while (!c->closing && c->next_seg < c->n_segs) {
        size_t i = c->next_seg;
        uint64_t wait = i == 0 ? c->delay_ms : i == 1 ? c->first_byte_ms : c->gap_ms;
        if (wait && !c->waited) {
            uv_timer_start(&c->timer, on_timer, wait, 0);
            return;
        }
        c->waited = false;
        if (i >= 1 && c->stop_after >= 0 && (long)(i - 1) >= c->stop_after) {
            if (c->writes_inflight)
                c->end_when_drained = true;
            else
                end_now(c);
            return;
        }
        size_t from = i == 0 ? 0 : c->seg_end[i - 1];
        c->next_seg++;
        /* without waits ahead, send everything that remains in one write */
        if (!c->first_byte_ms && !c->gap_ms && c->stop_after < 0) {
            c->next_seg = c->n_segs;
            if (!send_range(c, from, c->seg_end[c->n_segs - 1]))
                return;
            break;
        }
        if (!send_range(c, from, c->seg_end[i]))
            return;
    }
    if (!c->closing && c->next_seg >= c->n_segs && c->writes_inflight == 0)
        response_done(c);
}

void conn_send_start(conn_t *c)
{
    c->next_seg = 0;
    c->waited = false;
    c->end_when_drained = false;
    conn_advance(c);
}

/* ---- parsing ---------------------------------------------------------------- */

static int on_message_begin(http_parser *p)
{
    conn_t *c = p->data;
    bl_buf_reset(&c->url);
    bl_buf_reset(&c->hdrs);
    bl_buf_reset(&c->body);
    c->hstate = 0;
    c->too_big = false;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    conn_t *c = p->data;
    if (c->url.len + n > MAX_URL)
        return 1;
    return bl_buf_append(&c->url, at, n) ? 1 : 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    conn_t *c = p->data;
    if (c->hdrs.len + n + 2 > MAX_HDRS)
        return 1;
    if (c->hstate == 2 && bl_buf_append(&c->hdrs, "", 1))
        return 1;
    c->hstate = 1;
    if (bl_buf_reserve(&c->hdrs, n + 1))
        return 1;
    for (size_t i = 0; i < n; i++) {
        char ch = at[i];
        c->hdrs.data[c->hdrs.len++] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
    }
    c->hdrs.data[c->hdrs.len] = 0;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    conn_t *c = p->data;
    if (c->hdrs.len + n + 2 > MAX_HDRS)
        return 1;
    if (c->hstate == 1 && bl_buf_append(&c->hdrs, "", 1))
        return 1;
    c->hstate = 2;
    return bl_buf_append(&c->hdrs, at, n) ? 1 : 0;
}

static int on_headers_complete(http_parser *p)
{
    conn_t *c = p->data;
    if (c->hstate == 2 && bl_buf_append(&c->hdrs, "", 1))
        return -1;
    c->hstate = 0;
    if (p->content_length != ULLONG_MAX && p->content_length > MAX_BODY) {
        c->too_big = true;
        return -1;
    }
    size_t n;
    const char *expect = conn_header(c, "expect", &n);
    if (expect && bl_strn_ieq(expect, n, "100-continue")) {
        /* nothing of ours is in flight between responses, so this is in order */
        uv_buf_t b = uv_buf_init((char *)"HTTP/1.1 100 Continue\r\n\r\n", 25);
        uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    conn_t *c = p->data;
    if (c->body.len + n > MAX_BODY) {
        c->too_big = true;
        return 1;
    }
    return bl_buf_append(&c->body, at, n) ? 1 : 0;
}

static int on_message_complete(http_parser *p)
{
    conn_t *c = p->data;
    c->keep_alive = http_should_keep_alive(p) != 0;
    c->resp_active = true;
    c->busy = true;
    /* stop after this message; the rest waits until the response is out */
    http_parser_pause(p, 1);
    api_handle(c);
    return 0;
}

static void bad_request(conn_t *c, int code)
{
    bl_buf_reset(&c->out);
    const char *why = code == 413 ? "Payload Too Large" : "Bad Request";
    bl_buf_printf(&c->out,
                  "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nx-mock-name: %s\r\n"
                  "Connection: close\r\nContent-Length: 2\r\n\r\n{}",
                  code, why, g_mock.name);
    c->seg_end[0] = c->out.len;
    c->n_segs = 1;
    c->delay_ms = c->first_byte_ms = c->gap_ms = 0;
    c->stop_after = -1;
    c->end = END_NONE;
    c->keep_alive = false;
    c->resp_active = true;
    c->busy = true;
    conn_send_start(c);
}

static void feed(conn_t *c, const char *data, size_t n)
{
    while (n && !c->closing) {
        if (c->busy) {
            if (c->pending_in.len + n > MAX_BODY + MAX_HDRS ||
                bl_buf_append(&c->pending_in, data, n))
                conn_close(c);
            return;
        }
        http_parser_pause(&c->parser, 0);
        size_t used = http_parser_execute(&c->parser, &g_settings, data, n);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e != HPE_OK && e != HPE_PAUSED) {
            if (!c->busy)
                bad_request(c, c->too_big ? 413 : 400);
            return;
        }
        if (used > n)
            used = n;
        data += used;
        n -= used;
        if (e == HPE_OK && n) /* should not happen: all consumed unless paused */
            return;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    /* one read buffer for all connections: the loop reads one at a time */
    static char slab[64 * 1024];
    buf->base = slab;
    buf->len = sizeof slab;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    if (nread < 0) {
        if (c->resp_active)
            g_mock.disconnects++;
        conn_close(c);
        return;
    }
    if (nread > 0)
        feed(c, buf->base, (size_t)nread);
}

void conn_accept(uv_stream_t *server)
{
    static bool settings_ready;
    if (!settings_ready) {
        http_parser_settings_init(&g_settings);
        g_settings.on_message_begin = on_message_begin;
        g_settings.on_url = on_url;
        g_settings.on_header_field = on_header_field;
        g_settings.on_header_value = on_header_value;
        g_settings.on_headers_complete = on_headers_complete;
        g_settings.on_body = on_body;
        g_settings.on_message_complete = on_message_complete;
        settings_ready = true;
    }
    conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return;
    uv_tcp_init(g_mock.loop, &c->tcp);
    uv_timer_init(g_mock.loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, conn_free);
        return;
    }
    g_mock.connections++;
    uv_tcp_nodelay(&c->tcp, 1);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->next = g_mock.conns;
    if (g_mock.conns)
        g_mock.conns->prev = c;
    g_mock.conns = c;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}
