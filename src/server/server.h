/*
 * server: the HTTP/1.1 listener on libuv + http-parser.
 *
 * Owns the listening socket, every client connection and its parser state,
 * request size limits, idle and slow-client timeouts, keep-alive,
 * `Expect: 100-continue`, chunked request bodies, and writing responses (plain
 * or streamed with chunked encoding). Malformed requests get a clean 4xx and
 * the connection is closed; the handler only ever sees complete requests.
 *
 * One request per connection is handled at a time (pipelined requests wait in
 * the read buffer). A request object lives from the handler call until the
 * handler finishes the response, or until the client goes away — then the
 * abort callback the handler registered runs and the request must not be
 * touched again.
 */
#ifndef BL_SERVER_H
#define BL_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/util.h"

typedef struct bl_server bl_server_t;
typedef struct bl_http_req bl_http_req_t;

typedef struct {
    size_t max_body_bytes;      /* 413 beyond this; default 8 MiB */
    size_t max_header_bytes;    /* 431 beyond this (request line + headers); default 32 KiB */
    unsigned max_headers;       /* 431 beyond this; default 100 */
    uint64_t header_timeout_ms; /* whole header must arrive within this: 408 (slow loris) */
    uint64_t body_timeout_ms;   /* max gap between body reads: 408 */
    uint64_t idle_timeout_ms;   /* keep-alive connection with no request: closed quietly */
    unsigned max_connections;   /* beyond this, new connections are closed at once */
} bl_server_limits_t; /* a 0 timeout or max_connections means "no limit" */

void bl_server_limits_default(bl_server_limits_t *l);

/* Called on the loop thread with a complete request (body read and
 * de-chunked). The handler may answer at once or later from any loop
 * callback. */
typedef void (*bl_http_handler_fn)(void *ud, bl_http_req_t *req);

/* limits NULL = defaults. Also sets SIGPIPE to ignored (process-wide): a write
 * to a reset socket must fail with EPIPE, not kill the daemon. */
int bl_server_new(uv_loop_t *loop, const bl_server_limits_t *limits, bl_http_handler_fn handler,
                  void *ud, bl_server_t **out);
/* Bind and listen; host is an IPv4/IPv6 literal. port 0 picks a free port
 * (see bl_server_port). */
int bl_server_listen(bl_server_t *s, const char *host, int port, char *err, size_t errlen);
int bl_server_port(const bl_server_t *s);
/* Limits used by connections accepted from now on (config reload). */
void bl_server_set_limits(bl_server_t *s, const bl_server_limits_t *limits);
/* Stop accepting; idle keep-alive connections are closed, busy ones finish
 * their current request and then close. */
void bl_server_stop_accepting(bl_server_t *s);
size_t bl_server_active_requests(const bl_server_t *s);
size_t bl_server_connections(const bl_server_t *s);
/* Close everything now (after the shutdown deadline); in-flight requests get
 * their abort callback. done runs once every handle is closed (at once if none
 * is open); then free. Also needed after a failed bl_server_listen: run the
 * loop until done before bl_server_free. */
void bl_server_close(bl_server_t *s, void (*done)(void *), void *ud);
void bl_server_free(bl_server_t *s);

/* ---- a request ------------------------------------------------------------ */

typedef struct {
    bl_str_t name;
    bl_str_t value;
} bl_http_header_t;

const char *bl_http_req_method(const bl_http_req_t *r); /* "GET", "POST", ... */
bl_str_t bl_http_req_path(const bl_http_req_t *r);      /* without the query */
bl_str_t bl_http_req_query(const bl_http_req_t *r);     /* after '?', may be empty */
/* Value of a header (case-insensitive name), or a zero bl_str_t (p == NULL). */
bl_str_t bl_http_req_header(const bl_http_req_t *r, const char *name);
size_t bl_http_req_n_headers(const bl_http_req_t *r);
const bl_http_header_t *bl_http_req_header_at(const bl_http_req_t *r, size_t i);
/* The whole body (de-chunked), NUL-terminated for convenience. */
const char *bl_http_req_body(const bl_http_req_t *r, size_t *len);
/* Peer address as text, e.g. "127.0.0.1:51234". */
const char *bl_http_req_peer(const bl_http_req_t *r);
uint64_t bl_http_req_start_ns(const bl_http_req_t *r); /* when its first byte arrived */

/* The handler's per-request state and what to do if the client disconnects
 * before the response is finished (cancel upstream work, free state).
 * on_abort runs at most once, only if the request was not ended, and never
 * from inside a bl_http_* call (a write that fails inside one schedules it
 * for the next loop turn). After it runs the request must not be touched.
 * A client that half-closes (shutdown(SHUT_WR)) counts as gone. */
void bl_http_req_set_abort(bl_http_req_t *r, void (*on_abort)(void *ud), void *ud);

/* Whole response with Content-Length. Ends the request, even when it returns
 * BL_EIO (client gone); BL_EINVAL (bad status, CR/LF in a header) and
 * BL_ESTATE (request not active) leave it as it was. The body is copied only
 * if the socket does not take it at once, so it may be freed on return.
 * Content-Length, Transfer-Encoding and Connection are the server's: such
 * headers from the handler are dropped, except "Connection: close", which
 * is honoured. HEAD, 1xx, 204 and 304 responses carry no body bytes. */
int bl_http_respond(bl_http_req_t *r, int status, const bl_http_header_t *headers, size_t n,
                    const void *body, size_t len);
/* Streamed response with Transfer-Encoding: chunked (to an HTTP/1.0 client:
 * raw bytes, then close). The head is sent at once. A write's data may be
 * freed on return. A zero-length write does nothing. */
int bl_http_stream_start(bl_http_req_t *r, int status, const bl_http_header_t *headers, size_t n);
int bl_http_stream_write(bl_http_req_t *r, const void *data, size_t len);
/* Bytes written but not yet accepted by the kernel (for back-pressure). */
size_t bl_http_stream_pending(const bl_http_req_t *r);
/* Back-pressure: fn runs once, from the loop, when the pending bytes have all
 * gone to the kernel. Only set it while bl_http_stream_pending() > 0 (it is
 * not called otherwise). Cleared when it runs and when the request ends. */
void bl_http_stream_on_drain(bl_http_req_t *r, void (*fn)(void *ud), void *ud);
/* Finish the stream. Ends the request. */
int bl_http_stream_end(bl_http_req_t *r);

const char *bl_http_status_text(int status);

#endif
