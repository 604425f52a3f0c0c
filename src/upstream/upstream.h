/*
 * upstream: HTTP requests to providers, driven by the gateway's libuv loop,
 * so no call here ever blocks the loop. Plain http:// targets go through our
 * own HTTP/1.1 client (native.c: libuv TCP streams, http-parser, keep-alive
 * pool, DNS on libuv's thread pool); https:// and anything else through
 * libcurl's multi interface (curl's socket and timer callbacks map onto
 * uv_poll_t and uv_timer_t; DNS goes through curl's threaded resolver).
 *
 * Owns the curl multi handle, connection reuse, TLS and per-transfer
 * timeouts. Response bytes are handed to the caller as they arrive; the
 * caller (the router) decides what they mean. A cancelled transfer makes no
 * further callbacks.
 *
 * Callbacks run on the loop thread. From inside any callback it is safe to
 * cancel any transfer (including the current one), start new ones and close
 * the whole object: what curl forbids from inside its callbacks is queued and
 * applied as soon as curl returns. A transfer handle is invalid once on_done
 * has returned or bl_upstream_cancel was called on it.
 *
 * Requests: HTTP/1.1, or HTTP/2 over TLS when ALPN agrees; no
 * "Expect: 100-continue"; Content-Type defaults to application/json when a
 * body is sent without one; Accept-Encoding is whatever the caller sends and
 * bodies are passed through undecoded. Only http and https URLs are allowed.
 * bl_upstream_start copies the URL and headers; the body is not copied.
 */
#ifndef BL_UPSTREAM_H
#define BL_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/util.h"

typedef struct bl_upstream bl_upstream_t;
typedef struct bl_upstream_xfer bl_upstream_xfer_t;

/* How a transfer ended. */
typedef enum {
    BL_UP_OK = 0,           /* complete response received (any HTTP status) */
    BL_UP_CONNECT,          /* connection refused / unreachable */
    BL_UP_DNS,              /* name did not resolve */
    BL_UP_TLS,              /* handshake or certificate failure */
    BL_UP_TIMEOUT_CONNECT,
    BL_UP_TIMEOUT_TOTAL,
    BL_UP_RESET,            /* connection reset or closed mid-response */
    BL_UP_PROTOCOL,         /* malformed HTTP from the upstream */
    BL_UP_ERROR,            /* anything else */
} bl_up_result_t;

const char *bl_up_result_name(bl_up_result_t r); /* "connect", "dns", ... for logs/metrics */

/* Whether libcurl resolves names off the loop thread (threaded resolver or
 * c-ares; Debian 12's libcurl has the threaded one). Without it a DNS lookup
 * would block the loop, so callers should log a warning. */
bool bl_upstream_async_dns(void);

typedef struct {
    void *ud;
    /* Status line and headers of the final (non-1xx) response are complete;
       before the first body byte. raw_headers holds that response's lines,
       status line first, each ending in CRLF; valid only during the call. */
    void (*on_headers)(void *ud, int status, const bl_buf_t *raw_headers);
    /* Body bytes as they arrive. Return nonzero to abort the transfer (then
       on_done gets BL_UP_ERROR... unless the caller cancels instead). */
    int (*on_body)(void *ud, const char *data, size_t len);
    /* Exactly once, unless cancelled. errmsg is curl's message (no secrets). */
    void (*on_done)(void *ud, bl_up_result_t result, const char *errmsg);
} bl_upstream_cb_t;

typedef struct {
    const char *method;             /* "POST", "GET" */
    const char *url;
    const char *const *headers;     /* "Name: value" lines */
    size_t n_headers;
    const void *body;               /* copied? no: must stay valid until on_done/cancel */
    size_t body_len;
    uint64_t connect_timeout_ms;    /* 0 = none */
    uint64_t total_timeout_ms;      /* 0 = none */
} bl_upstream_req_t;

int bl_upstream_new(uv_loop_t *loop, bl_upstream_t **out);
/* Cancels every transfer (no callbacks) and closes handles; done runs once
 * they are closed, then the object is freed. */
void bl_upstream_close(bl_upstream_t *u, void (*done)(void *), void *ud);

int bl_upstream_start(bl_upstream_t *u, const bl_upstream_req_t *req, const bl_upstream_cb_t *cb,
                      bl_upstream_xfer_t **out);
/* Stop a transfer at once; no callback runs for it afterwards. A partly
 * received HTTP/1.1 response closes the connection, so the server sees the
 * client leave. A no-op from inside the transfer's own on_done. */
void bl_upstream_cancel(bl_upstream_xfer_t *x);
size_t bl_upstream_active(const bl_upstream_t *u);

/* Find a header's value in raw header lines (case-insensitive name); {NULL, 0}
 * when absent. Surrounding blanks are trimmed. */
bl_str_t bl_upstream_header(const bl_buf_t *raw_headers, const char *name);

/* Incremental text/event-stream parser (the WHATWG HTML "server-sent events"
 * rules): feed response bytes split anywhere; each complete event is passed
 * to the callback. Lines end in CRLF, LF or CR; ":" lines are comments; data
 * lines are joined with "\n"; an event with no data is not dispatched; the
 * event name defaults to "message"; id and retry are ignored. A partial event
 * at the end of the stream is dropped, as the spec says. Zero-initialised is
 * ready to use. */
typedef struct {
    bl_buf_t line;       /* a line split across feeds */
    bl_buf_t data;
    bl_buf_t event;
    size_t max_bytes;    /* cap on a line or an event's data; 0 = 8 MiB */
    unsigned bom_seen;   /* bytes of a leading UTF-8 BOM matched so far */
    bool started;        /* past the possible BOM */
    bool last_cr;        /* the previous feed ended in CR (skip a following LF) */
} bl_sse_parser_t;

/* Return nonzero to stop parsing. */
typedef int (*bl_sse_event_fn)(void *ud, bl_str_t event, bl_str_t data);

/* 0, BL_ERANGE when a line or event exceeds max_bytes, BL_ENOMEM, or
 * BL_ECANCELED when the callback asked to stop. After an error the parser
 * must be freed. */
int bl_upstream_sse_feed(bl_sse_parser_t *p, const char *buf, size_t n, bl_sse_event_fn fn,
                         void *ud);
void bl_upstream_sse_free(bl_sse_parser_t *p);

#endif
