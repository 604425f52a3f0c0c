/*
 * Internal to the server module (and its fuzz target): turns the bytes of
 * one connection into complete requests or an error status, with limits.
 *
 * Pure: no sockets, no clock. The caller keeps the request's bytes in one
 * contiguous buffer that starts at the request (offset 0) and feeds it in
 * order; the URL and header fields are recorded as offsets into that buffer
 * (parsed in place, never copied), the body is de-chunked into hp->body.
 * Offsets stay valid while the caller only moves bytes at or past
 * bl_hp_keep_end() (it may compact the buffer during the body).
 */
#ifndef BL_SERVER_HTTP_PARSE_H
#define BL_SERVER_HTTP_PARSE_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/util.h"

typedef struct {
    size_t max_body_bytes;
    size_t max_header_bytes; /* request line + headers */
    size_t max_url_bytes;
    unsigned max_headers;
} bl_hp_limits_t;

typedef enum {
    BL_HP_IDLE,  /* no byte of a request seen yet (blank lines may have been) */
    BL_HP_HEAD,  /* inside the request line / headers */
    BL_HP_BODY,  /* headers complete, reading the body */
    BL_HP_DONE,  /* a complete request; parser paused until bl_hp_next() */
    BL_HP_ERROR, /* see err_status; the connection must be closed */
} bl_hp_phase_t;

typedef struct {
    size_t name_off, name_len;
    size_t value_off, value_len;
} bl_hp_field_t;

typedef struct {
    http_parser parser;
    bl_hp_limits_t lim;
    bl_hp_phase_t phase;
    const char *base; /* the caller's buffer, valid during bl_hp_execute only */

    size_t url_off, url_len;
    bl_hp_field_t *fields; /* grows to lim.max_headers, reused */
    unsigned n_fields, cap_fields;
    bool in_value;     /* last header callback was a value */
    size_t head_bytes; /* bytes of the head fed so far */
    size_t keep_end;   /* end of the last byte any offset refers to */

    bl_buf_t body; /* de-chunked body, reused across requests */

    bool expect_continue; /* client waits for "100 Continue" */
    bool keep_alive;      /* may read another request after this one */

    int err_status;       /* 400, 408, 413, 414, 417, 431, 505 */
    const char *err_code; /* OpenAI-style error code */
    const char *err_msg;  /* human text, static */
} bl_hp_t;

void bl_hp_init(bl_hp_t *hp, const bl_hp_limits_t *lim);
void bl_hp_free(bl_hp_t *hp);
/* Ready for the next request on the same connection; the caller's buffer must
 * now start at the byte after the previous request. */
void bl_hp_next(bl_hp_t *hp);
/* Feed base[off, off+len). Returns how many bytes were consumed; afterwards
 * hp->phase tells what happened. Bytes past a completed request are left for
 * the next call after bl_hp_next(). */
size_t bl_hp_execute(bl_hp_t *hp, const char *base, size_t off, size_t len);
/* Mark the current request failed with a status (used for timeouts). */
void bl_hp_fail(bl_hp_t *hp, int status, const char *code, const char *msg);

/* Buffer bytes before this offset must not move while the request lives. */
static inline size_t bl_hp_keep_end(const bl_hp_t *hp)
{
    return hp->keep_end;
}

/* The request's version and method, valid once phase >= BL_HP_BODY. */
static inline unsigned bl_hp_minor(const bl_hp_t *hp)
{
    return hp->parser.http_minor;
}
static inline const char *bl_hp_method(const bl_hp_t *hp)
{
    return http_method_str((enum http_method)hp->parser.method);
}

/* Split a request-target into path and query (fragment dropped). Handles
 * origin-form ("/a?b"), absolute-form ("http://h/a?b"), "*" and
 * authority-form (CONNECT). */
void bl_hp_split_target(const char *url, size_t n, bool is_connect, bl_str_t *path,
                        bl_str_t *query);

#endif
