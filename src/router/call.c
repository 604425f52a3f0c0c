/*
 * One routed call: ordering targets, running attempts, failing over,
 * hedging, and committing the first good response to the client.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "router/call.h"
#include "router/sse.h"

#define MAX_RESPONSE_BYTES (64u << 20)
#define MAX_RETRY_AFTER_S 3600u

static void arm_timer(bl_call_t *c);
static void on_timer(uv_timer_t *t);
static void fail_call(bl_call_t *c, int status, const char *type, const char *code);

/* ---- candidates ----------------------------------------------------------- */

/* Tiers in order; inside a tier, a weighted shuffle: each position is drawn
 * with probability proportional to weight among those not yet placed. */
static int build_candidates(bl_call_t *c)
{
    const bl_route_cfg_t *rt = c->route;
    size_t n = 0;
    for (size_t t = 0; t < rt->n_tiers; t++)
        n += rt->tiers[t].n_targets;
    c->cands = calloc(n ? n : 1, sizeof *c->cands);
    if (!c->cands)
        return BL_ENOMEM;
    for (size_t t = 0; t < rt->n_tiers; t++) {
        const bl_tier_cfg_t *tier = &rt->tiers[t];
        size_t first = c->n_cands;
        for (size_t i = 0; i < tier->n_targets; i++) {
            const bl_provider_cfg_t *p = &c->cfg->providers[tier->targets[i].provider];
            /* sent as they are: only a target of the client's family can take them
               (Anthropic has no completions or embeddings; only Anthropic counts
               Anthropic tokens) */
            if (c->req.raw_only && p->type != BL_PROVIDER_BALLAST &&
                (p->type == BL_PROVIDER_ANTHROPIC) != (c->req.family == BL_FAM_ANTHROPIC))
                continue;
            /* a request a peer sent us never goes to a peer: no loops in a fleet */
            if (c->req.from_peer && p->type == BL_PROVIDER_BALLAST) {
                c->skipped_peers++;
                continue;
            }
            bl_candidate_t *cd = &c->cands[c->n_cands++];
            cd->target = &tier->targets[i];
            cd->provider = p;
            cd->tier = (unsigned)t;
            cd->health = bl_health_get(c->r->health, cd->provider->name, cd->target->model);
            if (!cd->health)
                return BL_ENOMEM;
            bl_health_hold(cd->health); /* a reload must not free it under us */
        }
        for (size_t i = first; i < c->n_cands; i++) {
            double total = 0;
            for (size_t j = i; j < c->n_cands; j++)
                total += c->cands[j].target->weight;
            double x = bl_rng_unit(&c->r->rng) * total;
            size_t pick = i;
            for (size_t j = i; j < c->n_cands; j++) {
                x -= c->cands[j].target->weight;
                if (x < 0) {
                    pick = j;
                    break;
                }
            }
            bl_candidate_t tmp = c->cands[i];
            c->cands[i] = c->cands[pick];
            c->cands[pick] = tmp;
        }
    }
    return BL_OK;
}

static bool usable(bl_call_t *c, bl_candidate_t *cd, uint64_t now)
{
    return bl_router_target_usable(c->r, c->cfg, cd->provider, cd->health, now);
}

/* ---- attempts --------------------------------------------------------------- */

double bl_ms_since(uint64_t start_ns)
{
    return (double)(bl_now_ns() - start_ns) / 1e6;
}

static void attempt_free(bl_attempt_run_t *a)
{
    if (!a)
        return;
    if (a->xfer)
        bl_upstream_cancel(a->xfer);
    if (a->lreq)
        bl_local_cancel(a->lreq);
    bl_buf_free(&a->body);
    bl_xl_attempt_free(a);
    free(a->req_body);
    if (a->url) {
        /* The Authorization line holds a secret; don't leave it in freed memory. */
        explicit_bzero(a->url, a->url_cap);
        free(a->url);
    }
    free(a);
}

static void detach(bl_call_t *c, bl_attempt_run_t *a)
{
    for (unsigned i = 0; i < c->n_active; i++)
        if (c->active[i] == a) {
            c->active[i] = c->active[--c->n_active];
            c->active[c->n_active] = NULL;
            return;
        }
}

const char *bl_att_label(const bl_attempt_run_t *a)
{
    return a->cand->health->key;
}

static void note_breaker_change(bl_call_t *c, bl_attempt_run_t *a, bool changed)
{
    if (!changed)
        return;
    bl_health_t *h = a->cand->health;
    const char *lv[] = {h->key, bl_breaker_state_name(h->state)};
    bl_metric_add(c->r->m_breaker_changes, 1, lv);
    bl_log(h->state == BL_BREAKER_OPEN ? BL_LOG_WARN : BL_LOG_INFO, "breaker %s for %s",
           bl_breaker_state_name(h->state), h->key);
}

void bl_att_record_end(bl_call_t *c, bl_attempt_run_t *a, bl_attempt_outcome_t o, const char *detail)
{
    bl_attempt_t *log = &c->rep.attempts[a->log_idx];
    log->outcome = o;
    log->http_status = a->status;
    log->ms = bl_ms_since(a->start_ns);
    if (detail)
        snprintf(log->detail, sizeof log->detail, "%s", detail);
    const char *lv[] = {bl_att_label(a), bl_attempt_outcome_name(o)};
    bl_metric_add(c->r->m_attempts, 1, lv);
    const char *tv[] = {bl_att_label(a)};
    bl_metric_observe(c->r->m_duration, log->ms / 1000.0, tv);
}

/* An attempt failed before anything reached the client: judge the target,
 * and move the call on unless another attempt is still running. */
void bl_att_failed(bl_attempt_run_t *a, bl_attempt_outcome_t o, const char *detail)
{
    bl_call_t *c = a->call;
    uint64_t now = bl_now_ms();
    bl_att_record_end(c, a, o, detail);
    bl_health_t *h = a->cand->health;
    if (o == BL_ATTEMPT_CANCELED) {
        bl_health_abandon(h);
    } else {
        note_breaker_change(c, a, bl_health_failure(h, &c->cfg->breaker, now));
        const char *lv[] = {c->route->model, bl_attempt_outcome_name(o)};
        bl_metric_add(c->r->m_failovers, 1, lv);
    }
    detach(c, a);
    attempt_free(a);
    if (c->finished || c->canceled)
        return;
    if (c->n_active == 0)
        bl_call_try_next(c);
    else
        arm_timer(c);
}

void bl_call_finish(bl_call_t *c)
{
    if (c->finished)
        return;
    c->finished = true;
    c->rep.ttfb_ms = c->rep.ttfb_ms > 0 ? c->rep.ttfb_ms : -1;
    uv_timer_stop(&c->timer);
    if (c->cb.on_finish)
        c->cb.on_finish(c->cb.ud, &c->rep);
    bl_call_cancel(c); /* releases everything; no callbacks after on_finish */
}

static void extract_usage(bl_call_t *c, json_t *root)
{
    json_t *u = json_object_get(root, "usage");
    if (!json_is_object(u))
        return;
    json_t *p = json_object_get(u, "prompt_tokens"), *k = json_object_get(u, "completion_tokens"),
           *t = json_object_get(u, "total_tokens");
    if (json_is_integer(p))
        c->rep.usage_prompt = json_integer_value(p);
    if (json_is_integer(k))
        c->rep.usage_completion = json_integer_value(k);
    if (json_is_integer(t))
        c->rep.usage_total = json_integer_value(t);
}

/* extract_usage on a "usage" object's text (a span the scanner found). */
static void extract_usage_span(bl_call_t *c, const char *p, size_t n)
{
    long long v[3];
    bool have[3];
    if (!bl_xchat_usage_read(p, n, v, have)) {
        /* the scanner's reading; a jansson tree only for odd texts */
        if (have[0])
            c->rep.usage_prompt = v[0];
        if (have[1])
            c->rep.usage_completion = v[1];
        if (have[2])
            c->rep.usage_total = v[2];
        return;
    }
    json_t *u = json_loadb(p, n, 0, NULL);
    json_t *wrap = json_pack("{s:o}", "usage", u);
    extract_usage(c, wrap);
    json_decref(wrap);
}

/* Cancel every attempt but the winner; they are not the targets' fault. */
void bl_att_cancel_losers(bl_call_t *c, bl_attempt_run_t *winner)
{
    for (unsigned i = c->n_active; i-- > 0;) {
        bl_attempt_run_t *a = c->active[i];
        if (a == winner)
            continue;
        bl_att_record_end(c, a, BL_ATTEMPT_CANCELED, "lost the hedge");
        bl_health_abandon(a->cand->health);
        detach(c, a);
        attempt_free(a);
    }
    c->hedge_at_ms = 0;
}

void bl_att_commit(bl_call_t *c, bl_attempt_run_t *a, bool stream, const char *body, size_t len)
{
    c->committed = true;
    c->winner = a;
    c->rep.answered = true;
    c->rep.status = a->status;
    c->rep.backend = bl_att_label(a);
    c->rep.tier = a->cand->tier;
    c->rep.ttfb_ms = bl_ms_since(c->start_ns);
    bl_att_cancel_losers(c, a);
    bl_call_response_t r = {
        .status = a->status,
        .content_type = a->content_type[0] ? a->content_type : NULL,
        .backend = bl_att_label(a),
        .attempts = c->rep.n_attempts,
        .degraded = a->cand->tier > 0,
        .stream = stream,
        .body = body,
        .len = len,
        .retry_after = a->passthrough && a->retry_after[0] ? a->retry_after : NULL,
    };
    uv_timer_stop(&c->timer);
    c->cb.on_response(c->cb.ud, &r);
}

/* The attempt produced a good result: judge the target healthy. Its time to
 * first token (or to the whole answer, when not streamed) feeds the p95 that
 * hedging waits for. */
void bl_att_healthy(bl_call_t *c, bl_attempt_run_t *a)
{
    if (a->ttfb_ms < 0)
        a->ttfb_ms = bl_ms_since(a->start_ns);
    note_breaker_change(c, a,
                        bl_health_success(a->cand->health, &c->cfg->breaker, bl_now_ms(), a->ttfb_ms));
}

/* A complete, non-streamed body from a 2xx: a valid JSON object or it is a
 * failure. Validated by the allocation-free scanner, which also finds
 * "usage", so only that small object is parsed into a tree. */
static void complete_json(bl_call_t *c, bl_attempt_run_t *a)
{
    bl_json_member_t m[] = {{.key = "usage"}};
    const char *body = a->body.data ? a->body.data : "";
    if (bl_json_scan_object(body, a->body.len, m, 1, NULL, NULL)) {
        bl_att_failed(a, BL_ATTEMPT_MALFORMED, "response is not a JSON object");
        return;
    }
    if (m[0].kind == BL_JSON_OBJECT)
        extract_usage_span(c, body + m[0].off, m[0].len);
    a->ttfb_ms = bl_ms_since(a->start_ns);
    const char *tv[] = {bl_att_label(a)};
    bl_metric_observe(c->r->m_ttfb, a->ttfb_ms / 1000.0, tv);
    bl_att_commit(c, a, false, a->body.data, a->body.len);
    if (c->canceled)
        return;
    bl_att_record_end(c, a, BL_ATTEMPT_OK, NULL);
    bl_att_healthy(c, a);
    bl_call_finish(c);
}

/* Read one committed event for usage and for the answer text so far. The
 * scanner does it without a tree; jansson only parses the first event's
 * id/created/model (kept as JSON values for rewriting a continuation), a
 * "usage" object with odd text, and whatever the scanner leaves to it. */
static void note_event(bl_call_t *c, const char *data, size_t n)
{
    if (n == 6 && !memcmp(data, "[DONE]", 6))
        return; /* not JSON: nothing to read */
    bl_xchat_chunk_t ck;
    if (!bl_xchat_chunk_read(data, n, &ck) &&
        (c->resume.first_seen || !bl_resume_note_first(c, data, n))) {
        if (ck.usage.kind == BL_JSON_OBJECT)
            extract_usage_span(c, data + ck.usage.off, ck.usage.len);
        bl_resume_note_chunk(c, &ck);
        return;
    }
    json_t *root = json_loadb(data, n, 0, NULL);
    if (json_is_object(root)) {
        extract_usage(c, root);
        bl_resume_note_event(c, root);
    }
    json_decref(root);
}

/* Bytes of the committed stream. They go to the client untouched (or, for a
 * continuation, event by event under the first stream's id); each event is
 * also read for usage and for the text so far, which a mid-stream failover
 * needs. Events may straddle reads, so the unfinished tail is kept. */
static void committed_bytes(bl_call_t *c, bl_attempt_run_t *a, const char *p, size_t n)
{
    if (!a->continuation) {
        c->cb.on_data(c->cb.ud, p, n);
        if (c->canceled)
            return;
    }
    bl_buf_append(&a->body, p, n);
    size_t off = 0;
    for (;;) {
        size_t ev = bl_sse_event_len(a->body.data + off, a->body.len - off);
        if (!ev)
            break;
        const char *evp = a->body.data + off;
        off += ev;
        if (!bl_sse_event_data(evp, ev, &c->scratch))
            continue;
        if (a->continuation) {
            if (bl_resume_rewrite(c, c->scratch.data, c->scratch.len, bl_att_label(a), &c->wire))
                c->cb.on_data(c->cb.ud, c->wire.data, c->wire.len);
            if (c->canceled)
                return;
        }
        note_event(c, c->scratch.data, c->scratch.len);
    }
    bl_buf_consume(&a->body, off);
    if (a->body.len > (1u << 20)) {
        bl_buf_reset(&a->body); /* an endless event: we lose usage and resumability */
        c->resume.impossible = true;
    }
}

static bool nonempty_str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) && json_string_length(v) > 0;
}

/* What a stream event means before anything reached the client. */
typedef enum { EV_HOLD, EV_COMMIT, EV_BAD } ev_verdict_t;

/* judge_event's rules on a jansson tree: for the rare events the scanner
 * leaves to jansson (see bl_xchat_chunk_read). */
static ev_verdict_t judge_event_tree(const bl_buf_t *data)
{
    json_t *root = json_loadb(data->data, data->len, 0, NULL);
    ev_verdict_t v = EV_COMMIT;
    if (!json_is_object(root)) {
        v = EV_BAD;
    } else if (json_object_get(root, "error")) {
        v = EV_BAD;
    } else {
        json_t *choices = json_object_get(root, "choices");
        if (json_is_array(choices) && json_array_size(choices) > 0) {
            v = EV_HOLD;
            size_t i;
            json_t *ch;
            json_array_foreach(choices, i, ch) {
                json_t *d = json_object_get(ch, "delta");
                json_t *fr = json_object_get(ch, "finish_reason");
                if (nonempty_str(ch, "text") || (fr && !json_is_null(fr)) ||
                    (json_is_object(d) &&
                     (nonempty_str(d, "content") || nonempty_str(d, "refusal") ||
                      json_object_get(d, "tool_calls") || json_object_get(d, "function_call"))))
                    v = EV_COMMIT;
            }
        }
    }
    json_decref(root);
    return v;
}

static ev_verdict_t judge_event(const bl_buf_t *data)
{
    if (!strcmp(data->data, "[DONE]"))
        return EV_COMMIT;
    /* Read with the scanner (no tree per event); jansson decides the odd
     * cases, including every invalid event. */
    bl_xchat_chunk_t ck;
    if (bl_xchat_chunk_read(data->data, data->len, &ck))
        return judge_event_tree(data);
    if (ck.error)
        return EV_BAD; /* an error event: the provider failed before answering */
    /* OpenAI sends a role-only chunk first and the first token later; the
     * role chunk shows the user nothing, so it is held until a chunk with
     * content, a tool call or a finish reason — until then the request
     * can still move to another target, and first_token_ms really times
     * the first token. */
    if (ck.choices_array && ck.n_choices > 0)
        return ck.any_shows ? EV_COMMIT : EV_HOLD;
    return EV_COMMIT;
}

/* Before commit: hold stream bytes until the first event that carries
 * content; commit then, or fail over if an event is broken. */
static void stream_precommit(bl_call_t *c, bl_attempt_run_t *a)
{
    while (a->scanned < a->body.len) {
        size_t ev = bl_sse_event_len(a->body.data + a->scanned, a->body.len - a->scanned);
        if (!ev)
            return;
        const char *evp = a->body.data + a->scanned;
        a->scanned += ev;
        if (!bl_sse_event_data(evp, ev, &c->scratch))
            continue; /* comment or keep-alive: forwarded with the first real event */
        ev_verdict_t v = judge_event(&c->scratch);
        if (v == EV_BAD) {
            bl_att_failed(a, BL_ATTEMPT_MALFORMED, "stream event is not a valid chunk");
            return;
        }
        if (v == EV_HOLD)
            continue;
        a->got_first = true;
        a->first_token_deadline_ms = 0;
        a->ttfb_ms = bl_ms_since(a->start_ns);
        const char *tv[] = {bl_att_label(a)};
        bl_metric_observe(c->r->m_ttfb, a->ttfb_ms / 1000.0, tv);
        /* Hand over what we held (for a continuation: rewritten, its role
         * chunk dropped); from now on bytes flow through committed_bytes. */
        bl_buf_t held = a->body;
        a->body = (bl_buf_t){0};
        if (a->continuation) {
            c->winner = a;
            c->resume.active = false;
            c->rep.ttfb_ms = c->rep.ttfb_ms > 0 ? c->rep.ttfb_ms : bl_ms_since(c->start_ns);
            bl_att_cancel_losers(c, a);
            uv_timer_stop(&c->timer);
        } else {
            bl_att_commit(c, a, true, NULL, 0);
        }
        if (!c->canceled)
            committed_bytes(c, a, held.data, held.len);
        bl_buf_free(&held);
        return;
    }
}

/* ---- upstream callbacks --------------------------------------------------- */

static bool is_failover_status(int s)
{
    return s >= 500 || s == 408 || s == 429;
}

static void copy_header(const bl_buf_t *raw, const char *name, char *out, size_t cap)
{
    bl_str_t v = bl_upstream_header(raw, name);
    size_t n = v.p ? BL_MIN(v.n, cap - 1) : 0;
    if (n)
        memcpy(out, v.p, n);
    out[n] = '\0';
}

static void on_up_headers(void *ud, int status, const bl_buf_t *raw)
{
    bl_attempt_run_t *a = ud;
    
    a->status = status;
    copy_header(raw, "content-type", a->content_type, sizeof a->content_type);
    copy_header(raw, "retry-after", a->retry_after, sizeof a->retry_after);
    if (is_failover_status(status)) {
        uint64_t secs;
        if ((status == 429 || status == 503) && a->retry_after[0] &&
            bl_parse_retry_after((bl_str_t){a->retry_after, strlen(a->retry_after)},
                                 bl_wall_ms() / 1000, &secs)) {
            bl_health_cooldown(a->cand->health, bl_now_ms(),
                               BL_MIN(secs, (uint64_t)MAX_RETRY_AFTER_S) * 1000);
        }
        char detail[64];
        snprintf(detail, sizeof detail, "HTTP %d", status);
        bl_att_failed(a,
                       status == 429   ? BL_ATTEMPT_HTTP_429
                       : status == 408 ? BL_ATTEMPT_HTTP_408
                                       : BL_ATTEMPT_HTTP_5XX,
                       detail);
        return;
    }
    if (status < 200 || status >= 300) {
        if (a->continuation) {
            /* the client's response started long ago: this target cannot help */
            char detail[64];
            snprintf(detail, sizeof detail, "HTTP %d to the continuation", status);
            bl_att_failed(a, BL_ATTEMPT_CLIENT_ERROR, detail);
            return;
        }
        a->passthrough = true; /* the client's own error: theirs to see, no retry */
    }
}

static int on_up_body(void *ud, const char *p, size_t n)
{
    bl_attempt_run_t *a = ud;
    bl_call_t *c = a->call;
    if (a->rd) {
        bl_xl_body(c, a, p, n);
        return 0;
    }
    if (c->committed && c->winner == a) {
        committed_bytes(c, a, p, n);
        return 0;
    }
    if (a->body.len + n > MAX_RESPONSE_BYTES) {
        bl_att_failed(a, BL_ATTEMPT_MALFORMED, "response too large");
        return 0;
    }
    bl_buf_append(&a->body, p, n);
    if (c->req.stream && !a->passthrough && !strncasecmp(a->content_type, "text/event-stream", 17))
        stream_precommit(c, a);
    return 0;
}

static bl_attempt_outcome_t classify(bl_up_result_t r)
{
    switch (r) {
    case BL_UP_CONNECT:
    case BL_UP_DNS:
    case BL_UP_TLS: return BL_ATTEMPT_CONNECT;
    case BL_UP_TIMEOUT_CONNECT:
    case BL_UP_TIMEOUT_TOTAL: return BL_ATTEMPT_TIMEOUT;
    case BL_UP_PROTOCOL: return BL_ATTEMPT_MALFORMED;
    default: return BL_ATTEMPT_RESET;
    }
}

/* The committed stream broke (or its reader gave up on it): continue it on
 * the next target when the client's partial answer allows, else end it. */
void bl_call_stream_cut(bl_call_t *c, bl_attempt_run_t *a, bl_up_result_t res)
{
    if (bl_resume_possible(c) && c->rep.n_attempts < c->max_attempts) {
        bl_att_record_end(c, a, BL_ATTEMPT_STREAM_CUT, bl_up_result_name(res));
        note_breaker_change(c, a, bl_health_failure(a->cand->health, &c->cfg->breaker, bl_now_ms()));
        snprintf(c->resume.from, sizeof c->resume.from, "%s", bl_att_label(a));
        bl_xl_keep_writer(c, a);
        c->resume.active = true;
        c->winner = NULL;
        c->rep.midstream_failovers++;
        const char *lv[] = {c->route->model};
        bl_metric_add(c->r->m_midstream, 1, lv);
        detach(c, a);
        attempt_free(a);
        bl_call_try_next(c);
        return;
    }
    /* The client already has part of the answer; we can only end it. */
    c->rep.stream_cut = true;
    bl_att_record_end(c, a, BL_ATTEMPT_STREAM_CUT, bl_up_result_name(res));
    note_breaker_change(c, a, bl_health_failure(a->cand->health, &c->cfg->breaker, bl_now_ms()));
    bl_xl_report_cut(c, a);
    if (!c->canceled)
        bl_call_finish(c);
}

static void on_up_done(void *ud, bl_up_result_t res, const char *errmsg)
{
    bl_attempt_run_t *a = ud;
    bl_call_t *c = a->call;
    a->xfer = NULL; /* the upstream (or local) module is done with it */
    a->lreq = NULL;
    if (c->committed && c->winner == a && !c->resume.active) {
        if (res != BL_UP_OK) {
            bl_call_stream_cut(c, a, res);
            return;
        }
        if (a->rd) {
            bl_xl_done(c, a);
            return;
        }
        bl_att_record_end(c, a, BL_ATTEMPT_OK, NULL);
        bl_att_healthy(c, a);
        bl_call_finish(c);
        return;
    }
    if (res != BL_UP_OK) {
        char detail[160];
        snprintf(detail, sizeof detail, "%s%s%s", bl_up_result_name(res), errmsg && *errmsg ? ": " : "",
                 errmsg ? errmsg : "");
        bl_att_failed(a, classify(res), detail);
        return;
    }
    if (a->rd) {
        bl_xl_done(c, a);
        return;
    }
    if (a->passthrough) {
        /* Pass the client error through as the provider sent it. */
        bl_att_commit(c, a, false, a->body.data ? a->body.data : "", a->body.len);
        if (c->canceled)
            return;
        bl_att_record_end(c, a, BL_ATTEMPT_CLIENT_ERROR, NULL);
        /* A 4xx is an answer, not an outage: the target is healthy. */
        bl_att_healthy(c, a);
        c->rep.status = a->status;
        bl_call_finish(c);
        return;
    }
    if (a->continuation || (c->req.stream && !strncasecmp(a->content_type, "text/event-stream", 17))) {
        bl_att_failed(a, BL_ATTEMPT_MALFORMED, "stream ended before any content");
        return;
    }
    /* Non-streamed (or a provider that answered a stream request with JSON). */
    complete_json(c, a);
}

/* ---- starting attempts ---------------------------------------------------- */

/* Append the concatenation of parts to the attempt's arena (sized in
 * advance) as one NUL-terminated string; returns where it starts. */
static char *arena_put(char **at, const char *const *parts, size_t n)
{
    char *start = *at;
    for (size_t i = 0; i < n; i++) {
        size_t k = strlen(parts[i]);
        memcpy(*at, parts[i], k);
        *at += k;
    }
    *(*at)++ = '\0';
    return start;
}

/* The target's model as a JSON string. Plain names are quoted directly;
 * anything needing escapes goes through jansson as before. */
static char *quote_model(const char *model)
{
    size_t n = strlen(model);
    bool plain = true;
    for (size_t i = 0; i < n && plain; i++)
        plain = (unsigned char)model[i] >= 0x20 && (unsigned char)model[i] < 0x7f &&
                model[i] != '"' && model[i] != '\\';
    if (!plain) {
        json_t *m = json_string(model);
        char *q = m ? json_dumps(m, JSON_ENCODE_ANY) : NULL;
        json_decref(m);
        return q;
    }
    char *q = malloc(n + 3);
    if (q) {
        q[0] = '"';
        memcpy(q + 1, model, n);
        q[n + 1] = '"';
        q[n + 2] = '\0';
    }
    return q;
}

static int build_request(bl_call_t *c, bl_attempt_run_t *a)
{
    const bl_provider_cfg_t *p = a->cand->provider;
    int rc = bl_xl_prepare(c, a);
    if (rc)
        return rc;
    if (a->req_body)
        goto target; /* written in the target's family */
    if (a->continuation) {
        a->req_body = bl_resume_body(c, a->cand, &a->req_len);
        if (!a->req_body)
            return BL_ENOMEM;
        goto target;
    }
    /* The model value is swapped byte for byte; everything else in the
     * client's body goes upstream exactly as it came. */
    char *quoted = quote_model(a->cand->target->model);
    if (!quoted)
        return BL_ENOMEM;
    size_t qn = strlen(quoted);
    size_t tail = c->req.body_len - c->req.model_off - c->req.model_len;
    a->req_len = c->req.model_off + qn + tail;
    a->req_body = malloc(a->req_len + 1);
    if (!a->req_body) {
        free(quoted);
        return BL_ENOMEM;
    }
    memcpy(a->req_body, c->req.body, c->req.model_off);
    memcpy(a->req_body + c->req.model_off, quoted, qn);
    memcpy(a->req_body + c->req.model_off + qn, c->req.body + c->req.model_off + c->req.model_len,
           tail);
    a->req_body[a->req_len] = '\0';
    free(quoted);
target:
    a->path = a->translated ? bl_family_path(a->tfam) : c->req.path;
    if (p->type == BL_PROVIDER_LOCAL)
        return BL_OK; /* no URL, no headers: the engine reads the body */

    /* The URL and all header lines in one allocation (freed, wiped, once). */
    const char *accept = c->req.stream ? "Accept: text/event-stream" : "Accept: application/json";
    const char *path = a->path;
    bool anthropic = p->type == BL_PROVIDER_ANTHROPIC, peer = p->type == BL_PROVIDER_BALLAST;
    /* Anthropic: the client's version and beta flags when it is an Anthropic
       client, else the provider's; a peer gets the client's, to pass on */
    const char *aver = (anthropic || peer) && c->req.anthropic_version && !a->translated
                           ? c->req.anthropic_version
                           : p->anthropic_version;
    const char *abeta = (anthropic || peer) && c->req.anthropic_beta && !a->translated
                            ? c->req.anthropic_beta
                            : p->anthropic_beta;
    static const char hop[] = "x-ballast-hop: 1";
    static const char ct[] = "Content-Type: application/json";
    static const char ua[] = "User-Agent: ballast/" BL_VERSION_STRING;
    size_t cap = strlen(p->base_url) + strlen(path) + 1 + sizeof ct + strlen(accept) + 1 +
                 strlen("X-Request-Id: ") + strlen(c->request_id) + 1 + sizeof ua;
    size_t n_fixed = 4;
    if (p->api_key) {
        cap += strlen("Authorization: Bearer ") + strlen(p->api_key) + 1;
        n_fixed++;
    }
    if (aver) {
        cap += strlen("anthropic-version: ") + strlen(aver) + 1;
        n_fixed++;
    }
    if (abeta) {
        cap += strlen("anthropic-beta: ") + strlen(abeta) + 1;
        n_fixed++;
    }
    if (peer) {
        cap += sizeof hop;
        n_fixed++;
    }
    size_t n_extra = BL_MIN(p->n_headers, BL_ARRAY_LEN(a->hdr_lines) - n_fixed);
    for (size_t i = 0; i < n_extra; i++)
        cap += strlen(p->headers[i]) + 1;
    a->url = malloc(cap);
    if (!a->url)
        return BL_ENOMEM;
    a->url_cap = cap;
    char *at = a->url;
    arena_put(&at, (const char *[]){p->base_url, path}, 2);
    a->hdr_lines[a->n_hdr++] = arena_put(&at, (const char *[]){ct}, 1);
    a->hdr_lines[a->n_hdr++] = arena_put(&at, (const char *[]){accept}, 1);
    a->hdr_lines[a->n_hdr++] = arena_put(&at, (const char *[]){"X-Request-Id: ", c->request_id}, 2);
    a->hdr_lines[a->n_hdr++] = arena_put(&at, (const char *[]){ua}, 1);
    if (p->api_key)
        a->hdr_lines[a->n_hdr++] = arena_put(
            &at, (const char *[]){anthropic ? "x-api-key: " : "Authorization: Bearer ", p->api_key},
            2);
    if (aver)
        a->hdr_lines[a->n_hdr++] = arena_put(&at, (const char *[]){"anthropic-version: ", aver}, 2);
    if (abeta)
        a->hdr_lines[a->n_hdr++] = arena_put(&at, (const char *[]){"anthropic-beta: ", abeta}, 2);
    if (peer)
        a->hdr_lines[a->n_hdr++] = arena_put(&at, (const char *[]){hop}, 1);
    for (size_t i = 0; i < n_extra; i++) /* the same lines cap was counted for */
        a->hdr_lines[a->n_hdr++] = arena_put(&at, (const char *[]){p->headers[i]}, 1);
    return BL_OK;
}

static bool start_attempt(bl_call_t *c, bl_candidate_t *cd)
{
    if (c->rep.n_attempts >= BL_MAX_ATTEMPTS)
        return false;
    bl_attempt_run_t *a = calloc(1, sizeof *a);
    if (!a)
        return false;
    a->call = c;
    a->cand = cd;
    a->continuation = c->resume.active;
    a->start_ns = bl_now_ns();
    a->ttfb_ms = -1;
    a->log_idx = c->rep.n_attempts++;
    bl_attempt_t *log = &c->rep.attempts[a->log_idx];
    log->target = cd->health->key; /* the call holds the entry until it ends */
    log->tier = cd->tier;
    cd->tried = true;
    bl_health_begin(cd->health);
    c->active[c->n_active++] = a;

    const bl_timeouts_t *to = &cd->provider->timeouts;
    /* first_token_ms bounds streams only: a non-streamed answer arrives whole
     * when generation ends, and total_ms bounds that. */
    if (c->req.stream && to->first_token_ms)
        a->first_token_deadline_ms = bl_now_ms() + to->first_token_ms;

    int brc = build_request(c, a);
    if (brc == BL_EINVAL) {
        /* not the target's fault: it is not judged, and the next one is tried */
        bl_att_record_end(c, a, BL_ATTEMPT_UNTRANSLATABLE,
                          c->xq_err.message[0] ? c->xq_err.message : "cannot be said in its API");
        bl_health_abandon(cd->health);
        detach(c, a);
        attempt_free(a);
        return false;
    }
    if (brc) {
        bl_att_failed(a, BL_ATTEMPT_CONNECT, "out of memory building the request");
        return true;
    }
    bl_upstream_req_t ureq = {
        .method = "POST",
        .url = a->url,
        .headers = a->hdr_lines,
        .n_headers = a->n_hdr,
        .body = a->req_body,
        .body_len = a->req_len,
        .connect_timeout_ms = to->connect_ms,
        .total_timeout_ms = to->total_ms,
    };
    bl_upstream_cb_t ucb = {
        .ud = a, .on_headers = on_up_headers, .on_body = on_up_body, .on_done = on_up_done};
    if (cd->provider->type == BL_PROVIDER_LOCAL) {
        /* The local model answers through the same callbacks, in OpenAI's
         * wire format, so everything below treats it like any target. */
        bl_local_t *lm = c->r->locals ? bl_locals_find(c->r->locals, cd->provider) : NULL;
        if (!lm || bl_local_start(lm, a->path, a->req_body, a->req_len, &ucb, &a->lreq)) {
            a->lreq = NULL;
            bl_att_failed(a, BL_ATTEMPT_CONNECT, "the local model is not available");
            return true;
        }
    } else if (bl_upstream_start(c->r->up, &ureq, &ucb, &a->xfer)) {
        a->xfer = NULL;
        bl_att_failed(a, BL_ATTEMPT_CONNECT, "could not start the transfer");
        return true;
    }
    /* Hedge: if this one is slow to answer, start the next target too. */
    const bl_hedge_cfg_t *hg = &c->route->hedge;
    if (hg->enabled && c->n_active == 1) {
        double delay = (double)hg->delay_ms;
        if (!hg->delay_ms) {
            double p95 = bl_health_ttfb_p95(cd->health);
            delay = p95 > 0 ? p95 : (double)cd->provider->timeouts.first_token_ms / 2;
        }
        if (delay < (double)hg->min_delay_ms)
            delay = (double)hg->min_delay_ms;
        c->hedge_at_ms = bl_now_ms() + (uint64_t)delay;
    }
    arm_timer(c);
    return true;
}

static uint64_t backoff_ms(bl_call_t *c)
{
    const bl_retry_cfg_t *rc = &c->cfg->retry;
    uint64_t d = rc->backoff_base_ms;
    for (unsigned i = 1; i < c->round && d < rc->backoff_max_ms; i++)
        d *= 2;
    if (d > rc->backoff_max_ms)
        d = rc->backoff_max_ms;
    /* "equal jitter": half fixed, half random, so retries from many clients spread. */
    return d / 2 + (uint64_t)(bl_rng_unit(&c->r->rng) * (double)(d / 2 + 1));
}

static void fail_all_tried(bl_call_t *c)
{
    bool all_untranslatable = c->rep.n_attempts > 0;
    for (unsigned i = 0; i < c->rep.n_attempts; i++)
        all_untranslatable &= c->rep.attempts[i].outcome == BL_ATTEMPT_UNTRANSLATABLE;
    if (c->n_cands == 0 && c->skipped_peers) {
        c->rep.retry_after_s = 1;
        fail_call(c, 503, "server_error", "upstream_unavailable");
        return;
    }
    if (all_untranslatable || c->n_cands == 0) {
        /* nothing failed: the request cannot be served by this route's targets */
        fail_call(c, 400, "invalid_request_error", "unsupported_for_route");
        return;
    }
    /* Nothing left: 503, with Retry-After from the soonest target to recover. */
    uint64_t now = bl_now_ms(), wait = UINT64_MAX;
    for (size_t i = 0; i < c->n_cands; i++) {
        uint64_t w = bl_health_wait_ms(c->cands[i].health, &c->cfg->breaker, now);
        if (w < wait)
            wait = w;
    }
    c->rep.retry_after_s = wait == UINT64_MAX || wait < 1000 ? 1 : (wait + 999) / 1000;
    fail_call(c, 503, "server_error", "upstream_unavailable");
}

/* Start the next attempt, or wait out a backoff, or give up. */
void bl_call_try_next(bl_call_t *c)
{
    if (c->finished || c->canceled || (c->committed && !c->resume.active))
        return;
    uint64_t now = bl_now_ms();
    if (now >= c->deadline_ms) {
        fail_call(c, 504, "server_error", "timeout");
        return;
    }
    while (c->rep.n_attempts < c->max_attempts) {
        if (c->next_cand >= c->n_cands) {
            /* Every target had its turn. Go round again only if one can take
             * traffic; coming back to a target waits a jittered backoff. */
            bool any = false;
            for (size_t i = 0; i < c->n_cands; i++)
                any |= usable(c, &c->cands[i], now);
            if (!any)
                break;
            c->round++;
            c->next_cand = 0;
            uint64_t wait = backoff_ms(c);
            if (now + wait >= c->deadline_ms)
                break;
            c->resume_at_ms = now + wait;
            arm_timer(c);
            return;
        }
        bl_candidate_t *cd = &c->cands[c->next_cand++];
        if (!usable(c, cd, now))
            continue; /* named as skipped in the error message, if it comes to that */
        if (start_attempt(c, cd))
            return;
    }
    if (c->n_active == 0)
        fail_all_tried(c);
}

/* ---- the call's one timer ------------------------------------------------- */

static void arm_timer(bl_call_t *c)
{
    if (c->finished || c->canceled)
        return;
    uint64_t next = c->committed ? UINT64_MAX : c->deadline_ms;
    for (unsigned i = 0; i < c->n_active; i++)
        if (c->active[i]->first_token_deadline_ms && c->active[i]->first_token_deadline_ms < next)
            next = c->active[i]->first_token_deadline_ms;
    if (c->hedge_at_ms && c->hedge_at_ms < next)
        next = c->hedge_at_ms;
    if (c->resume_at_ms && c->resume_at_ms < next)
        next = c->resume_at_ms;
    if (next == UINT64_MAX) {
        uv_timer_stop(&c->timer);
        return;
    }
    uint64_t now = bl_now_ms();
    uv_timer_start(&c->timer, on_timer, next > now ? next - now : 0, 0);
}

static void on_timer(uv_timer_t *t)
{
    bl_call_t *c = t->data;
    uint64_t now = bl_now_ms();
    if (c->finished || c->canceled)
        return;
    if (!c->committed && now >= c->deadline_ms) {
        for (unsigned i = c->n_active; i-- > 0;) {
            bl_attempt_run_t *a = c->active[i];
            bl_att_record_end(c, a, BL_ATTEMPT_TIMEOUT, "request deadline");
            bl_health_abandon(a->cand->health);
            detach(c, a);
            attempt_free(a);
        }
        fail_call(c, 504, "server_error", "timeout");
        return;
    }
    for (unsigned i = c->n_active; i-- > 0;) {
        bl_attempt_run_t *a = c->active[i];
        if (a->first_token_deadline_ms && now >= a->first_token_deadline_ms && !a->got_first) {
            bl_att_failed(a, BL_ATTEMPT_TIMEOUT, "no first token in time");
            if (c->finished || c->canceled || c->committed)
                return;
            i = c->n_active; /* the set changed; rescan */
        }
    }
    if (c->hedge_at_ms && now >= c->hedge_at_ms) {
        c->hedge_at_ms = 0;
        if (c->n_active == 1 && !c->active[0]->got_first) {
            /* Start the next candidate beside the slow one; first good answer wins. */
            while (c->next_cand < c->n_cands && c->rep.n_attempts < c->max_attempts) {
                bl_candidate_t *cd = &c->cands[c->next_cand++];
                if (!usable(c, cd, now))
                    continue;
                const char *lv[] = {c->route->model};
                bl_metric_add(c->r->m_hedges, 1, lv);
                start_attempt(c, cd);
                break;
            }
        }
    }
    if (c->resume_at_ms && now >= c->resume_at_ms) {
        c->resume_at_ms = 0;
        bl_call_try_next(c);
        if (c->finished || c->canceled)
            return;
    }
    arm_timer(c);
}

/* ---- public --------------------------------------------------------------- */

static void fail_call(bl_call_t *c, int status, const char *type, const char *code)
{
    if (c->finished || c->canceled)
        return;
    if (c->committed) {
        /* no target could continue the broken stream: end it, saying so */
        c->rep.stream_cut = true;
        bl_xl_report_cut(c, NULL);
        if (c->canceled)
            return;
        bl_call_finish(c);
        return;
    }
    c->rep.answered = false;
    c->rep.status = status;
    c->rep.error_type = type;
    c->rep.error_code = code;
    if (status == 400) {
        if (c->xq_err.message[0])
            snprintf(c->rep.error_message, sizeof c->rep.error_message, "%s", c->xq_err.message);
        else
            snprintf(c->rep.error_message, sizeof c->rep.error_message,
                     "The model '%s' has no target that can serve %s.", c->route->model,
                     c->req.path);
        bl_call_finish(c);
        return;
    }
    bl_buf_t msg = {0};
    bl_buf_append_str(&msg, status == 504 ? "request deadline exceeded" : "no upstream could answer");
    if (c->skipped_peers)
        bl_buf_printf(&msg, "%s%u peer target(s) skipped: the request came from a peer",
                      c->rep.n_attempts ? "; " : ": ", c->skipped_peers);
    const char *sep = ": ";
    for (unsigned i = 0; i < c->rep.n_attempts; i++, sep = "; ") {
        const bl_attempt_t *at = &c->rep.attempts[i];
        bl_buf_printf(&msg, "%s%s: %s", sep, at->target,
                      at->detail[0] ? at->detail : bl_attempt_outcome_name(at->outcome));
    }
    uint64_t now = bl_now_ms();
    for (size_t i = 0; i < c->n_cands; i++) {
        const bl_candidate_t *cd = &c->cands[i];
        if (cd->tried)
            continue;
        uint64_t wait = bl_health_wait_ms(cd->health, &c->cfg->breaker, now);
        if (cd->provider->type == BL_PROVIDER_LOCAL && wait == 0)
            bl_buf_printf(&msg, "%s%s: skipped (local model not ready)", sep, cd->health->key);
        else
            bl_buf_printf(&msg, "%s%s: skipped (%s, retry in %llus)", sep, cd->health->key,
                          cd->health->state == BL_BREAKER_OPEN ? "circuit open" : "cooling down",
                          (unsigned long long)((wait + 999) / 1000));
        sep = "; ";
    }
    snprintf(c->rep.error_message, sizeof c->rep.error_message, "%s", msg.data);
    bl_buf_free(&msg);
    bl_call_finish(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    bl_call_t *c = h->data;
    free(c->cands);
    bl_buf_free(&c->scratch);
    bl_buf_free(&c->wire);
    bl_resume_free(c);
    bl_xl_call_free(c);
    free(c);
}

int bl_call_start(bl_router_t *r, bl_config_t *cfg, const bl_route_cfg_t *route,
                  const bl_call_req_t *req, const bl_call_cb_t *cb, bl_call_t **out)
{
    bl_call_t *c = calloc(1, sizeof *c);
    if (!c)
        return BL_ENOMEM;
    c->r = r;
    c->cfg = bl_config_ref(cfg);
    c->route = route;
    c->req = *req;
    snprintf(c->request_id, sizeof c->request_id, "%s", req->request_id ? req->request_id : "");
    c->req.request_id = c->request_id;
    c->cb = *cb;
    c->start_ns = bl_now_ns();
    c->rep.usage_prompt = c->rep.usage_completion = c->rep.usage_total = -1;
    uint64_t deadline = route->deadline_ms ? route->deadline_ms : cfg->retry.deadline_ms;
    c->deadline_ms = bl_now_ms() + (deadline ? deadline : 120000);
    c->max_attempts = route->max_attempts ? route->max_attempts : cfg->retry.max_attempts;
    if (!c->max_attempts || c->max_attempts > BL_MAX_ATTEMPTS)
        c->max_attempts = BL_MAX_ATTEMPTS;
    uv_timer_init(r->loop, &c->timer);
    c->timer.data = c;
    r->active_calls++;
    if (build_candidates(c)) {
        c->canceled = true;
        bl_call_cancel(c);
        return BL_ENOMEM;
    }
    *out = c;
    bl_call_try_next(c);
    return BL_OK;
}

void bl_call_cancel(bl_call_t *c)
{
    if (uv_is_closing((uv_handle_t *)&c->timer))
        return;
    c->canceled = true;
    for (unsigned i = c->n_active; i-- > 0;) {
        bl_attempt_run_t *a = c->active[i];
        if (!c->finished)
            bl_att_record_end(c, a, BL_ATTEMPT_CANCELED, "client went away");
        bl_health_abandon(a->cand->health);
        attempt_free(a);
        c->active[i] = NULL;
    }
    c->n_active = 0;
    for (size_t i = 0; i < c->n_cands; i++)
        if (c->cands[i].health)
            bl_health_release(c->cands[i].health);
    c->n_cands = 0;
    c->r->active_calls--;
    bl_config_unref(c->cfg);
    c->cfg = NULL;
    uv_timer_stop(&c->timer);
    /* Freed when the timer handle is closed, on a later loop turn, so callers
     * up the stack may still read the struct safely. */
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}
