/*
 * config: the YAML configuration — parsed with libyaml, `${VAR}` expanded
 * from the environment, validated (unknown keys with a did-you-mean, types,
 * references between providers and routes) with every error naming
 * file:line:column. A bl_config_t is immutable once loaded; a reload builds a
 * new one and swaps it in, so requests in flight keep the one they started on
 * (it is reference counted).
 *
 * Secrets (api keys, client keys) are kept here and nowhere else; the
 * printing functions never show them.
 */
#ifndef BL_CONFIG_H
#define BL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    BL_PROVIDER_OPENAI = 0, /* any OpenAI-compatible API */
    BL_PROVIDER_LOCAL = 1,  /* a GGUF model run by the in-process engine */
    BL_PROVIDER_ANTHROPIC = 2, /* Anthropic's Messages API */
    BL_PROVIDER_BALLAST = 3,   /* a peer ballast node: speaks every family, has its own tiers */
} bl_provider_type_t;

/* type: openai — which of OpenAI's APIs requests are sent in. */
typedef enum {
    BL_API_CHAT = 0,        /* /chat/completions */
    BL_API_RESPONSES = 1,   /* /responses: OpenAI-only items (reasoning, hosted tools) survive */
} bl_provider_api_t;

/* type: local — the model file and how to run it. */
typedef struct {
    char *model_path;        /* absolute, or relative to the config file's folder */
    unsigned char sha256[32];
    bool has_sha256;         /* refuse the file unless its hash matches */
    unsigned threads;        /* engine worker threads; 0 = online cores */
    unsigned context;        /* KV cache length per slot, tokens */
    unsigned slots;          /* sequences generated at once */
    unsigned max_queue;      /* requests waiting for a slot; beyond it 503 */
    unsigned max_tokens;     /* cap on generated tokens per request (degraded mode) */
    unsigned prefill_chunk;  /* prompt tokens fed per scheduler step; 0 = a prompt at once */
} bl_local_cfg_t;

typedef struct {
    uint64_t connect_ms;     /* TCP+TLS connect */
    uint64_t first_token_ms; /* streams: request sent -> first chunk with content */
    uint64_t total_ms;       /* whole transfer */
} bl_timeouts_t;

typedef struct {
    char *name;
    bl_provider_type_t type;
    char *base_url;          /* without trailing slash, e.g. https://api.openai.com/v1 */
    char *api_key;           /* secret; NULL when not set or empty (`${KEY:-}`) */
    bl_timeouts_t timeouts;
    char **headers;          /* extra "Name: value" lines sent upstream */
    size_t n_headers;
    bl_local_cfg_t local;    /* type: local only */
    bl_provider_api_t api;   /* type: openai only */
    char *anthropic_version; /* type: anthropic: the anthropic-version header */
    char *anthropic_beta;    /* type: anthropic: anthropic-beta flags, comma-joined, or NULL */
    unsigned line;           /* where it was declared, for messages */
} bl_provider_cfg_t;

typedef struct {
    size_t provider;         /* index into providers */
    char *model;             /* model name sent to the provider */
    unsigned weight;         /* share of load inside its tier, >= 1 */
} bl_target_cfg_t;

typedef struct {
    bl_target_cfg_t *targets;
    size_t n_targets;
} bl_tier_cfg_t;

typedef struct {
    bool enabled;
    uint64_t delay_ms;       /* 0 = the target's observed p95 time to first byte */
    uint64_t min_delay_ms;   /* floor for the p95-based delay */
} bl_hedge_cfg_t;

typedef struct {
    char *model;             /* the name clients send */
    char **aliases;
    size_t n_aliases;
    bl_tier_cfg_t *tiers;
    size_t n_tiers;
    bl_hedge_cfg_t hedge;
    unsigned max_attempts;   /* 0 = global retry.max_attempts */
    uint64_t deadline_ms;    /* 0 = global retry.deadline_ms */
    unsigned line;           /* where it was declared, for messages */
} bl_route_cfg_t;

typedef struct {
    unsigned failure_threshold; /* consecutive failures that open it */
    double error_rate;          /* or this failure share over the window ... */
    unsigned min_requests;      /* ... once the window has this many results */
    uint64_t window_ms;
    uint64_t cooldown_ms;       /* open -> half-open after this */
} bl_breaker_cfg_t;

typedef struct {
    unsigned max_attempts;   /* per request, all targets together */
    uint64_t backoff_base_ms;/* before retrying the same target: base*2^k, capped, jittered */
    uint64_t backoff_max_ms;
    uint64_t deadline_ms;    /* whole request */
} bl_retry_cfg_t;

typedef struct {
    char *host;              /* an IP literal, IPv6 without brackets ("::1"); never a name */
    int port;                /* 1..65535 */
} bl_listen_cfg_t;

typedef struct {
    size_t max_body_bytes;
    size_t max_header_bytes;
    unsigned max_headers;
    uint64_t header_timeout_ms;
    uint64_t body_timeout_ms;
    uint64_t idle_timeout_ms;
    unsigned max_connections;
    uint64_t shutdown_grace_ms;
} bl_server_cfg_t;

/* Responses API answers kept for previous_response_id. */
typedef struct {
    bool enabled;            /* default true */
    char *path;              /* the SQLite file; NULL = $XDG_STATE_HOME/ballast/responses.db
                                (~/.local/state/...); unused when redis is set */
    uint64_t ttl_s;          /* default 30 days */
} bl_response_store_cfg_t;

typedef struct {
    char *file;              /* the path it was loaded from */
    bl_listen_cfg_t listen;
    bl_server_cfg_t server;
    unsigned char (*key_hashes)[32]; /* SHA-256 of each accepted client key */
    size_t n_keys;
    bl_breaker_cfg_t breaker;
    bl_retry_cfg_t retry;
    char *log_level;         /* "debug" | "info" | "warn" | "error" */
    bl_provider_cfg_t *providers;
    size_t n_providers;
    bl_route_cfg_t *routes;
    size_t n_routes;
    char *redis_url;         /* shared state for replicas; NULL = none (secret: may hold a password) */
    bl_response_store_cfg_t response_store;
    int refs;                /* reference count; see bl_config_ref */
} bl_config_t;

/* Load and validate. On error returns a negative code and writes
 * "file:line:col: message" to err (BL_CONFIG_ERR_MAX bytes is always enough).
 * The result holds one reference. bl_config_load reads the file: call it off
 * the event loop (hot reload does it on the thread pool). */
int bl_config_load(const char *path, bl_config_t **out, char *err, size_t errlen);
int bl_config_parse(const char *text, size_t len, const char *file, bl_config_t **out, char *err,
                    size_t errlen);
bl_config_t *bl_config_ref(bl_config_t *c);
void bl_config_unref(bl_config_t *c);

/* Route for a client's model name (or alias); NULL when none. */
const bl_route_cfg_t *bl_config_route(const bl_config_t *c, const char *model, size_t len);

/* Provider by name; NULL when none. */
const bl_provider_cfg_t *bl_config_provider(const bl_config_t *c, const char *name);

/* Zero-config (`ballast serve` without a file): a config built from API keys
 * in the environment and the GGUF files in the model store; the rules are at
 * the top of auto.c. Reads a directory: call it off the event loop. */
typedef struct {
    char **env;             /* "NAME=value" strings, NULL-terminated; NULL = environ */
    const char *models_dir; /* NULL = $BALLAST_MODELS, else ~/.local/share/ballast/models */
    const char *demo_model; /* used when the store has none; NULL = models/stories260K.gguf
                               found from the executable, "" = no demo */
    FILE *notes;            /* what was found and skipped, for people; NULL = quiet */
} bl_auto_opts_t;

/* Same contract as bl_config_parse; BL_ENOENT when there is nothing to serve
 * (no key, no model), with the message saying what to do. */
int bl_config_auto(const bl_auto_opts_t *o, bl_config_t **out, char *err, size_t errlen);

/* Enough room for any message bl_config_load writes. */
#define BL_CONFIG_ERR_MAX 1024

/* The route table as `ballast check-config` prints it; never prints secrets. */
void bl_config_print(const bl_config_t *c, FILE *f);

#endif
