#include "api/api_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

int bl_api_new(bl_config_t *cfg, bl_router_t *router, bl_health_table_t *health,
               bl_metrics_t *metrics, bl_api_t **out)
{
    bl_api_t *a = calloc(1, sizeof *a);
    if (!a)
        return BL_ENOMEM;
    a->cfg = bl_config_ref(cfg);
    a->router = router;
    a->health = health;
    a->metrics = metrics;
    a->m_requests = bl_metric_family(metrics, "ballast_requests_total", BL_METRIC_COUNTER,
                                     "Client requests by route, answering backend and status",
                                     "route,backend,status");
    a->m_duration = bl_metric_family(metrics, "ballast_request_duration_seconds",
                                     BL_METRIC_HISTOGRAM, "Client request duration", "route");
    a->m_ttfb_client = bl_metric_family(metrics, "ballast_request_ttfb_seconds",
                                        BL_METRIC_HISTOGRAM,
                                        "Client request time to first response byte", "route");
    a->m_inflight = bl_metric_family(metrics, "ballast_inflight_requests", BL_METRIC_GAUGE,
                                     "Requests being handled now", "");
    if (!a->m_requests || !a->m_duration || !a->m_inflight || !a->m_ttfb_client) {
        bl_api_free(a);
        return BL_ENOMEM;
    }
    *out = a;
    return BL_OK;
}

void bl_api_free(bl_api_t *a)
{
    if (!a)
        return;
    bl_config_unref(a->cfg);
    free(a);
}

void bl_api_set_locals(bl_api_t *a, bl_locals_t *ls)
{
    a->locals = ls;
}

void bl_api_set_config(bl_api_t *a, bl_config_t *cfg)
{
    bl_config_t *old = a->cfg;
    a->cfg = bl_config_ref(cfg);
    bl_config_unref(old);
}

size_t bl_api_inflight(const bl_api_t *a)
{
    return a->inflight;
}

void bl_api_count(bl_api_t *a, const char *route, const char *backend, int status, double seconds)
{
    char st[8] = "0";
    /* by hand: this runs for every request (a status is 0..999) */
    if (status > 0 && status < 1000) {
        size_t i = 0;
        if (status >= 100)
            st[i++] = (char)('0' + status / 100);
        if (status >= 10)
            st[i++] = (char)('0' + status / 10 % 10);
        st[i++] = (char)('0' + status % 10);
        st[i] = '\0';
    } else if (status) {
        snprintf(st, sizeof st, "%d", status);
    }
    const char *lv[] = {route, backend, st};
    bl_metric_add(a->m_requests, 1, lv);
    const char *rv[] = {route};
    bl_metric_observe(a->m_duration, seconds, rv);
}

void bl_api_error(bl_http_req_t *req, int status, const char *type, const char *code,
                  const char *message, const char *request_id)
{
    json_t *err = json_pack("{s:{s:s, s:s, s:n, s:s*}}", "error", "message", message, "type", type,
                            "param", "code", code);
    char *body = err ? json_dumps(err, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(err);
    bl_http_header_t h[3] = {
        {BL_STR("Content-Type"), BL_STR("application/json")},
    };
    size_t nh = 1;
    if (request_id)
        h[nh++] = (bl_http_header_t){BL_STR("x-request-id"), {request_id, strlen(request_id)}};
    const char *b = body ? body : "{\"error\":{\"message\":\"internal error\"}}";
    bl_http_respond(req, status, h, nh, b, strlen(b));
    free(body);
}

void bl_api_error_fam(bl_http_req_t *req, bl_family_t f, int status, const char *type,
                      const char *code, const char *message, const char *request_id)
{
    if (f != BL_FAM_ANTHROPIC) {
        bl_api_error(req, status, type, code, message, request_id);
        return;
    }
    bl_xerr_kind_t k = bl_xerr_kind_of_status(status);
    bl_buf_t b = {0};
    bl_xerr_body(f, k, message, NULL, code, &b);
    bl_http_header_t h[2] = {{BL_STR("Content-Type"), BL_STR("application/json")}};
    size_t nh = 1;
    if (request_id)
        h[nh++] = (bl_http_header_t){BL_STR("request-id"), {request_id, strlen(request_id)}};
    bl_http_respond(req, bl_xerr_status(f, k), h, nh, b.data ? b.data : "{}", b.data ? b.len : 2);
    bl_buf_free(&b);
}

bl_family_t bl_api_client_family(bl_http_req_t *req)
{
    /* Anthropic's SDKs always send anthropic-version; OpenAI's never do. */
    return bl_http_req_header(req, "anthropic-version").p ? BL_FAM_ANTHROPIC : BL_FAM_CHAT;
}

static void simple_json(bl_http_req_t *req, int status, const char *body)
{
    bl_http_header_t h[] = {{BL_STR("Content-Type"), BL_STR("application/json")}};
    bl_http_respond(req, status, h, 1, body, strlen(body));
}

/* Endpoints that go through the router, with the path they have on a
 * provider (relative to its base_url) and the family their clients speak. */
static const bl_api_route_t PROXIED[] = {
    {"/v1/chat/completions", "/chat/completions", BL_FAM_CHAT, false, false},
    {"/v1/completions", "/completions", BL_FAM_CHAT, true, false},
    {"/v1/embeddings", "/embeddings", BL_FAM_CHAT, true, false},
    {"/v1/responses", "/responses", BL_FAM_RESPONSES, false, false},
    {"/v1/messages", "/messages", BL_FAM_ANTHROPIC, false, false},
};

void bl_api_handle(void *ud, bl_http_req_t *req)
{
    bl_api_t *a = ud;
    bl_str_t path = bl_http_req_path(req);
    const char *method = bl_http_req_method(req);
    char rid[17];
    bl_request_id(rid);

    /* Probes and metrics stay open so orchestrators and Prometheus need no key. */
    if (bl_str_eq(path, "/healthz")) {
        simple_json(req, 200, "{\"status\":\"ok\"}");
        return;
    }
    if (bl_str_eq(path, "/readyz")) {
        bl_api_readyz(a, req);
        return;
    }
    if (bl_str_eq(path, "/metrics")) {
        bl_api_metrics(a, req);
        return;
    }

    bl_auth_result_t auth =
        bl_auth_verify(a->cfg->key_hashes, a->cfg->n_keys, bl_http_req_header(req, "authorization"),
                       bl_http_req_header(req, "x-api-key"), NULL);
    bl_family_t fam = path.n >= 12 && !memcmp(path.p, "/v1/messages", 12) ? BL_FAM_ANTHROPIC
                                                                          : bl_api_client_family(req);
    if (auth != BL_AUTH_OK) {
        bl_api_error_fam(req, fam, 401, "invalid_request_error", "invalid_api_key",
                         bl_auth_reason(auth), rid);
        bl_api_count(a, "", "", 401, 0);
        return;
    }

    for (size_t i = 0; i < BL_ARRAY_LEN(PROXIED); i++) {
        if (!bl_str_eq(path, PROXIED[i].path))
            continue;
        if (strcmp(method, "POST")) {
            char msg[160];
            snprintf(msg, sizeof msg, "Method %s is not allowed on %s; use POST.", method,
                     PROXIED[i].path);
            bl_api_error_fam(req, PROXIED[i].family, 405, "invalid_request_error",
                             "method_not_allowed", msg, rid);
            return;
        }
        if (PROXIED[i].family == BL_FAM_RESPONSES)
            bl_api_responses(a, req, &PROXIED[i], rid);
        else
            bl_api_proxy(a, req, &PROXIED[i], rid);
        return;
    }
    if (bl_str_eq(path, "/v1/messages/count_tokens")) {
        if (strcmp(method, "POST")) {
            bl_api_error_fam(req, BL_FAM_ANTHROPIC, 405, "invalid_request_error",
                             "method_not_allowed", "Use POST on /v1/messages/count_tokens.", rid);
            return;
        }
        bl_api_count_tokens(a, req, rid);
        return;
    }
    if (path.n >= 10 && !memcmp(path.p, "/v1/models", 10) && (path.n == 10 || path.p[10] == '/')) {
        if (strcmp(method, "GET")) {
            bl_api_error(req, 405, "invalid_request_error", "method_not_allowed",
                         "Use GET on /v1/models.", rid);
            return;
        }
        bl_api_models(a, req, path, rid);
        return;
    }
    char msg[256];
    snprintf(msg, sizeof msg, "Unknown request URL: %s %.*s.", method, (int)BL_MIN(path.n, 128),
             path.p);
    bl_api_error_fam(req, fam, 404, "invalid_request_error", "unknown_url", msg, rid);
}
