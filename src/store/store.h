/*
 * store: the response store behind the OpenAI Responses API's
 * previous_response_id. A stored value is one JSON text (the request's input
 * items followed by the response's output items) kept under the response id
 * until its TTL runs out.
 *
 * Two backends behind one interface: a SQLite file (the default, one node)
 * worked by one dedicated thread of the store, or Redis (when replicas must
 * share state) over hiredis's async API on the loop. Every function is called
 * on the libuv loop thread and every callback runs on it; nothing here blocks
 * the loop after bl_store_open (which opens the SQLite file or resolves the
 * Redis host once, at start-up).
 *
 * A call that returns 0 runs its callback exactly once, later, never from
 * inside the call, unless bl_store_forget() cancels it. A call that returns a
 * negative BL_E* code never runs its callback. Callbacks run in the order the
 * calls were made.
 */
#ifndef BL_STORE_H
#define BL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include <ballast/errors.h>

#define BL_STORE_ID_MAX 128                    /* bytes of [A-Za-z0-9_-] */
#define BL_STORE_VALUE_MAX (16u * 1024 * 1024) /* bytes of JSON */
#define BL_STORE_TTL_DEFAULT_S (30u * 24 * 3600)

typedef struct bl_store bl_store_t;

typedef struct {
    const char *sqlite_path;   /* used when redis_url is NULL; directory created if missing */
    const char *redis_url;     /* "redis://[[user]:pass@]host[:port][/db]" or "unix:/path";
                                  NULL = SQLite */
    uint64_t ttl_s;            /* TTL of every put, 0 = 30 days */
    uint32_t redis_timeout_ms; /* no reply for this long: drop the connection, fail what is
                                  pending with BL_EIO, reconnect; 0 = 2000 */
} bl_store_cfg_t;

/* Opens the store. On failure returns a BL_E* code and writes a message naming
 * the path or URL into err. A Redis that cannot be reached yet is not a
 * failure: calls fail with BL_EIO until a reconnect succeeds. */
int bl_store_open(uv_loop_t *loop, const bl_store_cfg_t *cfg, bl_store_t **out, char *err,
                  size_t errlen);

typedef void (*bl_store_put_cb)(void *ud, int rc);
/* rc: 0, BL_ENOENT (missing or expired), or another negative BL_E* code (the
 * backend failed: disk error, Redis unreachable). json/n valid during the call. */
typedef void (*bl_store_get_cb)(void *ud, int rc, const char *json, size_t n);

/* id: NUL-terminated, 1..128 bytes of [A-Za-z0-9_-]; n <= 16 MiB; otherwise
 * BL_EINVAL. BL_EBUSY when 4096 calls are already waiting for the backend.
 * The value is copied. cb may be NULL for a put nobody waits for. */
int bl_store_put(bl_store_t *s, const char *id, const char *json, size_t n, bl_store_put_cb cb,
                 void *ud);
int bl_store_get(bl_store_t *s, const char *id, bl_store_get_cb cb, void *ud);

/* Cancels every pending callback for ud (the client left). A put still lands. */
void bl_store_forget(bl_store_t *s, void *ud);

/* Finishes the queued work (writes land, gets still answer), then frees the
 * store and calls done(ud) on the loop. s must not be used after this call. */
void bl_store_close(bl_store_t *s, void (*done)(void *), void *ud);

/* Tests: the clock used for expiry (unix seconds). SQLite only; Redis expires
 * keys on its own clock. NULL restores the real clock. */
void bl_store_set_clock(bl_store_t *s, int64_t (*now_s)(void));

/* "sqlite" or "redis", for logs and the status page. */
const char *bl_store_backend(const bl_store_t *s);

#endif
