/*
 * Internal to the server module: the connection and server structs shared by
 * server.c (listener, connection life, reading, timers) and response.c
 * (request accessors, response writing).
 *
 * A connection is READING (parsing a request), BUSY (the handler owns the
 * request; reading goes on only to notice a disconnect, pipelined bytes are
 * set aside) or CLOSING. The request object is embedded in the connection:
 * no allocation per request.
 */
#ifndef BL_SERVER_INT_H
#define BL_SERVER_INT_H

#include "server/http_parse.h"
#include "server/server.h"

typedef struct bl_conn bl_conn_t;

/* A queued write whose bytes could not go out at once; pooled per conn. */
typedef struct bl_wreq {
    uv_write_t req;
    bl_conn_t *conn;
    bl_buf_t buf;
    struct bl_wreq *next;
} bl_wreq_t;

typedef enum { BL_CONN_READING, BL_CONN_BUSY, BL_CONN_CLOSING } bl_conn_state_t;

typedef enum {
    BL_TM_NONE,
    BL_TM_IDLE,   /* keep-alive wait for the next request: close quietly */
    BL_TM_HEAD,   /* the whole head must arrive in time: 408 */
    BL_TM_BODY,   /* body progress: 408 */
    BL_TM_RESUME, /* parse pipelined bytes on the next loop turn */
    BL_TM_BROKEN, /* a write failed inside an API call: abort from the loop */
    BL_TM_LINGER, /* after our FIN, wait briefly for the client's */
} bl_timer_mode_t;

struct bl_http_req {
    bl_conn_t *conn;
    const char *method;
    bl_str_t path, query;
    bl_http_header_t *headers; /* views into the connection's read buffer */
    size_t n_headers, cap_headers;
    const char *body;
    size_t body_len;
    uint64_t start_ns;
    void (*on_abort)(void *ud);
    void *abort_ud;
    void (*on_drain)(void *ud);
    void *drain_ud;
    bool active;     /* the handler owns it: from dispatch to end or abort */
    bool streaming;  /* bl_http_stream_start was called */
    bool raw_stream; /* HTTP/1.0 client: no chunked framing, close at end */
    bool head_only;  /* HEAD: headers but no body bytes */
    bool keep_alive;
};

struct bl_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown;
    bl_server_t *srv;
    bl_conn_t *prev, *next;
    bl_buf_t cork;         /* streamed bytes held until the end of the loop turn */
    bool corked;           /* on srv->cork_list */
    bl_conn_t *cork_next;
    bl_conn_state_t state;
    bl_timer_mode_t timer_mode;
    int open_handles;
    bl_server_limits_t lim;
    bl_hp_t hp;
    bl_buf_t rbuf; /* the current request from offset 0, then unparsed bytes */
    size_t rpos;   /* bytes of rbuf fed to the parser */
    bl_buf_t pbuf; /* bytes read while BUSY, parsed after the response */
    bl_buf_t hbuf; /* response head scratch */
    bl_wreq_t *wfree;
    unsigned n_writes; /* uv_write requests in flight */
    unsigned in_dispatch;
    bool read_into_scratch;
    bool read_stopped;
    bool end_pending;       /* response ended; waiting for writes to flush */
    bool close_after_flush; /* then half-close and linger */
    bool broken;            /* a write failed */
    bool handles_closing;
    bool sent_continue;
    char peer[64];
    bl_http_req_t req;
};

struct bl_server {
    uv_loop_t *loop;
    bl_server_limits_t lim;
    bl_http_handler_fn handler;
    void *ud;
    uv_tcp_t listener;
    bool listening;
    bool stopping;
    bool closing;
    int port;
    bl_conn_t *conns;
    size_t n_conns;
    size_t n_active;
    size_t open_handles;
    void (*done)(void *);
    void *done_ud;
    int64_t date_sec;
    char date[64];           /* "Date: ...\r\n" for date_sec */
    uv_check_t cork_check;   /* flushes corked streams once per loop turn */
    bool cork_inited;
    bl_conn_t *cork_list;
    char scratch[64 * 1024]; /* reads of BUSY/CLOSING connections land here */
};

/* response.c */
int bl_srv_send(bl_conn_t *c, const uv_buf_t *bufs, unsigned n);
void bl_srv_send_error(bl_conn_t *c, int status, const char *code, const char *msg);
void bl_srv_free_writes(bl_conn_t *c);
void bl_srv_uncork_forget(bl_conn_t *c); /* before freeing a connection */
void bl_srv_cork_close(bl_server_t *s);  /* bl_server_close: close the flush handle */

/* server.c */
void bl_srv_response_done(bl_conn_t *c, bool from_api);
void bl_srv_begin_close(bl_conn_t *c);
void bl_srv_close_now(bl_conn_t *c);
void bl_srv_after_flush(bl_conn_t *c);
void bl_srv_maybe_done(bl_server_t *s);
void bl_srv_mark_broken(bl_conn_t *c);
const char *bl_srv_date(bl_server_t *s);

#endif
