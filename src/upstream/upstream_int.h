/*
 * Internal to upstream: the state shared by the curl path (upstream.c) and
 * the native HTTP/1.1 client for plain http:// targets (native.c).
 */
#ifndef BL_UPSTREAM_INT_H
#define BL_UPSTREAM_INT_H

#include <curl/curl.h>

#include "upstream/upstream.h"

struct bl_nx;
struct bl_nconn;

#define HDR_NODES 16

typedef enum {
    XS_QUEUED,   /* started while inside curl; added to the multi later */
    XS_RUNNING,  /* in the multi */
    XS_DOOMED,   /* cancelled while inside curl; removed later, no callbacks */
    XS_FINISHED, /* on_done is running; cancel is a no-op */
} xfer_state_t;

struct bl_upstream_xfer {
    bl_upstream_t *u;
    struct bl_nx *nx;                /* a native transfer (native.c); curl's fields unused */
    CURL *easy;
    struct curl_slist *headers;
    bl_upstream_cb_t cb;
    xfer_state_t state;
    int status;                      /* of the response being received (may be 1xx) */
    bool headers_done;               /* on_headers has been called */
    bool connected;                  /* a connection was set up (prereq callback ran) */
    bl_buf_t raw;                    /* header lines of the current response */
    bl_upstream_xfer_t *prev, *next; /* u->xfers, or u->queued / u->doomed / u->pool */
    bool reusable;                   /* a plain POST: may go back to the pool */
    /* The request's header list without a malloc per line: the lines are
     * copied into hbuf and linked through nodes (curl only reads the list).
     * Longer lists fall back to curl_slist_append into headers. */
    bl_buf_t hbuf;
    struct curl_slist nodes[HDR_NODES];
    char errbuf[CURL_ERROR_SIZE];
};

/* Finished transfers kept with their configured easy handle: curl_easy_init,
 * the fixed setopts and curl_easy_cleanup were ~10% of a proxied request's
 * instructions (callgrind). Connections live in the multi either way. */
#define POOL_MAX 64

typedef struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    int events; /* what curl asked us to watch */
    bl_upstream_t *u;
    struct sock_ctx *prev, *next;
} sock_ctx_t;

struct bl_upstream {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    int depth;                 /* > 0 while inside curl_multi_socket_action */
    size_t active;             /* transfers started and not yet done/cancelled */
    bl_upstream_xfer_t *xfers; /* running */
    bl_upstream_xfer_t *queued;
    bl_upstream_xfer_t *doomed;
    bl_upstream_xfer_t *pool;  /* idle transfers with a configured easy handle */
    size_t n_pool;
    sock_ctx_t *socks;
    size_t open_handles; /* uv handles not yet closed (timer + polls) */
    bool closing;
    bool close_requested; /* close called from inside a callback */
    /* native.c */
    size_t native_active;      /* native transfers running */
    struct bl_nconn *idle;     /* keep-alive connections waiting for a request */
    size_t n_idle;
    struct bl_nconn *busy;     /* connections carrying a request */
    bl_upstream_xfer_t *natives; /* native transfers not yet ended */
    bool native_off;           /* BALLAST_UPSTREAM_CURL=1: everything through curl */
    void (*close_done)(void *);
    void *close_ud;
};


/* native.c */
/* Start a transfer on the native client; BL_EUNSUPPORTED when the URL is not
 * one it takes (then curl does). */
int bl_native_start(bl_upstream_t *u, const bl_upstream_req_t *req, const bl_upstream_cb_t *cb,
                    bl_upstream_xfer_t **out);
void bl_native_cancel(bl_upstream_xfer_t *x);
/* Closing the upstream: cancel every native transfer, close every connection. */
void bl_native_close_all(bl_upstream_t *u);
/* upstream.c: a uv handle of the upstream's has closed (the last frees u). */
void bl_upstream_handle_gone(bl_upstream_t *u);

#endif
