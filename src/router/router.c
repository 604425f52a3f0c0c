#include "router/router.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/call.h"
#include "router/sse.h"

const char *bl_attempt_outcome_name(bl_attempt_outcome_t o)
{
    switch (o) {
    case BL_ATTEMPT_OK: return "ok";
    case BL_ATTEMPT_CONNECT: return "connect";
    case BL_ATTEMPT_TIMEOUT: return "timeout";
    case BL_ATTEMPT_HTTP_5XX: return "http_5xx";
    case BL_ATTEMPT_HTTP_429: return "http_429";
    case BL_ATTEMPT_HTTP_408: return "http_408";
    case BL_ATTEMPT_RESET: return "reset";
    case BL_ATTEMPT_MALFORMED: return "malformed";
    case BL_ATTEMPT_CLIENT_ERROR: return "client_error";
    case BL_ATTEMPT_CANCELED: return "canceled";
    case BL_ATTEMPT_STREAM_CUT: return "stream_cut";
    case BL_ATTEMPT_UNTRANSLATABLE: return "untranslatable";
    }
    return "?";
}

int bl_router_new(uv_loop_t *loop, bl_upstream_t *up, bl_health_table_t *health, bl_metrics_t *m,
                  bl_router_t **out)
{
    bl_router_t *r = calloc(1, sizeof *r);
    if (!r)
        return BL_ENOMEM;
    r->loop = loop;
    r->up = up;
    r->health = health;
    bl_rng_seed(&r->rng, bl_now_ns());
    r->m_attempts = bl_metric_family(m, "ballast_attempts_total", BL_METRIC_COUNTER,
                                     "Upstream attempts by target and outcome", "target,outcome");
    r->m_failovers =
        bl_metric_family(m, "ballast_failovers_total", BL_METRIC_COUNTER,
                         "Attempts that failed and moved the request on, by reason", "route,reason");
    r->m_midstream = bl_metric_family(m, "ballast_midstream_failovers_total", BL_METRIC_COUNTER,
                                      "Broken streams continued on another target", "route");
    r->m_hedges = bl_metric_family(m, "ballast_hedges_total", BL_METRIC_COUNTER,
                                   "Hedged attempts started after a slow first byte", "route");
    r->m_breaker = bl_metric_family(m, "ballast_breaker_state", BL_METRIC_GAUGE,
                                    "Circuit breaker per target: 0 closed, 1 half-open, 2 open",
                                    "target");
    r->m_breaker_changes =
        bl_metric_family(m, "ballast_breaker_transitions_total", BL_METRIC_COUNTER,
                         "Circuit breaker state changes by target and new state", "target,state");
    r->m_cooldown = bl_metric_family(m, "ballast_target_cooldown_seconds", BL_METRIC_GAUGE,
                                     "Seconds until a target takes traffic again (Retry-After)",
                                     "target");
    r->m_ttfb = bl_metric_family(m, "ballast_upstream_ttft_seconds", BL_METRIC_HISTOGRAM,
                                 "Upstream time to first token (first SSE event or body byte)",
                                 "target");
    r->m_duration = bl_metric_family(m, "ballast_upstream_duration_seconds", BL_METRIC_HISTOGRAM,
                                     "Upstream attempt duration", "target");
    if (!r->m_midstream || !r->m_attempts || !r->m_failovers || !r->m_hedges || !r->m_breaker ||
        !r->m_breaker_changes || !r->m_cooldown || !r->m_ttfb || !r->m_duration) {
        free(r);
        return BL_ENOMEM;
    }
    *out = r;
    return BL_OK;
}

void bl_router_free(bl_router_t *r)
{
    free(r);
}

void bl_router_set_locals(bl_router_t *r, bl_locals_t *ls)
{
    r->locals = ls;
}

bool bl_router_target_usable(bl_router_t *r, const bl_config_t *cfg, const bl_provider_cfg_t *p,
                             bl_health_t *h, uint64_t now_ms)
{
    if (p->type == BL_PROVIDER_LOCAL) {
        /* A model still loading (or that failed to) is not tried at all, so
         * a request never waits on it. */
        bl_local_t *l = r->locals ? bl_locals_find(r->locals, p) : NULL;
        if (!l || bl_local_state(l) != BL_LOCAL_READY)
            return false;
    }
    return bl_health_available(h, &cfg->breaker, now_ms);
}

size_t bl_router_active_calls(const bl_router_t *r)
{
    return r->active_calls;
}

void bl_router_export_health(bl_router_t *r, const bl_config_t *cfg)
{
    uint64_t now = bl_now_ms();
    bl_metric_clear(r->m_breaker);
    bl_metric_clear(r->m_cooldown);
    for (size_t i = 0; i < bl_health_count(r->health); i++) {
        bl_health_t *h = bl_health_at(r->health, i);
        const char *lv[] = {h->key};
        bl_metric_set(r->m_breaker, (double)h->state, lv);
        uint64_t wait = h->cooldown_until_ms > now ? h->cooldown_until_ms - now : 0;
        bl_metric_set(r->m_cooldown, (double)wait / 1000.0, lv);
    }
    (void)cfg;
}
