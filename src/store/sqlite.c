/*
 * The SQLite backend: one file, one connection, owned by one worker thread of
 * the store (not libuv's pool, which the engine and config reload use). Jobs
 * reach it through a mutex-protected FIFO and go back through the store's
 * completion queue, so results come back in the order they were asked for.
 *
 * Rows carry an absolute expiry (unix seconds), so a restart keeps the TTLs.
 * A get ignores expired rows; the worker deletes them at start and every
 * BL_STORE_SWEEP_EVERY puts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/store_int.h"

#define BUSY_TIMEOUT_MS 5000

struct bl_store_sqlite {
    sqlite3 *db;
    sqlite3_stmt *put, *get, *sweep;
    char *path;
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t cv;
    store_job_t *head, *tail; /* under mu */
    unsigned puts_since_sweep;
    int64_t start_now_s; /* clock at open, for the first sweep */
};

static const char SCHEMA[] = "PRAGMA synchronous=NORMAL;"
                             "CREATE TABLE IF NOT EXISTS responses("
                             "  id TEXT PRIMARY KEY NOT NULL,"
                             "  value BLOB NOT NULL,"
                             "  expires INTEGER NOT NULL);"
                             "CREATE INDEX IF NOT EXISTS responses_expires ON responses(expires);";

/* mkdir -p of the directory part of path (0700: users' conversations). */
static int make_parent_dirs(const char *path, char *err, size_t errlen)
{
    char *dir = strdup(path);
    if (!dir)
        return BL_ENOMEM;
    int rc = 0;
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        goto done;
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "%s: cannot create directory %s: %s", path, dir, strerror(errno));
            rc = BL_EIO;
            goto done;
        }
        *p = c;
        if (c == '\0')
            break;
    }
done:
    free(dir);
    return rc;
}

static int map_sqlite(int src)
{
    switch (src & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return BL_EBUSY;
    case SQLITE_NOMEM:
        return BL_ENOMEM;
    case SQLITE_TOOBIG:
        return BL_ERANGE;
    default:
        return BL_EIO;
    }
}

static void sql_free(struct bl_store_sqlite *q)
{
    sqlite3_finalize(q->put);
    sqlite3_finalize(q->get);
    sqlite3_finalize(q->sweep);
    sqlite3_close(q->db);
    free(q->path);
    free(q);
}

static void sweep(struct bl_store_sqlite *q, int64_t now_s)
{
    /* Best effort: a failed sweep only leaves rows a get already ignores. */
    sqlite3_bind_int64(q->sweep, 1, now_s);
    sqlite3_step(q->sweep);
    sqlite3_reset(q->sweep);
    q->puts_since_sweep = 0;
}

static void run_put(bl_store_t *s, struct bl_store_sqlite *q, store_job_t *j)
{
    int64_t ttl = s->ttl_s > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)s->ttl_s;
    int64_t expires = j->now_s > INT64_MAX - ttl ? INT64_MAX : j->now_s + ttl;
    sqlite3_bind_text(q->put, 1, j->id, (int)j->id_len, SQLITE_STATIC);
    sqlite3_bind_blob64(q->put, 2, j->data, j->n, SQLITE_STATIC);
    sqlite3_bind_int64(q->put, 3, expires);
    int src = sqlite3_step(q->put);
    if (src != SQLITE_DONE) {
        j->rc = map_sqlite(src);
        snprintf(j->err, sizeof(j->err), "%s: put %s: %s", q->path, j->id, sqlite3_errmsg(q->db));
    }
    sqlite3_reset(q->put);
    sqlite3_clear_bindings(q->put);
    /* The value is written; free the copy now rather than on the loop. */
    free(j->data);
    j->data = NULL;
    j->n = 0;
    if (++q->puts_since_sweep >= BL_STORE_SWEEP_EVERY)
        sweep(q, j->now_s);
}

static void run_get(struct bl_store_sqlite *q, store_job_t *j)
{
    sqlite3_bind_text(q->get, 1, j->id, (int)j->id_len, SQLITE_STATIC);
    sqlite3_bind_int64(q->get, 2, j->now_s);
    int src = sqlite3_step(q->get);
    if (src == SQLITE_ROW) {
        const void *v = sqlite3_column_blob(q->get, 0);
        int n = sqlite3_column_bytes(q->get, 0);
        j->data = malloc(n > 0 ? (size_t)n : 1);
        if (!j->data) {
            j->rc = BL_ENOMEM;
        } else {
            if (n > 0)
                memcpy(j->data, v, (size_t)n);
            j->n = n > 0 ? (size_t)n : 0;
            j->rc = 0;
        }
    } else if (src == SQLITE_DONE) {
        j->rc = BL_ENOENT;
    } else {
        j->rc = map_sqlite(src);
        snprintf(j->err, sizeof(j->err), "%s: get %s: %s", q->path, j->id, sqlite3_errmsg(q->db));
    }
    sqlite3_reset(q->get);
    sqlite3_clear_bindings(q->get);
}

static void worker(void *arg)
{
    bl_store_t *s = arg;
    struct bl_store_sqlite *q = s->sql;
    sweep(q, q->start_now_s);
    for (;;) {
        uv_mutex_lock(&q->mu);
        while (!q->head)
            uv_cond_wait(&q->cv, &q->mu);
        store_job_t *j = q->head;
        q->head = j->next;
        if (!q->head)
            q->tail = NULL;
        uv_mutex_unlock(&q->mu);

        if (j->kind == STORE_JOB_CLOSE) {
            /* Last job by construction: everything queued before it is done.
             * Closing the connection checkpoints the WAL. */
            sqlite3_finalize(q->put);
            sqlite3_finalize(q->get);
            sqlite3_finalize(q->sweep);
            q->put = q->get = q->sweep = NULL;
            sqlite3_close(q->db);
            q->db = NULL;
            bl_store_complete(s, j);
            return;
        }
        if (j->kind == STORE_JOB_PUT)
            run_put(s, q, j);
        else if (atomic_load(&j->canceled))
            j->rc = BL_ECANCELED; /* nobody will read it */
        else
            run_get(q, j);
        bl_store_complete(s, j);
    }
}

int bl_store_sqlite_open(bl_store_t *s, const char *path, char *err, size_t errlen)
{
    int rc = 0;
    struct bl_store_sqlite *q = calloc(1, sizeof(*q));
    if (!q)
        return BL_ENOMEM;
    q->path = strdup(path);
    if (!q->path) {
        rc = BL_ENOMEM;
        goto done;
    }
    rc = make_parent_dirs(path, err, errlen);
    if (rc < 0)
        goto done;
    /* Create the file ourselves so it is 0600 from its first byte; SQLite
     * gives its -wal and -shm files the database file's mode. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        rc = BL_EIO;
        goto done;
    }
    close(fd);
    int src = sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK)
        goto sql_error;
    sqlite3_busy_timeout(q->db, BUSY_TIMEOUT_MS);
    /* The first statement that reads the file is where a corrupt file shows. */
    sqlite3_stmt *st = NULL;
    src = sqlite3_prepare_v2(q->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (src != SQLITE_OK)
        goto sql_error;
    src = sqlite3_step(st);
    const char *mode = src == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    bool wal = mode && strcmp(mode, "wal") == 0;
    sqlite3_finalize(st);
    if (src != SQLITE_ROW)
        goto sql_error;
    if (!wal) {
        snprintf(err, errlen, "%s: cannot switch to WAL journal mode", path);
        rc = BL_EIO;
        goto done;
    }
    src = sqlite3_exec(q->db, SCHEMA, NULL, NULL, NULL);
    if (src != SQLITE_OK)
        goto sql_error;
    src = sqlite3_prepare_v3(
        q->db, "INSERT OR REPLACE INTO responses(id, value, expires) VALUES(?1, ?2, ?3)", -1,
        SQLITE_PREPARE_PERSISTENT, &q->put, NULL);
    if (src == SQLITE_OK)
        src =
            sqlite3_prepare_v3(q->db, "SELECT value FROM responses WHERE id = ?1 AND expires > ?2",
                               -1, SQLITE_PREPARE_PERSISTENT, &q->get, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_prepare_v3(q->db, "DELETE FROM responses WHERE expires <= ?1", -1,
                                 SQLITE_PREPARE_PERSISTENT, &q->sweep, NULL);
    if (src != SQLITE_OK)
        goto sql_error;

    q->start_now_s = s->now_s();
    if (uv_mutex_init(&q->mu) != 0) {
        rc = BL_ENOMEM;
        goto done;
    }
    if (uv_cond_init(&q->cv) != 0) {
        uv_mutex_destroy(&q->mu);
        rc = BL_ENOMEM;
        goto done;
    }
    s->sql = q;
    if (uv_thread_create(&q->thread, worker, s) != 0) {
        s->sql = NULL;
        uv_cond_destroy(&q->cv);
        uv_mutex_destroy(&q->mu);
        snprintf(err, errlen, "%s: cannot start the store's thread", path);
        rc = BL_ENOMEM;
        goto done;
    }
    return 0;

sql_error:
    snprintf(err, errlen, "%s: %s", path, q->db ? sqlite3_errmsg(q->db) : "cannot open");
    rc = BL_EIO;
done:
    sql_free(q);
    return rc;
}

void bl_store_sqlite_submit(bl_store_t *s, store_job_t *j)
{
    struct bl_store_sqlite *q = s->sql;
    j->next = NULL;
    uv_mutex_lock(&q->mu);
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    uv_cond_signal(&q->cv);
    uv_mutex_unlock(&q->mu);
}

void bl_store_sqlite_finish(bl_store_t *s)
{
    struct bl_store_sqlite *q = s->sql;
    uv_thread_join(&q->thread);
    uv_cond_destroy(&q->cv);
    uv_mutex_destroy(&q->mu);
    sql_free(q);
    s->sql = NULL;
}
