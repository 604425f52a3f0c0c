/* GET /v1/models, /readyz and /metrics. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"

static void respond_json(bl_http_req_t *req, int status, json_t *o)
{
    char *body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    bl_http_header_t h[] = {{BL_STR("Content-Type"), BL_STR("application/json")}};
    if (!body) {
        bl_api_error(req, 500, "server_error", "internal_error", "out of memory", NULL);
        return;
    }
    bl_http_respond(req, status, h, 1, body, strlen(body));
    free(body);
}

/* A model in the shape of the family the client speaks: OpenAI's
 * {id, object, created, owned_by} or Anthropic's {type, id, display_name,
 * created_at}. Routes have no creation date: the epoch. */
static json_t *model_obj_fam(const char *id, bl_family_t f)
{
    if (f == BL_FAM_ANTHROPIC)
        return json_pack("{s:s, s:s, s:s, s:s}", "type", "model", "id", id, "display_name", id,
                         "created_at", "1970-01-01T00:00:00Z");
    return json_pack("{s:s, s:s, s:i, s:s}", "id", id, "object", "model", "created", 0,
                     "owned_by", "ballast");
}

void bl_api_models(bl_api_t *a, bl_http_req_t *req, bl_str_t path, const char *rid)
{
    const bl_config_t *c = a->cfg;
    bl_family_t fam = bl_api_client_family(req);
    if (path.n > 11) {
        /* GET /v1/models/{id} */
        bl_str_t id = {path.p + 11, path.n - 11};
        const bl_route_cfg_t *r = bl_config_route(c, id.p, id.n);
        if (!r) {
            char msg[256];
            snprintf(msg, sizeof msg, "The model '%.*s' does not exist.", (int)BL_MIN(id.n, 128),
                     id.p);
            bl_api_error_fam(req, fam, 404, "invalid_request_error", "model_not_found", msg, rid);
            return;
        }
        char *name = strndup(id.p, id.n);
        respond_json(req, 200, model_obj_fam(name ? name : r->model, fam));
        free(name);
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < c->n_routes; i++) {
        json_array_append_new(data, model_obj_fam(c->routes[i].model, fam));
        for (size_t k = 0; k < c->routes[i].n_aliases; k++)
            json_array_append_new(data, model_obj_fam(c->routes[i].aliases[k], fam));
    }
    if (fam == BL_FAM_ANTHROPIC) {
        size_t n = json_array_size(data);
        json_t *first = n ? json_object_get(json_array_get(data, 0), "id") : json_null();
        json_t *last = n ? json_object_get(json_array_get(data, n - 1), "id") : json_null();
        respond_json(req, 200, json_pack("{s:o, s:b, s:O, s:O}", "data", data, "has_more", 0,
                                         "first_id", first, "last_id", last));
        return;
    }
    respond_json(req, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

/* Ready when every route has at least one target that may take traffic. */
void bl_api_readyz(bl_api_t *a, bl_http_req_t *req)
{
    const bl_config_t *c = a->cfg;
    uint64_t now = bl_now_ms();
    bool all_ready = true;
    json_t *routes = json_object();
    for (size_t r = 0; r < c->n_routes; r++) {
        const bl_route_cfg_t *rt = &c->routes[r];
        json_t *targets = json_array();
        bool ready = false;
        for (size_t t = 0; t < rt->n_tiers; t++)
            for (size_t k = 0; k < rt->tiers[t].n_targets; k++) {
                const bl_target_cfg_t *tg = &rt->tiers[t].targets[k];
                bl_health_t *h = bl_health_get(a->health, c->providers[tg->provider].name, tg->model);
                if (!h)
                    continue;
                const bl_provider_cfg_t *p = &c->providers[tg->provider];
                uint64_t wait = bl_health_wait_ms(h, &c->breaker, now);
                bool usable = bl_router_target_usable(a->router, c, p, h, now);
                ready |= usable;
                json_t *o = json_pack("{s:s, s:i, s:s, s:b, s:f}", "target", h->key, "tier", (int)t,
                                      "breaker", bl_breaker_state_name(h->state), "usable", usable,
                                      "retry_in_s", (double)wait / 1000.0);
                if (p->type == BL_PROVIDER_LOCAL && a->locals) {
                    static const char *const ST[] = {"loading", "ready", "failed"};
                    bl_local_t *l = bl_locals_find(a->locals, p);
                    json_object_set_new(o, "local_model",
                                        json_string(l ? ST[bl_local_state(l)] : "missing"));
                    if (l && bl_local_state(l) == BL_LOCAL_FAILED)
                        json_object_set_new(o, "error", json_string(bl_local_error(l)));
                }
                json_array_append_new(targets, o);
            }
        all_ready &= ready;
        json_object_set_new(routes, rt->model,
                            json_pack("{s:b, s:o}", "ready", ready, "targets", targets));
    }
    respond_json(req, all_ready ? 200 : 503,
                 json_pack("{s:s, s:o}", "status", all_ready ? "ready" : "not_ready", "routes",
                           routes));
}

void bl_api_metrics(bl_api_t *a, bl_http_req_t *req)
{
    bl_router_export_health(a->router, a->cfg);
    if (a->locals)
        bl_locals_export(a->locals);
    bl_metric_set(a->m_inflight, (double)a->inflight, NULL);
    bl_buf_t out = {0};
    bl_metrics_render(a->metrics, &out);
    bl_http_header_t h[] = {{BL_STR("Content-Type"), BL_STR("text/plain; version=0.0.4")}};
    bl_http_respond(req, 200, h, 1, out.data ? out.data : "", out.len);
    bl_buf_free(&out);
}
