/*
 * Writes events as an Anthropic Messages client expects them (client side).
 *
 * Streaming: message_start (held until input tokens are known or content
 * starts, so it can carry them), ping, content_block_start/delta/stop per
 * text and tool_use block, message_delta (stop_reason, stop_sequence,
 * usage), message_stop. Not streaming: one Message object at the end.
 *
 * Token counts inside ballast follow OpenAI: input_tokens includes the
 * cached tokens. Anthropic counts cache reads apart, so input_tokens here is
 * input - cached and cache_read_input_tokens is cached.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/obs.h"
#include "xlate/xlate_int.h"

#define MAX_TOOLS 4096

typedef struct {
    bool tool;
    int index;    /* the content block index shown to the client */
    bl_buf_t buf; /* text, or the tool call's arguments */
    char *id, *name;
} blk_t;

typedef struct {
    bl_xwrite_t base;
    bool start_sent;     /* message_start is out (or the client saw it before a resume) */
    bool start_in_known; /* message_start carried the input tokens */
    bool finish_seen, usage_seen, closed;
    bl_xfinish_t finish;
    char *stop_seq;
    int64_t in, out, cached;
    int open_tool; /* blks[] index of the open tool_use block, -1 none */
    int text_blk;  /* blks[] index of the open text block, -1 none (not streaming) */
    blk_t *blks;
    size_t n_blks, cap_blks;
    int *tool_blk; /* tool call index -> blks[] index, -1 unknown */
    size_t n_tool_blk;
} aw_t;

static void emit(bl_buf_t *out, const char *name, json_t *data)
{
    if (data)
        bl_xsse(out, name, data);
    json_decref(data);
}

static blk_t *add_blk(aw_t *w, bool tool)
{
    if (w->n_blks == w->cap_blks) {
        size_t nc = w->cap_blks ? w->cap_blks * 2 : 8;
        blk_t *p = realloc(w->blks, nc * sizeof *p);
        if (!p)
            return NULL;
        w->blks = p;
        w->cap_blks = nc;
    }
    blk_t *b = &w->blks[w->n_blks++];
    memset(b, 0, sizeof *b);
    b->tool = tool;
    b->index = w->base.st.next_index++;
    return b;
}

/* Input tokens as Anthropic counts them (cache reads apart). */
static int64_t anth_input(const aw_t *w)
{
    if (w->in < 0)
        return 0;
    return w->cached > 0 && w->cached <= w->in ? w->in - w->cached : w->in;
}

static json_t *usage_obj(const aw_t *w, bool with_input)
{
    json_t *u = json_object();
    if (!u)
        return NULL;
    if (with_input)
        json_object_set_new(u, "input_tokens", json_integer(anth_input(w)));
    if (with_input && w->cached >= 0)
        json_object_set_new(u, "cache_read_input_tokens", json_integer(w->cached));
    json_object_set_new(u, "output_tokens", json_integer(w->out > 0 ? w->out : 0));
    return u;
}

static void ensure_start(aw_t *w, bl_buf_t *out)
{
    if (w->start_sent)
        return;
    w->start_sent = true;
    w->base.st.started = true;
    w->start_in_known = w->in >= 0;
    json_t *u = usage_obj(w, true);
    if (u)
        json_object_set_new(u, "output_tokens", json_integer(0));
    emit(out, "message_start",
         json_pack("{s:s, s:{s:s, s:s, s:s, s:s, s:[], s:n, s:n, s:o}}", "type", "message_start",
                   "message", "id", w->base.id, "type", "message", "role", "assistant", "model",
                   w->base.model, "content", "stop_reason", "stop_sequence", "usage", u));
    emit(out, "ping", json_pack("{s:s}", "type", "ping"));
}

static void block_stop(bl_buf_t *out, int index)
{
    emit(out, "content_block_stop",
         json_pack("{s:s, s:i}", "type", "content_block_stop", "index", index));
}

/* Close whatever block is open (streaming). */
static void close_open(aw_t *w, bl_buf_t *out)
{
    if (w->base.st.open_index >= 0) {
        block_stop(out, w->base.st.open_index);
        w->base.st.open_index = -1;
    }
    if (w->open_tool >= 0) {
        block_stop(out, w->blks[w->open_tool].index);
        w->open_tool = -1;
    }
}

static int on_text(aw_t *w, const bl_xev_t *ev, bl_buf_t *out)
{
    if (!ev->text || !ev->text_len)
        return BL_OK;
    if (!w->base.o.stream) {
        if (w->text_blk < 0) {
            blk_t *b = add_blk(w, false);
            if (!b)
                return BL_ENOMEM;
            w->text_blk = (int)(b - w->blks);
        }
        return bl_buf_append(&w->blks[w->text_blk].buf, ev->text, ev->text_len);
    }
    ensure_start(w, out);
    if (w->open_tool >= 0) {
        block_stop(out, w->blks[w->open_tool].index);
        w->open_tool = -1;
    }
    if (w->base.st.open_index < 0) {
        w->base.st.open_index = w->base.st.next_index++;
        emit(out, "content_block_start",
             json_pack("{s:s, s:i, s:{s:s, s:s}}", "type", "content_block_start", "index",
                       w->base.st.open_index, "content_block", "type", "text", "text", ""));
    }
    /* the event of every token: written by hand, not through a tree */
    bl_buf_printf(out,
                  "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
                  "\"index\":%d,\"delta\":{\"type\":\"text_delta\",\"text\":",
                  w->base.st.open_index);
    bl_json_escape(out, ev->text ? ev->text : "", ev->text_len);
    bl_buf_append(out, "}}\n\n", 4);
    return BL_OK;
}

static int on_tool_start(aw_t *w, const bl_xev_t *ev, bl_buf_t *out)
{
    if (ev->index < 0 || ev->index >= MAX_TOOLS)
        return BL_EINVAL;
    size_t ti = (size_t)ev->index;
    if (ti >= w->n_tool_blk) {
        int *p = realloc(w->tool_blk, (ti + 1) * sizeof *p);
        if (!p)
            return BL_ENOMEM;
        for (size_t i = w->n_tool_blk; i <= ti; i++)
            p[i] = -1;
        w->tool_blk = p;
        w->n_tool_blk = ti + 1;
    }
    if (w->base.o.stream) {
        ensure_start(w, out);
        close_open(w, out);
    }
    w->text_blk = -1;
    blk_t *b = add_blk(w, true);
    if (!b)
        return BL_ENOMEM;
    char gen[40];
    if (!ev->id || !*ev->id)
        bl_xid(gen, sizeof gen, "toolu_");
    b->id = strdup(ev->id && *ev->id ? ev->id : gen);
    b->name = strdup(ev->name ? ev->name : "");
    if (!b->id || !b->name)
        return BL_ENOMEM;
    int bi = (int)(b - w->blks);
    w->tool_blk[ti] = bi;
    w->base.st.n_tool_calls++;
    if (w->base.o.stream) {
        w->open_tool = bi;
        emit(out, "content_block_start",
             json_pack("{s:s, s:i, s:{s:s, s:s, s:s, s:{}}}", "type", "content_block_start",
                       "index", b->index, "content_block", "type", "tool_use", "id", b->id, "name",
                       b->name, "input"));
    }
    return BL_OK;
}

static int on_tool_args(aw_t *w, const bl_xev_t *ev, bl_buf_t *out)
{
    if (ev->index < 0 || (size_t)ev->index >= w->n_tool_blk || w->tool_blk[ev->index] < 0)
        return BL_OK; /* arguments of a call that never started: nothing to attach them to */
    if (!ev->text || !ev->text_len)
        return BL_OK;
    blk_t *b = &w->blks[w->tool_blk[ev->index]];
    if (!w->base.o.stream)
        return bl_buf_append(&b->buf, ev->text, ev->text_len);
    emit(out, "content_block_delta",
         json_pack("{s:s, s:i, s:{s:s, s:s%}}", "type", "content_block_delta", "index", b->index,
                   "delta", "type", "input_json_delta", "partial_json", ev->text, ev->text_len));
    return BL_OK;
}

static json_t *failover_note(const aw_t *w)
{
    if (!w->base.failover_from[0] && !w->base.failover_to[0])
        return NULL;
    return json_pack("{s:b, s:s, s:s}", "midstream_failover", 1, "from", w->base.failover_from,
                     "to", w->base.failover_to);
}

static json_t *stop_seq_json(const aw_t *w)
{
    return w->stop_seq && w->finish == BL_XFIN_STOP_SEQUENCE ? json_string(w->stop_seq)
                                                               : json_null();
}

/* message_delta and message_stop (streaming). */
static void write_final(aw_t *w, bl_buf_t *out)
{
    ensure_start(w, out);
    close_open(w, out);
    json_t *u = usage_obj(w, !w->start_in_known && w->in >= 0);
    emit(out, "message_delta",
         json_pack("{s:s, s:{s:s, s:o}, s:o}", "type", "message_delta", "delta", "stop_reason",
                   bl_xfinish_anthropic(w->finish), "stop_sequence", stop_seq_json(w), "usage", u));
    json_t *stop = json_pack("{s:s}", "type", "message_stop");
    json_t *note = failover_note(w);
    if (stop && note)
        json_object_set_new(stop, "x_ballast", note);
    else
        json_decref(note);
    emit(out, "message_stop", stop);
    w->closed = true;
}

/* The whole Message object (not streaming). */
static int write_message(aw_t *w, bl_buf_t *out)
{
    json_t *content = json_array();
    for (size_t i = 0; content && i < w->n_blks; i++) {
        blk_t *b = &w->blks[i];
        json_t *c;
        if (b->tool) {
            json_t *in = b->buf.len ? json_loadb(b->buf.data, b->buf.len, 0, NULL) : NULL;
            if (!json_is_object(in)) {
                json_decref(in);
                in = json_object();
            }
            c = json_pack("{s:s, s:s, s:s, s:o}", "type", "tool_use", "id", b->id, "name", b->name,
                          "input", in);
        } else {
            c = json_pack("{s:s, s:s%}", "type", "text", "text", b->buf.data ? b->buf.data : "",
                          b->buf.len);
        }
        json_array_append_new(content, c);
    }
    json_t *root = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:o, s:o}", "id", w->base.id, "type",
                             "message", "role", "assistant", "model", w->base.model, "content",
                             content, "stop_reason", bl_xfinish_anthropic(w->finish),
                             "stop_sequence", stop_seq_json(w), "usage", usage_obj(w, true));
    if (!root)
        return BL_ENOMEM;
    json_t *note = failover_note(w);
    if (note)
        json_object_set_new(root, "x_ballast", note);
    int rc = bl_xdump(root, out);
    json_decref(root);
    w->closed = true;
    return rc;
}

static int aw_fail(bl_xwrite_t *base, bl_xerr_kind_t k, const char *message, bl_buf_t *out)
{
    aw_t *w = (aw_t *)base;
    if (w->closed)
        return BL_OK;
    w->closed = true;
    bl_buf_t body = {0};
    int rc = bl_xerr_body(BL_FAM_ANTHROPIC, k, message, NULL, NULL, &body);
    if (!rc) {
        if (w->base.o.stream) {
            bl_buf_append_str(out, "event: error\ndata: ");
            bl_buf_append(out, body.data, body.len);
            rc = bl_buf_append(out, "\n\n", 2);
        } else {
            rc = bl_buf_append(out, body.data, body.len);
        }
    }
    bl_buf_free(&body);
    return rc;
}

static int aw_event(bl_xwrite_t *base, const bl_xev_t *ev, bl_buf_t *out)
{
    aw_t *w = (aw_t *)base;
    if (w->closed)
        return BL_OK;
    switch (ev->kind) {
    case BL_XEV_START:
        if (!w->base.model[0] && ev->model) {
            snprintf(w->base.model, sizeof w->base.model, "%s", ev->model);
            snprintf(w->base.st.model, sizeof w->base.st.model, "%s", ev->model);
        }
        return BL_OK;
    case BL_XEV_TEXT:
        return w->finish_seen ? BL_OK : on_text(w, ev, out);
    case BL_XEV_TOOL_START:
        return w->finish_seen ? BL_OK : on_tool_start(w, ev, out);
    case BL_XEV_TOOL_ARGS:
        return w->finish_seen ? BL_OK : on_tool_args(w, ev, out);
    case BL_XEV_USAGE:
        if (ev->input_tokens >= 0)
            w->in = ev->input_tokens;
        if (ev->output_tokens >= 0) {
            w->out = ev->output_tokens;
            w->usage_seen = true;
        }
        if (ev->cached_tokens >= 0)
            w->cached = ev->cached_tokens;
        if (w->base.o.stream && w->finish_seen && w->usage_seen)
            write_final(w, out);
        else if (w->base.o.stream && ev->input_tokens >= 0)
            ensure_start(w, out);
        return BL_OK;
    case BL_XEV_FINISH:
        if (w->finish_seen)
            return BL_OK;
        w->finish_seen = true;
        w->finish = ev->finish;
        if (ev->stop_sequence && !(w->stop_seq = strdup(ev->stop_sequence)))
            return BL_ENOMEM;
        if (w->base.o.stream) {
            ensure_start(w, out);
            close_open(w, out);
            if (w->usage_seen)
                write_final(w, out); /* else held until USAGE or the end */
        }
        return BL_OK;
    case BL_XEV_ERROR:
        return aw_fail(base, ev->err_kind, ev->text ? ev->text : "upstream error", out);
    case BL_XEV_OPAQUE:
        return BL_OK;
    }
    return BL_OK;
}

static int aw_end(bl_xwrite_t *base, bl_buf_t *out)
{
    aw_t *w = (aw_t *)base;
    if (w->closed)
        return BL_OK;
    if (!w->base.o.stream)
        return w->finish_seen ? write_message(w, out) : BL_ESTATE;
    write_final(w, out);
    return BL_OK;
}

static void aw_free(bl_xwrite_t *base)
{
    aw_t *w = (aw_t *)base;
    if (!w)
        return;
    for (size_t i = 0; i < w->n_blks; i++) {
        bl_buf_free(&w->blks[i].buf);
        free(w->blks[i].id);
        free(w->blks[i].name);
    }
    free(w->blks);
    free(w->tool_blk);
    free(w->stop_seq);
    free(w);
}

static const bl_xwrite_ops_t OPS = {aw_event, aw_end, aw_fail, aw_free};

int bl_xanth_writer_new(const bl_xwrite_opts_t *o, const bl_xstate_t *st, bl_xwrite_t **out)
{
    *out = NULL;
    aw_t *w = calloc(1, sizeof *w);
    if (!w)
        return BL_ENOMEM;
    bl_xwrite_base_init(&w->base, &OPS, BL_FAM_ANTHROPIC, o, st, "msg_");
    if (w->base.st.next_index < 0)
        w->base.st.next_index = 0;
    /* A resumed stream the client saw start goes on without a new message_start. */
    w->start_sent = w->base.resumed && w->base.st.started && o->stream;
    w->start_in_known = true;
    w->in = w->out = w->cached = -1;
    w->open_tool = w->text_blk = -1;
    if (!o->stream)
        w->base.st.open_index = -1;
    *out = &w->base;
    return BL_OK;
}
