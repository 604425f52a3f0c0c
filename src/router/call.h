/* Internal to router: the state of a routed call and its attempts. */
#ifndef BL_ROUTER_CALL_H
#define BL_ROUTER_CALL_H

#include <jansson.h>

#include "local/local.h"
#include "router/router.h"
#include "router/sse.h"

struct bl_router {
    uv_loop_t *loop;
    bl_upstream_t *up;
    bl_health_table_t *health;
    bl_locals_t *locals;      /* type: local providers; may be NULL */
    bl_rng_t rng;
    size_t active_calls;
    bl_metric_t *m_midstream;
    bl_metric_t *m_attempts, *m_failovers, *m_hedges, *m_breaker, *m_breaker_changes,
        *m_cooldown, *m_ttfb, *m_duration;
};

/* A target the call may try, in the order it will try them. */
typedef struct {
    const bl_target_cfg_t *target;
    const bl_provider_cfg_t *provider;
    bl_health_t *health;
    unsigned tier;
    bool tried;
} bl_candidate_t;

typedef struct bl_attempt_run {
    struct bl_call *call;
    bl_candidate_t *cand;
    bl_upstream_xfer_t *xfer; /* a cloud target's transfer, or */
    bl_local_req_t *lreq;     /* a local target's request */
    unsigned log_idx;         /* index in call->rep.attempts */
    uint64_t start_ns;
    uint64_t first_token_deadline_ms; /* 0 once the first token arrived (or not a stream) */
    int status;
    char content_type[128];
    char retry_after[64];
    bl_buf_t body;            /* response bytes held until the response is committed */
    size_t scanned;           /* stream: bytes of body already split into events */
    double ttfb_ms;           /* first token (stream) or whole answer (not), -1 before */
    bool got_first;
    bool continuation;        /* continues a stream another target broke off */
    bool passthrough;         /* a client error we hand to the client as it is */
    char *req_body;           /* the client body with the target's model */
    size_t req_len;
    char *url;                /* one allocation: the URL, then every header line */
    size_t url_cap;           /* its size, to wipe it (it holds the API key) */
    const char *hdr_lines[24];
    size_t n_hdr;
} bl_attempt_run_t;

#define BL_MAX_PARALLEL 2 /* the attempt and one hedge */

/* Mid-stream failover state (resume.c). */
typedef struct {
    bool first_seen;          /* id/created/model captured */
    bool impossible;          /* tool calls or n > 1: cannot continue as text */
    bool finished;            /* a finish_reason went by: nothing to continue */
    bool active;              /* looking for a target to continue on */
    json_t *id, *created, *model;
    bl_buf_t partial;         /* the answer text the client has */
    char from[160];           /* the backend that broke off last */
} bl_resume_t;

struct bl_call {
    bl_router_t *r;
    bl_config_t *cfg;
    const bl_route_cfg_t *route;
    bl_call_req_t req;
    char request_id[40];
    bl_call_cb_t cb;
    bl_candidate_t *cands;
    size_t n_cands;
    size_t next_cand;
    unsigned round;           /* passes over the candidate list */
    unsigned max_attempts;
    bl_attempt_run_t *active[BL_MAX_PARALLEL];
    unsigned n_active;
    uint64_t start_ns;
    uint64_t deadline_ms;
    uint64_t hedge_at_ms;     /* 0: no hedge pending */
    uint64_t resume_at_ms;    /* 0: not waiting out a backoff */
    uv_timer_t timer;
    bl_call_report_t rep;
    bl_attempt_run_t *winner;
    bl_buf_t scratch;
    bl_buf_t wire;            /* a rewritten continuation event */
    bl_resume_t resume;
    bool committed, finished, canceled;
};

void bl_resume_note_event(bl_call_t *c, json_t *ev);
/* The same, from an event read by bl_sse_chunk_read, once first_seen. */
void bl_resume_note_chunk(bl_call_t *c, const bl_sse_chunk_t *ck);
/* Capture the first event's id/created/model and set first_seen; -1 (and
 * nothing changed) when jansson must read the event instead. */
int bl_resume_note_first(bl_call_t *c, const char *data, size_t n);
bool bl_resume_possible(const bl_call_t *c);
char *bl_resume_body(bl_call_t *c, const bl_candidate_t *cd, size_t *len);
bool bl_resume_rewrite(bl_call_t *c, const char *data, size_t n, const char *backend, bl_buf_t *out);
void bl_resume_free(bl_call_t *c);

#endif
