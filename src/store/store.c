/*
 * The store's front: argument checks, the job each call becomes, and the one
 * completion queue through which both backends hand results back to the loop
 * (a uv_async_t, so the SQLite worker can use it too and callbacks never run
 * inside the call that asked).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "obs/obs.h"
#include "store/store_int.h"

static int64_t real_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

static void store_free(bl_store_t *s)
{
    if (s->backend == STORE_REDIS)
        bl_store_redis_free(s);
    uv_mutex_destroy(&s->done_mu);
    free(s->close_job);
    free(s);
}

void bl_store_handle_closed(uv_handle_t *h)
{
    bl_store_t *s = h->data;
    if (--s->open_handles > 0)
        return;
    void (*done)(void *) = s->close_done;
    void *ud = s->close_ud;
    store_free(s);
    if (done)
        done(ud);
}

static void live_unlink(bl_store_t *s, store_job_t *j)
{
    if (j->live_prev)
        j->live_prev->live_next = j->live_next;
    else
        s->live = j->live_next;
    if (j->live_next)
        j->live_next->live_prev = j->live_prev;
    j->live_prev = j->live_next = NULL;
    /* An idle store must not keep the loop alive; one with work pending must. */
    if (--s->n_live == 0)
        uv_unref((uv_handle_t *)&s->async);
}

static void live_link(bl_store_t *s, store_job_t *j)
{
    j->live_prev = NULL;
    j->live_next = s->live;
    if (s->live)
        s->live->live_prev = j;
    s->live = j;
    if (s->n_live++ == 0)
        uv_ref((uv_handle_t *)&s->async);
}

void bl_store_complete(bl_store_t *s, store_job_t *j)
{
    j->next = NULL;
    uv_mutex_lock(&s->done_mu);
    if (s->done_tail)
        s->done_tail->next = j;
    else
        s->done_head = j;
    s->done_tail = j;
    uv_mutex_unlock(&s->done_mu);
    uv_async_send(&s->async);
}

static void job_free(store_job_t *j)
{
    free(j->data);
    free(j);
}

static void on_async(uv_async_t *a)
{
    bl_store_t *s = a->data;
    uv_mutex_lock(&s->done_mu);
    store_job_t *head = s->done_head;
    s->done_head = s->done_tail = NULL;
    uv_mutex_unlock(&s->done_mu);

    bool closed = false;
    while (head) {
        store_job_t *j = head;
        head = j->next;
        live_unlink(s, j);
        if (j->kind == STORE_JOB_CLOSE) {
            closed = true; /* backends finish it last; handled after the loop */
            job_free(j);
            continue;
        }
        if (j->rc < 0 && j->rc != BL_ENOENT && j->err[0])
            bl_log(BL_LOG_WARN, "response store (%s): %s", bl_store_backend(s), j->err);
        /* Read canceled only now: a callback earlier in this batch may have
         * forgotten this ud. */
        if (!atomic_load(&j->canceled)) {
            if (j->kind == STORE_JOB_PUT && j->put_cb)
                j->put_cb(j->ud, j->rc);
            else if (j->kind == STORE_JOB_GET)
                j->get_cb(j->ud, j->rc, j->rc == 0 ? j->data : NULL, j->rc == 0 ? j->n : 0);
        }
        job_free(j);
    }
    if (!closed)
        return;
    if (s->backend == STORE_SQLITE)
        bl_store_sqlite_finish(s);
    else
        bl_store_redis_finish(s);
    uv_close((uv_handle_t *)&s->async, bl_store_handle_closed);
}

static store_job_t *job_new(bl_store_t *s, store_job_kind_t kind, void *ud)
{
    store_job_t *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->kind = kind;
    j->s = s;
    j->ud = ud;
    atomic_init(&j->canceled, false);
    j->now_s = s->now_s();
    return j;
}

int bl_store_open(uv_loop_t *loop, const bl_store_cfg_t *cfg, bl_store_t **out, char *err,
                  size_t errlen)
{
    int rc = 0;
    *out = NULL;
    if (errlen)
        err[0] = '\0';
    if (!loop || !cfg || (!cfg->redis_url && (!cfg->sqlite_path || !cfg->sqlite_path[0]))) {
        snprintf(err, errlen, "response store: no sqlite path or redis url");
        return BL_EINVAL;
    }
    bl_store_t *s = calloc(1, sizeof(*s));
    if (!s)
        return BL_ENOMEM;
    s->loop = loop;
    s->ttl_s = cfg->ttl_s ? cfg->ttl_s : BL_STORE_TTL_DEFAULT_S;
    s->redis_timeout_ms = cfg->redis_timeout_ms ? cfg->redis_timeout_ms : 2000;
    s->now_s = real_now_s;
    s->backend = cfg->redis_url ? STORE_REDIS : STORE_SQLITE;
    if (uv_mutex_init(&s->done_mu) != 0) {
        free(s);
        return BL_ENOMEM;
    }
    s->close_job = job_new(s, STORE_JOB_CLOSE, NULL);
    if (!s->close_job) {
        store_free(s);
        return BL_ENOMEM;
    }
    /* The backend's fallible set-up runs before any uv handle exists, so a
     * failure can free synchronously. */
    if (s->backend == STORE_SQLITE)
        rc = bl_store_sqlite_open(s, cfg->sqlite_path, err, errlen);
    else
        rc = bl_store_redis_open(s, cfg->redis_url, err, errlen);
    if (rc < 0) {
        store_free(s);
        return rc;
    }
    uv_async_init(loop, &s->async, on_async);
    s->async.data = s;
    s->open_handles = 1;
    uv_unref((uv_handle_t *)&s->async);
    if (s->backend == STORE_REDIS)
        bl_store_redis_start(s);
    *out = s;
    return 0;
}

static int check_id(const char *id, size_t *len)
{
    if (!id)
        return BL_EINVAL;
    /* Scan up to the NUL, stopping one byte past the limit. */
    size_t n = 0;
    for (; id[n]; n++) {
        char c = id[n];
        if (n == BL_STORE_ID_MAX)
            return BL_EINVAL;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return BL_EINVAL;
    }
    if (n == 0)
        return BL_EINVAL;
    *len = n;
    return 0;
}

static void submit(bl_store_t *s, store_job_t *j)
{
    live_link(s, j);
    if (s->backend == STORE_SQLITE)
        bl_store_sqlite_submit(s, j);
    else
        bl_store_redis_submit(s, j);
}

int bl_store_put(bl_store_t *s, const char *id, const char *json, size_t n, bl_store_put_cb cb,
                 void *ud)
{
    size_t id_len;
    if (!s || check_id(id, &id_len) < 0 || n > BL_STORE_VALUE_MAX || (!json && n))
        return BL_EINVAL;
    if (s->closing)
        return BL_ESTATE;
    if (s->n_live >= BL_STORE_MAX_PENDING)
        return BL_EBUSY;
    store_job_t *j = job_new(s, STORE_JOB_PUT, ud);
    if (!j)
        return BL_ENOMEM;
    j->put_cb = cb;
    j->data = malloc(n ? n : 1);
    if (!j->data) {
        free(j);
        return BL_ENOMEM;
    }
    if (n)
        memcpy(j->data, json, n);
    j->n = n;
    memcpy(j->id, id, id_len + 1);
    j->id_len = id_len;
    submit(s, j);
    return 0;
}

int bl_store_get(bl_store_t *s, const char *id, bl_store_get_cb cb, void *ud)
{
    size_t id_len;
    if (!s || !cb || check_id(id, &id_len) < 0)
        return BL_EINVAL;
    if (s->closing)
        return BL_ESTATE;
    if (s->n_live >= BL_STORE_MAX_PENDING)
        return BL_EBUSY;
    store_job_t *j = job_new(s, STORE_JOB_GET, ud);
    if (!j)
        return BL_ENOMEM;
    j->get_cb = cb;
    memcpy(j->id, id, id_len + 1);
    j->id_len = id_len;
    submit(s, j);
    return 0;
}

void bl_store_forget(bl_store_t *s, void *ud)
{
    if (!s)
        return;
    for (store_job_t *j = s->live; j; j = j->live_next)
        if (j->kind != STORE_JOB_CLOSE && j->ud == ud)
            atomic_store(&j->canceled, true);
}

void bl_store_close(bl_store_t *s, void (*done)(void *), void *ud)
{
    if (!s || s->closing)
        return;
    s->closing = true;
    s->close_done = done;
    s->close_ud = ud;
    store_job_t *j = s->close_job; /* allocated at open: closing cannot fail */
    s->close_job = NULL;
    j->now_s = s->now_s();
    submit(s, j);
}

void bl_store_set_clock(bl_store_t *s, int64_t (*now_s)(void))
{
    s->now_s = now_s ? now_s : real_now_s;
}

const char *bl_store_backend(const bl_store_t *s)
{
    return s->backend == STORE_SQLITE ? "sqlite" : "redis";
}
