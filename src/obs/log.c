#include "obs/obs.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <stdlib.h>

static bl_log_level_t g_level = BL_LOG_INFO;
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

static void format_ts(char out[32])
{
    int64_t ms = bl_wall_ms();
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
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
        /* One fputs per line keeps lines whole even if stderr is a pipe shared
         * with another process. */
        size_t n = strlen(s);
        s[n] = '\n';
        fwrite(s, 1, n + 1, stderr);
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
