/*
 * upstream: HTTP requests to providers over libcurl's multi interface, driven
 * by the gateway's libuv loop (curl's socket and timer callbacks map onto
 * uv_poll_t and uv_timer_t; DNS goes through curl's threaded resolver), so no
 * call here ever blocks the loop.
 *
 * Owns the curl multi handle, connection reuse, TLS and per-transfer
 * timeouts. Response bytes are handed to the caller as they arrive; the
 * caller (the router) decides what they mean. A cancelled transfer makes no
 * further callbacks.
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

typedef struct {
    void *ud;
    /* Status line and headers are complete (not called for 1xx). */
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
/* Stop a transfer at once; no callback runs for it afterwards. */
void bl_upstream_cancel(bl_upstream_xfer_t *x);
size_t bl_upstream_active(const bl_upstream_t *u);

/* Find a header's value in raw header lines (case-insensitive name). */
bl_str_t bl_upstream_header(const bl_buf_t *raw_headers, const char *name);

#endif
