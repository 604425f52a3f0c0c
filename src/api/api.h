/*
 * api: the HTTP endpoints clients call.
 *
 * Validates and routes OpenAI-shaped requests (chat completions, completions,
 * embeddings), answers GET /v1/models, /healthz, /readyz and /metrics, checks
 * client keys, writes every error in OpenAI's shape, and turns a routed call's
 * result into the client's response with the x-ballast-* headers. Writes one
 * JSON log line and the request metrics per request.
 *
 * Owns per-request state; the config it serves from is swapped on reload
 * while requests in flight keep theirs.
 */
#ifndef BL_API_H
#define BL_API_H

#include <uv.h>

#include "config/config.h"
#include "health/health.h"
#include "obs/obs.h"
#include "router/router.h"
#include "server/server.h"

typedef struct bl_api bl_api_t;

int bl_api_new(bl_config_t *cfg, bl_router_t *router, bl_health_table_t *health,
               bl_metrics_t *metrics, bl_api_t **out);
void bl_api_free(bl_api_t *a);
/* Local models, for /readyz and /metrics. */
struct bl_locals;
void bl_api_set_locals(bl_api_t *a, struct bl_locals *ls);
/* The Responses API's store (previous_response_id); NULL turns it off. */
struct bl_store;
void bl_api_set_store(bl_api_t *a, struct bl_store *s);
/* Serve new requests from cfg (takes a reference; drops the old one). */
void bl_api_set_config(bl_api_t *a, bl_config_t *cfg);
/* The bl_http_handler_fn to give the server; ud is the bl_api_t. */
void bl_api_handle(void *ud, bl_http_req_t *req);
size_t bl_api_inflight(const bl_api_t *a);

/* Write an OpenAI-shaped error response: {"error":{"message","type","param","code"}}. */
void bl_api_error(bl_http_req_t *req, int status, const char *type, const char *code,
                  const char *message, const char *request_id);

#endif
