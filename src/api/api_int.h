/* Internal to api. */
#ifndef BL_API_INT_H
#define BL_API_INT_H

#include "api/api.h"
#include "local/local.h"

struct bl_api {
    bl_config_t *cfg;
    bl_router_t *router;
    bl_health_table_t *health;
    bl_metrics_t *metrics;
    bl_locals_t *locals;
    size_t inflight;
    bl_metric_t *m_requests, *m_duration, *m_inflight, *m_ttfb_client;
};

void bl_api_proxy(bl_api_t *a, bl_http_req_t *req, const char *upstream_path,
                  const char *request_id);
void bl_api_models(bl_api_t *a, bl_http_req_t *req, bl_str_t path, const char *request_id);
void bl_api_readyz(bl_api_t *a, bl_http_req_t *req);
void bl_api_metrics(bl_api_t *a, bl_http_req_t *req);
/* Record a finished request in the metrics. */
void bl_api_count(bl_api_t *a, const char *route, const char *backend, int status, double seconds);

#endif
