/*
 * Requests that go through the router: validate the body, find the route,
 * start the call, and turn its outcome into the client's response, one log
 * line and the request metrics.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "util/json_scan.h"

typedef struct {
    bl_api_t *api;
    bl_http_req_t *req;       /* NULL once the response has ended */
    bl_call_t *call;
    char request_id[17];
    char route[128];
    char path[64];
    char backend[160];
    bool stream;
    bool streaming;           /* a streamed response has started */
    int status;
    uint64_t start_ns;
    double ttfb_ms;
    uint64_t body_len;
} proxy_ctx_t;

/* snprintf(dst, cap, "%.*s", n, src) without the printf machinery (hot path). */
static void copy_str(char *dst, size_t cap, const char *src, size_t n)
{
    n = src ? BL_MIN(n, cap - 1) : 0;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

/* "%llu" into out (24 bytes). */
static void fmt_u64(char out[24], unsigned long long v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(out, tmp + i, sizeof tmp - i);
    out[sizeof tmp - i] = '\0';
}

static void ctx_free(proxy_ctx_t *x)
{
    x->api->inflight--;
    free(x);
}

/* The log line's fields, appended without printf: formatting (floats
 * especially) was the largest user-space cost of a proxied request after
 * curl. Output is what bl_log_kv_* would write. */
static void put_key(bl_buf_t *b, const char *key)
{
    bl_buf_append(b, ",\"", 2);
    bl_buf_append_str(b, key);
    bl_buf_append(b, "\":", 2);
}

static void put_i64(bl_buf_t *b, long long v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[--i] = '-';
    bl_buf_append(b, tmp + i, sizeof tmp - i);
}

/* "%.3f" for the millisecond figures (non-negative, far below 2^53 us). */
static void put_ms(bl_buf_t *b, double ms)
{
    if (!(ms >= 0 && ms < 9e12)) {
        bl_buf_printf(b, "%.3f", ms); /* never on the hot path */
        return;
    }
    unsigned long long us = (unsigned long long)(ms * 1000.0 + 0.5);
    put_i64(b, (long long)(us / 1000));
    char frac[4] = {'.', (char)('0' + us / 100 % 10), (char)('0' + us / 10 % 10),
                    (char)('0' + us % 10)};
    bl_buf_append(b, frac, 4);
}

static void put_str(bl_buf_t *b, const char *key, const char *val)
{
    put_key(b, key);
    bl_json_escape(b, val, strlen(val));
}

static void log_line(proxy_ctx_t *x, const bl_call_report_t *rep, const char *note)
{
    double total_ms = (double)(bl_now_ns() - x->start_ns) / 1e6;
    bl_api_count(x->api, x->route, x->backend[0] ? x->backend : "none", x->status, total_ms / 1000.0);
    /* Written by hand into a reused buffer: one line per request is on the
     * hot path, and a JSON tree per request cost a third of its CPU. */
    bl_buf_t *b = bl_log_begin(x->status >= 500 ? BL_LOG_WARN : BL_LOG_INFO, "request");
    if (!b)
        return;
    put_str(b, "request_id", x->request_id);
    put_str(b, "path", x->path);
    put_str(b, "route", x->route);
    put_key(b, "status");
    put_i64(b, x->status);
    put_key(b, "stream");
    bl_buf_append_str(b, x->stream ? "true" : "false");
    bl_buf_append_str(b, ",\"attempts\":[");
    for (unsigned i = 0; rep && i < rep->n_attempts; i++) {
        const bl_attempt_t *at = &rep->attempts[i];
        bl_buf_append_str(b, i ? ",{\"target\":" : "{\"target\":");
        bl_json_escape(b, at->target, strlen(at->target));
        put_key(b, "tier");
        put_i64(b, at->tier);
        put_key(b, "outcome");
        bl_buf_append(b, "\"", 1);
        bl_buf_append_str(b, bl_attempt_outcome_name(at->outcome));
        bl_buf_append(b, "\"", 1);
        put_key(b, "ms");
        put_ms(b, at->ms);
        if (at->http_status) {
            put_key(b, "status");
            put_i64(b, at->http_status);
        }
        if (at->detail[0])
            put_str(b, "detail", at->detail);
        bl_buf_append(b, "}", 1);
    }
    bl_buf_append(b, "]", 1);
    if (x->backend[0])
        put_str(b, "backend", x->backend);
    if (x->ttfb_ms >= 0) {
        put_key(b, "ttfb_ms");
        put_ms(b, x->ttfb_ms);
    }
    put_key(b, "total_ms");
    put_ms(b, total_ms);
    if (rep && rep->usage_total >= 0) {
        bl_buf_append_str(b, ",\"usage\":{\"prompt_tokens\":");
        put_i64(b, rep->usage_prompt);
        bl_buf_append_str(b, ",\"completion_tokens\":");
        put_i64(b, rep->usage_completion);
        bl_buf_append_str(b, ",\"total_tokens\":");
        put_i64(b, rep->usage_total);
        bl_buf_append(b, "}", 1);
    }
    if (rep && rep->stream_cut)
        bl_log_kv_raw(b, "stream_cut", "true", 4);
    if (rep && rep->midstream_failovers)
        bl_log_kv_int(b, "midstream_failovers", rep->midstream_failovers);
    if (note)
        put_str(b, "note", note);
    bl_log_end(b);
}

/* The client went away mid-request: the call is cancelled at once. */
static void on_client_abort(void *ud)
{
    proxy_ctx_t *x = ud;
    x->req = NULL;
    if (x->call)
        bl_call_cancel(x->call);
    x->call = NULL;
    if (!x->streaming)
        x->status = 499; /* nginx's "client closed request" */
    log_line(x, NULL, "client disconnected");
    ctx_free(x);
}

static void on_response(void *ud, const bl_call_response_t *r)
{
    proxy_ctx_t *x = ud;
    if (!x->req)
        return;
    x->status = r->status;
    x->ttfb_ms = (double)(bl_now_ns() - x->start_ns) / 1e6;
    copy_str(x->backend, sizeof x->backend, r->backend, strlen(r->backend));
    char attempts[24];
    fmt_u64(attempts, r->attempts);
    bl_http_header_t h[8];
    size_t n = 0;
    const char *ct = r->content_type ? r->content_type
                     : r->stream     ? "text/event-stream"
                                     : "application/json";
    h[n++] = (bl_http_header_t){BL_STR("Content-Type"), {ct, strlen(ct)}};
    h[n++] = (bl_http_header_t){BL_STR("x-request-id"), {x->request_id, strlen(x->request_id)}};
    h[n++] = (bl_http_header_t){BL_STR("x-ballast-backend"), {r->backend, strlen(r->backend)}};
    h[n++] = (bl_http_header_t){BL_STR("x-ballast-attempts"), {attempts, strlen(attempts)}};
    if (r->degraded)
        h[n++] = (bl_http_header_t){BL_STR("x-ballast-degraded"), BL_STR("true")};
    if (r->retry_after)
        h[n++] = (bl_http_header_t){BL_STR("Retry-After"), {r->retry_after, strlen(r->retry_after)}};
    const char *lv[] = {x->route};
    bl_metric_observe(x->api->m_ttfb_client, x->ttfb_ms / 1000.0, lv);
    if (r->stream) {
        h[n++] = (bl_http_header_t){BL_STR("Cache-Control"), BL_STR("no-cache")};
        x->streaming = true;
        bl_http_stream_start(x->req, r->status, h, n);
        return;
    }
    bl_http_req_t *req = x->req;
    x->req = NULL; /* ended by the respond below; the server may reuse it */
    bl_http_req_set_abort(req, NULL, NULL);
    bl_http_respond(req, r->status, h, n, r->body, r->len);
}

static void on_data(void *ud, const char *p, size_t n)
{
    proxy_ctx_t *x = ud;
    if (x->req)
        bl_http_stream_write(x->req, p, n);
}

static void on_finish(void *ud, const bl_call_report_t *rep)
{
    proxy_ctx_t *x = ud;
    x->call = NULL;
    if (x->req) {
        bl_http_req_t *req = x->req;
        x->req = NULL;
        bl_http_req_set_abort(req, NULL, NULL);
        if (x->streaming) {
            if (rep->stream_cut) {
                /* The provider broke off and nothing can continue it (yet): say
                 * so in the stream, as OpenAI reports errors inside a stream. */
                static const char ev[] =
                    "data: {\"error\":{\"message\":\"the upstream stream was interrupted\","
                    "\"type\":\"server_error\",\"param\":null,\"code\":\"stream_interrupted\"}}\n\n";
                bl_http_stream_write(req, ev, sizeof ev - 1);
            }
            bl_http_stream_end(req);
        } else if (!rep->answered) {
            x->status = rep->status;
            json_t *err = json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message",
                                    rep->error_message, "type", rep->error_type, "param", "code",
                                    rep->error_code);
            json_t *atts = json_array();
            for (unsigned i = 0; i < rep->n_attempts; i++)
                json_array_append_new(
                    atts, json_pack("{s:s, s:s, s:i}", "target", rep->attempts[i].target,
                                    "outcome", bl_attempt_outcome_name(rep->attempts[i].outcome),
                                    "status", rep->attempts[i].http_status));
            json_object_set_new(json_object_get(err, "error"), "attempts", atts);
            char *body = json_dumps(err, JSON_COMPACT | JSON_PRESERVE_ORDER);
            json_decref(err);
            char ra[24], nat[16];
            snprintf(ra, sizeof ra, "%llu", (unsigned long long)rep->retry_after_s);
            snprintf(nat, sizeof nat, "%u", rep->n_attempts);
            bl_http_header_t h[4] = {
                {BL_STR("Content-Type"), BL_STR("application/json")},
                {BL_STR("x-request-id"), {x->request_id, strlen(x->request_id)}},
                {BL_STR("x-ballast-attempts"), {nat, strlen(nat)}},
            };
            size_t nh = 3;
            if (rep->status == 503)
                h[nh++] = (bl_http_header_t){BL_STR("Retry-After"), {ra, strlen(ra)}};
            bl_http_respond(req, rep->status, h, nh, body ? body : "{}", body ? strlen(body) : 2);
            free(body);
        }
    }
    if (!rep->answered)
        x->status = rep->status;
    log_line(x, rep, NULL);
    ctx_free(x);
}

void bl_api_proxy(bl_api_t *a, bl_http_req_t *req, const char *upstream_path, const char *rid)
{
    size_t len;
    const char *body = bl_http_req_body(req, &len);
    bl_json_member_t m[] = {{.key = "model"}, {.key = "stream"}};
    const char *why = NULL;
    size_t where = 0;
    char msg[512];
    if (bl_json_scan_object(body, len, m, BL_ARRAY_LEN(m), &why, &where)) {
        snprintf(msg, sizeof msg,
                 "We could not parse the JSON body of your request: %s at byte %zu.",
                 why ? why : "invalid JSON", where);
        bl_api_error(req, 400, "invalid_request_error", "invalid_json", msg, rid);
        return;
    }
    if (m[0].kind == BL_JSON_NONE) {
        bl_api_error(req, 400, "invalid_request_error", "missing_model",
                     "You must provide a model parameter.", rid);
        return;
    }
    if (m[0].kind != BL_JSON_STRING || m[0].count > 1) {
        bl_api_error(req, 400, "invalid_request_error", "invalid_model",
                     m[0].count > 1 ? "The model parameter appears more than once."
                                    : "The model parameter must be a string.",
                     rid);
        return;
    }
    if (m[1].kind != BL_JSON_NONE && m[1].kind != BL_JSON_TRUE && m[1].kind != BL_JSON_FALSE &&
        m[1].kind != BL_JSON_NULL) {
        bl_api_error(req, 400, "invalid_request_error", "invalid_type",
                     "The stream parameter must be a boolean.", rid);
        return;
    }
    char model[256];
    long mn = bl_json_unescape(body + m[0].off, m[0].len, model, sizeof model);
    const bl_route_cfg_t *route = mn >= 0 ? bl_config_route(a->cfg, model, (size_t)mn) : NULL;
    if (!route) {
        snprintf(msg, sizeof msg, "The model '%.200s' does not exist or you do not have access to it.",
                 mn >= 0 ? model : "(too long)");
        bl_api_error(req, 404, "invalid_request_error", "model_not_found", msg, rid);
        return;
    }

    proxy_ctx_t *x = calloc(1, sizeof *x);
    if (!x) {
        bl_api_error(req, 503, "server_error", "overloaded", "out of memory", rid);
        return;
    }
    a->inflight++;
    x->api = a;
    x->req = req;
    x->start_ns = bl_http_req_start_ns(req);
    x->ttfb_ms = -1;
    x->stream = m[1].kind == BL_JSON_TRUE;
    x->body_len = len;
    copy_str(x->request_id, sizeof x->request_id, rid, strlen(rid));
    copy_str(x->route, sizeof x->route, route->model, strlen(route->model));
    bl_str_t path = bl_http_req_path(req);
    copy_str(x->path, sizeof x->path, path.p, path.n);
    bl_http_req_set_abort(req, on_client_abort, x);

    bl_call_req_t creq = {
        .path = upstream_path,
        .body = body,
        .body_len = len,
        .model_off = m[0].off,
        .model_len = m[0].len,
        .stream = x->stream,
        .request_id = x->request_id,
    };
    bl_call_cb_t cb = {.ud = x, .on_response = on_response, .on_data = on_data,
                       .on_finish = on_finish};
    if (bl_call_start(a->router, a->cfg, route, &creq, &cb, &x->call)) {
        bl_http_req_set_abort(req, NULL, NULL);
        bl_api_error(req, 503, "server_error", "overloaded", "out of memory", rid);
        ctx_free(x);
    }
}
