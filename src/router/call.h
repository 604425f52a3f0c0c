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
    /* Families (xl.c): set when the target is not spoken to in plain chat
     * completions or the client is not a chat client. */
    bl_family_t tfam;         /* what the target speaks */
    const char *path;         /* relative to the target's base_url */
    bool translated;          /* tfam differs from the client's family */
    bl_xread_t *rd;           /* reads the target's answer; NULL on the chat fast path */
    bl_xwrite_t *wr;          /* writes it in the client's family (translated only) */
    bl_sse_parser_t sse;
    bl_buf_t out;             /* client bytes made from events, not yet handed on */
    bool chunk_sent;          /* the bytes being read were already handed to the client */
    int xl_rc;                /* a reader/writer failure inside an event callback */
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
    bl_xreq_t *xq;            /* the client's request in the internal form, read on demand */
    bool xq_tried;
    bl_xerr_t xq_err;         /* why it could not be read or written, for a 400 */
    bl_xwrite_t *cwr;         /* writes a continued stream (mid-stream failover) */
    unsigned skipped_peers;   /* peer targets left out: the request came from a peer */
    bool committed, finished, canceled;
};

/* call.c, shared with xl.c */
double bl_ms_since(uint64_t start_ns);
const char *bl_att_label(const bl_attempt_run_t *a);
void bl_att_record_end(bl_call_t *c, bl_attempt_run_t *a, bl_attempt_outcome_t o, const char *detail);
void bl_att_failed(bl_attempt_run_t *a, bl_attempt_outcome_t o, const char *detail);
void bl_att_commit(bl_call_t *c, bl_attempt_run_t *a, bool stream, const char *body, size_t len);
void bl_att_healthy(bl_call_t *c, bl_attempt_run_t *a);
void bl_att_cancel_losers(bl_call_t *c, bl_attempt_run_t *winner);
void bl_call_finish(bl_call_t *c);
void bl_call_try_next(bl_call_t *c);
void bl_call_stream_cut(bl_call_t *c, bl_attempt_run_t *a, bl_up_result_t res);

/* xl.c: attempts that read their answer as events (another family, or a
 * non-chat client). */
bl_family_t bl_xl_target_family(const bl_call_t *c, const bl_provider_cfg_t *p);
/* Set up a->rd / a->wr and, when translated, the request body. BL_EINVAL
 * when the request cannot be said in the target's family (c->xq_err says why). */
int bl_xl_prepare(bl_call_t *c, bl_attempt_run_t *a);
void bl_xl_body(bl_call_t *c, bl_attempt_run_t *a, const char *p, size_t n);
/* The transfer ended well (BL_UP_OK): finish the attempt. */
void bl_xl_done(bl_call_t *c, bl_attempt_run_t *a);
/* The committed stream broke and cannot go on: the client's family's error. */
void bl_xl_report_cut(bl_call_t *c, bl_attempt_run_t *a);
void bl_xl_keep_writer(bl_call_t *c, bl_attempt_run_t *a);
void bl_xl_attempt_free(bl_attempt_run_t *a);
void bl_xl_call_free(bl_call_t *c);

void bl_resume_note_event(bl_call_t *c, json_t *ev);
/* The same, from an event read by bl_xchat_chunk_read, once first_seen. */
void bl_resume_note_chunk(bl_call_t *c, const bl_xchat_chunk_t *ck);
/* Capture the first event's id/created/model and set first_seen; -1 (and
 * nothing changed) when jansson must read the event instead. */
int bl_resume_note_first(bl_call_t *c, const char *data, size_t n);
bool bl_resume_possible(const bl_call_t *c);
char *bl_resume_body(bl_call_t *c, const bl_candidate_t *cd, size_t *len);
bool bl_resume_rewrite(bl_call_t *c, const char *data, size_t n, const char *backend, bl_buf_t *out);
void bl_resume_free(bl_call_t *c);

#endif
