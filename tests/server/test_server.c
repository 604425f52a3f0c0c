/* The server on a real loopback socket: a uv loop runs in a background
 * thread, the test talks to it with blocking client sockets and asserts on
 * the exact bytes that come back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "server/server.h"
#include "http_client.h"

/* ---- the server under test, on its own loop thread ------------------------ */

typedef struct {
    uv_loop_t loop;
    uv_async_t async;
    uv_timer_t later; /* "/later" answers from a timer */
    pthread_t thread;
    bl_server_t *srv;
    int port;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void (*cmd)(void *);
    void *cmd_arg;
    bool cmd_done;
    /* loop-thread state */
    bl_http_req_t *held;
    bl_http_req_t *later_req;
    /* read by the test thread */
    atomic_int n_requests;
    atomic_int n_aborts;
    atomic_int held_ready;
    atomic_int closed;
    size_t snap_active, snap_conns;
} fx_t;

/* cmocka's asserts may not run on the loop thread: count failures instead */
static atomic_int handler_failures;
#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "loop-thread check failed: %s (line %d)\n", #x, __LINE__);             \
            atomic_fetch_add(&handler_failures, 1);                                                \
        }                                                                                          \
    } while (0)

static void on_abort(void *ud)
{
    fx_t *fx = ud;
    fx->held = NULL;
    atomic_fetch_add(&fx->n_aborts, 1);
}

static void on_later(uv_timer_t *t)
{
    fx_t *fx = t->data;
    bl_http_req_t *r = fx->later_req;
    fx->later_req = NULL;
    if (r)
        bl_http_respond(r, 200, NULL, 0, "later", 5);
}

static char block[65536];

/* "/big": once the queue drains, one more block and the end */
static void on_big_drained(void *ud)
{
    bl_http_req_t *r = ud;
    CHECK(bl_http_stream_pending(r) == 0);
    CHECK(bl_http_stream_write(r, block, sizeof block) == 0);
    CHECK(bl_http_stream_end(r) == 0);
}

static void handler(void *ud, bl_http_req_t *r)
{
    fx_t *fx = ud;
    atomic_fetch_add(&fx->n_requests, 1);
    bl_str_t path = bl_http_req_path(r);
    if (bl_str_eq(path, "/echo")) {
        size_t blen;
        const char *body = bl_http_req_body(r, &blen);
        bl_str_t q = bl_http_req_query(r);
        bl_str_t probe = bl_http_req_header(r, "x-probe");
        char out[8192];
        int n = snprintf(out, sizeof out, "%s %.*s ?%.*s probe=%.*s body=%.*s",
                         bl_http_req_method(r), (int)path.n, path.p, (int)q.n, q.p, (int)probe.n,
                         probe.p ? probe.p : "", (int)blen, body);
        bl_http_header_t h[] = {{BL_STR("Content-Type"), BL_STR("text/plain")}};
        CHECK(bl_http_respond(r, 200, h, 1, out, (size_t)n) == 0);
    } else if (bl_str_eq(path, "/stream")) {
        bl_http_header_t h[] = {{BL_STR("Content-Type"), BL_STR("text/event-stream")}};
        CHECK(bl_http_stream_start(r, 200, h, 1) == 0);
        CHECK(bl_http_stream_write(r, "alpha", 5) == 0);
        CHECK(bl_http_stream_write(r, "beta", 4) == 0);
        CHECK(bl_http_stream_write(r, "", 0) == 0);
        CHECK(bl_http_stream_write(r, "gamma", 5) == 0);
        CHECK(bl_http_stream_end(r) == 0);
    } else if (bl_str_eq(path, "/big")) {
        /* 4 MiB streamed, more than the socket takes at once: queued writes */
        for (size_t i = 0; i < sizeof block; i++)
            block[i] = (char)('a' + i % 26);
        CHECK(bl_http_stream_start(r, 200, NULL, 0) == 0);
        for (int i = 0; i < 64; i++)
            CHECK(bl_http_stream_write(r, block, sizeof block) == 0);
        CHECK(bl_http_stream_pending(r) > 0);
        bl_http_stream_on_drain(r, on_big_drained, r);
    } else if (bl_str_eq(path, "/hold")) {
        fx->held = r;
        bl_http_req_set_abort(r, on_abort, fx);
        atomic_store(&fx->held_ready, 1);
    } else if (bl_str_eq(path, "/later")) {
        fx->later_req = r;
        uv_timer_start(&fx->later, on_later, 20, 0);
    } else {
        const char msg[] = "not found";
        CHECK(bl_http_respond(r, 404, NULL, 0, msg, sizeof msg - 1) == 0);
    }
}

static void on_async(uv_async_t *a)
{
    fx_t *fx = a->data;
    pthread_mutex_lock(&fx->mu);
    void (*fn)(void *) = fx->cmd;
    void *arg = fx->cmd_arg;
    fx->cmd = NULL;
    pthread_mutex_unlock(&fx->mu);
    if (!fn)
        return;
    fn(arg);
    pthread_mutex_lock(&fx->mu);
    fx->cmd_done = true;
    pthread_cond_broadcast(&fx->cv);
    pthread_mutex_unlock(&fx->mu);
}

/* Run fn(arg) on the loop thread and wait for it. */
static void on_loop(fx_t *fx, void (*fn)(void *), void *arg)
{
    pthread_mutex_lock(&fx->mu);
    fx->cmd = fn;
    fx->cmd_arg = arg;
    fx->cmd_done = false;
    uv_async_send(&fx->async);
    while (!fx->cmd_done)
        pthread_cond_wait(&fx->cv, &fx->mu);
    pthread_mutex_unlock(&fx->mu);
}

static void *loop_main(void *arg)
{
    fx_t *fx = arg;
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    return NULL;
}

static fx_t *fx_start_at(const bl_server_limits_t *lim, const char *host)
{
    fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    pthread_mutex_init(&fx->mu, NULL);
    pthread_cond_init(&fx->cv, NULL);
    uv_async_init(&fx->loop, &fx->async, on_async);
    fx->async.data = fx;
    uv_timer_init(&fx->loop, &fx->later);
    fx->later.data = fx;
    assert_int_equal(bl_server_new(&fx->loop, lim, handler, fx, &fx->srv), 0);
    char err[200];
    int rc = bl_server_listen(fx->srv, host, 0, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "listen: %s\n", err);
        return fx; /* port stays 0; caller decides */
    }
    fx->port = bl_server_port(fx->srv);
    assert_true(fx->port > 0);
    assert_int_equal(pthread_create(&fx->thread, NULL, loop_main, fx), 0);
    return fx;
}

static fx_t *fx_start(const bl_server_limits_t *lim)
{
    return fx_start_at(lim, "127.0.0.1");
}

static void on_closed(void *ud)
{
    fx_t *fx = ud;
    atomic_store(&fx->closed, 1);
}

static void cmd_shutdown(void *arg)
{
    fx_t *fx = arg;
    bl_server_close(fx->srv, on_closed, fx);
    uv_close((uv_handle_t *)&fx->async, NULL);
    uv_close((uv_handle_t *)&fx->later, NULL);
}

/* Close everything; returns how many abort callbacks ran in all. */
static int fx_stop(fx_t *fx)
{
    if (fx->port) {
        on_loop(fx, cmd_shutdown, fx);
        pthread_join(fx->thread, NULL);
    } else {
        cmd_shutdown(fx);
        uv_run(&fx->loop, UV_RUN_DEFAULT);
    }
    assert_int_equal(atomic_load(&fx->closed), 1);
    assert_int_equal(atomic_load(&handler_failures), 0);
    bl_server_free(fx->srv);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    pthread_mutex_destroy(&fx->mu);
    pthread_cond_destroy(&fx->cv);
    int aborts = atomic_load(&fx->n_aborts);
    free(fx);
    return aborts;
}

static void cmd_snapshot(void *arg)
{
    fx_t *fx = arg;
    fx->snap_active = bl_server_active_requests(fx->srv);
    fx->snap_conns = bl_server_connections(fx->srv);
}

static void cmd_respond_held(void *arg)
{
    fx_t *fx = arg;
    CHECK(fx->held != NULL);
    if (fx->held)
        CHECK(bl_http_respond(fx->held, 200, NULL, 0, "done", 4) == 0);
    fx->held = NULL;
}

static void cmd_stop_accepting(void *arg)
{
    fx_t *fx = arg;
    bl_server_stop_accepting(fx->srv);
}

static bool wait_flag(atomic_int *v, int want)
{
    for (int i = 0; i < 300; i++) {
        if (atomic_load(v) == want)
            return true;
        usleep(10000);
    }
    return atomic_load(v) == want;
}

static bl_server_limits_t small_limits(void)
{
    bl_server_limits_t l;
    bl_server_limits_default(&l);
    l.max_body_bytes = 1024;
    l.max_header_bytes = 8192;
    l.max_headers = 20;
    return l;
}

/* ---- tests ----------------------------------------------------------------- */

static void get_and_post_echo(void **state)
{
    fx_t *fx = fx_start(NULL);
    cli_t c;
    resp_t r = {0};
    cli_open(&c, fx->port);
    cli_send(&c, "GET /echo?x=1&y=2 HTTP/1.1\r\nHost: t\r\nX-Probe:  hi there  \r\n\r\n");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "GET /echo ?x=1&y=2 probe=hi there body=");
    assert_true(resp_has(&r, "Connection", "keep-alive"));
    assert_true(resp_has(&r, "Content-Type", "text/plain"));
    char date[64];
    assert_true(resp_header(&r, "Date", date, sizeof date));
    assert_non_null(strstr(date, " GMT"));

    cli_send(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "POST /echo ? probe= body=hello world");
    assert_true(resp_has(&r, "Content-Length", "36"));

    /* an unknown path is the handler's business */
    cli_send(&c, "DELETE /nope HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_int_equal(r.status, 404);
    assert_true(strncmp(r.head, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
    resp_free(&r);
    cli_close(&c);
    assert_int_equal(atomic_load(&fx->n_requests), 3);
    fx_stop(fx);
}

static void keep_alive_and_http10(void **state)
{
    fx_t *fx = fx_start(NULL);
    cli_t c;
    resp_t r = {0};
    cli_open(&c, fx->port);
    for (int i = 0; i < 3; i++) {
        cli_send(&c, "GET /echo?n HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_int_equal(cli_response(&c, &r), 0);
        assert_int_equal(r.status, 200);
        assert_true(resp_has(&r, "Connection", "keep-alive"));
    }
    /* the client asks to close */
    cli_send(&c, "GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_true(resp_has(&r, "Connection", "close"));
    assert_true(cli_eof(&c));
    cli_close(&c);

    /* HTTP/1.0 without keep-alive: one request, then close */
    cli_open(&c, fx->port);
    cli_send(&c, "GET /echo HTTP/1.0\r\n\r\n");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_true(resp_has(&r, "Connection", "close"));
    assert_true(cli_eof(&c));
    cli_close(&c);

    /* HTTP/1.0 with keep-alive */
    cli_open(&c, fx->port);
    for (int i = 0; i < 2; i++) {
        cli_send(&c, "GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert_int_equal(cli_response(&c, &r), 0);
        assert_int_equal(r.status, 200);
        assert_true(resp_has(&r, "Connection", "keep-alive"));
    }
    resp_free(&r);
    cli_close(&c);
    fx_stop(fx);
}

static void pipelined_requests_in_order(void **state)
{
    fx_t *fx = fx_start(NULL);
    cli_t c;
    resp_t r = {0};
    cli_open(&c, fx->port);
    /* the first is answered later from a timer: the rest must wait for it */
    cli_send(&c, "GET /later HTTP/1.1\r\nHost: t\r\n\r\n"
                 "POST /echo?a HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
                 "GET /echo?b HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_string_equal(r.body, "later");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_string_equal(r.body, "POST /echo ?a probe= body=abc");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_string_equal(r.body, "GET /echo ?b probe= body=");
    /* two in one write, answered synchronously */
    cli_send(&c, "GET /echo?c HTTP/1.1\r\nHost: t\r\n\r\nGET /echo?d HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_string_equal(r.body, "GET /echo ?c probe= body=");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_string_equal(r.body, "GET /echo ?d probe= body=");
    resp_free(&r);
    cli_close(&c);
    fx_stop(fx);
}

static void chunked_request_body(void **state)
{
    fx_t *fx = fx_start(NULL);
    cli_t c;
    resp_t r = {0};
    cli_open(&c, fx->port);
    cli_send(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n");
    usleep(20000); /* the rest in a second read */
    cli_send(&c, "6;ext=1\r\n world\r\n0\r\nTrailer-X: y\r\n\r\n");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "POST /echo ? probe= body=hello world");
    /* the connection is still usable */
    cli_send(&c, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    cli_close(&c);
    fx_stop(fx);
}

static void expect_continue(void **state)
{
    bl_server_limits_t l = small_limits();
    fx_t *fx = fx_start(&l);
    cli_t c;
    resp_t r = {0};
    cli_open(&c, fx->port);
    cli_send(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                 "Content-Length: 5\r\n\r\n");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_int_equal(r.status, 100);
    assert_string_equal(r.head, "HTTP/1.1 100 Continue\r\n\r\n");
    cli_send(&c, "hello");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "POST /echo ? probe= body=hello");

    /* too large: 413 at once, the body is never read */
    cli_send(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                 "Content-Length: 100000\r\n\r\n");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_error_json(&r, 413, "request_too_large");
    assert_true(cli_eof(&c));
    cli_close(&c);

    /* any other expectation */
    cli_open(&c, fx->port);
    cli_send(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: something\r\n"
                 "Content-Length: 5\r\n\r\nhello");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_error_json(&r, 417, "expectation_failed");
    assert_true(cli_eof(&c));
    resp_free(&r);
    cli_close(&c);
    assert_int_equal(atomic_load(&fx->n_requests), 1);
    fx_stop(fx);
}

static void body_too_large(void **state)
{
    bl_server_limits_t l = small_limits();
    fx_t *fx = fx_start(&l);
    cli_t c;
    resp_t r = {0};
    cli_open(&c, fx->port);
    cli_send(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_error_json(&r, 413, "request_too_large");
    assert_true(cli_eof(&c));
    cli_close(&c);

    /* chunked: 4 x 500 bytes against a 1024-byte limit */
    cli_open(&c, fx->port);
    char chunk[600];
    cli_send(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 4; i++) {
        memset(chunk, 0, sizeof chunk);
        int n = snprintf(chunk, sizeof chunk, "1f4\r\n");
        memset(chunk + n, 'z', 500);
        memcpy(chunk + n + 500, "\r\n", 2);
        cli_send_n(&c, chunk, (size_t)n + 502);
    }
    cli_send(&c, "0\r\n\r\n");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_error_json(&r, 413, "request_too_large");
    assert_true(cli_eof(&c));
    cli_close(&c);

    /* exactly the limit is fine */
    cli_open(&c, fx->port);
    char req[2048];
    int n =
        snprintf(req, sizeof req, "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 1024\r\n\r\n");
    memset(req + n, 'q', 1024);
    cli_send_n(&c, req, (size_t)n + 1024);
    assert_int_equal(cli_response(&c, &r), 0);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    cli_close(&c);
    assert_int_equal(atomic_load(&fx->n_requests), 1);
    fx_stop(fx);
}

static void header_limits(void **state)
{
    bl_server_limits_t l = small_limits();
    fx_t *fx = fx_start(&l);
    cli_t c;
    resp_t r = {0};
    char *req = malloc(20000);
    assert_non_null(req);

    /* one huge header */
    cli_open(&c, fx->port);
    int n = sprintf(req, "GET /echo HTTP/1.1\r\nHost: t\r\nX-Big: ");
    memset(req + n, 'h', 10000);
    strcpy(req + n + 10000, "\r\n\r\n");
    cli_send(&c, req);
    assert_int_equal(cli_response(&c, &r), 0);
    assert_error_json(&r, 431, "request_header_fields_too_large");
    assert_true(cli_eof(&c));
    cli_close(&c);

    /* too many headers */
    cli_open(&c, fx->port);
    n = sprintf(req, "GET /echo HTTP/1.1\r\n");
    for (int i = 0; i < 30; i++)
        n += sprintf(req + n, "X-H%d: v\r\n", i);
    strcpy(req + n, "\r\n");
    cli_send(&c, req);
    assert_int_equal(cli_response(&c, &r), 0);
    assert_error_json(&r, 431, "request_header_fields_too_large");
    assert_true(cli_eof(&c));
    cli_close(&c);

    /* request-target too long */
    cli_open(&c, fx->port);
    n = sprintf(req, "GET /");
    memset(req + n, 'u', 9000);
    strcpy(req + n + 9000, " HTTP/1.1\r\nHost: t\r\n\r\n");
    cli_send(&c, req);
    assert_int_equal(cli_response(&c, &r), 0);
    assert_error_json(&r, 414, "uri_too_long");
    assert_true(cli_eof(&c));
    cli_close(&c);

    /* a head sent in small pieces that adds up past the limit */
    cli_open(&c, fx->port);
    cli_send(&c, "GET /echo HTTP/1.1\r\n");
    for (int i = 0; i < 12 && c.fd >= 0; i++) {
        char line[1100];
        memset(line, 'a', 1000);
        sprintf(line + 1000, ": b\r\n");
        if (send(c.fd, line, strlen(line), MSG_NOSIGNAL) < 0)
            break;
        usleep(2000);
    }
    assert_int_equal(cli_response(&c, &r), 0);
    assert_error_json(&r, 431, "request_header_fields_too_large");
    cli_close(&c);
    free(req);
    resp_free(&r);
    assert_int_equal(atomic_load(&fx->n_requests), 0);
    fx_stop(fx);
}

static void malformed_requests_get_400(void **state)
{
    fx_t *fx = fx_start(NULL);
    static const char *bad[] = {
        "\x01\x02garbage\r\n\r\n",
        "GET /echo HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        ("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
         "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\nabc",
        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "GET /echo HTTP/1.1\r\nBad Header: x\r\n\r\n",
        "GET /echo HTTP/1.1\r\nHost: t\r\nX-Fold: a\r\n  b\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cli_t c;
        resp_t r = {0};
        cli_open(&c, fx->port);
        cli_send(&c, bad[i]);
        assert_int_equal(cli_response(&c, &r), 0);
        if (r.status != 400)
            fprintf(stderr, "case %zu: %s\n", i, r.head);
        assert_error_json(&r, 400, "invalid_request");
        assert_true(cli_eof(&c));
        resp_free(&r);
        cli_close(&c);
    }
    /* HTTP/2.0 in an HTTP/1 request line */
    cli_t c;
    resp_t r = {0};
    cli_open(&c, fx->port);
    cli_send(&c, "GET / HTTP/2.0\r\nHost: t\r\n\r\n");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_error_json(&r, 505, "http_version_not_supported");
    resp_free(&r);
    cli_close(&c);
    assert_int_equal(atomic_load(&fx->n_requests), 0);
    fx_stop(fx);
}

static void timeouts(void **state)
{
    bl_server_limits_t l = small_limits();
    l.header_timeout_ms = 200;
    l.body_timeout_ms = 200;
    l.idle_timeout_ms = 400;
    fx_t *fx = fx_start(&l);
    cli_t c;
    resp_t r = {0};

    /* slow loris: the head never completes, though bytes keep coming */
    cli_open(&c, fx->port);
    cli_send(&c, "GET /echo HTTP/1.1\r\n");
    for (int i = 0; i < 5; i++) {
        usleep(60000);
        if (send(c.fd, "X-A: b\r\n", 8, MSG_NOSIGNAL) < 0)
            break;
    }
    assert_int_equal(cli_response(&c, &r), 0);
    assert_error_json(&r, 408, "request_timeout");
    assert_true(cli_eof(&c));
    cli_close(&c);

    /* the body stalls */
    cli_open(&c, fx->port);
    cli_send(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nab");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_error_json(&r, 408, "request_timeout");
    assert_true(cli_eof(&c));
    cli_close(&c);

    /* idle: closed quietly, before and after a request */
    cli_open(&c, fx->port);
    assert_true(cli_eof(&c));
    cli_close(&c);
    cli_open(&c, fx->port);
    cli_send(&c, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_true(cli_eof(&c));
    cli_close(&c);
    resp_free(&r);
    fx_stop(fx);
}

static void streaming_response(void **state)
{
    fx_t *fx = fx_start(NULL);
    cli_t c;
    resp_t r = {0};
    cli_open(&c, fx->port);
    cli_send(&c, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_true(resp_has(&r, "Transfer-Encoding", "chunked"));
    assert_true(resp_has(&r, "Content-Type", "text/event-stream"));
    assert_false(resp_header(&r, "Content-Length", (char[8]){0}, 8));
    assert_string_equal(r.body, "alphabetagamma");

    /* big: most of it is queued, the response still ends whole and in order */
    cli_send(&c, "GET /big HTTP/1.1\r\nHost: t\r\n\r\nGET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_int_equal(r.body_len, 65u * 65536u);
    for (size_t i = 0; i < r.body_len; i++)
        if (r.body[i] != (char)('a' + (i % 65536) % 26))
            fail_msg("byte %zu differs", i);
    assert_int_equal(cli_response(&c, &r), 0);
    assert_string_equal(r.body, "GET /echo ? probe= body=");

    /* HEAD: the head only */
    cli_send(&c, "HEAD /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    c.head_request = true;
    assert_int_equal(cli_response(&c, &r), 0);
    assert_true(resp_has(&r, "Content-Length", "25"));
    cli_send(&c, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_string_equal(r.body, "GET /echo ? probe= body=");
    cli_close(&c);

    /* HTTP/1.0 has no chunked encoding: raw body, then close */
    cli_open(&c, fx->port);
    cli_send(&c, "GET /stream HTTP/1.0\r\n\r\n");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_false(resp_header(&r, "Transfer-Encoding", (char[8]){0}, 8));
    assert_true(resp_has(&r, "Connection", "close"));
    assert_string_equal(r.body, "alphabetagamma");
    resp_free(&r);
    cli_close(&c);
    fx_stop(fx);
}

static void disconnect_aborts_request(void **state)
{
    fx_t *fx = fx_start(NULL);
    for (int reset = 0; reset < 2; reset++) {
        cli_t c;
        cli_open(&c, fx->port);
        atomic_store(&fx->held_ready, 0);
        cli_send(&c, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\nGET /echo HTTP/1.1\r\n\r\n");
        assert_true(wait_flag(&fx->held_ready, 1));
        on_loop(fx, cmd_snapshot, fx);
        assert_int_equal(fx->snap_active, 1);
        if (reset) {
            struct linger lg = {1, 0}; /* close with RST */
            setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        cli_close(&c);
        assert_true(wait_flag(&fx->n_aborts, reset + 1));
        on_loop(fx, cmd_snapshot, fx);
        assert_int_equal(fx->snap_active, 0);
    }
    /* the pipelined request behind /hold never ran */
    assert_int_equal(atomic_load(&fx->n_requests), 2);
    assert_int_equal(fx_stop(fx), 2);
}

static void close_aborts_in_flight(void **state)
{
    fx_t *fx = fx_start(NULL);
    cli_t c;
    cli_open(&c, fx->port);
    cli_send(&c, "POST /hold HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi");
    assert_true(wait_flag(&fx->held_ready, 1));
    assert_int_equal(fx_stop(fx), 1);
    assert_true(cli_eof(&c));
    cli_close(&c);
}

static void stop_accepting_drains(void **state)
{
    fx_t *fx = fx_start(NULL);
    cli_t busy, idle, late;
    resp_t r = {0};
    cli_open(&idle, fx->port);
    cli_send(&idle, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cli_response(&idle, &r), 0);
    cli_open(&busy, fx->port);
    cli_send(&busy, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(wait_flag(&fx->held_ready, 1));

    on_loop(fx, cmd_stop_accepting, fx);
    /* new connections are refused */
    assert_int_equal(cli_open_at(&late, "127.0.0.1", fx->port), -ECONNREFUSED);
    cli_close(&late);
    /* the idle keep-alive connection is closed */
    assert_true(cli_eof(&idle));
    cli_close(&idle);
    /* the busy one finishes its request, then closes */
    on_loop(fx, cmd_respond_held, fx);
    assert_int_equal(cli_response(&busy, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "done");
    assert_true(resp_has(&r, "Connection", "close"));
    assert_true(cli_eof(&busy));
    cli_close(&busy);
    on_loop(fx, cmd_snapshot, fx);
    assert_int_equal(fx->snap_active, 0);
    resp_free(&r);
    assert_int_equal(atomic_load(&fx->n_aborts), 0);
    fx_stop(fx);
}

static void max_connections_enforced(void **state)
{
    bl_server_limits_t l;
    bl_server_limits_default(&l);
    l.max_connections = 2;
    fx_t *fx = fx_start(&l);
    cli_t a, b, c;
    resp_t r = {0};
    cli_open(&a, fx->port);
    cli_open(&b, fx->port);
    cli_send(&a, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cli_response(&a, &r), 0);
    cli_send(&b, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cli_response(&b, &r), 0);
    cli_open(&c, fx->port);
    assert_true(cli_eof(&c));
    on_loop(fx, cmd_snapshot, fx);
    assert_int_equal(fx->snap_conns, 2);
    cli_close(&a);
    cli_close(&b);
    cli_close(&c);
    resp_free(&r);
    fx_stop(fx);
}

static void listens_on_ipv6_and_rejects_bad_hosts(void **state)
{
    uv_loop_t loop;
    bl_server_t *s;
    char err[128];
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(bl_server_new(&loop, NULL, handler, NULL, &s), 0);
    assert_int_equal(bl_server_listen(s, "localhost", 0, err, sizeof err), BL_EINVAL);
    assert_non_null(strstr(err, "not an IPv4 or IPv6 address"));
    bl_server_close(s, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    bl_server_free(s);
    assert_int_equal(uv_loop_close(&loop), 0);

    /* a port in use: a clear error, and the server still closes cleanly */
    fx_t *busy = fx_start(NULL);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(bl_server_new(&loop, NULL, handler, NULL, &s), 0);
    assert_int_equal(bl_server_listen(s, "127.0.0.1", busy->port, err, sizeof err), BL_EIO);
    assert_non_null(strstr(err, "address already in use"));
    bl_server_close(s, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    bl_server_free(s);
    assert_int_equal(uv_loop_close(&loop), 0);
    fx_stop(busy);

    fx_t *fx = fx_start_at(NULL, "::1");
    if (fx->port == 0) { /* no IPv6 on this machine */
        fx_stop(fx);
        skip();
    }
    cli_t c;
    resp_t r = {0};
    assert_int_equal(cli_open_at(&c, "::1", fx->port), 0);
    cli_send(&c, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cli_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    cli_close(&c);
    fx_stop(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(get_and_post_echo),
        cmocka_unit_test(keep_alive_and_http10),
        cmocka_unit_test(pipelined_requests_in_order),
        cmocka_unit_test(chunked_request_body),
        cmocka_unit_test(expect_continue),
        cmocka_unit_test(body_too_large),
        cmocka_unit_test(header_limits),
        cmocka_unit_test(malformed_requests_get_400),
        cmocka_unit_test(timeouts),
        cmocka_unit_test(streaming_response),
        cmocka_unit_test(disconnect_aborts_request),
        cmocka_unit_test(close_aborts_in_flight),
        cmocka_unit_test(stop_accepting_drains),
        cmocka_unit_test(max_connections_enforced),
        cmocka_unit_test(listens_on_ipv6_and_rejects_bad_hosts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
