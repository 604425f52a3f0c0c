/* Randomised clients against the real server for a short while: valid,
 * pipelined, mutated and garbage requests, half-read responses, closes and
 * resets at random points, while the handler answers synchronously, from
 * timers, or as slow streams. The server must not crash or leak (run it under
 * ASan), every request the handler saw must end exactly once (response or
 * abort), and all handles must close. BL_STRESS_SECONDS makes it run longer. */
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
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "server/server.h"

static uv_loop_t loop;
static uv_async_t wake;
static bl_server_t *srv;
static int port;
static atomic_int stop_loop;
static atomic_int n_requests, n_ended, n_aborted;

/* ---- the handler ------------------------------------------------------------ */

typedef struct {
    uv_timer_t timer;
    bl_http_req_t *req; /* NULL once aborted */
    int steps;
} job_t;

static void job_free(uv_handle_t *h)
{
    free(h->data);
}

static void job_abort(void *ud)
{
    job_t *j = ud;
    j->req = NULL;
    atomic_fetch_add(&n_aborted, 1);
}

static void job_step(uv_timer_t *t)
{
    job_t *j = t->data;
    if (!j->req) {
        uv_close((uv_handle_t *)&j->timer, job_free);
        return;
    }
    if (j->steps > 0) {
        bl_http_stream_write(j->req, "data: tick\n\n", 12); /* an error: the abort follows */
        j->steps--;
        uv_timer_start(&j->timer, job_step, 2, 0);
        return;
    }
    if (j->steps == 0)
        bl_http_stream_end(j->req);
    else
        bl_http_respond(j->req, 200, NULL, 0, "async", 5);
    atomic_fetch_add(&n_ended, 1);
    uv_close((uv_handle_t *)&j->timer, job_free);
}

static void start_job(bl_http_req_t *r, int steps)
{
    job_t *j = calloc(1, sizeof *j);
    if (!j) {
        bl_http_respond(r, 503, NULL, 0, NULL, 0);
        atomic_fetch_add(&n_ended, 1);
        return;
    }
    j->req = r;
    j->steps = steps;
    uv_timer_init(&loop, &j->timer);
    j->timer.data = j;
    bl_http_req_set_abort(r, job_abort, j);
    if (steps >= 0)
        bl_http_stream_start(r, 200, NULL, 0);
    uv_timer_start(&j->timer, job_step, (uint64_t)(rand() % 5), 0);
}

static void handler(void *ud, bl_http_req_t *r)
{
    atomic_fetch_add(&n_requests, 1);
    bl_str_t p = bl_http_req_path(r);
    size_t blen;
    const char *body = bl_http_req_body(r, &blen);
    if (bl_str_eq(p, "/async")) {
        start_job(r, -1);
    } else if (bl_str_eq(p, "/slow")) {
        start_job(r, 3);
    } else if (bl_str_eq(p, "/stream")) {
        bl_http_stream_start(r, 200, NULL, 0);
        for (int i = 0; i < 4; i++)
            bl_http_stream_write(r, "chunk", 5);
        bl_http_stream_end(r);
        atomic_fetch_add(&n_ended, 1);
    } else {
        bl_http_header_t h[] = {{BL_STR("X-Peer"), {bl_http_req_peer(r), 0}}};
        h[0].value.n = strlen(h[0].value.p);
        bl_http_respond(r, 200, h, 1, body, blen);
        atomic_fetch_add(&n_ended, 1);
    }
}

static void on_wake(uv_async_t *a)
{
    if (!atomic_load(&stop_loop))
        return;
    bl_server_close(srv, NULL, NULL);
    uv_close((uv_handle_t *)&wake, NULL);
}

static void *loop_main(void *arg)
{
    uv_run(&loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---- clients --------------------------------------------------------------- */

static const char *const reqs[] = {
    "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n",
    "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
    "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
    "GET /async HTTP/1.1\r\nHost: t\r\n\r\n",
    "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n",
    "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n",
    "GET /stream HTTP/1.0\r\n\r\n",
    "HEAD /echo HTTP/1.1\r\n\r\n",
    "GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n",
    "POST /echo HTTP/1.1\r\nContent-Length: 99999\r\n\r\n",
};

static void client_round(unsigned *seed)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return;
    struct timeval tv = {0, 20000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return;
    }
    char out[4096];
    size_t n = 0;
    int k = 1 + rand_r(seed) % 4;
    for (int i = 0; i < k; i++) {
        const char *r = reqs[rand_r(seed) % (sizeof reqs / sizeof reqs[0])];
        size_t len = strlen(r);
        if (n + len < sizeof out) {
            memcpy(out + n, r, len);
            n += len;
        }
    }
    int mode = rand_r(seed) % 4;
    if (mode == 1 && n) { /* flip a few bytes */
        for (int i = 0; i < 3; i++)
            out[rand_r(seed) % n] = (char)rand_r(seed);
    } else if (mode == 2) { /* garbage */
        n = 1 + (size_t)(rand_r(seed) % 200);
        for (size_t i = 0; i < n; i++)
            out[i] = (char)rand_r(seed);
    } else if (mode == 3 && n > 1) { /* cut short */
        n = 1 + (size_t)rand_r(seed) % (n - 1);
    }
    /* in one write or in two */
    size_t first = rand_r(seed) % 2 ? n : (size_t)rand_r(seed) % (n + 1);
    send(fd, out, first, MSG_NOSIGNAL);
    if (first < n) {
        usleep(1000);
        send(fd, out + first, n - first, MSG_NOSIGNAL);
    }
    char in[8192];
    int reads = rand_r(seed) % 4;
    for (int i = 0; i < reads; i++)
        if (recv(fd, in, sizeof in, 0) <= 0)
            break;
    if (rand_r(seed) % 3 == 0) {
        struct linger lg = {1, 0}; /* reset instead of FIN */
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(fd);
}

static atomic_int clients_stop;

static void *client_main(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    while (!atomic_load(&clients_stop))
        client_round(&seed);
    return NULL;
}

static void random_clients(void **state)
{
    double seconds = 1.5;
    const char *env = getenv("BL_STRESS_SECONDS");
    if (env && atof(env) > 0)
        seconds = atof(env);
    bl_server_limits_t l;
    bl_server_limits_default(&l);
    l.max_body_bytes = 4096;
    l.header_timeout_ms = 300;
    l.body_timeout_ms = 300;
    l.idle_timeout_ms = 300;
    l.max_connections = 64;
    assert_int_equal(uv_loop_init(&loop), 0);
    uv_async_init(&loop, &wake, on_wake);
    assert_int_equal(bl_server_new(&loop, &l, handler, NULL, &srv), 0);
    char err[128];
    assert_int_equal(bl_server_listen(srv, "127.0.0.1", 0, err, sizeof err), 0);
    port = bl_server_port(srv);
    pthread_t lt, ct[3];
    assert_int_equal(pthread_create(&lt, NULL, loop_main, NULL), 0);
    for (int i = 0; i < 3; i++)
        pthread_create(&ct[i], NULL, client_main, (void *)(uintptr_t)(i + 1));
    usleep((useconds_t)(seconds * 1e6));
    atomic_store(&clients_stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(ct[i], NULL);
    atomic_store(&stop_loop, 1);
    uv_async_send(&wake);
    pthread_join(lt, NULL);
    bl_server_free(srv);
    assert_int_equal(uv_loop_close(&loop), 0);
    int req = atomic_load(&n_requests), ended = atomic_load(&n_ended),
        aborted = atomic_load(&n_aborted);
    fprintf(stderr, "stress: %d requests, %d answered, %d aborted\n", req, ended, aborted);
    assert_true(req > 50);
    assert_int_equal(req, ended + aborted);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_clients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
