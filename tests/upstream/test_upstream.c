/*
 * upstream against the real ballast-mock ($BALLAST_MOCK) on loopback: each
 * test drives transfers on its own uv loop and checks callbacks, result
 * classification, cancellation and connection reuse (via the mock's stats).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <pthread.h>
#include <cmocka.h>
#include <jansson.h>

#include "upstream/upstream.h"

static pid_t g_mock_pid;
static int g_port;
static char g_base[64];

typedef struct ctx {
    bl_upstream_t *u;
    bl_upstream_xfer_t *x;
    int status;
    bl_buf_t hdrs;
    bl_buf_t body;
    int n_headers, n_body, n_done;
    bool body_before_headers;
    bl_up_result_t result;
    char errmsg[256];
    bool done;
    /* hooks */
    int cancel_at_body; /* cancel from inside the n-th on_body (1-based) */
    bool cancel_in_headers;
    bl_upstream_xfer_t *cancel_other; /* cancel this one from on_body */
    bool close_in_body;               /* close the whole upstream from on_body */
    bool closed;
    struct ctx *start_in_headers; /* start a transfer for this ctx from on_headers */
    const bl_upstream_req_t *start_req;
    int chain_left; /* start another transfer from on_done */
    int chain_ok;
    const bl_upstream_req_t *chain_req;
} ctx_t;

static const bl_upstream_cb_t *callbacks(struct ctx *c);
static void closed(void *ud);

static void closed(void *ud)
{
    *(bool *)ud = true;
}

static void on_headers(void *ud, int status, const bl_buf_t *raw)
{
    ctx_t *c = ud;
    c->n_headers++;
    c->status = status;
    bl_buf_reset(&c->hdrs);
    bl_buf_append(&c->hdrs, raw->data, raw->len);
    if (c->cancel_in_headers)
        bl_upstream_cancel(c->x);
    if (c->start_in_headers) {
        /* curl forbids adding handles here; upstream must defer it */
        ctx_t *o = c->start_in_headers;
        c->start_in_headers = NULL;
        assert_int_equal(bl_upstream_start(c->u, c->start_req, callbacks(o), &o->x), 0);
    }
}

static int on_body(void *ud, const char *p, size_t n)
{
    ctx_t *c = ud;
    c->n_body++;
    if (c->n_headers == 0)
        c->body_before_headers = true;
    bl_buf_append(&c->body, p, n);
    if (c->cancel_at_body && c->n_body == c->cancel_at_body)
        bl_upstream_cancel(c->x);
    if (c->cancel_other) {
        bl_upstream_cancel(c->cancel_other);
        c->cancel_other = NULL;
    }
    if (c->close_in_body) {
        c->close_in_body = false;
        bl_upstream_close(c->u, closed, &c->closed);
    }
    return 0;
}

static void on_done(void *ud, bl_up_result_t r, const char *errmsg)
{
    ctx_t *c = ud;
    c->n_done++;
    c->result = r;
    snprintf(c->errmsg, sizeof c->errmsg, "%s", errmsg ? errmsg : "");
    if (r == BL_UP_OK && c->status == 200)
        c->chain_ok++;
    if (c->chain_left > 0) {
        c->chain_left--;
        c->n_headers = 0;
        bl_buf_reset(&c->body);
        /* starting a new transfer from on_done must work */
        assert_int_equal(bl_upstream_start(c->u, c->chain_req, callbacks(c), &c->x), 0);
        return;
    }
    c->done = true;
}

static const bl_upstream_cb_t *callbacks(ctx_t *c)
{
    static bl_upstream_cb_t cb;
    cb = (bl_upstream_cb_t){c, on_headers, on_body, on_done};
    return &cb;
}

static void ctx_free(ctx_t *c)
{
    bl_buf_free(&c->hdrs);
    bl_buf_free(&c->body);
}

/* ---- loop helpers --------------------------------------------------------- */

typedef struct {
    const bool *flag;
    bool expired;
} wait_t;

static void on_deadline(uv_timer_t *t)
{
    wait_t *w = t->data;
    w->expired = true;
    uv_stop(t->loop);
}

/* Before each poll: a callback in the timer phase may have set the flag, and
 * the loop would otherwise block in poll until the next event. */
static void on_prepare(uv_prepare_t *p)
{
    wait_t *w = p->data;
    if (w->flag && *w->flag)
        uv_stop(p->loop);
}

/* Run until *flag or ms elapsed; returns whether *flag was set. */
static bool run_until(uv_loop_t *loop, const bool *flag, uint64_t ms)
{
    wait_t w = {flag, false};
    uv_timer_t t;
    uv_prepare_t p;
    uv_timer_init(loop, &t);
    uv_prepare_init(loop, &p);
    t.data = p.data = &w;
    uv_timer_start(&t, on_deadline, ms, 0);
    uv_prepare_start(&p, on_prepare);
    while (!(flag && *flag) && !w.expired)
        uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_close((uv_handle_t *)&p, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return flag && *flag;
}

static void close_all(uv_loop_t *loop, bl_upstream_t *u)
{
    bool done = false;
    bl_upstream_close(u, closed, &done);
    assert_true(run_until(loop, &done, 5000));
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void req_init(bl_upstream_req_t *r, const char *method, const char *path, const char *body,
                     const char *const *hdrs, size_t n_hdrs, char *url, size_t url_cap)
{
    snprintf(url, url_cap, "%s%s", g_base, path);
    *r = (bl_upstream_req_t){.method = method,
                             .url = url,
                             .headers = hdrs,
                             .n_headers = n_hdrs,
                             .body = body,
                             .body_len = body ? strlen(body) : 0,
                             .connect_timeout_ms = 2000,
                             .total_timeout_ms = 10000};
}

/* One transfer to completion; fills c. */
static void fetch(uv_loop_t *loop, bl_upstream_t *u, ctx_t *c, const char *method, const char *path,
                  const char *body, const char *const *hdrs, size_t n_hdrs)
{
    char url[128];
    bl_upstream_req_t r;
    req_init(&r, method, path, body, hdrs, n_hdrs, url, sizeof url);
    c->u = u;
    assert_int_equal(bl_upstream_start(u, &r, callbacks(c), &c->x), 0);
    assert_true(run_until(loop, &c->done, 10000));
}

static json_t *mock_stats(uv_loop_t *loop, bl_upstream_t *u)
{
    ctx_t c = {0};
    fetch(loop, u, &c, "GET", "/_mock/stats", NULL, NULL, 0);
    assert_int_equal(c.result, BL_UP_OK);
    assert_int_equal(c.status, 200);
    json_t *j = json_loadb(c.body.data, c.body.len, 0, NULL);
    assert_non_null(j);
    ctx_free(&c);
    return j;
}

static void mock_reset(uv_loop_t *loop, bl_upstream_t *u)
{
    ctx_t c = {0};
    fetch(loop, u, &c, "POST", "/_mock/reset", "{}", NULL, 0);
    assert_int_equal(c.status, 200);
    ctx_free(&c);
}

static long long stat_int(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    assert_true(json_is_integer(v));
    return (long long)json_integer_value(v);
}

static const char *CHAT =
    "{\"model\":\"m1\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
static const char *CHAT_STREAM = "{\"model\":\"m1\",\"stream\":true,\"messages\":[]}";

/* ---- tests ------------------------------------------------------------------- */

static void plain_response(void **state)
{
    uv_loop_t loop;
    bl_upstream_t *u;
    uv_loop_init(&loop);
    assert_int_equal(bl_upstream_new(&loop, &u), 0);
    const char *h[] = {"Authorization: Bearer sk-secret-123", "Content-Type: application/json"};
    ctx_t c = {0};
    fetch(&loop, u, &c, "POST", "/v1/chat/completions", CHAT, h, 2);
    assert_int_equal(c.result, BL_UP_OK);
    assert_string_equal(c.errmsg, "");
    assert_int_equal(c.n_done, 1);
    assert_int_equal(c.n_headers, 1);
    assert_false(c.body_before_headers);
    assert_int_equal(c.status, 200);
    bl_str_t name = bl_upstream_header(&c.hdrs, "X-Mock-Name");
    assert_true(bl_str_eq(name, "up"));
    assert_true(bl_str_eq(bl_upstream_header(&c.hdrs, "content-type"), "application/json"));
    assert_null(bl_upstream_header(&c.hdrs, "x-absent").p);
    assert_non_null(strstr(c.body.data, "\"content\":\"Hello from up (model m1).\""));
    assert_int_equal(bl_upstream_active(u), 0);

    /* the mock saw our headers, the body, and no Expect: 100-continue */
    json_t *st = mock_stats(&loop, u);
    json_t *last = json_object_get(st, "last_request");
    json_t *hd = json_object_get(last, "headers");
    assert_string_equal(json_string_value(json_object_get(hd, "authorization")),
                        "Bearer sk-secret-123");
    assert_null(json_object_get(hd, "expect"));
    assert_string_equal(json_string_value(json_object_get(last, "body")), CHAT);
    json_decref(st);
    ctx_free(&c);
    close_all(&loop, u);
}

static void status_and_retry_after(void **state)
{
    uv_loop_t loop;
    bl_upstream_t *u;
    uv_loop_init(&loop);
    assert_int_equal(bl_upstream_new(&loop, &u), 0);
    const char *h[] = {"x-mock-fault: status;code=503;retry_after=7"};
    ctx_t c = {0};
    fetch(&loop, u, &c, "POST", "/v1/chat/completions", CHAT, h, 1);
    assert_int_equal(c.result, BL_UP_OK); /* any complete response is OK */
    assert_int_equal(c.status, 503);
    assert_true(bl_str_eq(bl_upstream_header(&c.hdrs, "retry-after"), "7"));
    assert_non_null(strstr(c.body.data, "\"error\""));
    ctx_free(&c);
    close_all(&loop, u);
}

static void streamed_sse_in_pieces(void **state)
{
    uv_loop_t loop;
    bl_upstream_t *u;
    uv_loop_init(&loop);
    assert_int_equal(bl_upstream_new(&loop, &u), 0);
    const char *h[] = {"x-mock-fault: drip;ms=5;chunks=6"};
    ctx_t c = {0};
    fetch(&loop, u, &c, "POST", "/v1/chat/completions", CHAT_STREAM, h, 1);
    assert_int_equal(c.result, BL_UP_OK);
    assert_int_equal(c.status, 200);
    assert_true(bl_str_eq(bl_upstream_header(&c.hdrs, "content-type"), "text/event-stream"));
    /* role + 6 content + finish + [DONE], dripped: several deliveries */
    assert_true(c.n_body >= 5);
    assert_non_null(strstr(c.body.data, "data: [DONE]\n\n"));
    assert_null(strstr(c.body.data, "\r\n0\r\n")); /* chunked framing is decoded */
    ctx_free(&c);
    close_all(&loop, u);
}

static void connect_refused(void **state)
{
    /* a port nothing listens on: bind, read the port, close */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/models", ntohs(a.sin_port));

    uv_loop_t loop;
    bl_upstream_t *u;
    uv_loop_init(&loop);
    assert_int_equal(bl_upstream_new(&loop, &u), 0);
    ctx_t c = {0};
    bl_upstream_req_t r = {.method = "GET", .url = url, .connect_timeout_ms = 2000};
    assert_int_equal(bl_upstream_start(u, &r, callbacks(&c), &c.x), 0);
    assert_true(run_until(&loop, &c.done, 5000));
    assert_int_equal(c.result, BL_UP_CONNECT);
    assert_string_equal(bl_up_result_name(c.result), "connect");
    assert_int_equal(c.n_headers, 0);
    assert_true(strlen(c.errmsg) > 0);
    ctx_free(&c);
    close_all(&loop, u);
}

/* A listener whose accept queue is full drops new SYNs, so connect hangs. */
static void connect_times_out(void **state)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 0), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
    int fill[4];
    for (int i = 0; i < 4; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fill[i], (struct sockaddr *)&a, sizeof a);
    }
    usleep(50 * 1000);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/models", ntohs(a.sin_port));

    uv_loop_t loop;
    bl_upstream_t *u;
    uv_loop_init(&loop);
    assert_int_equal(bl_upstream_new(&loop, &u), 0);
    ctx_t c = {0}, c2 = {0};
    bl_upstream_req_t r = {.method = "GET", .url = url, .connect_timeout_ms = 200};
    assert_int_equal(bl_upstream_start(u, &r, callbacks(&c), &c.x), 0);
    /* only a total timeout, still spent connecting */
    bl_upstream_req_t r2 = {.method = "GET", .url = url, .total_timeout_ms = 200};
    assert_int_equal(bl_upstream_start(u, &r2, callbacks(&c2), &c2.x), 0);
    assert_true(run_until(&loop, &c.done, 5000));
    assert_true(run_until(&loop, &c2.done, 5000));
    assert_int_equal(c.result, BL_UP_TIMEOUT_CONNECT);
    assert_int_equal(c2.result, BL_UP_TIMEOUT_CONNECT);
    ctx_free(&c);
    ctx_free(&c2);
    close_all(&loop, u);
    for (int i = 0; i < 4; i++)
        close(fill[i]);
    close(lfd);
}

static void reset_mid_body(void **state)
{
    uv_loop_t loop;
    bl_upstream_t *u;
    uv_loop_init(&loop);
    assert_int_equal(bl_upstream_new(&loop, &u), 0);
    const char *h[] = {"x-mock-fault: reset"};
    ctx_t c = {0};
    fetch(&loop, u, &c, "POST", "/v1/chat/completions", CHAT_STREAM, h, 1);
    assert_int_equal(c.result, BL_UP_RESET);
    assert_int_equal(c.n_headers, 1);
    assert_int_equal(c.status, 200);
    assert_null(strstr(c.body.data ? c.body.data : "", "[DONE]"));
    ctx_free(&c);

    /* a stream cut without its last chunk is a reset as well */
    const char *h2[] = {"x-mock-fault: cut;events=2"};
    ctx_t c2 = {0};
    fetch(&loop, u, &c2, "POST", "/v1/chat/completions", CHAT_STREAM, h2, 1);
    assert_int_equal(c2.result, BL_UP_RESET);
    assert_non_null(strstr(c2.body.data, "\"role\":\"assistant\""));
    ctx_free(&c2);
    close_all(&loop, u);
}

static void hang_times_out(void **state)
{
    uv_loop_t loop;
    bl_upstream_t *u;
    uv_loop_init(&loop);
    assert_int_equal(bl_upstream_new(&loop, &u), 0);
    const char *h[] = {"x-mock-fault: hang"};
    char url[128];
    bl_upstream_req_t r;
    req_init(&r, "POST", "/v1/chat/completions", CHAT, h, 1, url, sizeof url);
    r.total_timeout_ms = 200;
    ctx_t c = {0};
    assert_int_equal(bl_upstream_start(u, &r, callbacks(&c), &c.x), 0);
    assert_true(run_until(&loop, &c.done, 5000));
    assert_int_equal(c.result, BL_UP_TIMEOUT_TOTAL);
    assert_int_equal(c.n_headers, 0);
    ctx_free(&c);
    close_all(&loop, u);
}

static void cancel_mid_stream(void **state)
{
    uv_loop_t loop;
    bl_upstream_t *u;
    uv_loop_init(&loop);
    assert_int_equal(bl_upstream_new(&loop, &u), 0);
    mock_reset(&loop, u);
    const char *h[] = {"x-mock-fault: drip;ms=30;chunks=20"};
    char url[128];
    bl_upstream_req_t r;
    req_init(&r, "POST", "/v1/chat/completions", CHAT_STREAM, h, 1, url, sizeof url);
    ctx_t c = {.cancel_at_body = 1};
    assert_int_equal(bl_upstream_start(u, &r, callbacks(&c), &c.x), 0);
    assert_int_equal(bl_upstream_active(u), 1);
    run_until(&loop, NULL, 400); /* the stream would still be running */
    assert_int_equal(c.n_body, 1);
    assert_int_equal(c.n_done, 0);
    assert_int_equal(bl_upstream_active(u), 0);
    json_t *st = mock_stats(&loop, u);
    assert_int_equal(stat_int(st, "disconnects_before_response"), 1);
    json_decref(st);
    ctx_free(&c);

    /* cancel from on_headers: no body, no done */
    ctx_t c2 = {.cancel_in_headers = true};
    assert_int_equal(bl_upstream_start(u, &r, callbacks(&c2), &c2.x), 0);
    run_until(&loop, NULL, 200);
    assert_int_equal(c2.n_headers, 1);
    assert_int_equal(c2.n_body, 0);
    assert_int_equal(c2.n_done, 0);
    ctx_free(&c2);

    /* cancel another transfer from inside this one's on_body (hedging) */
    const char *hh[] = {"x-mock-fault: hang"};
    bl_upstream_req_t rh;
    char urlh[128];
    req_init(&rh, "POST", "/v1/chat/completions", CHAT, hh, 1, urlh, sizeof urlh);
    ctx_t loser = {0};
    assert_int_equal(bl_upstream_start(u, &rh, callbacks(&loser), &loser.x), 0);
    run_until(&loop, NULL, 50);
    ctx_t winner = {.cancel_other = loser.x};
    fetch(&loop, u, &winner, "POST", "/v1/chat/completions", CHAT, NULL, 0);
    assert_int_equal(winner.result, BL_UP_OK);
    assert_null(winner.cancel_other);
    run_until(&loop, NULL, 50);
    assert_int_equal(loser.n_done, 0);
    assert_int_equal(bl_upstream_active(u), 0);
    /* every cancel closed its connection: drip, cancel in headers, the loser */
    st = mock_stats(&loop, u);
    assert_int_equal(stat_int(st, "disconnects_before_response"), 3);
    json_decref(st);
    ctx_free(&winner);
    ctx_free(&loser);
    close_all(&loop, u);
}

static void sequential_transfers_reuse_connections(void **state)
{
    uv_loop_t loop;
    bl_upstream_t *u;
    uv_loop_init(&loop);
    assert_int_equal(bl_upstream_new(&loop, &u), 0);
    mock_reset(&loop, u);
    char url[128];
    bl_upstream_req_t r;
    req_init(&r, "POST", "/v1/chat/completions", CHAT, NULL, 0, url, sizeof url);
    ctx_t c = {.chain_left = 19, .chain_req = &r, .u = u};
    assert_int_equal(bl_upstream_start(u, &r, callbacks(&c), &c.x), 0);
    assert_true(run_until(&loop, &c.done, 20000));
    assert_int_equal(c.chain_ok, 20);
    json_t *st = mock_stats(&loop, u);
    assert_int_equal(stat_int(st, "requests"), 20);
    long long conns = stat_int(st, "connections");
    assert_true(conns < 20); /* 0 when the reset's connection was reused */
    json_decref(st);
    ctx_free(&c);
    close_all(&loop, u);
}

/* A host name is resolved off the loop (libuv's pool); one that does not
 * resolve is a DNS failure. */
static void host_names_resolve_off_the_loop(void **state)
{
    uv_loop_t loop;
    bl_upstream_t *u;
    uv_loop_init(&loop);
    assert_int_equal(bl_upstream_new(&loop, &u), 0);
    char url[128];
    snprintf(url, sizeof url, "http://localhost:%d/v1/models", g_port);
    bl_upstream_req_t r = {.method = "GET", .url = url, .connect_timeout_ms = 2000,
                           .total_timeout_ms = 10000};
    ctx_t c = {.u = u};
    assert_int_equal(bl_upstream_start(u, &r, callbacks(&c), &c.x), 0);
    assert_true(run_until(&loop, &c.done, 10000));
    assert_int_equal(c.result, BL_UP_OK);
    assert_int_equal(c.status, 200);
    snprintf(url, sizeof url, "http://no-such-host.invalid:%d/v1/models", g_port);
    ctx_t d = {.u = u};
    assert_int_equal(bl_upstream_start(u, &r, callbacks(&d), &d.x), 0);
    assert_true(run_until(&loop, &d.done, 10000));
    assert_int_equal(d.result, BL_UP_DNS);
    ctx_free(&c);
    ctx_free(&d);
    close_all(&loop, u);
}

/* A server that answers the first request on a connection, then reads the
 * second and closes without a byte (as a server closing an idle keep-alive
 * connection at that moment does), and answers on the next connection. */
typedef struct {
    int lfd;
    int requests, connections;
} drop_srv_t;

static bool read_request(int fd)
{
    char buf[4096];
    size_t have = 0;
    while (have < sizeof buf) {
        ssize_t k = read(fd, buf + have, sizeof buf - have);
        if (k <= 0)
            return false;
        have += (size_t)k;
        if (memmem(buf, have, "\r\n\r\n", 4))
            return true; /* GETs: no body */
    }
    return false;
}

static void *drop_srv(void *arg)
{
    drop_srv_t *s = arg;
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    int a = accept(s->lfd, NULL, NULL);
    s->connections++;
    if (read_request(a) && write(a, ok, sizeof ok - 1) > 0)
        s->requests++;
    if (read_request(a))
        s->requests++;
    close(a); /* the second request is never answered here */
    int b = accept(s->lfd, NULL, NULL);
    s->connections++;
    if (read_request(b) && write(b, ok, sizeof ok - 1) > 0)
        s->requests++;
    close(b);
    return NULL;
}

static void reused_connection_dropped_by_the_server_is_retried(void **state)
{
    drop_srv_t srv = {0};
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    srv.lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(srv.lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(srv.lfd, 4), 0);
    getsockname(srv.lfd, (struct sockaddr *)&a, &al);
    pthread_t th;
    pthread_create(&th, NULL, drop_srv, &srv);
    uv_loop_t loop;
    bl_upstream_t *u;
    uv_loop_init(&loop);
    assert_int_equal(bl_upstream_new(&loop, &u), 0);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", ntohs(a.sin_port));
    bl_upstream_req_t r = {.method = "GET", .url = url, .connect_timeout_ms = 2000,
                           .total_timeout_ms = 10000};
    for (int i = 0; i < 2; i++) {
        ctx_t c = {.u = u};
        assert_int_equal(bl_upstream_start(u, &r, callbacks(&c), &c.x), 0);
        assert_true(run_until(&loop, &c.done, 10000));
        /* the second request went out on the kept connection, was dropped
           unanswered, and was sent again on a new one: the caller sees 200 */
        assert_int_equal(c.result, BL_UP_OK);
        assert_int_equal(c.status, 200);
        assert_string_equal(c.body.data, "ok");
        ctx_free(&c);
    }
    pthread_join(th, NULL);
    assert_int_equal(srv.requests, 3);
    assert_int_equal(srv.connections, 2);
    close(srv.lfd);
    close_all(&loop, u);
}

/* BALLAST_UPSTREAM_CURL=1 sends plain http:// through curl too: curl adds
 * an Accept of any type to a request that has none, our client does not. */
static const char *last_accept(uv_loop_t *loop, bl_upstream_t *u, char *out, size_t cap)
{
    json_t *st = mock_stats(loop, u);
    const char *v = json_string_value(
        json_object_get(json_object_get(json_object_get(st, "last_request"), "headers"), "accept"));
    snprintf(out, cap, "%s", v ? v : "(none)");
    json_decref(st);
    return out;
}

static void curl_can_be_asked_for_plain_http(void **state)
{
    char seen[64];
    for (int use_curl = 0; use_curl < 2; use_curl++) {
        if (use_curl)
            setenv("BALLAST_UPSTREAM_CURL", "1", 1);
        uv_loop_t loop;
        bl_upstream_t *u;
        uv_loop_init(&loop);
        assert_int_equal(bl_upstream_new(&loop, &u), 0);
        unsetenv("BALLAST_UPSTREAM_CURL");
        ctx_t c = {0};
        fetch(&loop, u, &c, "POST", "/v1/chat/completions", CHAT, NULL, 0);
        assert_int_equal(c.status, 200);
        assert_string_equal(last_accept(&loop, u, seen, sizeof seen), use_curl ? "*/*" : "(none)");
        ctx_free(&c);
        close_all(&loop, u);
    }
}

static void close_with_transfers_in_flight(void **state)
{
    uv_loop_t loop;
    bl_upstream_t *u;
    uv_loop_init(&loop);
    assert_int_equal(bl_upstream_new(&loop, &u), 0);
    const char *h[] = {"x-mock-fault: hang"};
    char url[128];
    bl_upstream_req_t r;
    req_init(&r, "POST", "/v1/chat/completions", CHAT, h, 1, url, sizeof url);
    ctx_t c[3] = {{0}};
    for (int i = 0; i < 3; i++)
        assert_int_equal(bl_upstream_start(u, &r, callbacks(&c[i]), &c[i].x), 0);
    run_until(&loop, NULL, 100);
    assert_int_equal(bl_upstream_active(u), 3);
    close_all(&loop, u); /* asserts done ran and the loop has no handles left */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(c[i].n_done, 0);
        ctx_free(&c[i]);
    }
}

static void start_and_close_from_callbacks(void **state)
{
    uv_loop_t loop;
    bl_upstream_t *u;
    uv_loop_init(&loop);
    assert_int_equal(bl_upstream_new(&loop, &u), 0);
    char url[128], url2[128];
    bl_upstream_req_t r, r2;
    const char *h[] = {"x-mock-fault: drip;ms=20"};
    req_init(&r, "POST", "/v1/chat/completions", CHAT_STREAM, h, 1, url, sizeof url);
    req_init(&r2, "GET", "/v1/models", NULL, NULL, 0, url2, sizeof url2);

    /* a transfer started from on_headers runs to completion */
    ctx_t second = {0};
    ctx_t first = {.u = u, .start_in_headers = &second, .start_req = &r2};
    assert_int_equal(bl_upstream_start(u, &r, callbacks(&first), &first.x), 0);
    assert_true(run_until(&loop, &first.done, 5000));
    assert_true(run_until(&loop, &second.done, 5000));
    assert_int_equal(first.result, BL_UP_OK);
    assert_int_equal(second.result, BL_UP_OK);
    assert_non_null(strstr(second.body.data, "mock-model"));

    /* closing from on_body: no callbacks for anyone afterwards, done runs */
    const char *hh[] = {"x-mock-fault: hang"};
    char url3[128];
    bl_upstream_req_t r3;
    req_init(&r3, "POST", "/v1/chat/completions", CHAT, hh, 1, url3, sizeof url3);
    ctx_t other = {0};
    assert_int_equal(bl_upstream_start(u, &r3, callbacks(&other), &other.x), 0);
    ctx_t closer = {.u = u, .close_in_body = true};
    assert_int_equal(bl_upstream_start(u, &r, callbacks(&closer), &closer.x), 0);
    assert_true(run_until(&loop, &closer.closed, 5000));
    assert_int_equal(closer.n_body, 1);
    assert_int_equal(closer.n_done, 0);
    assert_int_equal(other.n_done, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    ctx_free(&first);
    ctx_free(&second);
    ctx_free(&other);
    ctx_free(&closer);
}

static void header_lookup(void **state)
{
    bl_buf_t b = {0};
    bl_buf_append_str(&b, "HTTP/1.1 200 OK\r\nContent-Type:  text/plain \r\n"
                          "X-Long-Name: a\r\nRetry-After: 12\r\n");
    assert_true(bl_str_eq(bl_upstream_header(&b, "content-type"), "text/plain"));
    assert_true(bl_str_eq(bl_upstream_header(&b, "RETRY-AFTER"), "12"));
    assert_null(bl_upstream_header(&b, "x-long").p); /* a prefix is not a match */
    assert_null(bl_upstream_header(&b, "HTTP/1.1 200 OK").p);
    bl_buf_free(&b);
    assert_string_equal(bl_up_result_name(BL_UP_TIMEOUT_TOTAL), "timeout_total");
    assert_true(bl_upstream_async_dns()); /* Debian's libcurl: threaded resolver */
}

/* ---- the mock process ------------------------------------------------------ */

static int start_mock(void **state)
{
    const char *mock = getenv("BALLAST_MOCK");
    if (!mock) {
        fprintf(stderr, "BALLAST_MOCK is not set\n");
        return -1;
    }
    char port_file[] = "/tmp/bl-upstream-test-XXXXXX";
    int fd = mkstemp(port_file);
    if (fd < 0)
        return -1;
    close(fd);
    unlink(port_file);
    g_mock_pid = fork();
    if (g_mock_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* no stray mock if the test is killed */
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        execl(mock, mock, "--port", "0", "--name", "up", "--port-file", port_file, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500 && g_port == 0; i++) {
        FILE *f = fopen(port_file, "r");
        if (f) {
            if (fscanf(f, "%d", &g_port) != 1)
                g_port = 0;
            fclose(f);
        }
        if (!g_port)
            usleep(10000);
    }
    unlink(port_file);
    if (!g_port)
        return -1;
    snprintf(g_base, sizeof g_base, "http://127.0.0.1:%d", g_port);
    return 0;
}

static int stop_mock(void **state)
{
    if (g_mock_pid > 0) {
        kill(g_mock_pid, SIGTERM);
        int st;
        waitpid(g_mock_pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "ballast-mock did not exit cleanly (status %d)\n", st);
            return -1;
        }
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(header_lookup),
        cmocka_unit_test(plain_response),
        cmocka_unit_test(status_and_retry_after),
        cmocka_unit_test(streamed_sse_in_pieces),
        cmocka_unit_test(connect_refused),
        cmocka_unit_test(connect_times_out),
        cmocka_unit_test(reset_mid_body),
        cmocka_unit_test(hang_times_out),
        cmocka_unit_test(cancel_mid_stream),
        cmocka_unit_test(sequential_transfers_reuse_connections),
        cmocka_unit_test(host_names_resolve_off_the_loop),
        cmocka_unit_test(reused_connection_dropped_by_the_server_is_retried),
        cmocka_unit_test(curl_can_be_asked_for_plain_http),
        cmocka_unit_test(close_with_transfers_in_flight),
        cmocka_unit_test(start_and_close_from_callbacks),
    };
    return cmocka_run_group_tests(tests, start_mock, stop_mock);
}
