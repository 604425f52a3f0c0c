/*
 * The family-independent parts: dispatch to each family's reader and writer,
 * the request builders, and small shared helpers.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/rand.h>

#include "xlate/xlate_int.h"

const char *bl_family_name(bl_family_t f)
{
    switch (f) {
    case BL_FAM_CHAT: return "chat";
    case BL_FAM_RESPONSES: return "responses";
    case BL_FAM_ANTHROPIC: return "anthropic";
    default: return "?";
    }
}

const char *bl_family_path(bl_family_t f)
{
    switch (f) {
    case BL_FAM_RESPONSES: return "/responses";
    case BL_FAM_ANTHROPIC: return "/messages";
    default: return "/chat/completions";
    }
}

/* ---- requests --------------------------------------------------------------- */

bl_xreq_t *bl_xreq_new(bl_family_t f)
{
    bl_xreq_t *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->family = f;
    q->parallel_tool_calls = -1;
    q->max_tokens = -1;
    q->temperature = q->top_p = NAN;
    q->presence_penalty = q->frequency_penalty = NAN;
    q->top_k = -1;
    q->format_strict = -1;
    q->store = -1;
    return q;
}

void bl_xreq_free(bl_xreq_t *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->n_msgs; i++) {
        for (size_t j = 0; j < q->msgs[i].n_parts; j++)
            json_decref(q->msgs[i].parts[j].raw);
        free(q->msgs[i].parts);
    }
    free(q->msgs);
    for (size_t i = 0; i < q->n_tools; i++)
        json_decref(q->tools[i].parameters);
    free(q->tools);
    free(q->stop);
    json_decref(q->format_schema);
    json_decref(q->metadata);
    json_decref(q->doc);
    for (size_t i = 0; i < q->n_owned; i++)
        free(q->owned[i]);
    free(q->owned);
    free(q);
}

/* Grow *arr (of elem-size items) so one more fits. */
static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return BL_OK;
    size_t nc = *cap ? *cap * 2 : 4, bytes;
    if (!bl_mul_ok(nc, elem, &bytes))
        return BL_ENOMEM;
    void *p = realloc(*arr, bytes);
    if (!p)
        return BL_ENOMEM;
    memset((char *)p + *cap * elem, 0, (nc - *cap) * elem);
    *arr = p;
    *cap = nc;
    return BL_OK;
}

bl_xmsg_t *bl_xreq_add_msg(bl_xreq_t *q, bl_role_t role)
{
    if (grow((void **)&q->msgs, &q->cap_msgs, q->n_msgs, sizeof *q->msgs))
        return NULL;
    bl_xmsg_t *m = &q->msgs[q->n_msgs++];
    memset(m, 0, sizeof *m);
    m->role = role;
    return m;
}

bl_xpart_t *bl_xmsg_add_part(bl_xmsg_t *m, bl_part_kind_t kind)
{
    if (grow((void **)&m->parts, &m->cap_parts, m->n_parts, sizeof *m->parts))
        return NULL;
    bl_xpart_t *p = &m->parts[m->n_parts++];
    memset(p, 0, sizeof *p);
    p->kind = kind;
    return p;
}

bl_xtool_t *bl_xreq_add_tool(bl_xreq_t *q)
{
    if (grow((void **)&q->tools, &q->cap_tools, q->n_tools, sizeof *q->tools))
        return NULL;
    bl_xtool_t *t = &q->tools[q->n_tools++];
    memset(t, 0, sizeof *t);
    t->strict = -1;
    return t;
}

const char *bl_xreq_keep(bl_xreq_t *q, char *s)
{
    if (!s)
        return NULL;
    if (grow((void **)&q->owned, &q->cap_owned, q->n_owned, sizeof *q->owned)) {
        free(s);
        return NULL;
    }
    q->owned[q->n_owned++] = s;
    return s;
}

const char *bl_xreq_strndup(bl_xreq_t *q, const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return bl_xreq_keep(q, d);
}

int bl_xreq_add_stop(bl_xreq_t *q, const char *s)
{
    size_t cap = q->n_stop; /* grows one at a time: stop lists are short */
    const char **p = realloc(q->stop, (cap + 1) * sizeof *p);
    if (!p)
        return BL_ENOMEM;
    q->stop = p;
    q->stop[q->n_stop++] = s;
    return BL_OK;
}

int bl_xreq_parse(bl_family_t f, const char *body, size_t n, bl_xreq_t **out, bl_xerr_t *err)
{
    *out = NULL;
    memset(err, 0, sizeof *err);
    err->status = 400;
    switch (f) {
    case BL_FAM_CHAT: return bl_xchat_parse(body, n, out, err);
    case BL_FAM_RESPONSES: return bl_xresp_parse(body, n, out, err);
    case BL_FAM_ANTHROPIC: return bl_xanth_parse(body, n, out, err);
    default: return BL_EINVAL;
    }
}

int bl_xreq_write(const bl_xreq_t *q, bl_family_t f, const bl_xwrite_req_opts_t *o, bl_buf_t *out,
                  bl_xerr_t *err)
{
    memset(err, 0, sizeof *err);
    err->status = 400;
    switch (f) {
    case BL_FAM_CHAT: return bl_xchat_write_req(q, o, out, err);
    case BL_FAM_RESPONSES: return bl_xresp_write_req(q, o, out, err);
    case BL_FAM_ANTHROPIC: return bl_xanth_write_req(q, o, out, err);
    default: return BL_EINVAL;
    }
}

/* ---- readers and writers ------------------------------------------------- */

void bl_xread_base_init(bl_xread_t *r, const bl_xread_ops_t *ops, bl_family_t f)
{
    r->ops = ops;
    r->family = f;
    r->st.open_index = -1;
}

int bl_xread_new(bl_family_t f, bl_xread_t **out)
{
    *out = NULL;
    switch (f) {
    case BL_FAM_CHAT: return bl_xchat_reader_new(out);
    case BL_FAM_RESPONSES: return bl_xresp_reader_new(out);
    case BL_FAM_ANTHROPIC: return bl_xanth_reader_new(out);
    default: return BL_EINVAL;
    }
}

void bl_xread_free(bl_xread_t *r)
{
    if (r)
        r->ops->free(r);
}

int bl_xread_event(bl_xread_t *r, bl_str_t event, bl_str_t data, bl_xev_fn fn, void *ud)
{
    return r->ops->event(r, event, data, fn, ud);
}

int bl_xread_body(bl_xread_t *r, const char *body, size_t n, bl_xev_fn fn, void *ud)
{
    return r->ops->body(r, body, n, fn, ud);
}

int bl_xread_eof(bl_xread_t *r, bl_xev_fn fn, void *ud)
{
    return r->ops->eof ? r->ops->eof(r, fn, ud) : BL_OK;
}

bool bl_xread_done(const bl_xread_t *r)
{
    return r->done;
}

void bl_xread_state(const bl_xread_t *r, bl_xstate_t *out)
{
    *out = r->st;
}

static void copy_cstr(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

void bl_xwrite_base_init(bl_xwrite_t *w, const bl_xwrite_ops_t *ops, bl_family_t f,
                         const bl_xwrite_opts_t *o, const bl_xstate_t *st, const char *id_prefix)
{
    w->ops = ops;
    w->family = f;
    w->o = *o;
    copy_cstr(w->model, sizeof w->model, o->model);
    w->o.model = w->model;
    if (st) {
        w->st = *st;
        w->resumed = true;
        if (st->id[0])
            copy_cstr(w->id, sizeof w->id, st->id);
        if (st->model[0] && !o->model)
            copy_cstr(w->model, sizeof w->model, st->model);
        if (st->created)
            w->o.created = st->created;
    } else {
        w->st.open_index = -1;
    }
    if (!w->id[0]) {
        if (o->id)
            copy_cstr(w->id, sizeof w->id, o->id);
        else
            bl_xid(w->id, sizeof w->id, id_prefix);
    }
    w->o.id = w->id;
    if (!w->o.created)
        w->o.created = (int64_t)time(NULL);
    w->st.created = w->o.created;
    copy_cstr(w->st.id, sizeof w->st.id, w->id);
    copy_cstr(w->st.model, sizeof w->st.model, w->model);
}

static int writer_new(bl_family_t f, const bl_xwrite_opts_t *o, const bl_xstate_t *st,
                      bl_xwrite_t **out)
{
    *out = NULL;
    switch (f) {
    case BL_FAM_CHAT: return bl_xchat_writer_new(o, st, out);
    case BL_FAM_RESPONSES: return bl_xresp_writer_new(o, st, out);
    case BL_FAM_ANTHROPIC: return bl_xanth_writer_new(o, st, out);
    default: return BL_EINVAL;
    }
}

int bl_xwrite_new(bl_family_t f, const bl_xwrite_opts_t *o, bl_xwrite_t **out)
{
    return writer_new(f, o, NULL, out);
}

int bl_xwrite_resume(bl_family_t f, const bl_xwrite_opts_t *o, const bl_xstate_t *st,
                     bl_xwrite_t **out)
{
    return writer_new(f, o, st, out);
}

void bl_xwrite_free(bl_xwrite_t *w)
{
    if (w)
        w->ops->free(w);
}

int bl_xwrite_event(bl_xwrite_t *w, const bl_xev_t *ev, bl_buf_t *out)
{
    return w->ops->event(w, ev, out);
}

int bl_xwrite_end(bl_xwrite_t *w, bl_buf_t *out)
{
    return w->ops->end(w, out);
}

int bl_xwrite_fail(bl_xwrite_t *w, bl_xerr_kind_t k, const char *message, bl_buf_t *out)
{
    return w->ops->fail(w, k, message, out);
}

void bl_xwrite_note_failover(bl_xwrite_t *w, const char *from, const char *to)
{
    copy_cstr(w->failover_from, sizeof w->failover_from, from);
    copy_cstr(w->failover_to, sizeof w->failover_to, to);
}

/* ---- helpers ---------------------------------------------------------------- */

void bl_xerr_set(bl_xerr_t *e, const char *param, const char *fmt, ...)
{
    if (!e)
        return;
    if (!e->status)
        e->status = 400;
    copy_cstr(e->param, sizeof e->param, param);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

bool bl_xrole_parse(const char *s, bl_role_t *out)
{
    static const char *const names[] = {"system", "developer", "user", "assistant", "tool"};
    static const bl_role_t roles[] = {BL_ROLE_SYSTEM, BL_ROLE_DEVELOPER, BL_ROLE_USER,
                                      BL_ROLE_ASSISTANT, BL_ROLE_TOOL};
    for (size_t i = 0; s && i < BL_ARRAY_LEN(names); i++)
        if (!strcmp(s, names[i])) {
            *out = roles[i];
            return true;
        }
    return false;
}

const char *bl_xfinish_chat(bl_xfinish_t f)
{
    switch (f) {
    case BL_XFIN_LENGTH: return "length";
    case BL_XFIN_TOOL_CALLS: return "tool_calls";
    case BL_XFIN_CONTENT_FILTER: return "content_filter";
    default: return "stop";
    }
}

const char *bl_xfinish_anthropic(bl_xfinish_t f)
{
    switch (f) {
    case BL_XFIN_STOP_SEQUENCE: return "stop_sequence";
    case BL_XFIN_LENGTH: return "max_tokens";
    case BL_XFIN_TOOL_CALLS: return "tool_use";
    case BL_XFIN_CONTENT_FILTER: return "refusal";
    default: return "end_turn";
    }
}

bool bl_xdata_url(const char *url, bl_str_t *media_type, bl_str_t *b64)
{
    if (!url || strncmp(url, "data:", 5))
        return false;
    const char *mt = url + 5;
    const char *semi = strstr(mt, ";base64,");
    if (!semi)
        return false;
    *media_type = (bl_str_t){mt, (size_t)(semi - mt)};
    *b64 = (bl_str_t){semi + 8, strlen(semi + 8)};
    return true;
}

int bl_xdump(json_t *v, bl_buf_t *out)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (!s)
        return BL_ENOMEM;
    int rc = bl_buf_append_str(out, s);
    free(s);
    return rc;
}

void bl_xsse(bl_buf_t *out, const char *name, json_t *data)
{
    if (name) {
        bl_buf_append_str(out, "event: ");
        bl_buf_append_str(out, name);
        bl_buf_append(out, "\n", 1);
    }
    bl_buf_append_str(out, "data: ");
    bl_xdump(data, out);
    bl_buf_append(out, "\n\n", 2);
}

void bl_xid(char *out, size_t cap, const char *prefix)
{
    static const char a[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    unsigned char r[24];
    if (RAND_bytes(r, sizeof r) != 1) {
        uint64_t t = bl_now_ns();
        for (size_t i = 0; i < sizeof r; i++)
            r[i] = (unsigned char)(t >> (i % 8 * 8)) ^ (unsigned char)(i * 37);
    }
    size_t p = strlen(prefix);
    if (cap < p + 1) {
        if (cap)
            out[0] = '\0';
        return;
    }
    memcpy(out, prefix, p);
    size_t i = 0;
    for (; i < sizeof r && p + i + 1 < cap; i++)
        out[p + i] = a[r[i] % 62];
    out[p + i] = '\0';
}
