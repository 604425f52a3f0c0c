/* The listener and the life of a connection: reading, parsing one request at
 * a time, timers, dispatch to the handler, and closing (gracefully with a
 * half-close and a short linger, or at once). */
#include "server/server_int.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define READ_MIN_FREE (16 * 1024) /* free room offered to each read */
#define LINGER_MS 2000            /* wait for the client's FIN after ours */
#define MAX_URL_BYTES 8192

static void conn_process(bl_conn_t *c);

void bl_server_limits_default(bl_server_limits_t *l)
{
    l->max_body_bytes = 8u << 20;
    l->max_header_bytes = 32u << 10;
    l->max_headers = 100;
    l->header_timeout_ms = 10000;
    l->body_timeout_ms = 30000;
    l->idle_timeout_ms = 60000;
    l->max_connections = 4096;
}

void bl_srv_maybe_done(bl_server_t *s)
{
    if (s->closing && s->open_handles == 0 && s->done) {
        void (*done)(void *) = s->done;
        s->done = NULL;
        done(s->done_ud);
    }
}

/* ---- timers ---------------------------------------------------------------- */

static void on_timer(uv_timer_t *t);

static void timer_set(bl_conn_t *c, bl_timer_mode_t mode, uint64_t ms)
{
    c->timer_mode = mode;
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void timer_stop(bl_conn_t *c)
{
    c->timer_mode = BL_TM_NONE;
    uv_timer_stop(&c->timer);
}

/* Timer for a READING connection, from where its parser stands. */
static void arm_read_timer(bl_conn_t *c)
{
    bl_timer_mode_t want;
    uint64_t ms;
    switch (c->hp.phase) {
    case BL_HP_IDLE:
        want = BL_TM_IDLE, ms = c->lim.idle_timeout_ms;
        break;
    case BL_HP_HEAD:
        want = BL_TM_HEAD, ms = c->lim.header_timeout_ms;
        break;
    case BL_HP_BODY:
        /* every call here follows progress: restart the gap */
        if (c->lim.body_timeout_ms)
            timer_set(c, BL_TM_BODY, c->lim.body_timeout_ms);
        else
            timer_stop(c);
        return;
    default:
        return;
    }
    if (c->timer_mode == want) /* deadlines run from their start, not the last read */
        return;
    if (ms)
        timer_set(c, want, ms);
    else
        timer_stop(c);
}

static void on_timer(uv_timer_t *t)
{
    bl_conn_t *c = t->data;
    bl_timer_mode_t mode = c->timer_mode;
    c->timer_mode = BL_TM_NONE;
    switch (mode) {
    case BL_TM_IDLE:
    case BL_TM_LINGER:
    case BL_TM_BROKEN:
        bl_srv_close_now(c);
        break;
    case BL_TM_HEAD:
    case BL_TM_BODY:
        if (c->state != BL_CONN_READING)
            break;
        bl_hp_fail(&c->hp, 408, "request_timeout",
                   mode == BL_TM_HEAD ? "request headers not received in time"
                                      : "request body not received in time");
        bl_srv_send_error(c, c->hp.err_status, c->hp.err_code, c->hp.err_msg);
        break;
    case BL_TM_RESUME:
        conn_process(c);
        break;
    case BL_TM_NONE:
        break;
    }
}

/* ---- closing --------------------------------------------------------------- */

static void conn_free(bl_conn_t *c)
{
    bl_server_t *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_conns--;
    bl_hp_free(&c->hp);
    bl_buf_free(&c->rbuf);
    bl_buf_free(&c->pbuf);
    bl_buf_free(&c->hbuf);
    bl_srv_uncork_forget(c);
    bl_srv_free_writes(c);
    free(c->req.headers);
    free(c);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    bl_conn_t *c = h->data;
    bl_server_t *s = c->srv;
    s->open_handles--;
    if (--c->open_handles == 0)
        conn_free(c);
    bl_srv_maybe_done(s);
}

void bl_srv_close_now(bl_conn_t *c)
{
    if (c->handles_closing)
        return;
    c->handles_closing = true;
    c->state = BL_CONN_CLOSING;
    if (c->req.active) {
        /* the client left before the response ended: tell the handler once,
         * then forget its state */
        c->req.active = false;
        c->srv->n_active--;
        void (*fn)(void *) = c->req.on_abort;
        void *ud = c->req.abort_ud;
        c->req.on_abort = NULL;
        c->req.abort_ud = NULL;
        if (fn)
            fn(ud);
    }
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    bl_conn_t *c = req->data;
    if (status < 0)
        bl_srv_close_now(c);
    /* else: linger until the client's FIN, its reset, or the timer */
}

static void start_reading(bl_conn_t *c);

/* Half-close after the last response so it is not lost to a reset when the
 * client still has bytes in flight to us; then read and drop until its FIN. */
static void start_shutdown(bl_conn_t *c)
{
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        bl_srv_close_now(c);
        return;
    }
    start_reading(c);
    timer_set(c, BL_TM_LINGER, LINGER_MS);
}

void bl_srv_begin_close(bl_conn_t *c)
{
    if (c->handles_closing || c->state == BL_CONN_CLOSING)
        return;
    c->state = BL_CONN_CLOSING;
    timer_stop(c);
    if (c->n_writes > 0) {
        c->close_after_flush = true;
        return;
    }
    start_shutdown(c);
}

void bl_srv_after_flush(bl_conn_t *c)
{
    if (c->end_pending) {
        bl_srv_response_done(c, false);
    } else if (c->close_after_flush) {
        c->close_after_flush = false;
        start_shutdown(c);
    }
}

void bl_srv_mark_broken(bl_conn_t *c)
{
    if (c->broken || c->handles_closing)
        return;
    c->broken = true;
    /* inside an API call: the abort callback must run from the loop */
    timer_set(c, BL_TM_BROKEN, 0);
}

/* ---- reading --------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    bl_conn_t *c = h->data;
    if (c->state != BL_CONN_READING) {
        c->read_into_scratch = true;
        *buf = uv_buf_init(c->srv->scratch, sizeof c->srv->scratch);
        return;
    }
    c->read_into_scratch = false;
    if (bl_buf_reserve(&c->rbuf, READ_MIN_FREE) != 0) {
        *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
        return;
    }
    /* bl_buf keeps one byte for its NUL */
    *buf = uv_buf_init(c->rbuf.data + c->rbuf.len, (unsigned)(c->rbuf.cap - c->rbuf.len - 1));
}

static size_t busy_buffer_cap(const bl_conn_t *c)
{
    return c->lim.max_header_bytes + 64 * 1024;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    bl_conn_t *c = stream->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        /* EOF or reset: aborts an in-flight request right away */
        bl_srv_close_now(c);
        return;
    }
    if (c->read_into_scratch) {
        if (c->state != BL_CONN_BUSY)
            return; /* closing: drain and drop */
        /* pipelined bytes wait; reading goes on so a disconnect is seen */
        if (bl_buf_append(&c->pbuf, buf->base, (size_t)nread) != 0) {
            bl_srv_close_now(c);
            return;
        }
        if (c->pbuf.len > busy_buffer_cap(c)) {
            uv_read_stop(stream);
            c->read_stopped = true;
        }
        return;
    }
    c->rbuf.len += (size_t)nread;
    c->rbuf.data[c->rbuf.len] = '\0';
    conn_process(c);
}

static void start_reading(bl_conn_t *c)
{
    if (!c->read_stopped)
        return;
    c->read_stopped = false;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        bl_srv_close_now(c);
}

/* ---- requests -------------------------------------------------------------- */

static int build_request(bl_conn_t *c)
{
    bl_http_req_t *r = &c->req;
    bl_hp_t *hp = &c->hp;
    const char *base = c->rbuf.data;
    if (hp->n_fields > r->cap_headers) {
        bl_http_header_t *h = realloc(r->headers, hp->n_fields * sizeof *h);
        if (!h)
            return BL_ENOMEM;
        r->headers = h;
        r->cap_headers = hp->n_fields;
    }
    for (unsigned i = 0; i < hp->n_fields; i++) {
        const bl_hp_field_t *f = &hp->fields[i];
        bl_str_t v = {base + f->value_off, f->value_len};
        while (v.n && (v.p[v.n - 1] == ' ' || v.p[v.n - 1] == '\t'))
            v.n--;
        r->headers[i] = (bl_http_header_t){{base + f->name_off, f->name_len}, v};
    }
    r->n_headers = hp->n_fields;
    r->method = bl_hp_method(hp);
    bl_hp_split_target(base + hp->url_off, hp->url_len, hp->parser.method == HTTP_CONNECT, &r->path,
                       &r->query);
    r->body = hp->body.data ? hp->body.data : "";
    r->body_len = hp->body.len;
    r->on_abort = NULL;
    r->abort_ud = NULL;
    r->on_drain = NULL;
    r->streaming = false;
    r->head_only = hp->parser.method == HTTP_HEAD;
    r->raw_stream = bl_hp_minor(hp) == 0;
    r->keep_alive = hp->keep_alive;
    return 0;
}

static void dispatch(bl_conn_t *c)
{
    if (build_request(c) != 0) {
        bl_srv_send_error(c, 503, "server_overloaded", "out of memory");
        return;
    }
    bl_server_t *s = c->srv;
    timer_stop(c);
    c->state = BL_CONN_BUSY;
    c->req.active = true;
    s->n_active++;
    c->in_dispatch++;
    s->handler(s->ud, &c->req);
    c->in_dispatch--;
}

/* The previous request is answered: drop its bytes and bring the bytes set
 * aside while busy back behind the unparsed rest. */
static void next_request(bl_conn_t *c)
{
    bl_buf_consume(&c->rbuf, c->rpos);
    c->rpos = 0;
    if (c->pbuf.len) {
        if (bl_buf_append(&c->rbuf, c->pbuf.data, c->pbuf.len) != 0) {
            bl_srv_close_now(c);
            return;
        }
        bl_buf_reset(&c->pbuf);
    }
    if (c->rbuf.cap > 256 * 1024 && c->rbuf.len < 1024) {
        bl_buf_t small = {0};
        if (bl_buf_append(&small, c->rbuf.data, c->rbuf.len) == 0) {
            bl_buf_free(&c->rbuf);
            c->rbuf = small;
        }
    }
    bl_hp_next(&c->hp);
    c->sent_continue = false;
    c->state = BL_CONN_READING;
    start_reading(c);
}

void bl_srv_response_done(bl_conn_t *c, bool from_api)
{
    c->end_pending = false;
    if (c->handles_closing)
        return;
    if (!c->req.keep_alive || c->srv->stopping) {
        bl_srv_begin_close(c);
        return;
    }
    next_request(c);
    if (c->handles_closing || c->in_dispatch)
        return; /* conn_process's loop picks up the next request */
    if (from_api && c->rbuf.len > c->rpos) {
        /* do not call the handler from inside its own bl_http_* call */
        timer_set(c, BL_TM_RESUME, 0);
        return;
    }
    conn_process(c);
}

static void send_continue(bl_conn_t *c)
{
    static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
    c->sent_continue = true;
    uv_buf_t b = uv_buf_init((char *)msg, sizeof msg - 1);
    if (bl_srv_send(c, &b, 1) != 0)
        bl_srv_close_now(c);
}

static void conn_process(bl_conn_t *c)
{
    while (c->state == BL_CONN_READING && !c->handles_closing) {
        size_t avail = c->rbuf.len - c->rpos;
        if (avail == 0)
            break;
        bl_hp_phase_t before = c->hp.phase;
        size_t n = bl_hp_execute(&c->hp, c->rbuf.data, c->rpos, avail);
        c->rpos += n;
        if (before == BL_HP_IDLE && c->hp.phase != BL_HP_IDLE)
            c->req.start_ns = bl_now_ns();
        if (c->hp.phase == BL_HP_ERROR) {
            bl_srv_send_error(c, c->hp.err_status, c->hp.err_code, c->hp.err_msg);
            return;
        }
        if (c->hp.phase == BL_HP_DONE) {
            dispatch(c);
            continue;
        }
        if (c->hp.phase == BL_HP_BODY) {
            if (c->hp.expect_continue && !c->sent_continue) {
                send_continue(c);
                if (c->handles_closing)
                    return;
            }
            /* body bytes are copied out: keep only the head in the buffer */
            size_t keep = bl_hp_keep_end(&c->hp);
            if (c->rpos > keep) {
                memmove(c->rbuf.data + keep, c->rbuf.data + c->rpos, c->rbuf.len - c->rpos);
                c->rbuf.len -= c->rpos - keep;
                c->rbuf.data[c->rbuf.len] = '\0';
                c->rpos = keep;
            }
        }
        break;
    }
    if (c->state == BL_CONN_READING && !c->handles_closing)
        arm_read_timer(c);
}

/* ---- the listener ---------------------------------------------------------- */

static void on_reject_closed(uv_handle_t *h)
{
    bl_server_t *s = h->data;
    free(h);
    s->open_handles--;
    bl_srv_maybe_done(s);
}

static void reject(bl_server_t *s, uv_stream_t *listener)
{
    uv_tcp_t *t = malloc(sizeof *t);
    if (!t)
        return;
    uv_tcp_init(s->loop, t);
    t->data = s;
    s->open_handles++;
    (void)uv_accept(listener, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, on_reject_closed);
}

static void on_connection(uv_stream_t *listener, int status)
{
    bl_server_t *s = listener->data;
    if (status < 0 || s->stopping)
        return;
    if (s->lim.max_connections && s->n_conns >= s->lim.max_connections) {
        reject(s, listener);
        return;
    }
    bl_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        reject(s, listener);
        return;
    }
    c->srv = s;
    c->lim = s->lim;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    s->open_handles += 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    c->req.conn = c;
    bl_hp_limits_t hl = {
        .max_body_bytes = c->lim.max_body_bytes,
        .max_header_bytes = c->lim.max_header_bytes,
        .max_url_bytes = BL_MIN(c->lim.max_header_bytes, (size_t)MAX_URL_BYTES),
        .max_headers = c->lim.max_headers,
    };
    bl_hp_init(&c->hp, &hl);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        bl_srv_close_now(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->state = BL_CONN_READING;
    c->read_stopped = true;
    start_reading(c);
    if (!c->handles_closing)
        arm_read_timer(c);
}

int bl_server_new(uv_loop_t *loop, const bl_server_limits_t *limits, bl_http_handler_fn handler,
                  void *ud, bl_server_t **out)
{
    *out = NULL;
    if (!loop || !handler)
        return BL_EINVAL;
    bl_server_t *s = calloc(1, sizeof *s);
    if (!s)
        return BL_ENOMEM;
    /* a write to a reset socket must be an EPIPE error, not a dead daemon;
     * Linux has no per-socket way to say so for libuv's writes */
    signal(SIGPIPE, SIG_IGN);
    s->loop = loop;
    if (limits)
        s->lim = *limits;
    else
        bl_server_limits_default(&s->lim);
    s->handler = handler;
    s->ud = ud;
    s->date_sec = -1;
    *out = s;
    return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
    bl_server_t *s = h->data;
    s->open_handles--;
    bl_srv_maybe_done(s);
}

static void close_listener(bl_server_t *s)
{
    if (!s->listening)
        return;
    s->listening = false;
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}

int bl_server_listen(bl_server_t *s, const char *host, int port, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    char h[64];
    int rc = BL_EINVAL;
    if (err && errlen)
        err[0] = '\0';
    size_t hn = host ? strlen(host) : 0;
    if (s->listening || s->closing || port < 0 || port > 65535 || hn == 0 || hn >= sizeof h) {
        if (err)
            snprintf(err, errlen, "listen: invalid host or port");
        return BL_EINVAL;
    }
    /* accept "[::1]" as well as "::1" */
    if (host[0] == '[' && host[hn - 1] == ']') {
        memcpy(h, host + 1, hn - 2);
        h[hn - 2] = '\0';
    } else {
        memcpy(h, host, hn + 1);
    }
    if (uv_ip4_addr(h, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(h, port, (struct sockaddr_in6 *)&ss) != 0) {
        if (err)
            snprintf(err, errlen, "listen: '%s' is not an IPv4 or IPv6 address", host);
        return BL_EINVAL;
    }
    uv_tcp_init(s->loop, &s->listener);
    s->listener.data = s;
    s->listening = true;
    s->open_handles++;
    /* libuv sets SO_REUSEADDR on bind */
    int e = uv_tcp_bind(&s->listener, (const struct sockaddr *)&ss, 0);
    if (e == 0)
        e = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    if (e != 0) {
        if (err)
            snprintf(err, errlen, "listen %s port %d: %s", host, port, uv_strerror(e));
        rc = BL_EIO;
        goto fail;
    }
    struct sockaddr_storage bound;
    int len = sizeof bound;
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len) != 0) {
        if (err)
            snprintf(err, errlen, "listen %s: cannot read the bound port", host);
        rc = BL_EIO;
        goto fail;
    }
    s->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                          : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    return 0;
fail:
    close_listener(s);
    return rc;
}

int bl_server_port(const bl_server_t *s)
{
    return s->port;
}

void bl_server_set_limits(bl_server_t *s, const bl_server_limits_t *limits)
{
    s->lim = *limits;
}

void bl_server_stop_accepting(bl_server_t *s)
{
    s->stopping = true;
    close_listener(s);
    for (bl_conn_t *c = s->conns; c; c = c->next) {
        if (c->handles_closing || c->state != BL_CONN_READING)
            continue;
        /* idle: no request started and nothing buffered */
        if (c->hp.phase == BL_HP_IDLE && c->rbuf.len == c->rpos && c->n_writes == 0 &&
            c->timer_mode != BL_TM_RESUME)
            bl_srv_close_now(c);
    }
}

size_t bl_server_active_requests(const bl_server_t *s)
{
    return s->n_active;
}

size_t bl_server_connections(const bl_server_t *s)
{
    return s->n_conns;
}

void bl_server_close(bl_server_t *s, void (*done)(void *), void *ud)
{
    s->closing = true;
    s->stopping = true;
    s->done = done;
    s->done_ud = ud;
    close_listener(s);
    bl_srv_cork_close(s);
    for (bl_conn_t *c = s->conns; c; c = c->next)
        bl_srv_close_now(c);
    bl_srv_maybe_done(s);
}

void bl_server_free(bl_server_t *s)
{
    /* every handle must be closed (bl_server_close's done ran) */
    free(s);
}

/* ---- the Date header, formatted at most once a second ---------------------- */

const char *bl_srv_date(bl_server_t *s)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    if ((int64_t)now != s->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        snprintf(s->date, sizeof s->date, "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n",
                 days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900,
                 tm.tm_hour, tm.tm_min, tm.tm_sec);
        s->date_sec = (int64_t)now;
    }
    return s->date;
}
