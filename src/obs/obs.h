/*
 * obs: structured logs, Prometheus metrics and request ids.
 *
 * Logs are one JSON object per line on stderr. Metrics live in a registry of
 * families (counter, gauge, histogram) with label sets; the registry renders
 * the Prometheus text exposition format for GET /metrics. Everything here runs
 * on the event loop thread; nothing is locked.
 *
 * Secrets never reach this module: callers pass names and ids, never keys.
 */
#ifndef BL_OBS_H
#define BL_OBS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "util/util.h"

/* ---- logs ----------------------------------------------------------------- */

typedef enum { BL_LOG_DEBUG = 0, BL_LOG_INFO, BL_LOG_WARN, BL_LOG_ERROR } bl_log_level_t;

void bl_log_set_level(bl_log_level_t l);
int bl_log_parse_level(const char *s, bl_log_level_t *out);
bool bl_log_enabled(bl_log_level_t l);
/* {"ts":"...","level":"info","msg":"<formatted>"} */
void bl_log(bl_log_level_t l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Write obj as one log line, adding "ts" and "level"; steals the reference. */
void bl_log_json(bl_log_level_t l, json_t *obj);

/* On the serving path, lines are written by hand into one reused buffer (no
 * JSON tree per request) and reach stderr once per loop turn:
 *
 *   bl_buf_t *b = bl_log_begin(BL_LOG_INFO, "request");   // NULL when filtered
 *   if (b) { bl_log_kv_str(b, "route", r); bl_log_kv_int(b, "status", 200); bl_log_end(b); }
 */
bl_buf_t *bl_log_begin(bl_log_level_t l, const char *msg);
void bl_log_kv_str(bl_buf_t *b, const char *key, const char *val);
void bl_log_kv_int(bl_buf_t *b, const char *key, long long v);
void bl_log_kv_ms(bl_buf_t *b, const char *key, double ms); /* 3 decimals */
void bl_log_kv_raw(bl_buf_t *b, const char *key, const char *json, size_t n);
void bl_log_end(bl_buf_t *b);
/* Batch log output per loop turn (serve); without it each line is written at once. */
void bl_log_attach(uv_loop_t *loop);
void bl_log_detach(void);
void bl_log_flush(void);
/* Append s as a JSON string (quoted, escaped). */
void bl_json_escape(bl_buf_t *b, const char *s, size_t n);

/* ---- request ids ---------------------------------------------------------- */

/* 16 lowercase hex chars + NUL, unique per process run. */
void bl_request_id(char out[17]);

/* ---- metrics -------------------------------------------------------------- */

typedef enum { BL_METRIC_COUNTER, BL_METRIC_GAUGE, BL_METRIC_HISTOGRAM } bl_metric_kind_t;

typedef struct bl_metrics bl_metrics_t;
typedef struct bl_metric bl_metric_t; /* one family */

int bl_metrics_new(bl_metrics_t **out);
void bl_metrics_free(bl_metrics_t *m);

/* Declare a family. labels is a comma-separated list of label names
 * ("route,backend,status"), or "" for none. Histogram bucket bounds are in the
 * metric's unit (seconds for *_seconds). Returns NULL only on allocation failure. */
bl_metric_t *bl_metric_family(bl_metrics_t *m, const char *name, bl_metric_kind_t kind,
                              const char *help, const char *labels);
void bl_metric_set_buckets(bl_metric_t *f, const double *bounds, size_t n);

/* Label values in the order the family declared; they are escaped here. */
void bl_metric_add(bl_metric_t *f, double v, const char *const *label_values);
void bl_metric_set(bl_metric_t *f, double v, const char *const *label_values);
void bl_metric_observe(bl_metric_t *f, double v, const char *const *label_values);
/* Drop every series of a gauge family (before re-setting a snapshot). */
void bl_metric_clear(bl_metric_t *f);

int bl_metrics_render(const bl_metrics_t *m, bl_buf_t *out);

#endif
