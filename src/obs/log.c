#include "obs/obs.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <unistd.h>
#include <stdlib.h>

static bl_log_level_t g_level = BL_LOG_INFO;
static bl_buf_t g_out;    /* lines waiting for the end of the loop turn */
static bl_buf_t g_line;   /* the line being built */
static uv_check_t g_check;
static bool g_attached;
static const char *const LEVEL_NAMES[] = {"debug", "info", "warn", "error"};

void bl_log_set_level(bl_log_level_t l)
{
    g_level = l;
}

int bl_log_parse_level(const char *s, bl_log_level_t *out)
{
    for (size_t i = 0; i < BL_ARRAY_LEN(LEVEL_NAMES); i++)
        if (!strcmp(s, LEVEL_NAMES[i])) {
            *out = (bl_log_level_t)i;
            return BL_OK;
        }
    return BL_EINVAL;
}

bool bl_log_enabled(bl_log_level_t l)
{
    return l >= g_level;
}

/* The seconds part is formatted once per second. */
static void format_ts(char out[32])
{
    static time_t last = -1;
    static char head[24];
    int64_t ms = bl_wall_ms();
    time_t s = (time_t)(ms / 1000);
    if (s != last) {
        struct tm tm;
        gmtime_r(&s, &tm);
        strftime(head, sizeof head, "%Y-%m-%dT%H:%M:%S", &tm);
        last = s;
    }
    snprintf(out, 32, "%s.%03dZ", head, (int)(ms % 1000));
}

static void write_all(const char *p, size_t n)
{
    while (n) {
        ssize_t k = write(STDERR_FILENO, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere to report a failing log */
        }
        p += k;
        n -= (size_t)k;
    }
}

void bl_log_flush(void)
{
    if (g_out.len)
        write_all(g_out.data, g_out.len);
    bl_buf_reset(&g_out);
}

static void emit(const char *p, size_t n)
{
    if (!g_attached) {
        write_all(p, n);
        return;
    }
    bl_buf_append(&g_out, p, n);
    if (g_out.len > (64u << 10))
        bl_log_flush();
}

static void on_check(uv_check_t *h)
{
    (void)h;
    bl_log_flush();
}

void bl_log_attach(uv_loop_t *loop)
{
    if (g_attached)
        return;
    uv_check_init(loop, &g_check);
    uv_check_start(&g_check, on_check);
    uv_unref((uv_handle_t *)&g_check); /* logging never keeps the loop alive */
    g_attached = true;
}

void bl_log_detach(void)
{
    if (!g_attached)
        return;
    bl_log_flush();
    uv_check_stop(&g_check);
    uv_close((uv_handle_t *)&g_check, NULL);
    g_attached = false;
    bl_buf_free(&g_out);
    bl_buf_free(&g_line);
}

void bl_json_escape(bl_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    bl_buf_reserve(b, n + 2);
    bl_buf_append(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\' && ch < 0x7f)
            continue;
        bl_buf_append(b, s + run, i - run);
        run = i + 1;
        char esc[7] = {'\\', 0};
        switch (ch) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            if (ch >= 0x80) { /* UTF-8 passes through; stray bytes are the caller's */
                run = i;
                continue;
            }
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 15];
        }
        bl_buf_append_str(b, esc);
    }
    bl_buf_append(b, s + run, n - run);
    bl_buf_append(b, "\"", 1);
}

bl_buf_t *bl_log_begin(bl_log_level_t l, const char *msg)
{
    if (l < g_level)
        return NULL;
    char ts[32];
    format_ts(ts);
    bl_buf_reset(&g_line);
    bl_buf_printf(&g_line, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", ts, LEVEL_NAMES[l]);
    bl_json_escape(&g_line, msg, strlen(msg));
    return &g_line;
}

void bl_log_kv_str(bl_buf_t *b, const char *key, const char *val)
{
    bl_buf_printf(b, ",\"%s\":", key);
    bl_json_escape(b, val, strlen(val));
}

void bl_log_kv_int(bl_buf_t *b, const char *key, long long v)
{
    bl_buf_printf(b, ",\"%s\":%lld", key, v);
}

void bl_log_kv_ms(bl_buf_t *b, const char *key, double ms)
{
    bl_buf_printf(b, ",\"%s\":%.3f", key, ms);
}

void bl_log_kv_raw(bl_buf_t *b, const char *key, const char *json, size_t n)
{
    bl_buf_printf(b, ",\"%s\":", key);
    bl_buf_append(b, json, n);
}

void bl_log_end(bl_buf_t *b)
{
    bl_buf_append(b, "}\n", 2);
    emit(b->data, b->len);
}

void bl_log_json(bl_log_level_t l, json_t *obj)
{
    if (!obj)
        return;
    if (l < g_level) {
        json_decref(obj);
        return;
    }
    char ts[32];
    format_ts(ts);
    /* ts and level first, so lines read well; then the caller's fields. */
    json_t *line = json_object();
    json_object_set_new(line, "ts", json_string(ts));
    json_object_set_new(line, "level", json_string(LEVEL_NAMES[l]));
    json_object_update(line, obj);
    json_decref(obj);
    char *s = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(6));
    json_decref(line);
    if (s) {
        size_t n = strlen(s);
        s[n] = '\n'; /* over the NUL: json_dumps' buffer has room for it */
        emit(s, n + 1);
        free(s);
    }
}

void bl_log(bl_log_level_t l, const char *fmt, ...)
{
    if (l < g_level)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *o = json_object();
    json_object_set_new(o, "msg", json_string(msg));
    bl_log_json(l, o);
}

void bl_request_id(char out[17])
{
    /* A random 32-bit prefix per process plus a counter: unique within a run
     * and unlikely to collide across replicas, without a syscall per request. */
    static uint64_t prefix, counter;
    if (!prefix) {
        bl_rng_t r;
        bl_rng_seed(&r, bl_now_ns() ^ ((uint64_t)getpid() << 32));
        prefix = bl_rng_next(&r) | 1;
    }
    uint64_t v = (prefix << 32) ^ ++counter;
    snprintf(out, 17, "%016llx", (unsigned long long)v);
}
