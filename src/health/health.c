#include "health/health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bl_health_table {
    bl_health_t **items;
    size_t n, cap;
};

int bl_health_table_new(bl_health_table_t **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? BL_OK : BL_ENOMEM;
}

void bl_health_table_free(bl_health_table_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->items[i]->key);
        free(t->items[i]);
    }
    free(t->items);
    free(t);
}

bl_health_t *bl_health_get(bl_health_table_t *t, const char *provider, const char *model)
{
    char key[512];
    snprintf(key, sizeof key, "%s/%s", provider, model);
    /* Routes name a handful of targets; a linear scan beats hashing here. */
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->items[i]->key, key))
            return t->items[i];
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        bl_health_t **p = realloc(t->items, cap * sizeof *p);
        if (!p)
            return NULL;
        t->items = p;
        t->cap = cap;
    }
    bl_health_t *h = calloc(1, sizeof *h);
    if (!h || !(h->key = strdup(key))) {
        free(h);
        return NULL;
    }
    h->ewma_ttfb_ms = -1;
    t->items[t->n++] = h;
    return h;
}

void bl_health_prune(bl_health_table_t *t, const bl_config_t *cfg)
{
    for (size_t i = 0; i < t->n; i++)
        t->items[i]->seen = false;
    for (size_t r = 0; r < cfg->n_routes; r++)
        for (size_t k = 0; k < cfg->routes[r].n_tiers; k++)
            for (size_t j = 0; j < cfg->routes[r].tiers[k].n_targets; j++) {
                const bl_target_cfg_t *tg = &cfg->routes[r].tiers[k].targets[j];
                bl_health_t *h = bl_health_get(t, cfg->providers[tg->provider].name, tg->model);
                if (h)
                    h->seen = true;
            }
    size_t w = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (t->items[i]->seen || t->items[i]->refs) {
            t->items[w++] = t->items[i];
        } else {
            free(t->items[i]->key);
            free(t->items[i]);
        }
    }
    t->n = w;
}

void bl_health_hold(bl_health_t *h)
{
    h->refs++;
}

void bl_health_release(bl_health_t *h)
{
    h->refs--;
}

size_t bl_health_count(const bl_health_table_t *t)
{
    return t->n;
}

bl_health_t *bl_health_at(bl_health_table_t *t, size_t i)
{
    return i < t->n ? t->items[i] : NULL;
}

bool bl_health_available(bl_health_t *h, const bl_breaker_cfg_t *cfg, uint64_t now_ms)
{
    if (now_ms < h->cooldown_until_ms)
        return false;
    switch (h->state) {
    case BL_BREAKER_CLOSED:
        return true;
    case BL_BREAKER_OPEN:
        if (now_ms - h->opened_at_ms < cfg->cooldown_ms)
            return false;
        h->state = BL_BREAKER_HALF_OPEN;
        h->probe_in_flight = false;
        return true;
    case BL_BREAKER_HALF_OPEN:
        return !h->probe_in_flight;
    }
    return false;
}

void bl_health_begin(bl_health_t *h)
{
    if (h->state == BL_BREAKER_HALF_OPEN)
        h->probe_in_flight = true;
}

static void window_record(bl_health_t *h, const bl_breaker_cfg_t *cfg, uint64_t now_ms, bool ok)
{
    uint64_t slot_ms = cfg->window_ms / BL_HEALTH_WINDOW_SLOTS;
    if (!slot_ms)
        slot_ms = 1;
    uint64_t start = now_ms - now_ms % slot_ms;
    size_t i = (size_t)((now_ms / slot_ms) % BL_HEALTH_WINDOW_SLOTS);
    if (h->win_slot_start[i] != start) {
        h->win_slot_start[i] = start;
        h->win_ok[i] = h->win_fail[i] = 0;
    }
    if (ok)
        h->win_ok[i]++;
    else
        h->win_fail[i]++;
}

static void window_totals(const bl_health_t *h, const bl_breaker_cfg_t *cfg, uint64_t now_ms,
                          uint64_t *ok, uint64_t *fail)
{
    *ok = *fail = 0;
    for (size_t i = 0; i < BL_HEALTH_WINDOW_SLOTS; i++) {
        if (h->win_slot_start[i] + cfg->window_ms <= now_ms)
            continue; /* too old */
        *ok += h->win_ok[i];
        *fail += h->win_fail[i];
    }
}

static void open_breaker(bl_health_t *h, uint64_t now_ms)
{
    h->state = BL_BREAKER_OPEN;
    h->opened_at_ms = now_ms;
    h->probe_in_flight = false;
}

bool bl_health_success(bl_health_t *h, const bl_breaker_cfg_t *cfg, uint64_t now_ms, double ttfb_ms)
{
    bl_breaker_state_t before = h->state;
    h->successes++;
    h->consecutive_failures = 0;
    window_record(h, cfg, now_ms, true);
    if (ttfb_ms >= 0) {
        h->ewma_ttfb_ms = h->ewma_ttfb_ms < 0 ? ttfb_ms : 0.8 * h->ewma_ttfb_ms + 0.2 * ttfb_ms;
        h->ttfb_ring[h->ttfb_pos] = (float)ttfb_ms;
        h->ttfb_pos = (h->ttfb_pos + 1) % BL_HEALTH_TTFB_SAMPLES;
        if (h->ttfb_n < BL_HEALTH_TTFB_SAMPLES)
            h->ttfb_n++;
    }
    if (h->state == BL_BREAKER_HALF_OPEN) {
        /* The probe came back: start afresh so old failures don't re-open it. */
        h->state = BL_BREAKER_CLOSED;
        h->probe_in_flight = false;
        memset(h->win_fail, 0, sizeof h->win_fail);
    }
    return before != h->state;
}

bool bl_health_failure(bl_health_t *h, const bl_breaker_cfg_t *cfg, uint64_t now_ms)
{
    bl_breaker_state_t before = h->state;
    h->failures++;
    h->consecutive_failures++;
    window_record(h, cfg, now_ms, false);
    if (h->state == BL_BREAKER_HALF_OPEN) {
        open_breaker(h, now_ms);
    } else if (h->state == BL_BREAKER_CLOSED) {
        uint64_t ok, fail;
        window_totals(h, cfg, now_ms, &ok, &fail);
        bool by_count = cfg->failure_threshold && h->consecutive_failures >= cfg->failure_threshold;
        bool by_rate = cfg->min_requests && ok + fail >= cfg->min_requests &&
                       (double)fail > cfg->error_rate * (double)(ok + fail);
        if (by_count || by_rate)
            open_breaker(h, now_ms);
    }
    return before != h->state;
}

void bl_health_abandon(bl_health_t *h)
{
    h->probe_in_flight = false;
}

void bl_health_cooldown(bl_health_t *h, uint64_t now_ms, uint64_t ms)
{
    if (now_ms + ms > h->cooldown_until_ms)
        h->cooldown_until_ms = now_ms + ms;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

double bl_health_ttfb_p95(const bl_health_t *h)
{
    if (h->ttfb_n < 8)
        return -1;
    float tmp[BL_HEALTH_TTFB_SAMPLES];
    memcpy(tmp, h->ttfb_ring, h->ttfb_n * sizeof *tmp);
    qsort(tmp, h->ttfb_n, sizeof *tmp, cmp_float);
    size_t idx = (size_t)(0.95 * (double)(h->ttfb_n - 1) + 0.5);
    return tmp[idx];
}

uint64_t bl_health_wait_ms(const bl_health_t *h, const bl_breaker_cfg_t *cfg, uint64_t now_ms)
{
    uint64_t wait = h->cooldown_until_ms > now_ms ? h->cooldown_until_ms - now_ms : 0;
    if (h->state == BL_BREAKER_OPEN) {
        uint64_t reopen = h->opened_at_ms + cfg->cooldown_ms;
        if (reopen > now_ms && reopen - now_ms > wait)
            wait = reopen - now_ms;
    }
    return wait;
}

const char *bl_breaker_state_name(bl_breaker_state_t s)
{
    switch (s) {
    case BL_BREAKER_CLOSED: return "closed";
    case BL_BREAKER_HALF_OPEN: return "half_open";
    case BL_BREAKER_OPEN: return "open";
    }
    return "?";
}
