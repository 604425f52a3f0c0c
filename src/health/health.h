/*
 * health: what the gateway knows about each target (a provider + model pair):
 * its circuit breaker, Retry-After cool-down, and latency estimates.
 *
 * Breaker: CLOSED passes traffic. It OPENs after `failure_threshold`
 * consecutive failures, or when the failure share over the sliding window
 * exceeds `error_rate` with at least `min_requests` results. While OPEN no
 * traffic goes to the target; after `cooldown_ms` it turns HALF_OPEN and lets
 * exactly one probe request through: success CLOSEs it, failure re-OPENs it.
 * A Retry-After from the target (429/503) is a separate cool-down: the target
 * takes no traffic until then, whatever the breaker says.
 *
 * The table outlives config reloads: a target keeps its state as long as a
 * config still names it. All of this runs on the event loop thread.
 */
#ifndef BL_HEALTH_H
#define BL_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include <ballast/errors.h>

#include "config/config.h"

typedef enum { BL_BREAKER_CLOSED = 0, BL_BREAKER_HALF_OPEN = 1, BL_BREAKER_OPEN = 2 } bl_breaker_state_t;

#define BL_HEALTH_WINDOW_SLOTS 10
#define BL_HEALTH_TTFB_SAMPLES 64

typedef struct bl_health {
    char *key;                 /* "provider/model", also the metrics label */
    bl_breaker_state_t state;
    unsigned consecutive_failures;
    uint64_t opened_at_ms;
    bool probe_in_flight;      /* HALF_OPEN lets one request through */
    uint64_t cooldown_until_ms;/* Retry-After */
    /* sliding window: BL_HEALTH_WINDOW_SLOTS buckets of window_ms/SLOTS each */
    uint32_t win_ok[BL_HEALTH_WINDOW_SLOTS], win_fail[BL_HEALTH_WINDOW_SLOTS];
    uint64_t win_slot_start[BL_HEALTH_WINDOW_SLOTS];
    /* latency */
    double ewma_ttfb_ms;
    float ttfb_ring[BL_HEALTH_TTFB_SAMPLES];
    unsigned ttfb_n, ttfb_pos;
    uint64_t successes, failures; /* lifetime, for the status page */
    bool seen;                 /* named by the current config (for pruning) */
    unsigned refs;             /* calls in flight that point at this entry */
} bl_health_t;

typedef struct bl_health_table bl_health_table_t;

int bl_health_table_new(bl_health_table_t **out);
void bl_health_table_free(bl_health_table_t *t);
/* The entry for provider/model, created CLOSED if new. NULL on ENOMEM. */
bl_health_t *bl_health_get(bl_health_table_t *t, const char *provider, const char *model);
/* Drop entries no target of cfg names (after a reload), unless a call in
 * flight still holds them (bl_health_hold); those go at a later prune. */
void bl_health_prune(bl_health_table_t *t, const bl_config_t *cfg);
void bl_health_hold(bl_health_t *h);
void bl_health_release(bl_health_t *h);
size_t bl_health_count(const bl_health_table_t *t);
bl_health_t *bl_health_at(bl_health_table_t *t, size_t i);

/* May a request go to this target now? Updates OPEN -> HALF_OPEN when the
 * cool-down has passed. Does not reserve the probe; see bl_health_begin. */
bool bl_health_available(bl_health_t *h, const bl_breaker_cfg_t *cfg, uint64_t now_ms);
/* A request is being sent: reserves the half-open probe. */
void bl_health_begin(bl_health_t *h);
/* The attempt's outcome. ttfb_ms is time to first byte/event (success only).
 * Returns true when this call changed the breaker state. */
bool bl_health_success(bl_health_t *h, const bl_breaker_cfg_t *cfg, uint64_t now_ms, double ttfb_ms);
bool bl_health_failure(bl_health_t *h, const bl_breaker_cfg_t *cfg, uint64_t now_ms);
/* The attempt was abandoned (client left, hedge lost): frees the probe without
 * judging the target. */
void bl_health_abandon(bl_health_t *h);
/* Honour Retry-After: no traffic until now + ms (capped by the caller). */
void bl_health_cooldown(bl_health_t *h, uint64_t now_ms, uint64_t ms);

/* Observed p95 time to first byte in ms, or -1 without enough samples. */
double bl_health_ttfb_p95(const bl_health_t *h);
/* Milliseconds until the target may take traffic again (0 = now). */
uint64_t bl_health_wait_ms(const bl_health_t *h, const bl_breaker_cfg_t *cfg, uint64_t now_ms);
const char *bl_breaker_state_name(bl_breaker_state_t s);

#endif
