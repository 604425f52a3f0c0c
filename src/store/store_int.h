/* Internal to store: the job every call becomes, and the two backends. */
#ifndef BL_STORE_INT_H
#define BL_STORE_INT_H

#include <stdatomic.h>
#include <stdbool.h>

#include "store/store.h"

/* Calls waiting for a backend beyond this get BL_EBUSY: a stalled disk or
 * Redis must not grow memory without bound. */
#define BL_STORE_MAX_PENDING 4096

/* SQLite: every this many puts the worker deletes the expired rows. */
#define BL_STORE_SWEEP_EVERY 256

typedef enum { STORE_JOB_PUT, STORE_JOB_GET, STORE_JOB_CLOSE } store_job_kind_t;

/* One put, get or close on its way through a backend. Created and freed on
 * the loop thread; a backend owns it from submit until it hands it back with
 * bl_store_complete(). */
typedef struct store_job {
    store_job_kind_t kind;
    bl_store_t *s;
    bl_store_put_cb put_cb;
    bl_store_get_cb get_cb;
    void *ud;
    atomic_bool canceled; /* set on the loop; the SQLite worker may skip a canceled get */
    int64_t now_s;        /* the store's clock when the call was made */
    int rc;
    char *data; /* put: the value to write; get: the value read (malloc) */
    size_t n;
    char id[BL_STORE_ID_MAX + 1];
    size_t id_len;
    char err[512];          /* backend message when rc is an I/O error, logged on the loop */
    struct store_job *next; /* backend queue / completion queue */
    struct store_job *live_prev, *live_next; /* every undelivered job, loop thread only */
} store_job_t;

typedef enum { STORE_SQLITE, STORE_REDIS } store_backend_t;

struct bl_store_sqlite;
struct bl_store_redis;

struct bl_store {
    uv_loop_t *loop;
    store_backend_t backend;
    uint64_t ttl_s;
    uint32_t redis_timeout_ms;
    int64_t (*now_s)(void);
    bool closing;
    void (*close_done)(void *);
    void *close_ud;
    int open_handles; /* uv handles still to be closed before the free */

    /* completion queue: backends append (any thread), the loop delivers */
    uv_async_t async;
    uv_mutex_t done_mu;
    store_job_t *done_head, *done_tail;

    store_job_t *close_job; /* allocated at open so bl_store_close cannot fail */
    store_job_t *live;      /* undelivered jobs, for bl_store_forget */
    size_t n_live;

    struct bl_store_sqlite *sql;
    struct bl_store_redis *redis;
};

/* Hands a finished job back to the loop; callable from any thread. */
void bl_store_complete(bl_store_t *s, store_job_t *j);
/* A uv handle owned by the store (or a backend) finished closing. */
void bl_store_handle_closed(uv_handle_t *h);

int bl_store_sqlite_open(bl_store_t *s, const char *path, char *err, size_t errlen);
void bl_store_sqlite_submit(bl_store_t *s, store_job_t *j);
/* The CLOSE job came back: the worker has exited. */
void bl_store_sqlite_finish(bl_store_t *s);

/* Parses the URL and resolves the host; no handles yet. */
int bl_store_redis_open(bl_store_t *s, const char *url, char *err, size_t errlen);
/* Starts connecting (and reconnecting) once the store's async handle exists. */
void bl_store_redis_start(bl_store_t *s);
void bl_store_redis_submit(bl_store_t *s, store_job_t *j);
void bl_store_redis_finish(bl_store_t *s);
/* Frees the backend after its handles closed (store_free). */
void bl_store_redis_free(bl_store_t *s);

#ifdef BL_HAVE_HIREDIS
struct redisAsyncContext;
/* Puts a hiredis async context on the loop (redis_uv.c). */
int bl_store_redis_attach(struct redisAsyncContext *ac, uv_loop_t *loop);
#endif

#endif
