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
    char anth_version[48];
    char anth_beta[512];
    bool stream;
    bool streaming;           /* a streamed response has started */
    bl_family_t family;       /* the API family the client speaks */
    bool estimate;            /* count_tokens: estimate when no target answers */
    char *owned_body;         /* the body sent when it is not the client's (Responses history) */
    char *save_items;         /* Responses: the input items to store with the answer, or NULL */
    bl_buf_t tail;            /* Responses stream: bytes not yet split into events */
    json_t *final_resp;       /* Responses: the completed response object */
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

/* A client header as a C string in buf, or NULL when absent, too long or
 * holding control characters (it is sent on upstream). */
static const char *cstr_header(bl_http_req_t *req, const char *name, char *buf, size_t cap)
{
    bl_str_t v = bl_http_req_header(req, name);
    if (!v.p || !v.n || v.n >= cap)
        return NULL;
    for (size_t i = 0; i < v.n; i++)
        if ((unsigned char)v.p[i] < 0x20 || v.p[i] == 0x7f)
            return NULL;
    memcpy(buf, v.p, v.n);
    buf[v.n] = '\0';
    return buf;
}

static void ctx_free(proxy_ctx_t *x)
{
    free(x->owned_body);
    free(x->save_items);
    bl_buf_free(&x->tail);
    json_decref(x->final_resp);
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

static bool estimate_response(proxy_ctx_t *x, bl_http_req_t *req);

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
    if (x->estimate && r->status == 404 && !r->stream) {
        /* an Anthropic-compatible server without count_tokens: estimate */
        bl_http_req_t *req = x->req;
        x->req = NULL;
        bl_http_req_set_abort(req, NULL, NULL);
        if (!estimate_response(x, req))
            bl_http_respond(req, r->status, h, n, r->body, r->len);
        else
            x->status = 200;
        return;
    }
    if (r->stream) {
        h[n++] = (bl_http_header_t){BL_STR("Cache-Control"), BL_STR("no-cache")};
        x->streaming = true;
        bl_http_stream_start(x->req, r->status, h, n);
        return;
    }
    if (x->save_items && r->status / 100 == 2 && r->body) {
        json_t *o = json_loadb(r->body, r->len, 0, NULL);
        if (json_is_object(o) && json_is_array(json_object_get(o, "output")))
            x->final_resp = o;
        else
            json_decref(o);
    }
    bl_http_req_t *req = x->req;
    x->req = NULL; /* ended by the respond below; the server may reuse it */
    bl_http_req_set_abort(req, NULL, NULL);
    bl_http_respond(req, r->status, h, n, r->body, r->len);
}

/* count_tokens with no target to count: an estimate (see count_tokens.c). */
static bool estimate_response(proxy_ctx_t *x, bl_http_req_t *req)
{
    size_t len;
    const char *body = bl_http_req_body(req, &len);
    long long n;
    if (bl_api_estimate_tokens(body, len, &n))
        return false;
    char out[64];
    snprintf(out, sizeof out, "{\"input_tokens\":%lld}", n);
    bl_http_header_t h[] = {
        {BL_STR("Content-Type"), BL_STR("application/json")},
        {BL_STR("x-request-id"), {x->request_id, strlen(x->request_id)}},
        {BL_STR("x-ballast-estimate"), BL_STR("true")},
    };
    bl_http_respond(req, 200, h, BL_ARRAY_LEN(h), out, strlen(out));
    return true;
}

/* The call found no answer: the error in the client's family's shape, with
 * every attempt listed (an extra member both families' clients ignore). */
static int fail_response(proxy_ctx_t *x, bl_http_req_t *req, const bl_call_report_t *rep)
{
    bl_xerr_kind_t kind = bl_xerr_kind_of_status(rep->status);
    int status = bl_xerr_status(x->family, kind);
    bl_buf_t b = {0};
    bl_xerr_body(x->family, kind, rep->error_message, NULL, rep->error_code, &b);
    json_t *err = json_loadb(b.data ? b.data : "", b.len, 0, NULL);
    json_t *atts = json_array();
    for (unsigned i = 0; i < rep->n_attempts; i++)
        json_array_append_new(atts, json_pack("{s:s, s:s, s:i}", "target", rep->attempts[i].target,
                                              "outcome",
                                              bl_attempt_outcome_name(rep->attempts[i].outcome),
                                              "status", rep->attempts[i].http_status));
    json_object_set_new(json_object_get(err, "error"), "attempts", atts);
    char *body = json_dumps(err, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(err);
    bl_buf_free(&b);
    char ra[24], nat[16];
    snprintf(ra, sizeof ra, "%llu", (unsigned long long)rep->retry_after_s);
    snprintf(nat, sizeof nat, "%u", rep->n_attempts);
    bl_http_header_t h[4] = {
        {BL_STR("Content-Type"), BL_STR("application/json")},
        {BL_STR("x-request-id"), {x->request_id, strlen(x->request_id)}},
        {BL_STR("x-ballast-attempts"), {nat, strlen(nat)}},
    };
    size_t nh = 3;
    if (kind == BL_XERR_OVERLOADED)
        h[nh++] = (bl_http_header_t){BL_STR("Retry-After"), {ra, strlen(ra)}};
    bl_http_respond(req, status, h, nh, body ? body : "{}", body ? strlen(body) : 2);
    free(body);
    return status;
}

/* A Responses stream to be stored: find its response.completed event (the
 * only one read; the others are skipped by a substring test). */
static void watch_completed(proxy_ctx_t *x, const char *p, size_t n)
{
    bl_buf_append(&x->tail, p, n);
    size_t off = 0;
    for (;;) {
        const char *s = x->tail.data + off;
        size_t left = x->tail.len - off;
        const char *end = memmem(s, left, "\n\n", 2);
        if (!end)
            break;
        size_t ev = (size_t)(end - s) + 2;
        if (memmem(s, ev, "\"response.completed\"", 20) ||
            memmem(s, ev, "\"response.incomplete\"", 21)) {
            const char *d = memmem(s, ev, "data:", 5);
            json_t *o = d ? json_loadb(d + 5, (size_t)(end - d - 5), 0, NULL) : NULL;
            json_t *resp = json_object_get(o, "response");
            if (json_is_object(resp) && json_is_array(json_object_get(resp, "output"))) {
                json_decref(x->final_resp);
                x->final_resp = json_incref(resp);
            }
            json_decref(o);
        }
        off += ev;
    }
    bl_buf_consume(&x->tail, off);
    if (x->tail.len > (8u << 20))
        bl_buf_reset(&x->tail); /* an endless event: not stored */
}

static void on_data(void *ud, const char *p, size_t n)
{
    proxy_ctx_t *x = ud;
    if (x->save_items && !x->final_resp)
        watch_completed(x, p, n);
    if (x->req)
        bl_http_stream_write(x->req, p, n);
}

/* The conversation so far under the response's id: its input items, then
 * its output items, for a later previous_response_id. */
static void store_answer(proxy_ctx_t *x)
{
    const char *id = json_string_value(json_object_get(x->final_resp, "id"));
    json_t *items = json_loads(x->save_items, 0, NULL);
    if (!id || !json_is_array(items) || !x->api->store) {
        json_decref(items);
        return;
    }
    json_array_extend(items, json_object_get(x->final_resp, "output"));
    char *text = json_dumps(items, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(items);
    if (text && bl_store_put(x->api->store, id, text, strlen(text), NULL, NULL))
        bl_log(BL_LOG_WARN, "response %s not stored", id);
    free(text);
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
            if (rep->stream_cut && !rep->cut_reported) {
                /* The provider broke off and nothing can continue it (yet): say
                 * so in the stream, as OpenAI reports errors inside a stream. */
                static const char ev[] =
                    "data: {\"error\":{\"message\":\"the upstream stream was interrupted\","
                    "\"type\":\"server_error\",\"param\":null,\"code\":\"stream_interrupted\"}}\n\n";
                bl_http_stream_write(req, ev, sizeof ev - 1);
            }
            bl_http_stream_end(req);
        } else if (!rep->answered && x->estimate && estimate_response(x, req)) {
            x->status = 200;
        } else if (!rep->answered) {
            x->status = fail_response(x, req, rep);
        }
    }
    if (!rep->answered && !x->status)
        x->status = bl_xerr_status(x->family, bl_xerr_kind_of_status(rep->status));
    if (rep->answered && x->final_resp && !rep->stream_cut)
        store_answer(x);
    log_line(x, rep, NULL);
    ctx_free(x);
}

void bl_api_proxy(bl_api_t *a, bl_http_req_t *req, const bl_api_route_t *ep, const char *rid)
{
    size_t len;
    const char *body = bl_http_req_body(req, &len);
    bl_api_proxy_body(a, req, ep, rid, body, len, NULL, NULL);
}

void bl_api_proxy_body(bl_api_t *a, bl_http_req_t *req, const bl_api_route_t *ep, const char *rid,
                       const char *body, size_t len, char *owned_body, char *save_items)
{
    const char *upstream_path = ep->upstream;
    bl_family_t fam = ep->family;
    bl_json_member_t m[] = {{.key = "model"}, {.key = "stream"}};
    const char *why = NULL;
    size_t where = 0;
    char msg[512];
    if (bl_json_scan_object(body, len, m, BL_ARRAY_LEN(m), &why, &where)) {
        snprintf(msg, sizeof msg,
                 "We could not parse the JSON body of your request: %s at byte %zu.",
                 why ? why : "invalid JSON", where);
        bl_api_error_fam(req, fam, 400, "invalid_request_error", "invalid_json", msg, rid);
        goto refuse;
    }
    if (m[0].kind == BL_JSON_NONE) {
        bl_api_error_fam(req, fam, 400, "invalid_request_error", "missing_model",
                     "You must provide a model parameter.", rid);
        goto refuse;
    }
    if (m[0].kind != BL_JSON_STRING || m[0].count > 1) {
        bl_api_error_fam(req, fam, 400, "invalid_request_error", "invalid_model",
                     m[0].count > 1 ? "The model parameter appears more than once."
                                    : "The model parameter must be a string.",
                     rid);
        goto refuse;
    }
    if (m[1].kind != BL_JSON_NONE && m[1].kind != BL_JSON_TRUE && m[1].kind != BL_JSON_FALSE &&
        m[1].kind != BL_JSON_NULL) {
        bl_api_error_fam(req, fam, 400, "invalid_request_error", "invalid_type",
                     "The stream parameter must be a boolean.", rid);
        goto refuse;
    }
    char model[256];
    long mn = bl_json_unescape(body + m[0].off, m[0].len, model, sizeof model);
    const bl_route_cfg_t *route = mn >= 0 ? bl_config_route(a->cfg, model, (size_t)mn) : NULL;
    if (!route) {
        snprintf(msg, sizeof msg, "The model '%.200s' does not exist or you do not have access to it.",
                 mn >= 0 ? model : "(too long)");
        bl_api_error_fam(req, fam, 404, "invalid_request_error", "model_not_found", msg, rid);
        goto refuse;
    }

    proxy_ctx_t *x = calloc(1, sizeof *x);
    if (!x) {
        bl_api_error_fam(req, fam, 503, "server_error", "overloaded", "out of memory", rid);
        goto refuse;
    }
    a->inflight++;
    x->api = a;
    x->req = req;
    x->start_ns = bl_http_req_start_ns(req);
    x->ttfb_ms = -1;
    x->stream = m[1].kind == BL_JSON_TRUE;
    x->family = fam;
    x->estimate = ep->estimate;
    x->owned_body = owned_body;
    x->save_items = save_items;
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
        .family = fam,
        .raw_only = ep->raw_only,
        .from_peer = bl_http_req_header(req, "x-ballast-hop").p != NULL,
        .anthropic_version = cstr_header(req, "anthropic-version", x->anth_version,
                                         sizeof x->anth_version),
        .anthropic_beta = cstr_header(req, "anthropic-beta", x->anth_beta, sizeof x->anth_beta),
        .stream = x->stream,
        .request_id = x->request_id,
    };
    bl_call_cb_t cb = {.ud = x, .on_response = on_response, .on_data = on_data,
                       .on_finish = on_finish};
    if (bl_call_start(a->router, a->cfg, route, &creq, &cb, &x->call)) {
        bl_http_req_set_abort(req, NULL, NULL);
        bl_api_error_fam(req, fam, 503, "server_error", "overloaded", "out of memory", rid);
        ctx_free(x);
    }
    return;
refuse:
    free(owned_body);
    free(save_items);
}
