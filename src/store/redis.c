/*
 * The Redis backend, for replicas that share state: hiredis's async API on
 * the loop through its libuv adapter. Values live at "ballast:resp:<id>",
 * written with SET ... EX so Redis expires them on its own clock.
 *
 * A dropped connection is retried with a doubling backoff (100 ms .. 5 s);
 * while there is no connection a call completes with BL_EIO. Commands in
 * flight when the connection drops complete with BL_EIO (hiredis answers
 * them with a NULL reply). hiredis 0.14 has no timeouts of its own, so a
 * watchdog drops a connection (or a connect attempt) that leaves commands
 * unanswered for redis_timeout_ms: a hung Redis must not hang requests.
 *
 * Without hiredis (BL_HAVE_HIREDIS undefined) opening a Redis store fails
 * with BL_EUNSUPPORTED.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/obs.h"
#include "store/store_int.h"

#ifdef BL_HAVE_HIREDIS

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#define KEY_PREFIX "ballast:resp:"
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define TTL_MAX_S (100ull * 365 * 24 * 3600) /* Redis rejects EX past ~LLONG_MAX/1000 */

struct bl_store_redis {
    redisAsyncContext *ac; /* NULL while disconnected */
    bool connected;
    bool disconnecting;   /* redisAsyncDisconnect called at close */
    bool down_logged;     /* one warning per outage */
    uv_timer_t timer;     /* reconnect backoff; at close, the next close step */
    uv_timer_t watchdog;  /* checks that pending commands make progress */
    unsigned in_flight;   /* job commands sent on ac and not yet answered */
    uint64_t progress_ms; /* uv_now of the last reply, or of the first pending command */
    uint64_t backoff_ms;
    store_job_t *close_job; /* held until the connection is gone */
    char host[INET6_ADDRSTRLEN];
    int port;
    char *unix_path;
    char *user, *pass;
    int db;
    char name[300]; /* host:port or unix:path, for messages (never the password) */
};

static int parse_url(struct bl_store_redis *r, const char *url, char *err, size_t errlen)
{
    r->port = 6379;
    if (strncmp(url, "unix:", 5) == 0) {
        const char *path = url + 5;
        if (path[0] != '/' || strlen(path) > 200) {
            snprintf(err, errlen, "redis url '%s': want unix:/absolute/path", url);
            return BL_EINVAL;
        }
        r->unix_path = strdup(path);
        if (!r->unix_path)
            return BL_ENOMEM;
        snprintf(r->name, sizeof(r->name), "unix:%s", path);
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, errlen, "redis url '%s': want redis://host:port[/db] or unix:/path", url);
        return BL_EINVAL;
    }
    const char *p = url + 8;
    const char *at = strchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon) {
            snprintf(err, errlen, "redis url: want [user]:password@ before the host");
            return BL_EINVAL;
        }
        if (colon > p) {
            r->user = strndup(p, (size_t)(colon - p));
            if (!r->user)
                return BL_ENOMEM;
        }
        r->pass = strndup(colon + 1, (size_t)(at - colon - 1));
        if (!r->pass)
            return BL_ENOMEM;
        p = at + 1;
    }
    char host[256];
    size_t hn;
    const char *rest;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (!close) {
            snprintf(err, errlen, "redis url '%s': unclosed [", url);
            return BL_EINVAL;
        }
        hn = (size_t)(close - p - 1);
        if (hn >= sizeof(host))
            goto bad_host;
        memcpy(host, p + 1, hn);
        rest = close + 1;
    } else {
        hn = strcspn(p, ":/");
        if (hn >= sizeof(host))
            goto bad_host;
        memcpy(host, p, hn);
        rest = p + hn;
    }
    host[hn] = '\0';
    if (hn == 0)
        goto bad_host;
    if (*rest == ':') {
        char *end;
        long port = strtol(rest + 1, &end, 10);
        if (end == rest + 1 || port < 1 || port > 65535 || (*end && *end != '/')) {
            snprintf(err, errlen, "redis url '%s': bad port", url);
            return BL_EINVAL;
        }
        r->port = (int)port;
        rest = end;
    }
    if (*rest == '/' && rest[1]) {
        char *end;
        long db = strtol(rest + 1, &end, 10);
        if (end == rest + 1 || *end || db < 0 || db > 1000000) {
            snprintf(err, errlen, "redis url '%s': bad database number", url);
            return BL_EINVAL;
        }
        r->db = (int)db;
    } else if (*rest && strcmp(rest, "/") != 0) {
        snprintf(err, errlen, "redis url '%s': unexpected '%s'", url, rest);
        return BL_EINVAL;
    }
    /* Resolved once, at start-up: hiredis would otherwise call a blocking
     * getaddrinfo on the loop at every reconnect. */
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int grc = getaddrinfo(host, NULL, &hints, &ai);
    if (grc != 0 || !ai) {
        snprintf(err, errlen, "redis url '%s': cannot resolve %s: %s", url, host,
                 grc ? gai_strerror(grc) : "no address");
        if (ai)
            freeaddrinfo(ai);
        return BL_EINVAL;
    }
    const void *addr = ai->ai_family == AF_INET6
                           ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                           : (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
    inet_ntop(ai->ai_family, addr, r->host, sizeof(r->host));
    freeaddrinfo(ai);
    snprintf(r->name, sizeof(r->name), "%s:%d", host, r->port);
    return 0;
bad_host:
    snprintf(err, errlen, "redis url '%s': bad host", url);
    return BL_EINVAL;
}

static void redis_free(struct bl_store_redis *r)
{
    if (!r)
        return;
    free(r->unix_path);
    free(r->user);
    free(r->pass);
    free(r);
}

static void schedule(bl_store_t *s, uint64_t delay_ms);

/* The next connect attempt, each one twice as late up to BACKOFF_MAX_MS; at
 * close, the next close step at once. */
static void retry_later(bl_store_t *s)
{
    struct bl_store_redis *r = s->redis;
    schedule(s, s->closing ? 0 : r->backoff_ms);
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
}

static void on_setup_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    redisReply *rep = reply;
    bl_store_t *s = ac->data;
    if (rep && rep->type == REDIS_REPLY_ERROR)
        bl_log(BL_LOG_ERROR, "response store: redis %s: %s: %s", s->redis->name,
               (const char *)privdata, rep->str);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    bl_store_t *s = ac->data;
    struct bl_store_redis *r = s->redis;
    if (status != REDIS_OK) {
        /* hiredis frees ac after this returns and fails its queued commands. */
        if (!r->down_logged)
            bl_log(BL_LOG_WARN, "response store: redis %s: connect failed: %s", r->name,
                   ac->errstr);
        r->down_logged = true;
        r->ac = NULL;
        r->connected = false;
        retry_later(s);
        return;
    }
    if (r->down_logged)
        bl_log(BL_LOG_INFO, "response store: redis %s: connected", r->name);
    r->down_logged = false;
    r->connected = true;
    r->backoff_ms = BACKOFF_MIN_MS;
    if (s->closing)
        schedule(s, 0); /* not from inside hiredis's connect handling */
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    bl_store_t *s = ac->data;
    struct bl_store_redis *r = s->redis;
    r->ac = NULL;
    r->connected = false;
    if (s->closing) {
        schedule(s, 0);
        return;
    }
    bl_log(BL_LOG_WARN, "response store: redis %s: connection lost: %s", r->name,
           status == REDIS_OK ? "closed" : ac->errstr);
    r->down_logged = true;
    schedule(s, BACKOFF_MIN_MS);
}

static void connect_now(bl_store_t *s)
{
    struct bl_store_redis *r = s->redis;
    redisAsyncContext *ac =
        r->unix_path ? redisAsyncConnectUnix(r->unix_path) : redisAsyncConnect(r->host, r->port);
    if (!ac || ac->err) {
        if (!r->down_logged)
            bl_log(BL_LOG_WARN, "response store: redis %s: connect failed: %s", r->name,
                   ac ? ac->errstr : "out of memory");
        r->down_logged = true;
        if (ac)
            redisAsyncFree(ac);
        goto retry;
    }
    ac->data = s;
    if (bl_store_redis_attach(ac, s->loop) < 0) {
        redisAsyncFree(ac);
        goto retry;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* Queued before any job's command, so they run first on the connection. */
    if (r->pass && r->user)
        redisAsyncCommand(ac, on_setup_reply, "AUTH", "AUTH %s %s", r->user, r->pass);
    else if (r->pass)
        redisAsyncCommand(ac, on_setup_reply, "AUTH", "AUTH %s", r->pass);
    if (r->db)
        redisAsyncCommand(ac, on_setup_reply, "SELECT", "SELECT %d", r->db);
    r->ac = ac;
    return;
retry:
    retry_later(s);
}

/* One timer drives both reconnecting and, at close, the steps of closing:
 * wait for the connection attempt, let pending replies arrive, then hand the
 * CLOSE job back (after every reply, so callbacks keep their order). */
static void on_timer(uv_timer_t *t)
{
    bl_store_t *s = t->data;
    struct bl_store_redis *r = s->redis;
    if (!s->closing) {
        if (!r->ac)
            connect_now(s);
        return;
    }
    if (r->ac) {
        if (r->connected && !r->disconnecting) {
            r->disconnecting = true;
            redisAsyncDisconnect(r->ac); /* on_disconnect schedules the next step */
        }
        return; /* still connecting: on_connect schedules the next step */
    }
    if (r->close_job) {
        store_job_t *j = r->close_job;
        r->close_job = NULL;
        bl_store_complete(s, j);
    }
}

static void schedule(bl_store_t *s, uint64_t delay_ms)
{
    uv_timer_start(&s->redis->timer, on_timer, delay_ms, 0);
}

static void on_watchdog(uv_timer_t *t)
{
    bl_store_t *s = t->data;
    struct bl_store_redis *r = s->redis;
    if (!r->ac || !r->in_flight || uv_now(s->loop) - r->progress_ms < s->redis_timeout_ms)
        return;
    bl_log(BL_LOG_WARN, "response store: redis %s: no reply in %u ms, dropping the connection",
           r->name, (unsigned)s->redis_timeout_ms);
    r->down_logged = true;
    /* Freeing answers every pending command with NULL (BL_EIO); the state is
     * reset here, not in on_disconnect (which would log a second time). */
    redisAsyncContext *ac = r->ac;
    ac->onDisconnect = NULL;
    r->ac = NULL;
    r->connected = false;
    r->in_flight = 0;
    redisAsyncFree(ac);
    schedule(s, s->closing ? 0 : BACKOFF_MIN_MS);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    redisReply *rep = reply;
    store_job_t *j = privdata;
    bl_store_t *s = j->s;
    struct bl_store_redis *r = s->redis;
    if (r->in_flight)
        r->in_flight--;
    r->progress_ms = uv_now(s->loop);
    if (!rep) {
        j->rc = BL_EIO;
        snprintf(j->err, sizeof(j->err), "redis %.200s: %s %s: no connection (lost or never made)",
                 s->redis->name, j->kind == STORE_JOB_PUT ? "put" : "get", j->id);
    } else if (rep->type == REDIS_REPLY_ERROR) {
        j->rc = BL_EIO;
        snprintf(j->err, sizeof(j->err), "redis %.200s: %s %s: %s", s->redis->name,
                 j->kind == STORE_JOB_PUT ? "put" : "get", j->id, rep->str);
    } else if (j->kind == STORE_JOB_PUT) {
        j->rc = rep->type == REDIS_REPLY_STATUS ? 0 : BL_EIO;
    } else if (rep->type == REDIS_REPLY_NIL) {
        j->rc = BL_ENOENT;
    } else if (rep->type == REDIS_REPLY_STRING) {
        j->data = malloc(rep->len ? (size_t)rep->len : 1);
        if (!j->data) {
            j->rc = BL_ENOMEM;
        } else {
            memcpy(j->data, rep->str, (size_t)rep->len);
            j->n = (size_t)rep->len;
            j->rc = 0;
        }
    } else {
        j->rc = BL_EIO;
        snprintf(j->err, sizeof(j->err), "redis %.200s: get %s: unexpected reply type %d",
                 s->redis->name, j->id, rep->type);
    }
    bl_store_complete(s, j);
}

int bl_store_redis_open(bl_store_t *s, const char *url, char *err, size_t errlen)
{
    struct bl_store_redis *r = calloc(1, sizeof(*r));
    if (!r)
        return BL_ENOMEM;
    r->backoff_ms = BACKOFF_MIN_MS;
    int rc = parse_url(r, url, err, errlen);
    if (rc < 0) {
        if (rc == BL_ENOMEM)
            snprintf(err, errlen, "redis url: out of memory");
        redis_free(r);
        return rc;
    }
    s->redis = r;
    return 0;
}

void bl_store_redis_start(bl_store_t *s)
{
    struct bl_store_redis *r = s->redis;
    uv_timer_init(s->loop, &r->timer);
    r->timer.data = s;
    uv_unref((uv_handle_t *)&r->timer);
    uv_timer_init(s->loop, &r->watchdog);
    r->watchdog.data = s;
    uint64_t every = s->redis_timeout_ms / 4 ? s->redis_timeout_ms / 4 : 1;
    uv_timer_start(&r->watchdog, on_watchdog, every, every);
    uv_unref((uv_handle_t *)&r->watchdog);
    s->open_handles += 2;
    /* Not at open: a Redis that is down at start-up is retried, not fatal. */
    connect_now(s);
}

void bl_store_redis_submit(bl_store_t *s, store_job_t *j)
{
    struct bl_store_redis *r = s->redis;
    if (j->kind == STORE_JOB_CLOSE) {
        r->close_job = j;
        schedule(s, 0);
        return;
    }
    const char *what = j->kind == STORE_JOB_PUT ? "put" : "get";
    if (!r->ac) {
        j->rc = BL_EIO;
        snprintf(j->err, sizeof(j->err), "redis %.200s: %s %s: not connected", r->name, what,
                 j->id);
        bl_store_complete(s, j);
        return;
    }
    char key[sizeof(KEY_PREFIX) + BL_STORE_ID_MAX];
    size_t kn = sizeof(KEY_PREFIX) - 1 + j->id_len;
    memcpy(key, KEY_PREFIX, sizeof(KEY_PREFIX) - 1);
    memcpy(key + sizeof(KEY_PREFIX) - 1, j->id, j->id_len);
    int rc;
    if (j->kind == STORE_JOB_PUT) {
        unsigned long long ttl = s->ttl_s > TTL_MAX_S ? TTL_MAX_S : s->ttl_s;
        rc =
            redisAsyncCommand(r->ac, on_reply, j, "SET %b %b EX %llu", key, kn, j->data, j->n, ttl);
        /* hiredis formatted its own copy of the command. */
        free(j->data);
        j->data = NULL;
        j->n = 0;
    } else {
        rc = redisAsyncCommand(r->ac, on_reply, j, "GET %b", key, kn);
    }
    if (rc == REDIS_OK) {
        if (r->in_flight++ == 0)
            r->progress_ms = uv_now(s->loop);
        return;
    }
    j->rc = BL_EIO;
    snprintf(j->err, sizeof(j->err), "redis %.200s: %s %s: %s", r->name, what, j->id,
             r->ac->errstr[0] ? r->ac->errstr : "cannot queue the command");
    bl_store_complete(s, j);
}

void bl_store_redis_finish(bl_store_t *s)
{
    uv_close((uv_handle_t *)&s->redis->timer, bl_store_handle_closed);
    uv_close((uv_handle_t *)&s->redis->watchdog, bl_store_handle_closed);
}

void bl_store_redis_free(bl_store_t *s)
{
    redis_free(s->redis);
    s->redis = NULL;
}

#else /* !BL_HAVE_HIREDIS */

int bl_store_redis_open(bl_store_t *s, const char *url, char *err, size_t errlen)
{
    snprintf(err, errlen, "redis url '%s': this ballast was built without hiredis", url);
    return BL_EUNSUPPORTED;
}

void bl_store_redis_start(bl_store_t *s)
{
}

void bl_store_redis_submit(bl_store_t *s, store_job_t *j)
{
    j->rc = BL_EUNSUPPORTED;
    bl_store_complete(s, j);
}

void bl_store_redis_finish(bl_store_t *s)
{
}

void bl_store_redis_free(bl_store_t *s)
{
}

#endif
