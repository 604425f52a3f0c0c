/*
 * Attempts whose answer is read as events: a target that speaks another API
 * family than the client (translated), or any target of a Responses or
 * Anthropic client (passed through, but read to know when to commit, what
 * the usage was and how to continue a broken stream). A chat client on a
 * chat target takes the fast path in call.c instead.
 *
 * Translated: target bytes -> reader (target family) -> events -> writer
 * (client family) -> client bytes. Passed through: target bytes go to the
 * client as they are and a reader of the same family watches them.
 *
 * Callbacks into the api may cancel the call; the attempt is freed then,
 * so after each one only the call (which lives until its timer closes) is
 * looked at.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "router/call.h"
#include "router/sse.h"

#define MAX_HELD_BYTES (64u << 20)

bl_family_t bl_xl_target_family(const bl_call_t *c, const bl_provider_cfg_t *p)
{
    if (c->req.raw_only)
        return c->req.family;
    switch (p->type) {
    case BL_PROVIDER_ANTHROPIC: return BL_FAM_ANTHROPIC;
    case BL_PROVIDER_LOCAL: return BL_FAM_CHAT; /* the engine speaks chat completions */
    case BL_PROVIDER_BALLAST: return c->req.family; /* a peer speaks every family */
    default: return p->api == BL_API_RESPONSES ? BL_FAM_RESPONSES : BL_FAM_CHAT;
    }
}

static bl_xreq_t *call_xreq(bl_call_t *c)
{
    if (!c->xq_tried) {
        c->xq_tried = true;
        if (bl_xreq_parse(c->req.family, c->req.body, c->req.body_len, &c->xq, &c->xq_err) &&
            !c->xq_err.message[0])
            snprintf(c->xq_err.message, sizeof c->xq_err.message, "The request could not be read.");
    }
    return c->xq;
}

static bool mine(const bl_call_t *c, const bl_attempt_run_t *a)
{
    return c->committed && c->winner == a && !c->resume.active;
}

/* The writer a continuation writes through, made from what the client saw. */
static int continuation_writer(bl_call_t *c, const bl_attempt_run_t *a)
{
    if (c->cwr)
        return BL_OK;
    bl_xstate_t st = {.open_index = -1};
    /* a chat stream passed through on the fast path: its id/created/model */
    const char *id = json_string_value(c->resume.id), *model = json_string_value(c->resume.model);
    snprintf(st.id, sizeof st.id, "%s", id ? id : "");
    snprintf(st.model, sizeof st.model, "%s", model ? model : "");
    st.created = json_is_integer(c->resume.created) ? json_integer_value(c->resume.created) : 0;
    st.started = true;
    bl_xwrite_opts_t o = {.stream = true,
                          .include_usage = c->xq && c->xq->include_usage,
                          .model = st.model[0] ? NULL : a->cand->target->model,
                          .req = c->xq,
                          .prior_text = c->resume.partial.data,
                          .prior_text_len = c->resume.partial.len};
    return bl_xwrite_resume(c->req.family, &o, &st, &c->cwr);
}

int bl_xl_prepare(bl_call_t *c, bl_attempt_run_t *a)
{
    const bl_provider_cfg_t *p = a->cand->provider;
    a->tfam = bl_xl_target_family(c, p);
    a->translated = a->tfam != c->req.family;
    if (c->req.raw_only)
        return BL_OK;
    bool via_events = a->translated || c->req.family != BL_FAM_CHAT ||
                      (a->continuation && c->cwr);
    if (!via_events)
        return BL_OK; /* the chat fast path */
    int rc;
    if (a->translated || a->continuation) {
        bl_xreq_t *q = call_xreq(c);
        if (!q)
            return BL_EINVAL;
        /* an offered hosted tool is dropped for other targets (the model
           answers without it); a forced one would change the answer */
        if (q->hosted_tool_required && a->tfam != BL_FAM_RESPONSES) {
            snprintf(c->xq_err.message, sizeof c->xq_err.message,
                     "The hosted tool '%s' can only be run by OpenAI's Responses API; no target "
                     "of this route that could run it was available.",
                     q->hosted_tool);
            snprintf(c->xq_err.param, sizeof c->xq_err.param, "tools");
            return BL_EINVAL;
        }
        bl_xwrite_req_opts_t o = {.model = a->cand->target->model};
        if (a->continuation) {
            o.assistant_prefix = c->resume.partial.data ? c->resume.partial.data : "";
            o.assistant_prefix_len = c->resume.partial.len;
            o.continue_instruction = p->type != BL_PROVIDER_LOCAL;
        }
        bl_buf_t body = {0};
        bl_xerr_t err;
        if ((rc = bl_xreq_write(q, a->tfam, &o, &body, &err))) {
            bl_buf_free(&body);
            if (rc == BL_EINVAL)
                c->xq_err = err;
            return rc;
        }
        a->req_body = bl_buf_steal(&body, &a->req_len);
        if (!a->req_body && (a->req_body = strdup("{}")))
            a->req_len = 2;
        if (!a->req_body)
            return BL_ENOMEM;
    }
    if ((rc = bl_xread_new(a->tfam, &a->rd)))
        return rc;
    if (a->continuation)
        return continuation_writer(c, a);
    if (a->translated) {
        bl_xwrite_opts_t o = {.stream = c->req.stream,
                              .include_usage = c->xq && c->xq->include_usage,
                              .model = a->cand->target->model,
                              .req = c->xq};
        return bl_xwrite_new(c->req.family, &o, &a->wr);
    }
    return BL_OK;
}

/* ---- reading events ---------------------------------------------------------- */

/* Usage, and what a mid-stream failover would need. */
static void note(bl_call_t *c, const bl_xev_t *ev)
{
    switch (ev->kind) {
    case BL_XEV_START: c->resume.first_seen = true; break;
    case BL_XEV_TEXT: bl_buf_append(&c->resume.partial, ev->text, ev->text_len); break;
    case BL_XEV_TOOL_START: c->resume.impossible = true; break;
    case BL_XEV_FINISH: c->resume.finished = true; break;
    case BL_XEV_USAGE:
        if (ev->input_tokens >= 0)
            c->rep.usage_prompt = ev->input_tokens;
        if (ev->output_tokens >= 0)
            c->rep.usage_completion = ev->output_tokens;
        if (c->rep.usage_prompt >= 0 && c->rep.usage_completion >= 0)
            c->rep.usage_total = c->rep.usage_prompt + c->rep.usage_completion;
        break;
    default: break;
    }
}

/* Does the client see something from this event? Then the answer is good
 * enough to commit to (a role or message-start event is not). */
static bool shows(const bl_xev_t *ev)
{
    return (ev->kind == BL_XEV_TEXT && ev->text_len) || ev->kind == BL_XEV_TOOL_START ||
           ev->kind == BL_XEV_FINISH;
}

static void hand_on(bl_call_t *c, bl_buf_t *b)
{
    if (b->len) {
        c->cb.on_data(c->cb.ud, b->data, b->len);
        if (!c->canceled)
            bl_buf_reset(b);
    }
}

/* The first event the client sees: commit to this attempt (or, for a
 * continuation, make it the one the broken stream goes on with). */
static void commit_stream(bl_call_t *c, bl_attempt_run_t *a)
{
    a->got_first = true;
    a->first_token_deadline_ms = 0;
    a->ttfb_ms = bl_ms_since(a->start_ns);
    const char *tv[] = {bl_att_label(a)};
    bl_metric_observe(c->r->m_ttfb, a->ttfb_ms / 1000.0, tv);
    if (a->continuation) {
        c->winner = a;
        c->resume.active = false;
        c->rep.ttfb_ms = c->rep.ttfb_ms > 0 ? c->rep.ttfb_ms : bl_ms_since(c->start_ns);
        bl_xwrite_note_failover(c->cwr, c->resume.from, bl_att_label(a));
        bl_att_cancel_losers(c, a);
        uv_timer_stop(&c->timer);
        return;
    }
    bl_att_commit(c, a, true, NULL, 0);
}

static int on_event(void *ud, const bl_xev_t *ev)
{
    bl_attempt_run_t *a = ud;
    bl_call_t *c = a->call;
    bool committed = mine(c, a);
    if (!committed && ev->kind == BL_XEV_ERROR) {
        a->xl_rc = BL_EIO; /* the target failed before answering: fail over */
        return 1;
    }
    note(c, ev);
    bl_xwrite_t *w = a->continuation ? c->cwr : a->wr;
    if (w && !(a->continuation && ev->kind == BL_XEV_START) &&
        (a->xl_rc = bl_xwrite_event(w, ev, &a->out)))
        return 1;
    if (!committed) {
        if (!c->req.stream || !shows(ev))
            return 0;
        commit_stream(c, a);
        if (c->canceled)
            return 1;
        if (!w) {
            /* passed through: everything up to this event goes out as it came */
            c->cb.on_data(c->cb.ud, a->body.data, a->scanned);
            if (c->canceled)
                return 1;
            a->chunk_sent = true;
        }
    }
    if (w) {
        hand_on(c, &a->out);
        if (c->canceled)
            return 1;
    }
    return 0;
}

/* A reader or writer failed on a committed stream: it cannot go on as it is. */
static void broken_after_commit(bl_call_t *c, bl_attempt_run_t *a)
{
    bl_call_stream_cut(c, a, BL_UP_PROTOCOL);
}

static bool is_sse(const bl_attempt_run_t *a)
{
    return !strncasecmp(a->content_type, "text/event-stream", 17);
}

void bl_xl_body(bl_call_t *c, bl_attempt_run_t *a, const char *p, size_t n)
{
    bool was_mine = mine(c, a);
    if (!was_mine && a->body.len + n > MAX_HELD_BYTES) {
        bl_att_failed(a, BL_ATTEMPT_MALFORMED, "response too large");
        return;
    }
    bl_buf_append(&a->body, p, n);
    if (a->passthrough || !c->req.stream || !is_sse(a))
        return; /* a whole body: read when it is complete */
    a->chunk_sent = false;
    size_t fwd_from = was_mine ? a->body.len - n : 0;
    while (a->scanned < a->body.len) {
        size_t len = bl_sse_event_len(a->body.data + a->scanned, a->body.len - a->scanned);
        if (!len)
            break;
        const char *evp = a->body.data + a->scanned;
        a->scanned += len;
        if (!bl_sse_event_data(evp, len, &c->scratch))
            continue;
        bl_str_t name = bl_sse_event_name(evp, len);
        a->xl_rc = 0;
        int rc = bl_xread_event(a->rd, name, (bl_str_t){c->scratch.data, c->scratch.len}, on_event, a);
        if (c->canceled || c->finished)
            return; /* the attempt may be gone */
        if (rc || a->xl_rc) {
            if (mine(c, a))
                broken_after_commit(c, a);
            else
                bl_att_failed(a, BL_ATTEMPT_MALFORMED,
                              a->xl_rc == BL_EIO ? "error event before any content"
                                                 : "stream event is not valid for its API");
            return;
        }
    }
    if (!mine(c, a))
        return; /* held until the answer shows something */
    if (!a->wr && !a->continuation && !a->chunk_sent && a->body.len > fwd_from) {
        /* passed through and committed earlier: these bytes go on as they came */
        c->cb.on_data(c->cb.ud, a->body.data + fwd_from, a->body.len - fwd_from);
        if (c->canceled)
            return;
    }
    bl_buf_consume(&a->body, a->scanned);
    a->scanned = 0;
}

/* ---- the end of a transfer ------------------------------------------------ */

static void finished_ok(bl_call_t *c, bl_attempt_run_t *a)
{
    bl_att_record_end(c, a, BL_ATTEMPT_OK, NULL);
    bl_att_healthy(c, a);
    bl_call_finish(c);
}

/* A client error from a target of another family, told in the client's. */
static void pass_error(bl_call_t *c, bl_attempt_run_t *a)
{
    bl_buf_t out = {0};
    const char *body = a->body.data ? a->body.data : "";
    size_t len = a->body.len;
    if (a->translated) {
        int status = a->status;
        bl_xerr_translate(a->tfam, c->req.family, &status, body, len, &out);
        a->status = status;
        snprintf(a->content_type, sizeof a->content_type, "application/json");
        body = out.data ? out.data : "";
        len = out.len;
    }
    bl_att_commit(c, a, false, body, len);
    bl_buf_free(&out);
    if (c->canceled)
        return;
    bl_att_record_end(c, a, BL_ATTEMPT_CLIENT_ERROR, NULL);
    bl_att_healthy(c, a);
    c->rep.status = a->status;
    bl_call_finish(c);
}

static int on_whole_event(void *ud, const bl_xev_t *ev)
{
    bl_attempt_run_t *a = ud;
    bl_call_t *c = a->call;
    if (ev->kind == BL_XEV_ERROR) {
        a->xl_rc = BL_EIO;
        return 1;
    }
    note(c, ev);
    if (a->wr && (a->xl_rc = bl_xwrite_event(a->wr, ev, &a->out)))
        return 1;
    return 0;
}

/* A whole (not streamed) answer: read it, write it for the client, commit. */
static void whole_answer(bl_call_t *c, bl_attempt_run_t *a)
{
    a->xl_rc = 0;
    int rc = bl_xread_body(a->rd, a->body.data ? a->body.data : "", a->body.len, on_whole_event, a);
    if (!rc && !a->xl_rc && a->wr)
        rc = bl_xwrite_end(a->wr, &a->out);
    if (rc || a->xl_rc) {
        bl_att_failed(a, BL_ATTEMPT_MALFORMED,
                      a->xl_rc == BL_EIO ? "the answer is an error" : "the answer is not valid for its API");
        return;
    }
    a->ttfb_ms = bl_ms_since(a->start_ns);
    const char *tv[] = {bl_att_label(a)};
    bl_metric_observe(c->r->m_ttfb, a->ttfb_ms / 1000.0, tv);
    if (!a->wr) {
        bl_att_commit(c, a, false, a->body.data ? a->body.data : "", a->body.len);
    } else if (c->req.stream) {
        /* asked for a stream, got a whole answer: the client still gets its stream */
        snprintf(a->content_type, sizeof a->content_type, "text/event-stream");
        bl_att_commit(c, a, true, NULL, 0);
        if (c->canceled)
            return;
        hand_on(c, &a->out);
    } else {
        snprintf(a->content_type, sizeof a->content_type, "application/json");
        bl_att_commit(c, a, false, a->out.data ? a->out.data : "", a->out.len);
    }
    if (c->canceled)
        return;
    finished_ok(c, a);
}

void bl_xl_done(bl_call_t *c, bl_attempt_run_t *a)
{
    if (a->passthrough) {
        pass_error(c, a);
        return;
    }
    if (!mine(c, a)) {
        if (c->req.stream && is_sse(a)) {
            bl_att_failed(a, BL_ATTEMPT_MALFORMED, "stream ended before any content");
            return;
        }
        whole_answer(c, a);
        return;
    }
    /* A committed stream ended: let the reader give up what it held. */
    a->xl_rc = 0;
    int rc = bl_xread_eof(a->rd, on_event, a);
    if (c->canceled || c->finished)
        return;
    if (rc || a->xl_rc || !c->resume.finished) {
        /* it closed without the family's end: the stream was cut */
        bl_call_stream_cut(c, a, BL_UP_RESET);
        return;
    }
    bl_xwrite_t *w = a->continuation ? c->cwr : a->wr;
    if (w) {
        bl_xwrite_end(w, &a->out);
        hand_on(c, &a->out);
        if (c->canceled)
            return;
    }
    finished_ok(c, a);
}

void bl_xl_report_cut(bl_call_t *c, bl_attempt_run_t *a)
{
    if (!c->req.stream || c->rep.cut_reported)
        return;
    bl_xwrite_t *w = c->cwr ? c->cwr : a ? a->wr : NULL;
    if (!w && a && a->rd && c->req.family != BL_FAM_CHAT) {
        bl_xstate_t st;
        bl_xread_state(a->rd, &st);
        bl_xwrite_opts_t o = {.stream = true,
                              .req = c->xq,
                              .prior_text = c->resume.partial.data,
                              .prior_text_len = c->resume.partial.len};
        if (bl_xwrite_resume(c->req.family, &o, &st, &c->cwr))
            return;
        w = c->cwr;
    }
    if (!w)
        return; /* a chat stream: the api says it */
    bl_buf_t out = {0};
    bl_xwrite_fail(w, BL_XERR_API, "the upstream stream was interrupted", &out);
    c->rep.cut_reported = true;
    if (out.len)
        c->cb.on_data(c->cb.ud, out.data, out.len);
    bl_buf_free(&out);
}

/* Before a broken stream moves on: the writer that continues it. */
void bl_xl_keep_writer(bl_call_t *c, bl_attempt_run_t *a)
{
    if (c->cwr)
        return;
    if (a->wr) {
        c->cwr = a->wr; /* translated: the same writer goes on */
        a->wr = NULL;
    } else if (a->rd && c->req.family != BL_FAM_CHAT) {
        /* passed through: a writer that picks up where the client is */
        bl_xstate_t st;
        bl_xread_state(a->rd, &st);
        bl_xwrite_opts_t o = {.stream = true,
                              .req = c->xq,
                              .prior_text = c->resume.partial.data,
                              .prior_text_len = c->resume.partial.len};
        bl_xwrite_resume(c->req.family, &o, &st, &c->cwr);
    }
    /* a chat stream on the fast path: continuation_writer() makes one from
       c->resume if a target of another family continues it */
}

void bl_xl_attempt_free(bl_attempt_run_t *a)
{
    bl_xread_free(a->rd);
    bl_xwrite_free(a->wr);
    bl_buf_free(&a->out);
    a->rd = NULL;
    a->wr = NULL;
}

void bl_xl_call_free(bl_call_t *c)
{
    bl_xwrite_free(c->cwr);
    bl_xreq_free(c->xq);
    c->cwr = NULL;
    c->xq = NULL;
}
