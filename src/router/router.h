/*
 * router: takes one client request for a route and gets it answered.
 *
 * It orders the route's targets (tiers in order; inside a tier a weighted
 * shuffle), skips targets whose breaker is open or who asked us to back off,
 * and runs attempts through the upstream module: failing over on connect
 * errors, timeouts (connect, first token, total), 5xx/408/429 and malformed
 * responses, passing other 4xx through untouched, retrying with capped,
 * jittered backoff only when it comes back to a target it already tried, and
 * optionally hedging a slow first byte with the next target. A response is
 * committed to the client only once it is known good: a whole valid JSON body,
 * or the first complete valid SSE event — after that, stream bytes go to the
 * client exactly as they arrive.
 *
 * Owns the per-call state and the health bookkeeping of attempts. Runs on the
 * event loop thread.
 */
#ifndef BL_ROUTER_H
#define BL_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "health/health.h"
#include "obs/obs.h"
#include "upstream/upstream.h"
#include "xlate/xlate.h"

typedef struct bl_router bl_router_t;
typedef struct bl_call bl_call_t;

/* Why an attempt did not produce the answer. */
typedef enum {
    BL_ATTEMPT_OK = 0,
    BL_ATTEMPT_CONNECT,       /* refused / unreachable / DNS / TLS */
    BL_ATTEMPT_TIMEOUT,       /* connect, first token or total */
    BL_ATTEMPT_HTTP_5XX,
    BL_ATTEMPT_HTTP_429,
    BL_ATTEMPT_HTTP_408,
    BL_ATTEMPT_RESET,         /* connection broke mid-response */
    BL_ATTEMPT_MALFORMED,     /* not valid JSON / SSE */
    BL_ATTEMPT_CLIENT_ERROR,  /* 4xx passed through to the client */
    BL_ATTEMPT_CANCELED,      /* hedge lost, client left, deadline */
    BL_ATTEMPT_STREAM_CUT,    /* stream broke after the client got part of it */
    BL_ATTEMPT_UNTRANSLATABLE,/* the request cannot be said in the target's API family */
} bl_attempt_outcome_t;

const char *bl_attempt_outcome_name(bl_attempt_outcome_t o);

typedef struct {
    const char *target;       /* "provider/model"; valid until on_finish returns */
    unsigned tier;
    bl_attempt_outcome_t outcome;
    int http_status;          /* 0 when no response */
    double ms;                /* from start to end of this attempt */
    char detail[96];          /* short, secret-free: "connection refused", "HTTP 503" */
} bl_attempt_t;

#define BL_MAX_ATTEMPTS 16

/* What the api layer gets when a response is ready for the client. */
typedef struct {
    int status;
    const char *content_type; /* as the upstream sent it; may be NULL */
    const char *backend;      /* "provider/model" */
    unsigned attempts;        /* attempts made so far, this one included */
    bool degraded;            /* not answered by the first tier */
    bool stream;              /* body follows through on_data; else body/len is all of it */
    const char *body;
    size_t len;
    const char *retry_after;  /* pass-through of an upstream Retry-After on 4xx, or NULL */
} bl_call_response_t;

/* Everything about the call, for the log line and metrics; given at the end. */
typedef struct {
    bool answered;            /* a response was committed to the client */
    int status;               /* committed status, or the error status when !answered */
    const char *error_type;   /* when !answered: OpenAI error type */
    const char *error_code;
    char error_message[1024]; /* when !answered: lists each attempt's failure */
    uint64_t retry_after_s;   /* when !answered with 503 */
    bool stream_cut;          /* answered, but the stream broke part-way and could not go on */
    bool cut_reported;        /* ... and the client's stream already says so in its family */
    unsigned midstream_failovers; /* times a broken stream continued on another target */
    const char *backend;      /* NULL when !answered */
    unsigned tier;
    bl_attempt_t attempts[BL_MAX_ATTEMPTS];
    unsigned n_attempts;
    double ttfb_ms;           /* request start -> first byte committed to the client */
    long long usage_prompt, usage_completion, usage_total; /* -1 when unknown */
} bl_call_report_t;

typedef struct {
    void *ud;
    void (*on_response)(void *ud, const bl_call_response_t *r);
    void (*on_data)(void *ud, const char *data, size_t len);
    /* Exactly once, last (unless the call was cancelled). */
    void (*on_finish)(void *ud, const bl_call_report_t *rep);
} bl_call_cb_t;

typedef struct {
    const char *path;         /* appended to the provider base_url: "/chat/completions" */
    bl_family_t family;       /* the API family the client speaks */
    bool raw_only;            /* completions, embeddings: sent as they are, never translated;
                                 targets of another family are skipped */
    bool from_peer;           /* sent by another ballast (x-ballast-hop): never back to a peer */
    const char *anthropic_version; /* the client's headers, for Anthropic targets; or NULL */
    const char *anthropic_beta;
    const char *body;         /* the client's JSON body; must outlive the call */
    size_t body_len;
    size_t model_off;         /* byte span of the top-level "model" value (with quotes) */
    size_t model_len;
    bool stream;
    const char *request_id;
} bl_call_req_t;

int bl_router_new(uv_loop_t *loop, bl_upstream_t *up, bl_health_table_t *health, bl_metrics_t *m,
                  bl_router_t **out);
void bl_router_free(bl_router_t *r);
/* The local models (type: local providers) targets may name. */
struct bl_locals;
void bl_router_set_locals(bl_router_t *r, struct bl_locals *ls);
/* Can this target take a request now? (breaker, Retry-After, local model ready) */
bool bl_router_target_usable(bl_router_t *r, const bl_config_t *cfg, const bl_provider_cfg_t *p,
                             bl_health_t *h, uint64_t now_ms);

/* Start routing. cfg is referenced for the call's lifetime (reload-safe). */
int bl_call_start(bl_router_t *r, bl_config_t *cfg, const bl_route_cfg_t *route,
                  const bl_call_req_t *req, const bl_call_cb_t *cb, bl_call_t **out);
/* The client went away: stop every transfer now; no callback runs afterwards. */
void bl_call_cancel(bl_call_t *c);
size_t bl_router_active_calls(const bl_router_t *r);

/* Update breaker-state gauges (before rendering /metrics). */
void bl_router_export_health(bl_router_t *r, const bl_config_t *cfg);

/* Parse a Retry-After value (delta-seconds or an HTTP-date); false if invalid. */
bool bl_parse_retry_after(bl_str_t v, int64_t now_wall_s, uint64_t *seconds);

#endif
