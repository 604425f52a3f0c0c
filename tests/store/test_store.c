/*
 * The response store through its public interface, on a real libuv loop: a
 * real SQLite file in a temp directory, and a real redis-server on a free
 * 127.0.0.1 port when one is installed and hiredis is built in.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <uv.h>

#include "store/store.h"
#include "store/store_int.h" /* BL_STORE_SWEEP_EVERY */

#ifdef BL_HAVE_HIREDIS
#include <hiredis/hiredis.h>
#endif

/* ---- helpers ------------------------------------------------------------ */

static uv_loop_t loop;
static char tmpdir[64];
static int seq; /* order in which callbacks ran */

typedef struct {
    int calls;
    int rc;
    int order;
    char *val;
    size_t n;
    bool had_json;
} res_t;

static void res_reset(res_t *r)
{
    free(r->val);
    memset(r, 0, sizeof(*r));
}

static void put_done(void *ud, int rc)
{
    res_t *r = ud;
    r->calls++;
    r->rc = rc;
    r->order = ++seq;
}

static void get_done(void *ud, int rc, const char *json, size_t n)
{
    res_t *r = ud;
    r->calls++;
    r->rc = rc;
    r->order = ++seq;
    r->had_json = json != NULL;
    free(r->val);
    r->val = NULL;
    r->n = 0;
    if (json) {
        r->val = malloc(n + 1);
        assert_non_null(r->val);
        memcpy(r->val, json, n);
        r->val[n] = '\0';
        r->n = n;
    }
}

/* ud: int[2] = {calls, calls that found the value} */
static void count_get(void *ud, int rc, const char *json, size_t n)
{
    int *c = ud;
    c[0]++;
    c[1] += rc == 0 && n > 0 && json[0] == '[';
}

/* Runs the loop until *count reaches want; fails instead of hanging when
 * nothing is left that could get it there. */
static void run_until_n(const int *count, int want)
{
    while (*count < want) {
        int alive = uv_run(&loop, UV_RUN_ONCE);
        if (*count < want && !alive)
            fail_msg("loop ran dry before the callback");
    }
}

static void run_until(const int *flag)
{
    run_until_n(flag, 1);
}

static int do_put(bl_store_t *s, const char *id, const char *v, size_t n)
{
    res_t r = {0};
    int rc = bl_store_put(s, id, v, n, put_done, &r);
    if (rc < 0)
        return rc;
    run_until(&r.calls);
    assert_int_equal(r.calls, 1);
    return r.rc;
}

/* Returns the callback's rc; *r keeps the value. */
static int do_get(bl_store_t *s, const char *id, res_t *r)
{
    res_reset(r);
    int rc = bl_store_get(s, id, get_done, r);
    if (rc < 0)
        return rc;
    run_until(&r->calls);
    assert_int_equal(r->calls, 1);
    return r->rc;
}

static void closed_cb(void *ud)
{
    (*(int *)ud)++;
}

static void close_sync(bl_store_t *s)
{
    int closed = 0;
    bl_store_close(s, closed_cb, &closed);
    run_until(&closed);
    assert_int_equal(closed, 1);
}

static int64_t fake_now = 1700000000;
static int64_t fake_clock(void)
{
    return fake_now;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(p);
}

static int setup(void **state)
{
    assert_int_equal(uv_loop_init(&loop), 0);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/bl-store-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    seq = 0;
    return 0;
}

static int teardown(void **state)
{
    uv_run(&loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&loop); /* the store left no handle behind */
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    assert_int_equal(rc, 0);
    return 0;
}

static bl_store_t *open_sqlite(const char *name, uint64_t ttl)
{
    char path[256], err[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    bl_store_cfg_t cfg = {.sqlite_path = path, .ttl_s = ttl};
    bl_store_t *s = NULL;
    int rc = bl_store_open(&loop, &cfg, &s, err, sizeof(err));
    if (rc != 0)
        fail_msg("open %s: %s", path, err);
    assert_non_null(s);
    return s;
}

/* ---- the same round trips for both backends ------------------------------ */

static void check_round_trips(bl_store_t *s)
{
    res_t r = {0};
    const char *v = "[{\"role\":\"user\",\"content\":\"hi\"},{\"type\":\"message\"}]";
    assert_int_equal(do_put(s, "resp_abc-123", v, strlen(v)), 0);
    assert_int_equal(do_get(s, "resp_abc-123", &r), 0);
    assert_int_equal(r.n, strlen(v));
    assert_string_equal(r.val, v);

    /* unknown id */
    assert_int_equal(do_get(s, "resp_nope", &r), BL_ENOENT);
    assert_false(r.had_json);

    /* overwrite */
    assert_int_equal(do_put(s, "resp_abc-123", "[2]", 3), 0);
    assert_int_equal(do_get(s, "resp_abc-123", &r), 0);
    assert_string_equal(r.val, "[2]");

    /* empty value and a 128-byte id */
    char id128[BL_STORE_ID_MAX + 1];
    memset(id128, 'x', BL_STORE_ID_MAX);
    id128[BL_STORE_ID_MAX] = '\0';
    assert_int_equal(do_put(s, id128, "", 0), 0);
    assert_int_equal(do_get(s, id128, &r), 0);
    assert_int_equal(r.n, 0);

    /* 1 MiB, every byte checked */
    size_t big_n = 1u << 20;
    char *big = malloc(big_n);
    assert_non_null(big);
    for (size_t i = 0; i < big_n; i++)
        big[i] = (char)(' ' + (i * 7919 + i / 251) % 95);
    assert_int_equal(do_put(s, "resp_big", big, big_n), 0);
    assert_int_equal(do_get(s, "resp_big", &r), 0);
    assert_int_equal(r.n, big_n);
    assert_memory_equal(r.val, big, big_n);
    free(big);

    /* Many calls in flight at once: each completes once, in call order, and
     * each get sees the put queued just before it. */
    enum { N = 300 };
    static res_t pr[N], gr[N];
    char id[32], val[32];
    for (int i = 0; i < N; i++) {
        memset(&pr[i], 0, sizeof(pr[i]));
        memset(&gr[i], 0, sizeof(gr[i]));
        snprintf(id, sizeof(id), "c_%d", i % 50); /* overwrites in flight too */
        snprintf(val, sizeof(val), "{\"i\":%d}", i);
        assert_int_equal(bl_store_put(s, id, val, strlen(val), put_done, &pr[i]), 0);
        assert_int_equal(bl_store_get(s, id, get_done, &gr[i]), 0);
    }
    run_until(&gr[N - 1].calls);
    int last = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(pr[i].calls, 1);
        assert_int_equal(gr[i].calls, 1);
        assert_int_equal(pr[i].rc, 0);
        assert_int_equal(gr[i].rc, 0);
        assert_true(pr[i].order > last);
        assert_true(gr[i].order == pr[i].order + 1);
        last = gr[i].order;
        snprintf(val, sizeof(val), "{\"i\":%d}", i);
        assert_string_equal(gr[i].val, val);
        free(gr[i].val);
    }

    /* A backend that cannot keep up pushes back instead of queueing without
     * bound; every accepted call still completes. */
    int cnt[2] = {0, 0};
    for (int i = 0; i < BL_STORE_MAX_PENDING; i++)
        assert_int_equal(bl_store_get(s, "resp_abc-123", count_get, cnt), 0);
    assert_int_equal(bl_store_get(s, "resp_abc-123", count_get, cnt), BL_EBUSY);
    assert_int_equal(bl_store_put(s, "resp_abc-123", "[]", 2, NULL, NULL), BL_EBUSY);
    run_until_n(&cnt[0], BL_STORE_MAX_PENDING);
    assert_int_equal(cnt[1], BL_STORE_MAX_PENDING);

    /* forget: the forgotten callbacks never run, the put still lands */
    res_t a = {0}, b = {0}, c = {0};
    assert_int_equal(bl_store_put(s, "resp_forgot", "[9]", 3, put_done, &b), 0);
    assert_int_equal(bl_store_get(s, "resp_abc-123", get_done, &b), 0);
    assert_int_equal(bl_store_get(s, "resp_abc-123", get_done, &a), 0);
    bl_store_forget(s, &b);
    assert_int_equal(bl_store_get(s, "resp_forgot", get_done, &c), 0);
    run_until(&c.calls);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 0);
    assert_int_equal(c.rc, 0);
    assert_string_equal(c.val, "[9]");
    res_reset(&a);
    res_reset(&c);
    res_reset(&r);
}

static void check_invalid(bl_store_t *s)
{
    res_t r = {0};
    char id129[BL_STORE_ID_MAX + 2];
    memset(id129, 'x', BL_STORE_ID_MAX + 1);
    id129[BL_STORE_ID_MAX + 1] = '\0';
    const char *bad[] = {"", id129, "a/b", "a b", "a.b", "resp\xc3\xa9", "a\nb", "../x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(bl_store_put(s, bad[i], "[]", 2, put_done, &r), BL_EINVAL);
        assert_int_equal(bl_store_get(s, bad[i], get_done, &r), BL_EINVAL);
    }
    assert_int_equal(bl_store_put(s, NULL, "[]", 2, put_done, &r), BL_EINVAL);
    assert_int_equal(bl_store_get(s, NULL, get_done, &r), BL_EINVAL);
    assert_int_equal(bl_store_get(s, "ok", NULL, &r), BL_EINVAL);
    assert_int_equal(bl_store_put(s, "ok", NULL, 5, put_done, &r), BL_EINVAL);
    /* rejected on size alone: the bytes are never read */
    assert_int_equal(bl_store_put(s, "ok", "[]", BL_STORE_VALUE_MAX + 1, put_done, &r), BL_EINVAL);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(r.calls, 0); /* a rejected call never calls back */
}

/* ---- SQLite ----------------------------------------------------------------- */

static void test_sqlite_round_trips(void **state)
{
    bl_store_t *s = open_sqlite("nested/dir/responses.db", 0);
    assert_string_equal(bl_store_backend(s), "sqlite");
    check_round_trips(s);
    check_invalid(s);
    close_sync(s);

    /* created with its directory, readable by the owner only */
    char path[256];
    struct stat st;
    snprintf(path, sizeof(path), "%s/nested/dir/responses.db", tmpdir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(path, sizeof(path), "%s/nested/dir", tmpdir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
}

static int count_rows(const char *name, const char *id)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT count(*) FROM responses WHERE id = ?1", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void test_sqlite_expiry(void **state)
{
    bl_store_t *s = open_sqlite("ttl.db", 1);
    bl_store_set_clock(s, fake_clock);
    res_t r = {0};
    assert_int_equal(do_put(s, "resp_old", "[1]", 3), 0);
    assert_int_equal(do_get(s, "resp_old", &r), 0);
    fake_now += 1; /* TTL 1 s: expired now */
    assert_int_equal(do_get(s, "resp_old", &r), BL_ENOENT);
    /* Ignored, not yet deleted ... */
    assert_int_equal(count_rows("ttl.db", "resp_old"), 1);
    /* ... until the sweep that every BL_STORE_SWEEP_EVERY-th put runs. */
    res_t last = {0};
    for (int i = 0; i < BL_STORE_SWEEP_EVERY; i++)
        assert_int_equal(bl_store_put(s, "resp_new", "[2]", 3, put_done, &last), 0);
    run_until_n(&last.calls, BL_STORE_SWEEP_EVERY);
    assert_int_equal(count_rows("ttl.db", "resp_old"), 0);
    assert_int_equal(do_get(s, "resp_new", &r), 0);
    /* A write refreshes the expiry. */
    fake_now += 1;
    assert_int_equal(do_get(s, "resp_new", &r), BL_ENOENT);
    assert_int_equal(do_put(s, "resp_new", "[3]", 3), 0);
    assert_int_equal(do_get(s, "resp_new", &r), 0);
    assert_string_equal(r.val, "[3]");
    close_sync(s);
    res_reset(&r);
}

static void test_sqlite_close_lands_queued_writes(void **state)
{
    enum { N = 200 };
    bl_store_t *s = open_sqlite("close.db", 0);
    char id[32], val[64];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "resp_%d", i);
        snprintf(val, sizeof(val), "[{\"n\":%d}]", i);
        assert_int_equal(bl_store_put(s, id, val, strlen(val), NULL, NULL), 0);
    }
    close_sync(s); /* right behind the puts, none of which has completed */

    s = open_sqlite("close.db", 0);
    res_t r = {0};
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "resp_%d", i);
        snprintf(val, sizeof(val), "[{\"n\":%d}]", i);
        assert_int_equal(do_get(s, id, &r), 0);
        assert_string_equal(r.val, val);
    }
    /* Gets queued before close still answer. */
    res_t g = {0};
    assert_int_equal(bl_store_get(s, "resp_7", get_done, &g), 0);
    close_sync(s);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.rc, 0);
    res_reset(&g);
    res_reset(&r);
}

/* Callbacks that call the store again: a get chained from inside a get,
 * forgetting a call whose answer may already be in the same batch, and
 * closing from a callback. */
typedef struct {
    bl_store_t *s;
    int depth;
    int forgot;
    res_t later;
    int closed;
} chain_t;

static void chain_get(void *ud, int rc, const char *json, size_t n)
{
    chain_t *c = ud;
    assert_int_equal(rc, 0);
    if (++c->depth < 3)
        assert_int_equal(bl_store_get(c->s, "resp_chain", chain_get, c), 0);
    else
        bl_store_close(c->s, closed_cb, &c->closed);
}

static void forget_later(void *ud, int rc, const char *json, size_t n)
{
    chain_t *c = ud;
    c->forgot++;
    bl_store_forget(c->s, &c->later);
}

static void test_sqlite_reentrant(void **state)
{
    chain_t c = {.s = open_sqlite("chain.db", 0)};
    assert_int_equal(do_put(c.s, "resp_chain", "[1]", 3), 0);
    assert_int_equal(bl_store_get(c.s, "resp_chain", forget_later, &c), 0);
    assert_int_equal(bl_store_get(c.s, "resp_chain", get_done, &c.later), 0);
    assert_int_equal(bl_store_get(c.s, "resp_chain", chain_get, &c), 0);
    run_until(&c.closed);
    assert_int_equal(c.forgot, 1);
    assert_int_equal(c.later.calls, 0);
    assert_int_equal(c.depth, 3);
    assert_int_equal(c.closed, 1);
}

static void expect_open_error(const char *path, const char *want)
{
    char err[512] = "";
    bl_store_cfg_t cfg = {.sqlite_path = path};
    bl_store_t *s = (bl_store_t *)&cfg; /* must be reset to NULL */
    int rc = bl_store_open(&loop, &cfg, &s, err, sizeof(err));
    assert_true(rc < 0);
    assert_null(s);
    if (!strstr(err, path))
        fail_msg("error '%s' does not name the path %s", err, path);
    if (want && !strstr(err, want))
        fail_msg("error '%s' does not say '%s'", err, want);
}

static void test_sqlite_open_errors(void **state)
{
    char path[256], file[256];
    /* a corrupt file */
    snprintf(path, sizeof(path), "%s/corrupt.db", tmpdir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (int i = 0; i < 8192; i++)
        fputc((i * 131 + 7) & 0xff, f);
    fclose(f);
    expect_open_error(path, "not a database");

    /* a directory cannot be created under a regular file */
    snprintf(file, sizeof(file), "%s/plainfile", tmpdir);
    f = fopen(file, "wb");
    assert_non_null(f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/plainfile/sub/x.db", tmpdir);
    expect_open_error(path, "cannot create directory");

    /* the path is a directory */
    snprintf(path, sizeof(path), "%s", tmpdir);
    expect_open_error(path, NULL);

    /* no backend named */
    char err[128];
    bl_store_t *s = NULL;
    bl_store_cfg_t none = {0};
    assert_int_equal(bl_store_open(&loop, &none, &s, err, sizeof(err)), BL_EINVAL);
    assert_null(s);
}

/* ---- Redis ------------------------------------------------------------------ */

#ifdef BL_HAVE_HIREDIS

static pid_t redis_pid = -1;
static int redis_port;

static void redis_kill(void)
{
    if (redis_pid > 0) {
        kill(redis_pid, SIGKILL);
        waitpid(redis_pid, NULL, 0);
        redis_pid = -1;
    }
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static bool redis_installed(void)
{
    return system("command -v redis-server >/dev/null 2>&1") == 0;
}

static redisContext *redis_sync(void)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
    if (c && c->err) {
        redisFree(c);
        return NULL;
    }
    return c;
}

/* pass: NULL, or a password the server requires (and a unix socket at
 * <tmpdir>/redis.sock). */
static void redis_start_with(const char *pass)
{
    char port[16], sock[128];
    snprintf(port, sizeof(port), "%d", redis_port);
    snprintf(sock, sizeof(sock), "%s/redis.sock", tmpdir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* dies with the test, even on a crash */
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        if (pass)
            execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save",
                   "", "--appendonly", "no", "--dir", tmpdir, "--requirepass", pass, "--unixsocket",
                   sock, "--unixsocketperm", "700", (char *)NULL);
        else
            execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save",
                   "", "--appendonly", "no", "--dir", tmpdir, (char *)NULL);
        _exit(127);
    }
    redis_pid = pid;
    for (int i = 0; i < 500; i++) { /* up to 5 s */
        redisContext *c = redis_sync();
        if (c) {
            redisReply *rep = redisCommand(c, "PING");
            bool ok = rep != NULL; /* PONG, or NOAUTH from a server that wants a password */
            freeReplyObject(rep);
            redisFree(c);
            if (ok)
                return;
        }
        usleep(10000);
    }
    fail_msg("redis-server on port %d did not start", redis_port);
}

static void redis_start(void)
{
    redis_start_with(NULL);
}

static int redis_teardown(void **state)
{
    redis_kill();
    return teardown(state);
}

static bl_store_t *open_redis_db(uint64_t ttl, int db)
{
    char url[64], err[512];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/%d", redis_port, db);
    bl_store_cfg_t cfg = {.redis_url = url,
                          .sqlite_path = "/nonexistent/ignored",
                          .ttl_s = ttl,
                          .redis_timeout_ms = 1000};
    bl_store_t *s = NULL;
    if (bl_store_open(&loop, &cfg, &s, err, sizeof(err)) != 0)
        fail_msg("open %s: %s", url, err);
    return s;
}

static bl_store_t *open_redis(uint64_t ttl)
{
    return open_redis_db(ttl, 0);
}

static void on_wait_timer(uv_timer_t *t)
{
    (*(int *)t->data)++;
}

static void wait_ms(uint64_t ms)
{
    uv_timer_t t;
    int fired = 0;
    uv_timer_init(&loop, &t);
    t.data = &fired;
    uv_timer_start(&t, on_wait_timer, ms, 0);
    run_until(&fired);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static void test_redis(void **state)
{
    if (!redis_installed()) {
        printf("SKIP redis: redis-server not installed\n");
        return;
    }
    redis_port = free_port();
    redis_start();
    bl_store_t *s = open_redis(3600);
    assert_string_equal(bl_store_backend(s), "redis");
    check_round_trips(s);
    check_invalid(s);

    /* the key and its TTL, as another replica would see them */
    redisContext *c = redis_sync();
    assert_non_null(c);
    redisReply *rep = redisCommand(c, "TTL ballast:resp:resp_abc-123");
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    assert_true(rep->integer > 3500 && rep->integer <= 3600);
    freeReplyObject(rep);
    redisFree(c);

    /* the database number in the URL is selected before any command */
    bl_store_t *s3 = open_redis_db(0, 3);
    assert_int_equal(do_put(s3, "resp_db3", "[3]", 3), 0);
    close_sync(s3);
    c = redis_sync();
    assert_non_null(c);
    rep = redisCommand(c, "GET ballast:resp:resp_db3");
    assert_int_equal(rep->type, REDIS_REPLY_NIL);
    freeReplyObject(rep);
    freeReplyObject(redisCommand(c, "SELECT 3"));
    rep = redisCommand(c, "GET ballast:resp:resp_db3");
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    assert_string_equal(rep->str, "[3]");
    freeReplyObject(rep);
    redisFree(c);

    /* close with queued writes, then read them back through a new store */
    for (int i = 0; i < 100; i++) {
        char id[32];
        snprintf(id, sizeof(id), "q_%d", i);
        assert_int_equal(bl_store_put(s, id, id, strlen(id), NULL, NULL), 0);
    }
    close_sync(s);
    s = open_redis(0);
    res_t r = {0};
    assert_int_equal(do_get(s, "q_99", &r), 0);
    assert_string_equal(r.val, "q_99");
    assert_int_equal(do_get(s, "q_0", &r), 0);
    assert_string_equal(r.val, "q_0");

    /* a hung server (stopped, its socket still open): the watchdog fails the
     * call instead of leaving it pending, and the store reconnects */
    kill(redis_pid, SIGSTOP);
    res_t hung = {0};
    assert_int_equal(bl_store_get(s, "q_2", get_done, &hung), 0);
    run_until(&hung.calls);
    assert_int_equal(hung.rc, BL_EIO);
    kill(redis_pid, SIGCONT);
    for (int i = 0; i < 200 && do_get(s, "q_2", &r) != 0; i++)
        wait_ms(50);
    assert_string_equal(r.val, "q_2");
    res_reset(&hung);

    /* server killed: calls fail with an error, nothing crashes */
    res_t inflight = {0};
    assert_int_equal(bl_store_get(s, "q_1", get_done, &inflight), 0);
    redis_kill();
    run_until(&inflight.calls); /* answered before the kill, or lost with the server */
    if (inflight.rc == 0)
        assert_string_equal(inflight.val, "q_1");
    else
        assert_int_equal(inflight.rc, BL_EIO);
    wait_ms(50);
    int rc = do_get(s, "q_1", &r);
    assert_true(rc < 0 && rc != BL_ENOENT);
    rc = do_put(s, "q_1", "x", 1);
    assert_true(rc < 0);

    /* server back on the same port: the store reconnects by itself */
    redis_start();
    for (int i = 0; i < 200; i++) { /* backoff tops out at 5 s */
        if (do_put(s, "back", "[1]", 3) == 0)
            break;
        wait_ms(50);
    }
    assert_int_equal(do_get(s, "back", &r), 0);
    assert_string_equal(r.val, "[1]");
    close_sync(s);
    res_reset(&r);
    res_reset(&inflight);

    /* a store whose server is gone closes cleanly, with a reconnect pending */
    redis_kill();
    s = open_redis(0);
    assert_true(do_get(s, "x", &r) < 0);
    close_sync(s);
    res_reset(&r);
}

static bl_store_t *open_url(const char *url)
{
    char err[512];
    bl_store_cfg_t cfg = {.redis_url = url, .redis_timeout_ms = 1000};
    bl_store_t *s = NULL;
    if (bl_store_open(&loop, &cfg, &s, err, sizeof(err)) != 0)
        fail_msg("open %s: %s", url, err);
    return s;
}

static void test_redis_auth_and_unix(void **state)
{
    if (!redis_installed()) {
        printf("SKIP redis: redis-server not installed\n");
        return;
    }
    redis_port = free_port();
    redis_start_with("s3cret");
    char url[256];
    res_t r = {0};

    snprintf(url, sizeof(url), "redis://:s3cret@127.0.0.1:%d", redis_port);
    bl_store_t *s = open_url(url);
    assert_int_equal(do_put(s, "resp_auth", "[1]", 3), 0);
    assert_int_equal(do_get(s, "resp_auth", &r), 0);
    assert_string_equal(r.val, "[1]");
    close_sync(s);

    /* a wrong password fails the calls, it does not hang or crash */
    snprintf(url, sizeof(url), "redis://default:wrong@127.0.0.1:%d", redis_port);
    s = open_url(url);
    assert_int_equal(do_get(s, "resp_auth", &r), BL_EIO);
    close_sync(s);

    /* the same data over the unix socket, once the server wants no password */
    redisContext *c = redis_sync();
    assert_non_null(c);
    freeReplyObject(redisCommand(c, "AUTH s3cret"));
    redisReply *rep = redisCommand(c, "CONFIG SET requirepass %s", "");
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    redisFree(c);
    snprintf(url, sizeof(url), "unix:%s/redis.sock", tmpdir);
    s = open_url(url);
    assert_int_equal(do_get(s, "resp_auth", &r), 0);
    assert_string_equal(r.val, "[1]");
    close_sync(s);
    res_reset(&r);
}

static void test_redis_bad_urls(void **state)
{
    const char *bad[] = {"http://x",
                         "redis://",
                         "redis://127.0.0.1:0",
                         "redis://127.0.0.1:99999",
                         "redis://127.0.0.1:6379/x",
                         "unix:relative",
                         "redis://[::1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[512] = "";
        bl_store_cfg_t cfg = {.redis_url = bad[i]};
        bl_store_t *s = NULL;
        assert_int_equal(bl_store_open(&loop, &cfg, &s, err, sizeof(err)), BL_EINVAL);
        assert_null(s);
        assert_non_null(strstr(err, "redis url"));
    }
}

#else

static int redis_teardown(void **state)
{
    return teardown(state);
}

static void test_redis(void **state)
{
    printf("SKIP redis: built without hiredis (BL_HAVE_HIREDIS)\n");
    if (system("command -v redis-server >/dev/null 2>&1") != 0)
        printf("SKIP redis: redis-server not installed\n");
}

static void test_redis_auth_and_unix(void **state)
{
}

static void test_redis_bad_urls(void **state)
{
    char err[512] = "";
    bl_store_cfg_t cfg = {.redis_url = "redis://127.0.0.1:6379"};
    bl_store_t *s = NULL;
    assert_int_equal(bl_store_open(&loop, &cfg, &s, err, sizeof(err)), BL_EUNSUPPORTED);
    assert_null(s);
    assert_non_null(strstr(err, "without hiredis"));
}

#endif

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* a write to a killed redis-server */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sqlite_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_close_lands_queued_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_reentrant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis, setup, redis_teardown),
        cmocka_unit_test_setup_teardown(test_redis_auth_and_unix, setup, redis_teardown),
        cmocka_unit_test_setup_teardown(test_redis_bad_urls, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
