/* Internal to api. */
#ifndef BL_API_INT_H
#define BL_API_INT_H

#include "api/api.h"
#include "local/local.h"
#include "store/store.h"
#include "xlate/xlate.h"

struct bl_api {
    bl_config_t *cfg;
    bl_router_t *router;
    bl_health_table_t *health;
    bl_metrics_t *metrics;
    bl_locals_t *locals;
    bl_store_t *store;        /* Responses API answers; NULL when disabled */
    size_t inflight;
    bl_metric_t *m_requests, *m_duration, *m_inflight, *m_ttfb_client;
};

/* An endpoint that goes through the router. */
typedef struct {
    const char *path;        /* the client's: "/v1/chat/completions" */
    const char *upstream;    /* relative to a provider's base_url */
    bl_family_t family;      /* the API family the client speaks there */
    bool raw_only;           /* never translated (completions, embeddings) */
    bool estimate;           /* count_tokens: estimate when no target answers */
} bl_api_route_t;

void bl_api_proxy(bl_api_t *a, bl_http_req_t *req, const bl_api_route_t *ep,
                  const char *request_id);
/* bl_api_proxy with another body than the client's: owned_body (freed when
 * the request ends; may be NULL when body is the client's) and, for a
 * Responses request to be stored, save_items (the JSON array of its input
 * items, owned). */
void bl_api_proxy_body(bl_api_t *a, bl_http_req_t *req, const bl_api_route_t *ep, const char *rid,
                       const char *body, size_t len, char *owned_body, char *save_items);
/* POST /v1/responses: previous_response_id from the store, then bl_api_proxy_body. */
void bl_api_responses(bl_api_t *a, bl_http_req_t *req, const bl_api_route_t *ep,
                      const char *request_id);
/* POST /v1/messages/count_tokens */
void bl_api_count_tokens(bl_api_t *a, bl_http_req_t *req, const char *request_id);
/* count_tokens' estimate of a Messages body's input tokens. */
int bl_api_estimate_tokens(const char *body, size_t len, long long *out);
/* bl_api_error in family f's shape (Anthropic: {"type":"error","error":{...}}). */
void bl_api_error_fam(bl_http_req_t *req, bl_family_t f, int status, const char *type,
                      const char *code, const char *message, const char *request_id);
/* The family a request's headers say its client speaks (for /v1/models). */
bl_family_t bl_api_client_family(bl_http_req_t *req);
void bl_api_models(bl_api_t *a, bl_http_req_t *req, bl_str_t path, const char *request_id);
void bl_api_readyz(bl_api_t *a, bl_http_req_t *req);
void bl_api_metrics(bl_api_t *a, bl_http_req_t *req);
/* Record a finished request in the metrics. */
void bl_api_count(bl_api_t *a, const char *route, const char *backend, int status, double seconds);

#endif
