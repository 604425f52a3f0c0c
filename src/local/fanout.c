/*
 * n > 1: OpenAI's n choices from the local model. Each choice is its own
 * request through the queue and the slots, so the choices decode as one
 * batch when there are slots for them and share the prompt's cached prefix;
 * this file merges their answers into the one the client asked for:
 * choices numbered 0..n-1 under one id, usage with the prompt counted once,
 * one [DONE]. A sampled request gives choice i the seed seed+i (a seed
 * given) so the choices differ and stay reproducible.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "local/local_int.h"

#define MAX_CHOICES 16

typedef struct {
    struct bl_local_fan *f;
    unsigned i;
    bl_local_req_t *r;
    bool done;
    int status;
    bl_buf_t body;  /* not streamed: the whole answer; streamed: a partial event */
} kid_t;

struct bl_local_fan {
    bl_upstream_cb_t cb;        /* the caller's */
    kid_t kids[MAX_CHOICES];
    unsigned n, n_done;
    bool stream, include_usage;
    bool headers_sent, ended;
    int in_cb;                  /* inside the caller's callbacks */
    int kid_cb;                 /* inside a kid's callback (this file's code runs on) */
    bool canceled;              /* the caller cancelled from inside one */
    char id[96];
    long long prompt, completion, cached;
    bl_buf_t out;
};

static void fan_free(bl_local_fan_t *f)
{
    for (unsigned i = 0; i < f->n; i++)
        bl_buf_free(&f->kids[i].body);
    bl_buf_free(&f->out);
    free(f);
}

/* Cancel the choices still running: none calls back afterwards. */
static void cancel_kids(bl_local_fan_t *f)
{
    for (unsigned i = 0; i < f->n; i++) {
        kid_t *k = &f->kids[i];
        if (k->done || !k->r)
            continue;
        k->done = true;
        f->n_done++;
        bl_local_req_t *r = k->r;
        k->r = NULL;
        r->fan = NULL; /* a plain cancel, not the group's */
        bl_local_cancel(r);
    }
}

/* The caller is told the end: no kid may call back afterwards. */
static void end_with(bl_local_fan_t *f, bl_up_result_t r)
{
    f->ended = true;
    cancel_kids(f);
    f->in_cb++;
    f->cb.on_done(f->cb.ud, r, r == BL_UP_OK ? NULL : "a choice failed");
    f->in_cb--;
}

static void note_usage(bl_local_fan_t *f, unsigned i, json_t *u)
{
    json_t *p = json_object_get(u, "prompt_tokens"), *c = json_object_get(u, "completion_tokens");
    json_t *k = json_object_get(json_object_get(u, "prompt_tokens_details"), "cached_tokens");
    if (i == 0 && json_is_integer(p))
        f->prompt = json_integer_value(p);
    if (i == 0 && json_is_integer(k))
        f->cached = json_integer_value(k);
    if (json_is_integer(c))
        f->completion += json_integer_value(c);
}

static void put_usage(bl_local_fan_t *f, json_t *obj)
{
    json_object_set_new(obj, "usage",
                        json_pack("{s:I, s:I, s:I, s:{s:I}}", "prompt_tokens", (json_int_t)f->prompt,
                                  "completion_tokens", (json_int_t)f->completion, "total_tokens",
                                  (json_int_t)(f->prompt + f->completion), "prompt_tokens_details",
                                  "cached_tokens", (json_int_t)f->cached));
}

/* One event of choice i's stream, as the client sees it: renumbered under
 * the first choice's id; its usage chunk and [DONE] are kept for the end. */
static void stream_event(bl_local_fan_t *f, kid_t *k, const char *data, size_t n)
{
    if (n == 6 && !memcmp(data, "[DONE]", 6))
        return;
    json_t *ev = json_loadb(data, n, 0, NULL);
    if (!json_is_object(ev)) {
        json_decref(ev);
        return;
    }
    json_t *choices = json_object_get(ev, "choices");
    json_t *u = json_object_get(ev, "usage");
    if (json_is_object(u)) {
        note_usage(f, k->i, u);
        if (json_array_size(choices) == 0) {
            json_decref(ev);
            return;
        }
        json_object_del(ev, "usage");
    }
    const char *id = json_string_value(json_object_get(ev, "id"));
    if (!f->id[0] && id)
        snprintf(f->id, sizeof f->id, "%s", id);
    json_object_set_new(ev, "id", json_string(f->id));
    size_t j;
    json_t *ch;
    json_array_foreach(choices, j, ch)
        json_object_set_new(ch, "index", json_integer(k->i));
    char *s = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(ev);
    if (s) {
        bl_buf_append_str(&f->out, "data: ");
        bl_buf_append_str(&f->out, s);
        bl_buf_append(&f->out, "\n\n", 2);
        free(s);
    }
}

static void flush(bl_local_fan_t *f)
{
    if (!f->out.len)
        return;
    f->in_cb++;
    f->cb.on_body(f->cb.ud, f->out.data, f->out.len);
    f->in_cb--;
    bl_buf_reset(&f->out);
}

/* On the way out of a kid's callback: free the group once nothing refers
 * to it (every kid over, the caller told or gone). */
static void leave(bl_local_fan_t *f)
{
    f->kid_cb--;
    if (!f->kid_cb && !f->in_cb && f->n_done == f->n && (f->ended || f->canceled))
        fan_free(f);
}

static void kid_headers(void *ud, int status, const bl_buf_t *raw)
{
    kid_t *k = ud;
    bl_local_fan_t *f = k->f;
    f->kid_cb++;
    k->status = status;
    if (status == 200 && !f->headers_sent && f->stream && !f->canceled) {
        /* an error is told when that choice ends; a whole answer at the end */
        f->headers_sent = true;
        f->in_cb++;
        f->cb.on_headers(f->cb.ud, 200, raw);
        f->in_cb--;
    }
    leave(f);
}

static void kid_body_in(kid_t *k, const char *p, size_t n);

static int kid_body(void *ud, const char *p, size_t n)
{
    kid_t *k = ud;
    bl_local_fan_t *f = k->f;
    f->kid_cb++;
    if (!f->canceled && !f->ended)
        kid_body_in(k, p, n);
    leave(f);
    return 0;
}

static void kid_body_in(kid_t *k, const char *p, size_t n)
{
    bl_local_fan_t *f = k->f;
    bl_buf_append(&k->body, p, n);
    if (!f->stream || k->status != 200)
        return;
    size_t off = 0;
    for (;;) {
        const char *s = k->body.data + off;
        const char *end = memmem(s, k->body.len - off, "\n\n", 2);
        if (!end)
            break;
        if (!strncmp(s, "data: ", 6))
            stream_event(f, k, s + 6, (size_t)(end - s - 6));
        off += (size_t)(end - s) + 2;
    }
    bl_buf_consume(&k->body, off);
    flush(f);
}

/* Every choice is in: the one answer. */
static void merge_whole(bl_local_fan_t *f)
{
    json_t *root = NULL, *choices = json_array();
    for (unsigned i = 0; i < f->n; i++) {
        kid_t *k = &f->kids[i];
        json_t *o = json_loadb(k->body.data ? k->body.data : "", k->body.len, 0, NULL);
        json_t *ch = json_array_get(json_object_get(o, "choices"), 0);
        if (ch) {
            json_object_set_new(ch, "index", json_integer(i));
            json_array_append(choices, ch);
        }
        note_usage(f, i, json_object_get(o, "usage"));
        if (!root)
            root = o;
        else
            json_decref(o);
    }
    if (!json_is_object(root)) {
        json_decref(root);
        json_decref(choices);
        end_with(f, BL_UP_PROTOCOL);
        return;
    }
    json_object_set_new(root, "choices", choices);
    put_usage(f, root);
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    bl_buf_t h = {0};
    bl_buf_append_str(&h, "HTTP/1.1 200\r\nContent-Type: application/json\r\n\r\n");
    f->in_cb++;
    f->cb.on_headers(f->cb.ud, 200, &h);
    f->in_cb--;
    bl_buf_free(&h);
    if (!f->canceled && s)
        bl_buf_append_str(&f->out, s);
    free(s);
    if (!f->canceled)
        flush(f);
    if (!f->canceled)
        end_with(f, BL_UP_OK);
}

static void kid_done(void *ud, bl_up_result_t res, const char *errmsg)
{
    kid_t *k = ud;
    bl_local_fan_t *f = k->f;
    (void)errmsg;
    f->kid_cb++;
    k->done = true;
    k->r = NULL; /* local.c frees it */
    f->n_done++;
    if (f->ended || f->canceled)
        goto out;
    if (res != BL_UP_OK || k->status != 200) {
        if (!f->headers_sent) {
            /* the first failing choice's answer (an OpenAI error) is the answer */
            bl_buf_t h = {0};
            bl_buf_printf(&h, "HTTP/1.1 %d\r\nContent-Type: application/json\r\n%s\r\n",
                          k->status ? k->status : 500, k->status == 503 ? "Retry-After: 1\r\n" : "");
            f->headers_sent = true;
            f->in_cb++;
            f->cb.on_headers(f->cb.ud, k->status ? k->status : 500, &h);
            f->in_cb--;
            bl_buf_free(&h);
            if (!f->canceled) {
                bl_buf_append(&f->out, k->body.data, k->body.len);
                flush(f);
            }
            if (!f->canceled)
                end_with(f, BL_UP_OK);
        } else {
            end_with(f, BL_UP_RESET); /* a stream already going: it was cut */
        }
        goto out;
    }
    if (f->n_done < f->n)
        goto out;
    if (!f->stream) {
        merge_whole(f);
        goto out;
    }
    if (f->include_usage) {
        json_t *u = json_pack("{s:s, s:s, s:[]}", "id", f->id, "object", "chat.completion.chunk",
                              "choices");
        put_usage(f, u);
        char *s = json_dumps(u, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(u);
        if (s) {
            bl_buf_append_str(&f->out, "data: ");
            bl_buf_append_str(&f->out, s);
            bl_buf_append(&f->out, "\n\n", 2);
            free(s);
        }
    }
    bl_buf_append_str(&f->out, "data: [DONE]\n\n");
    flush(f);
    if (!f->canceled)
        end_with(f, BL_UP_OK);
out:
    leave(f);
}

int bl_local_fan_start(bl_local_t *l, const char *path, json_t *root, unsigned n,
                       const bl_upstream_cb_t *cb, bl_local_req_t **out)
{
    bl_local_fan_t *f = calloc(1, sizeof *f);
    if (!f)
        return BL_ENOMEM;
    f->cb = *cb;
    f->n = n;
    f->stream = json_is_true(json_object_get(root, "stream"));
    f->include_usage =
        json_is_true(json_object_get(json_object_get(root, "stream_options"), "include_usage"));
    json_t *seed = json_object_get(root, "seed");
    bool seeded = json_is_integer(seed);
    json_int_t seed0 = seeded ? json_integer_value(seed) : 0; /* replaced below: keep the value */
    json_object_del(root, "n");
    for (unsigned i = 0; i < n; i++) {
        kid_t *k = &f->kids[i];
        k->f = f;
        k->i = i;
        if (seeded)
            json_object_set_new(root, "seed", json_integer(seed0 + (json_int_t)i));
        char *body = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
        bl_upstream_cb_t kcb = {.ud = k, .on_headers = kid_headers, .on_body = kid_body,
                                .on_done = kid_done};
        int rc = body ? bl_local_start(l, path, body, strlen(body), &kcb, &k->r) : BL_ENOMEM;
        free(body);
        if (rc) {
            for (unsigned j = 0; j < i; j++)
                bl_local_cancel(f->kids[j].r);
            fan_free(f);
            return rc;
        }
        k->r->fan = f;
    }
    *out = f->kids[0].r; /* the caller's handle: cancelling it cancels every choice */
    return BL_OK;
}

void bl_local_fan_cancel(bl_local_fan_t *f)
{
    if (f->canceled)
        return;
    f->canceled = true;
    cancel_kids(f);
    if (!f->in_cb && !f->kid_cb)
        fan_free(f); /* else freed on the way out of the callback */
}
