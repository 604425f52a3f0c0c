/*
 * The native HTTP/1.1 client for plain http:// targets: the mocks, a
 * sidecar, a peer ballast, a self-hosted model server on the LAN. For a
 * proxied request curl's own bookkeeping (easy-handle setup, its
 * connection cache, two poll() calls per transfer) cost more than all of
 * ballast's work; this client is a libuv TCP stream and http-parser, with
 * keep-alive connections pooled per host:port. https:// (and anything this
 * client does not take, or everything with BALLAST_UPSTREAM_CURL=1) goes
 * through curl as before: TLS is curl's job.
 *
 * Same contract as curl's path (upstream.h): callbacks on the loop, a
 * transfer may be cancelled (or the upstream closed) from inside any of
 * them, exactly one on_done unless cancelled. A request on a reused
 * connection that dies before any response byte is sent again once on a
 * new connection (the server closed it while idle), as curl does.
 */
#include <arpa/inet.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "upstream/upstream_int.h"

#define MAX_IDLE 256
#define MAX_HOST 255

typedef struct bl_nconn {
    uv_tcp_t tcp;                 /* first: tcp.data is the connection */
    bl_upstream_t *u;
    char key[MAX_HOST + 8];       /* "host:port" of the pool */
    struct bl_nconn *prev, *next; /* u->idle or u->busy */
    bl_upstream_xfer_t *x;        /* the transfer it carries; NULL when idle */
    http_parser parser;
    uv_connect_t connect_req;
    uv_write_t write_req;
    bool idle;
    bool closing;
    bool reading;
} nconn_t;

typedef struct bl_nx {
    nconn_t *conn;
    uv_timer_t timer;             /* the connect and total deadlines */
    uv_getaddrinfo_t gai;
    bool resolving;
    char host[MAX_HOST + 1];
    char port[8];
    char key[MAX_HOST + 8];
    struct sockaddr_storage addr;    /* the address being tried */
    bool have_addr;
    struct sockaddr_storage more[4]; /* the name's other addresses, tried in turn */
    int n_more;
    bl_buf_t head;                /* request line and headers (holds the key: wiped) */
    const void *body;
    size_t body_len;
    uint64_t connect_deadline;    /* loop ms; 0 = none */
    uint64_t total_deadline;
    bool connected, reused, retried, got_bytes;
    bool in_cb;                   /* inside a caller's callback */
    bool canceled;                /* cancelled while in_cb: cleaned up on the way out */
    bool done;                    /* on_done ran (or was due): cancel is a no-op */
    bool complete, user_abort;
    bool last_was_value;
    int status;
    bl_buf_t raw;                 /* the response's status line and header lines */
    int refs;                     /* the owner, the timer handle, a pending getaddrinfo */
} bl_nx_t;

typedef struct {
    bl_upstream_xfer_t x;
    bl_nx_t nx;
} nxfer_t;

static void start_connect(bl_upstream_xfer_t *x);
static void send_request(bl_upstream_xfer_t *x);
static void connect_addr(bl_upstream_xfer_t *x);

/* ---- lists and lifetimes ------------------------------------------------------ */

static void conn_unlink(bl_upstream_t *u, nconn_t *c)
{
    nconn_t **head = c->idle ? &u->idle : &u->busy;
    if (c->prev)
        c->prev->next = c->next;
    else if (*head == c)
        *head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    if (c->idle)
        u->n_idle--;
}

static void conn_push(bl_upstream_t *u, nconn_t *c, bool idle)
{
    nconn_t **head = idle ? &u->idle : &u->busy;
    c->idle = idle;
    c->prev = NULL;
    c->next = *head;
    if (*head)
        (*head)->prev = c;
    *head = c;
    if (idle)
        u->n_idle++;
}

static void conn_closed(uv_handle_t *h)
{
    nconn_t *c = h->data;
    bl_upstream_t *u = c->u;
    free(c);
    bl_upstream_handle_gone(u);
}

/* Close a connection (a partial response closes it: the server sees the
 * client leave). Its pending connect/write callbacks run with ECANCELED and
 * find no transfer. */
static void conn_close(nconn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    conn_unlink(c->u, c);
    if (c->x)
        c->x->nx->conn = NULL;
    c->x = NULL;
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void nx_link(bl_upstream_t *u, bl_upstream_xfer_t *x)
{
    x->prev = NULL;
    x->next = u->natives;
    if (u->natives)
        u->natives->prev = x;
    u->natives = x;
}

static void nx_unlink(bl_upstream_t *u, bl_upstream_xfer_t *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        u->natives = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

static void nx_unref(bl_upstream_xfer_t *x)
{
    bl_nx_t *nx = x->nx;
    if (--nx->refs > 0)
        return;
    if (nx->head.data)
        explicit_bzero(nx->head.data, nx->head.cap);
    bl_buf_free(&nx->head);
    bl_buf_free(&nx->raw);
    free((nxfer_t *)x);
}

static void timer_closed(uv_handle_t *h)
{
    bl_upstream_xfer_t *x = h->data;
    bl_upstream_t *u = x->u;
    nx_unref(x);
    bl_upstream_handle_gone(u);
}

/* The transfer is over for the caller (done or cancelled): stop its timer,
 * forget its connection, drop the owner's reference. */
static void nx_end(bl_upstream_xfer_t *x, bool keep_conn)
{
    bl_nx_t *nx = x->nx;
    bl_upstream_t *u = x->u;
    u->active--;
    u->native_active--;
    nx_unlink(u, x);
    if (nx->resolving)
        uv_cancel((uv_req_t *)&nx->gai); /* if it already runs, its callback sees done */
    if (nx->conn) {
        nconn_t *c = nx->conn;
        nx->conn = NULL;
        c->x = NULL;
        if (keep_conn && !u->closing && !u->close_requested && u->n_idle < MAX_IDLE) {
            conn_unlink(u, c);
            conn_push(u, c, true); /* still reading: a server close is seen */
        } else {
            conn_close(c);
        }
    }
    uv_timer_stop(&nx->timer);
    uv_close((uv_handle_t *)&nx->timer, timer_closed);
    nx_unref(x);
}

/* Report the end once, then release. The handle is invalid afterwards. */
static void finish(bl_upstream_xfer_t *x, bl_up_result_t r, const char *msg, bool keep_conn)
{
    bl_nx_t *nx = x->nx;
    if (nx->done)
        return;
    nx->done = true;
    if (r == BL_UP_OK && !nx->status)
        r = BL_UP_PROTOCOL; /* cannot happen: complete means a final status */
    nx->in_cb = true;
    if (x->cb.on_done)
        x->cb.on_done(x->cb.ud, r, msg ? msg : "");
    nx->in_cb = false;
    nx_end(x, keep_conn && r == BL_UP_OK);
}

/* A callback cancelled the transfer it was called for: clean up now. */
static bool canceled_in_cb(bl_upstream_xfer_t *x)
{
    bl_nx_t *nx = x->nx;
    if (!nx->canceled)
        return false;
    nx->done = true;
    nx_end(x, false);
    return true;
}

/* ---- timing ------------------------------------------------------------------- */

static void on_timer(uv_timer_t *t)
{
    bl_upstream_xfer_t *x = t->data;
    bl_nx_t *nx = x->nx;
    if (nx->done)
        return;
    if (!nx->connected)
        finish(x, BL_UP_TIMEOUT_CONNECT, "connection timed out", false);
    else
        finish(x, BL_UP_TIMEOUT_TOTAL, "operation timed out", false);
}

static void arm_timer(bl_upstream_xfer_t *x)
{
    bl_nx_t *nx = x->nx;
    uint64_t next = nx->total_deadline;
    if (!nx->connected && nx->connect_deadline && (!next || nx->connect_deadline < next))
        next = nx->connect_deadline;
    if (!next) {
        uv_timer_stop(&nx->timer);
        return;
    }
    uint64_t now = uv_now(x->u->loop);
    uv_timer_start(&nx->timer, on_timer, next > now ? next - now : 0, 0);
}

/* ---- the response ----------------------------------------------------------------- */

static bl_upstream_xfer_t *parser_xfer(http_parser *p)
{
    nconn_t *c = p->data;
    return c->x;
}

static int on_message_begin(http_parser *p)
{
    bl_upstream_xfer_t *x = parser_xfer(p);
    bl_buf_reset(&x->nx->raw);
    x->nx->last_was_value = false;
    return 0;
}

/* "HTTP/1.1 200 " without printf (every response has one). */
static void status_line(bl_buf_t *b, const http_parser *p)
{
    unsigned s = p->status_code % 1000;
    char line[16] = {'H', 'T', 'T', 'P', '/', (char)('0' + p->http_major % 10), '.',
                     (char)('0' + p->http_minor % 10), ' ', (char)('0' + s / 100),
                     (char)('0' + s / 10 % 10), (char)('0' + s % 10), ' '};
    bl_buf_append(b, line, 13);
}

static int on_status(http_parser *p, const char *at, size_t n)
{
    bl_nx_t *nx = parser_xfer(p)->nx;
    if (!nx->raw.len)
        status_line(&nx->raw, p);
    return bl_buf_append(&nx->raw, at, n) ? -1 : 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    bl_nx_t *nx = parser_xfer(p)->nx;
    if (!nx->raw.len) /* a status line without a reason phrase */
        status_line(&nx->raw, p);
    if (nx->last_was_value || !memchr(nx->raw.data, '\n', nx->raw.len))
        bl_buf_append(&nx->raw, "\r\n", 2);
    nx->last_was_value = false;
    if (nx->raw.len + n > (64u << 10))
        return -1; /* headers that large are not a provider's */
    return bl_buf_append(&nx->raw, at, n) ? -1 : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    bl_nx_t *nx = parser_xfer(p)->nx;
    if (!nx->last_was_value)
        bl_buf_append(&nx->raw, ": ", 2);
    nx->last_was_value = true;
    if (nx->raw.len + n > (64u << 10))
        return -1;
    return bl_buf_append(&nx->raw, at, n) ? -1 : 0;
}

static int on_headers_complete(http_parser *p)
{
    bl_upstream_xfer_t *x = parser_xfer(p);
    bl_nx_t *nx = x->nx;
    if (!nx->raw.len)
        status_line(&nx->raw, p);
    bl_buf_append(&nx->raw, "\r\n", 2);
    if (p->status_code < 200)
        return 0; /* 1xx: the real response follows */
    nx->status = p->status_code;
    if (x->cb.on_headers) {
        nx->in_cb = true;
        x->cb.on_headers(x->cb.ud, nx->status, &nx->raw);
        nx->in_cb = false;
        if (nx->canceled || nx->done)
            return -1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    bl_upstream_xfer_t *x = parser_xfer(p);
    bl_nx_t *nx = x->nx;
    if (!x->cb.on_body || !nx->status)
        return 0;
    nx->in_cb = true;
    int stop = x->cb.on_body(x->cb.ud, at, n);
    nx->in_cb = false;
    if (nx->canceled || nx->done)
        return -1;
    if (stop) {
        nx->user_abort = true;
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    if (p->status_code < 200)
        return 0;
    bl_upstream_xfer_t *x = parser_xfer(p);
    x->nx->complete = true;
    http_parser_pause(p, 1); /* one response per request: nothing is pipelined */
    return 0;
}

static const http_parser_settings SETTINGS = {
    .on_message_begin = on_message_begin,
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* The connection broke (or closed) before the response was complete. */
static void broke(bl_upstream_xfer_t *x, const char *msg)
{
    bl_nx_t *nx = x->nx;
    if (nx->reused && !nx->got_bytes && !nx->retried) {
        /* the server closed the idle connection as we reused it: once more,
           on a new connection (the request had not been answered) */
        nx->retried = true;
        nx->reused = false;
        conn_close(nx->conn);
        start_connect(x);
        return;
    }
    finish(x, BL_UP_RESET, msg, false);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char slab[64 << 10]; /* one loop thread; every read is consumed at once */
    (void)h;
    (void)hint;
    *buf = uv_buf_init(slab, sizeof slab);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    nconn_t *c = s->data;
    bl_upstream_xfer_t *x = c->x;
    if (nread == 0)
        return;
    if (!x) {
        conn_close(c); /* an idle connection: closed by the server, or junk */
        return;
    }
    bl_nx_t *nx = x->nx;
    if (nread < 0) {
        if (nread == UV_EOF) {
            http_parser_execute(&c->parser, &SETTINGS, NULL, 0); /* body until close */
            if (canceled_in_cb(x))
                return;
            if (nx->complete) {
                finish(x, BL_UP_OK, NULL, false);
                return;
            }
        }
        broke(x, nread == UV_EOF ? "connection closed before the response was complete"
                                 : uv_strerror((int)nread));
        return;
    }
    nx->got_bytes = true;
    size_t used = http_parser_execute(&c->parser, &SETTINGS, buf->base, (size_t)nread);
    if (canceled_in_cb(x) || nx->done)
        return;
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (nx->complete) {
        /* reusable when the server keeps it open and sent nothing more */
        bool keep = http_should_keep_alive(&c->parser) && used == (size_t)nread;
        finish(x, BL_UP_OK, NULL, keep);
        return;
    }
    if (nx->user_abort) {
        finish(x, BL_UP_ERROR, "aborted by the caller", false);
        return;
    }
    if (e != HPE_OK)
        finish(x, BL_UP_PROTOCOL, http_errno_description(e), false);
}

/* ---- the request --------------------------------------------------------------------- */

static void write_cb(uv_write_t *w, int status)
{
    nconn_t *c = w->data;
    bl_upstream_xfer_t *x = c->x;
    if (!x || status == 0)
        return;
    broke(x, uv_strerror(status));
}

static void send_request(bl_upstream_xfer_t *x)
{
    bl_nx_t *nx = x->nx;
    nconn_t *c = nx->conn;
    nx->connected = true;
    nx->got_bytes = false;
    nx->complete = false;
    nx->status = 0;
    arm_timer(x); /* the connect deadline no longer applies */
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    uv_buf_t bufs[2] = {uv_buf_init(nx->head.data, (unsigned)nx->head.len),
                        uv_buf_init((char *)nx->body, (unsigned)nx->body_len)};
    unsigned nb = nx->body_len ? 2 : 1;
    /* One writev now: a queued uv_write costs an epoll_ctl per request when
       it completes, and a request almost always fits the socket buffer. */
    int rc = uv_try_write((uv_stream_t *)&c->tcp, bufs, nb);
    size_t sent = rc > 0 ? (size_t)rc : 0;
    if (rc >= 0 || rc == UV_EAGAIN) {
        rc = 0;
        uv_buf_t *b = bufs;
        while (nb && sent >= b->len) {
            sent -= b->len;
            b++;
            nb--;
        }
        if (nb) { /* the rest when the socket takes it */
            b->base += sent;
            b->len -= sent;
            c->write_req.data = c;
            rc = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, b, nb, write_cb);
        }
    }
    if (!rc && !c->reading) {
        rc = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
        c->reading = !rc;
    }
    if (rc)
        broke(x, uv_strerror(rc));
}

static void connect_cb(uv_connect_t *req, int status)
{
    nconn_t *c = req->data;
    bl_upstream_xfer_t *x = c->x;
    if (!x)
        return; /* cancelled or timed out: the connection is closing */
    if (status < 0 && status != UV_ETIMEDOUT && x->nx->n_more > 0) {
        /* the name has other addresses ("localhost": ::1, then 127.0.0.1) */
        bl_nx_t *nx = x->nx;
        nx->addr = nx->more[0];
        memmove(nx->more, nx->more + 1, (size_t)--nx->n_more * sizeof nx->more[0]);
        conn_close(c);
        connect_addr(x);
        return;
    }
    if (status < 0) {
        bl_up_result_t r = status == UV_ETIMEDOUT ? BL_UP_TIMEOUT_CONNECT : BL_UP_CONNECT;
        char msg[400];
        snprintf(msg, sizeof msg, "Failed to connect to %s port %s: %s", x->nx->host, x->nx->port,
                 uv_strerror(status));
        finish(x, r, msg, false);
        return;
    }
    send_request(x);
}

static void connect_addr(bl_upstream_xfer_t *x)
{
    bl_nx_t *nx = x->nx;
    bl_upstream_t *u = x->u;
    nconn_t *c = calloc(1, sizeof *c);
    if (!c) {
        finish(x, BL_UP_ERROR, "out of memory", false);
        return;
    }
    c->u = u;
    snprintf(c->key, sizeof c->key, "%s", nx->key);
    if (uv_tcp_init(u->loop, &c->tcp)) {
        free(c);
        finish(x, BL_UP_ERROR, "could not make a socket", false);
        return;
    }
    u->open_handles++;
    c->tcp.data = c;
    c->x = x;
    nx->conn = c;
    conn_push(u, c, false);
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, 60);
    c->connect_req.data = c;
    int rc = uv_tcp_connect(&c->connect_req, &c->tcp, (const struct sockaddr *)&nx->addr,
                            connect_cb);
    if (rc) {
        char msg[400];
        snprintf(msg, sizeof msg, "Failed to connect to %s port %s: %s", nx->host, nx->port,
                 uv_strerror(rc));
        finish(x, BL_UP_CONNECT, msg, false);
    }
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    bl_upstream_xfer_t *x = req->data;
    bl_nx_t *nx = x->nx;
    nx->resolving = false;
    if (!nx->done) {
        if (status < 0 || !res) {
            char msg[300];
            snprintf(msg, sizeof msg, "Could not resolve host: %s", nx->host);
            finish(x, BL_UP_DNS, msg, false);
        } else {
            memcpy(&nx->addr, res->ai_addr, res->ai_addrlen);
            nx->have_addr = true;
            for (struct addrinfo *ai = res->ai_next; ai && nx->n_more < 4; ai = ai->ai_next)
                if (ai->ai_addrlen <= sizeof nx->more[0])
                    memcpy(&nx->more[nx->n_more++], ai->ai_addr, ai->ai_addrlen);
            connect_addr(x);
        }
    }
    uv_freeaddrinfo(res);
    nx_unref(x); /* the resolver's reference */
}

static void start_connect(bl_upstream_xfer_t *x)
{
    bl_nx_t *nx = x->nx;
    if (nx->have_addr) {
        connect_addr(x);
        return;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    nx->gai.data = x;
    nx->refs++;
    nx->resolving = true;
    /* on libuv's thread pool: the loop never waits on DNS */
    if (uv_getaddrinfo(x->u->loop, &nx->gai, gai_cb, nx->host, nx->port, &hints)) {
        nx->resolving = false;
        nx->refs--;
        char msg[300];
        snprintf(msg, sizeof msg, "Could not resolve host: %s", nx->host);
        finish(x, BL_UP_DNS, msg, false);
    }
}

/* ---- starting ------------------------------------------------------------------------ */

/* "http://host[:port][/path]" -> its parts; false for anything else (userinfo,
 * https, an odd host), which curl then takes. */
static bool split_url(const char *url, bl_nx_t *nx, const char **path)
{
    if (strncasecmp(url, "http://", 7))
        return false;
    const char *h = url + 7, *end;
    size_t hn;
    if (*h == '[') {
        end = strchr(h, ']');
        if (!end)
            return false;
        hn = (size_t)(end - h - 1);
        if (hn == 0 || hn > MAX_HOST)
            return false;
        memcpy(nx->host, h + 1, hn);
        end++;
    } else {
        end = h + strcspn(h, ":/?#");
        hn = (size_t)(end - h);
        if (hn == 0 || hn > MAX_HOST)
            return false;
        memcpy(nx->host, h, hn);
    }
    nx->host[hn] = '\0';
    if (strpbrk(nx->host, "@%"))
        return false; /* userinfo or a zone id: curl's business */
    unsigned long port = 80;
    if (*end == ':') {
        char *e;
        port = strtoul(end + 1, &e, 10);
        if (e == end + 1 || port == 0 || port > 65535)
            return false;
        end = e;
    }
    if (*end && *end != '/' && *end != '?')
        return false;
    *path = *end == '/' ? end : "/";
    if (*end == '?')
        return false; /* a query without a path: rare, curl normalises it */
    snprintf(nx->port, sizeof nx->port, "%lu", port);
    snprintf(nx->key, sizeof nx->key, "%s:%lu", nx->host, port);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&nx->addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&nx->addr;
    if (inet_pton(AF_INET, nx->host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        nx->have_addr = true;
    } else if (inet_pton(AF_INET6, nx->host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        nx->have_addr = true;
    }
    return true;
}

/* Header lines the caller may not set: this client owns framing and the
 * connection. */
static bool ours(const char *h)
{
    static const char *const names[] = {"host:", "content-length:", "connection:",
                                        "transfer-encoding:", "expect:", "keep-alive:"};
    for (size_t i = 0; i < BL_ARRAY_LEN(names); i++)
        if (!strncasecmp(h, names[i], strlen(names[i])))
            return true;
    return false;
}

static int build_head(bl_nx_t *nx, const bl_upstream_req_t *req, const char *method,
                      const char *path)
{
    bl_buf_t *b = &nx->head;
    bool v6 = strchr(nx->host, ':') != NULL, port = strcmp(nx->port, "80") != 0;
    /* by hand, not printf: this runs for every request */
    const char *parts[] = {method, " ", path, " HTTP/1.1\r\nHost: ", v6 ? "[" : "", nx->host,
                           v6 ? "]" : "", port ? ":" : "", port ? nx->port : "", "\r\n"};
    int rc = bl_buf_reserve(b, 256 + strlen(path));
    for (size_t i = 0; !rc && i < BL_ARRAY_LEN(parts); i++)
        rc = bl_buf_append_str(b, parts[i]);
    bool ct = false;
    for (size_t i = 0; !rc && i < req->n_headers; i++) {
        const char *h = req->headers[i];
        if (!h || ours(h))
            continue;
        if (strpbrk(h, "\r\n"))
            return BL_EINVAL; /* never let a value split the head */
        ct |= !strncasecmp(h, "content-type:", 13);
        rc = bl_buf_append_str(b, h);
        if (!rc)
            rc = bl_buf_append(b, "\r\n", 2);
    }
    if (!rc && req->body_len && !ct)
        rc = bl_buf_append_str(b, "Content-Type: application/json\r\n");
    if (!rc && (req->body_len || !strcmp(method, "POST") || !strcmp(method, "PUT"))) {
        char num[24];
        size_t i = sizeof num, v = req->body_len;
        do {
            num[--i] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        rc = bl_buf_append_str(b, "Content-Length: ");
        if (!rc)
            rc = bl_buf_append(b, num + i, sizeof num - i);
        if (!rc)
            rc = bl_buf_append(b, "\r\n", 2);
    }
    if (!rc)
        rc = bl_buf_append(b, "\r\n", 2);
    return rc;
}

int bl_native_start(bl_upstream_t *u, const bl_upstream_req_t *req, const bl_upstream_cb_t *cb,
                    bl_upstream_xfer_t **out)
{
    if (u->native_off)
        return BL_EUNSUPPORTED;
    const char *method = req->method ? req->method : (req->body_len ? "POST" : "GET");
    if (strcmp(method, "POST") && strcmp(method, "GET"))
        return BL_EUNSUPPORTED; /* HEAD and friends: curl knows their framing */
    nxfer_t *t = calloc(1, sizeof *t);
    if (!t)
        return BL_ENOMEM;
    bl_upstream_xfer_t *x = &t->x;
    bl_nx_t *nx = &t->nx;
    x->nx = nx;
    x->u = u;
    const char *path;
    if (!split_url(req->url, nx, &path)) {
        free(t);
        return BL_EUNSUPPORTED;
    }
    int rc = build_head(nx, req, method, path);
    if (rc) {
        bl_buf_free(&nx->head);
        free(t);
        return rc;
    }
    x->cb = *cb;
    nx->body = req->body;
    nx->body_len = req->body_len;
    uint64_t now = uv_now(u->loop);
    nx->connect_deadline = req->connect_timeout_ms ? now + req->connect_timeout_ms : 0;
    nx->total_deadline = req->total_timeout_ms ? now + req->total_timeout_ms : 0;
    uv_timer_init(u->loop, &nx->timer);
    nx->timer.data = x;
    u->open_handles++;
    nx->refs = 2; /* the owner and the timer handle */
    u->active++;
    u->native_active++;
    nx_link(u, x);
    *out = x;

    /* a kept-alive connection to the same place goes first */
    for (nconn_t *c = u->idle; c; c = c->next) {
        if (strcmp(c->key, nx->key))
            continue;
        conn_unlink(u, c);
        conn_push(u, c, false);
        c->x = x;
        nx->conn = c;
        nx->reused = true;
        send_request(x);
        return BL_OK;
    }
    arm_timer(x);
    start_connect(x);
    return BL_OK;
}

void bl_native_cancel(bl_upstream_xfer_t *x)
{
    bl_nx_t *nx = x->nx;
    if (nx->done || nx->canceled)
        return;
    if (nx->in_cb) {
        nx->canceled = true; /* finished by the code that called the callback */
        return;
    }
    nx->done = true;
    nx_end(x, false);
}

void bl_native_close_all(bl_upstream_t *u)
{
    while (u->natives) {
        bl_upstream_xfer_t *x = u->natives;
        x->nx->in_cb = false; /* closing: nothing is called back any more */
        x->nx->done = true;
        nx_end(x, false);
    }
    while (u->busy)
        conn_close(u->busy);
    while (u->idle)
        conn_close(u->idle);
}
