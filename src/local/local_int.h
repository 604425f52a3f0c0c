/* Internal to local. */
#ifndef BL_LOCAL_INT_H
#define BL_LOCAL_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <jansson.h>

#include <ballast/engine.h>

#include "local/local.h"

typedef struct bl_local_fan bl_local_fan_t;

struct bl_local_req {
    bl_local_t *l;
    bl_local_fan_t *fan;      /* one of n > 1 choices (fanout.c); cancel cancels them all */
    bl_upstream_cb_t cb;
    /* the request, fixed once queued */
    bool chat, stream, include_usage;
    bool embed;               /* /embeddings: inputs instead of a prompt */
    bool embed_base64;        /* encoding_format "base64" (the openai SDK's default) */
    char **inputs;
    size_t n_inputs;
    char *prompt;
    size_t prompt_len;
    bl_generate_params_t gp;
    char **stops;
    size_t n_stops;
    int32_t max_tokens;       /* asked for, or -1 */
    char model[128];
    char id[48];
    long long created;
    /* tools (wire.c): calls are parsed out of the generated text */
    bl_chat_tool_parser_t *tp; /* NULL when no tools were rendered */
    bool one_call;             /* parallel_tool_calls false: calls after the first are dropped */
    char *schema;              /* response_format's JSON Schema (gp.json_schema points here) */
    char *call_schema;         /* a call's JSON: {name, arguments} for one of the tools */
    bool call_now;             /* constrain from the first token (a call the client requires) */
    bool call_then_stop;       /* the call is the whole answer (Llama 3 style) */
    bl_token_t call_marker;    /* the model's "<tool_call>" token: constrain after it; -1 none */
    /* shared with the worker, under l->mu */
    bl_buf_t out;             /* text generated and not yet delivered */
    bool done;                /* the worker is finished with it */
    bool running;             /* a worker holds it */
    int err_status;           /* 0, or the HTTP status of an error answer */
    const char *err_type;
    const char *err_code;
    char err_msg[640];
    size_t n_prompt, n_generated;
    size_t n_cached;          /* prompt tokens found in the slot's cache */
    bl_finish_t finish;
    atomic_bool cancel;
    /* loop thread only */
    bool started;             /* headers and the first chunk are out */
    bool abandoned;           /* the caller cancelled: no more callbacks */
    bool delivering;
    bl_buf_t text;            /* non-streamed: the whole answer so far */
    bl_buf_t calls;           /* non-streamed: tool_calls array members so far */
    bl_buf_t call_name, call_args; /* non-streamed: the call being reported */
    size_t n_calls;           /* tool calls reported to the client */
    bl_buf_t wire;            /* bytes being handed to on_body */
    struct bl_local_req *q_next;         /* waiting for a slot */
    struct bl_local_req *prev, *next;    /* every live request */
};

/* A slot is one sequence the scheduler can run: its context (KV cache,
 * which outlives requests so a later prompt can reuse its prefix) and the
 * request it is generating for, if any. */
typedef struct {
    struct bl_local *l;
    bl_ctx_t *ctx;
    bl_local_req_t *r;
    bl_gen_t *gen;            /* NULL while the prompt is still being fed */
    bl_token_t *pending;      /* the prompt, fed a chunk per scheduler step */
    size_t n_pending, pos_pending;
} bl_slot_t;

struct bl_local {
    bl_locals_t *set;
    uv_loop_t *loop;
    char *name;
    bl_local_cfg_t cfg;       /* model_path owned */
    _Atomic int state;        /* bl_local_state_t */
    char err[512];
    bl_model_t *model;
    bl_slot_t *slots;
    uv_work_t load_work;
    uv_async_t async;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bl_local_req_t *q_head, *q_tail;
    unsigned q_len;
    bl_local_req_t *live;
    pthread_t sched;          /* the scheduler thread (sched.c) */
    unsigned n_threads;       /* 1 while it runs */
    unsigned n_busy;          /* requests taken from the queue and not yet done */
    bool quit;
    bool loading;             /* the load work is queued or running */
    bool retired;             /* no longer in the config: close when idle */
    bool standby;             /* retired, but serves until its replacement is ready */
    bool closing;
    struct bl_local *next;
};

struct bl_locals {
    uv_loop_t *loop;
    bl_local_t *list;
    bl_metric_t *m_state;
    void (*done)(void *);
    void *done_ud;
    bool closing;
};

/* sched.c: decodes every active slot as one batch per step */
void *bl_local_scheduler(void *arg);

/* wire.c: the OpenAI side of a local request */
int bl_local_parse(bl_local_t *l, bl_local_req_t *r, const char *path, const char *body,
                   size_t len);
void bl_local_free_req_fields(bl_local_req_t *r);
/* Deliver what the worker produced (text, then the end) as HTTP to cb. */
void bl_local_deliver(bl_local_req_t *r, const char *text, size_t len, bool done);
/* Parse tool calls written in style out of what r delivers (bl_local_parse
 * does this when the request's tools were rendered). */
int bl_local_tools_begin(bl_local_req_t *r, bl_chat_tool_style_t style);

/* fanout.c: n > 1 choices (2..16) of one chat or completions request;
 * root is the parsed body (modified). */
int bl_local_fan_start(bl_local_t *l, const char *path, json_t *root, unsigned n,
                       const bl_upstream_cb_t *cb, bl_local_req_t **out);
void bl_local_fan_cancel(bl_local_fan_t *f);

#endif
