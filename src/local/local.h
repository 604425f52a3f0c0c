/*
 * local: answers requests from a model running inside the daemon.
 *
 * A bl_local_t is one `type: local` provider: its GGUF model (loaded and
 * hash-checked on libuv's thread pool, never on the loop), one worker thread
 * and one engine context per slot, and a bounded queue. A request is
 * answered exactly as an upstream provider would answer it over HTTP — the
 * same bl_upstream_cb_t callbacks with a status, headers and body bytes in
 * OpenAI's wire format — so the router treats local and cloud targets alike
 * (commit rules, failover, metrics). Text leaves the worker threads through a
 * uv_async_t; the loop never waits on inference.
 *
 * Slots run concurrently; their forward passes take turns on the model (one
 * pass at a time, each using the model's thread pool). Decoding several
 * sequences as one batch comes with the engine's batch API.
 *
 * bl_locals_t is the set of local providers of the current config; a reload
 * keeps a model whose file and settings did not change and loads the rest.
 */
#ifndef BL_LOCAL_H
#define BL_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "config/config.h"
#include "obs/obs.h"
#include "upstream/upstream.h"

typedef struct bl_local bl_local_t;
typedef struct bl_local_req bl_local_req_t;
typedef struct bl_locals bl_locals_t;

typedef enum { BL_LOCAL_LOADING = 0, BL_LOCAL_READY, BL_LOCAL_FAILED } bl_local_state_t;

int bl_locals_new(uv_loop_t *loop, bl_metrics_t *m, bl_locals_t **out);
/* Make the set match cfg's local providers: start loading new ones, keep
 * unchanged ones, retire the others (they close once their requests end). */
void bl_locals_sync(bl_locals_t *ls, const bl_config_t *cfg);
/* The instance serving provider p, or NULL. */
bl_local_t *bl_locals_find(bl_locals_t *ls, const bl_provider_cfg_t *p);
/* Stop everything (requests in flight are cancelled); done runs when every
 * thread has been joined and every handle closed. */
void bl_locals_close(bl_locals_t *ls, void (*done)(void *), void *ud);
void bl_locals_free(bl_locals_t *ls);

/* Update the per-provider state gauge (before rendering /metrics). */
void bl_locals_export(bl_locals_t *ls);

bl_local_state_t bl_local_state(const bl_local_t *l);
/* Why loading failed ("file ...: reason"), or "" */
const char *bl_local_error(const bl_local_t *l);

/* Start answering an OpenAI request (path "/chat/completions" or
 * "/completions"; body is the JSON the client sent, with the target's model).
 * Callbacks come later, from the loop, never from inside this call. */
int bl_local_start(bl_local_t *l, const char *path, const char *body, size_t len,
                   const bl_upstream_cb_t *cb, bl_local_req_t **out);
/* The caller lost interest: no callback runs afterwards and the slot is freed
 * at the engine's next step. */
void bl_local_cancel(bl_local_req_t *r);

#endif
