/*
 * Mid-stream failover: when a stream breaks after the client already has
 * part of the answer, the request continues on the next target and the
 * client sees one unbroken stream.
 *
 * While a stream is committed, every event's text is recorded (the partial
 * answer) along with the stream's id/created/model. The continuation request
 * is the client's request plus that partial answer: an open assistant turn
 * for a local model (the engine continues it exactly), or an assistant
 * message and an instruction to continue for an OpenAI-type target. Its
 * events are rewritten under the first stream's id and model, its role chunk
 * is dropped, and its closing chunk says the stream was continued.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "router/call.h"

static const char CONTINUE_INSTRUCTION[] =
    "Your previous answer was cut off. Continue it exactly where it stopped: do not repeat "
    "anything already written and do not comment on the interruption.";

/* Record what a committed event adds to the answer. */
void bl_resume_note_event(bl_call_t *c, json_t *ev)
{
    if (!c->resume.first_seen) {
        c->resume.first_seen = true;
        c->resume.id = json_incref(json_object_get(ev, "id"));
        c->resume.created = json_incref(json_object_get(ev, "created"));
        c->resume.model = json_incref(json_object_get(ev, "model"));
    }
    json_t *choices = json_object_get(ev, "choices");
    if (!json_is_array(choices))
        return;
    if (json_array_size(choices) > 1)
        c->resume.impossible = true; /* n > 1: which choice would we continue? */
    json_t *ch = json_array_get(choices, 0);
    json_t *d = json_object_get(ch, "delta");
    json_t *text = json_is_object(d) ? json_object_get(d, "content") : json_object_get(ch, "text");
    if (json_is_string(text))
        bl_buf_append(&c->resume.partial, json_string_value(text), json_string_length(text));
    if (json_is_object(d) && (json_object_get(d, "tool_calls") || json_object_get(d, "function_call")))
        c->resume.impossible = true; /* half a tool call cannot be continued as text */
    json_t *fr = json_object_get(ch, "finish_reason");
    if (fr && !json_is_null(fr))
        c->resume.finished = true;
}

int bl_resume_note_first(bl_call_t *c, const char *data, size_t n)
{
    bl_json_member_t m[3] = {{.key = "id"}, {.key = "created"}, {.key = "model"}};
    json_t *v[3] = {NULL, NULL, NULL};
    if (bl_json_scan_object(data, n, m, 3, NULL, NULL))
        return -1;
    for (size_t i = 0; i < 3; i++) {
        if (m[i].count > 1)
            goto fail; /* jansson keeps the last one: let it decide */
        if (m[i].kind == BL_JSON_NONE)
            continue;
        /* only these small values become trees, not the whole event */
        v[i] = json_loadb(data + m[i].off, m[i].len, JSON_DECODE_ANY, NULL);
        if (!v[i])
            goto fail;
    }
    c->resume.first_seen = true;
    c->resume.id = v[0];
    c->resume.created = v[1];
    c->resume.model = v[2];
    return 0;
fail:
    for (size_t i = 0; i < 3; i++)
        json_decref(v[i]);
    return -1;
}

void bl_resume_note_chunk(bl_call_t *c, const bl_xchat_chunk_t *ck)
{
    if (!ck->choices_array)
        return;
    if (ck->n_choices > 1)
        c->resume.impossible = true;
    if (ck->text0.p) {
        /* unescaped text is never longer than its JSON spelling */
        size_t cap = ck->text0.n + 8;
        if (bl_buf_reserve(&c->resume.partial, cap) == 0) {
            long k = bl_json_unescape(ck->text0.p, ck->text0.n,
                                      c->resume.partial.data + c->resume.partial.len, cap);
            if (k > 0)
                c->resume.partial.len += (size_t)k;
        }
    }
    if (ck->tool0)
        c->resume.impossible = true;
    if (ck->finished0)
        c->resume.finished = true;
}

bool bl_resume_possible(const bl_call_t *c)
{
    return c->req.stream && c->resume.first_seen && !c->resume.impossible && !c->resume.finished;
}

/* The continuation request for a target: the client's body with the partial
 * answer added and the target's model. */
char *bl_resume_body(bl_call_t *c, const bl_candidate_t *cd, size_t *len)
{
    json_t *root = json_loadb(c->req.body, c->req.body_len, 0, NULL);
    char *out = NULL;
    if (!json_is_object(root))
        goto done;
    const char *partial = c->resume.partial.data ? c->resume.partial.data : "";
    json_t *msgs = json_object_get(root, "messages");
    if (json_is_array(msgs)) {
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "assistant", "content", partial));
        if (cd->provider->type != BL_PROVIDER_LOCAL)
            json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "user", "content",
                                                  CONTINUE_INSTRUCTION));
    } else {
        json_t *p = json_object_get(root, "prompt");
        if (json_is_array(p) && json_array_size(p) == 1)
            p = json_array_get(p, 0);
        if (!json_is_string(p))
            goto done;
        bl_buf_t np = {0};
        bl_buf_append(&np, json_string_value(p), json_string_length(p));
        bl_buf_append_str(&np, partial);
        json_object_set_new(root, "prompt", json_stringn(np.data ? np.data : "", np.len));
        bl_buf_free(&np);
    }
    json_object_set_new(root, "model", json_string(cd->target->model));
    out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (out)
        *len = strlen(out);
done:
    json_decref(root);
    return out;
}

/* One event of the continuation, as the client must see it. Returns false
 * when the event is to be dropped. */
bool bl_resume_rewrite(bl_call_t *c, const char *data, size_t n, const char *backend, bl_buf_t *out)
{
    bl_buf_reset(out);
    if (n == 6 && !memcmp(data, "[DONE]", 6)) {
        bl_buf_append_str(out, "data: [DONE]\n\n");
        return true;
    }
    json_t *ev = json_loadb(data, n, 0, NULL);
    if (!json_is_object(ev)) {
        json_decref(ev);
        return false;
    }
    json_t *choices = json_object_get(ev, "choices");
    json_t *ch = json_array_get(choices, 0);
    json_t *d = json_object_get(ch, "delta");
    if (json_is_object(d) && json_object_get(d, "role")) {
        json_t *content = json_object_get(d, "content");
        if (!json_is_string(content) || json_string_length(content) == 0) {
            json_t *fr = json_object_get(ch, "finish_reason");
            if (!fr || json_is_null(fr)) {
                json_decref(ev); /* the client had its role chunk already */
                return false;
            }
        }
        json_object_del(d, "role");
    }
    if (c->resume.id)
        json_object_set(ev, "id", c->resume.id);
    if (c->resume.created)
        json_object_set(ev, "created", c->resume.created);
    if (c->resume.model)
        json_object_set(ev, "model", c->resume.model);
    json_t *fr = json_object_get(ch, "finish_reason");
    if (fr && !json_is_null(fr))
        json_object_set_new(ev, "x_ballast",
                            json_pack("{s:b, s:s, s:s}", "midstream_failover", 1, "from",
                                      c->resume.from, "to", backend));
    char *s = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(ev);
    if (!s)
        return false;
    bl_buf_append_str(out, "data: ");
    bl_buf_append_str(out, s);
    bl_buf_append_str(out, "\n\n");
    free(s);
    return true;
}

void bl_resume_free(bl_call_t *c)
{
    json_decref(c->resume.id);
    json_decref(c->resume.created);
    json_decref(c->resume.model);
    bl_buf_free(&c->resume.partial);
    c->resume.id = c->resume.created = c->resume.model = NULL;
}
