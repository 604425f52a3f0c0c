/*
 * The scheduler of a local model: one thread that runs every slot.
 *
 * Continuous batching: requests join between steps (taken from the queue
 * into a free slot, their prompt prefilled) and leave when they finish; each
 * step samples one token for every active sequence and feeds them all with
 * one bl_ctx_feed_batch, so the weights are read from memory once per step
 * for all of them. A new request goes to the free slot whose cache already
 * holds the longest prefix of its prompt (the same system prompt, the
 * earlier turns of a chat), and only the rest is computed.
 *
 * Text leaves through on_text (under the instance lock) and a uv_async_send;
 * the loop formats and delivers it (wire.c).
 */
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "local/local_int.h"

static int on_text(void *ud, const char *text, size_t len)
{
    bl_local_req_t *r = ud;
    bl_local_t *l = r->l;
    pthread_mutex_lock(&l->mu);
    int rc = bl_buf_append(&r->out, text, len);
    pthread_mutex_unlock(&l->mu);
    uv_async_send(&l->async);
    return rc || atomic_load(&r->cancel);
}

static int tokenize(bl_local_t *l, const bl_local_req_t *r, bl_token_t **out, size_t *n)
{
    int rc = bl_tokenize(l->model, r->prompt, r->prompt_len, true, true, NULL, 0, n);
    if (rc && rc != BL_ERANGE)
        return rc;
    *out = malloc((*n ? *n : 1) * sizeof **out);
    if (!*out)
        return BL_ENOMEM;
    return bl_tokenize(l->model, r->prompt, r->prompt_len, true, true, *out, *n, n);
}

/* The request is over: its result goes to the loop. */
static void finish(bl_local_t *l, bl_slot_t *s, bl_local_req_t *r)
{
    bl_generate_result_t res = {.finish = BL_FINISH_ERROR};
    if (s && s->gen) {
        bl_gen_end(s->gen, &res);
        s->gen = NULL;
    }
    if (s) {
        free(s->pending);
        s->pending = NULL;
        s->n_pending = s->pos_pending = 0;
    }
    if (s)
        s->r = NULL;
    pthread_mutex_lock(&l->mu);
    if (s) {
        r->n_generated = res.n_generated;
        r->finish = res.finish;
    }
    r->running = false;
    r->done = true;
    l->n_busy--;
    pthread_mutex_unlock(&l->mu);
    uv_async_send(&l->async);
}

static void fail(bl_local_t *l, bl_local_req_t *r, int status, const char *type, const char *code)
{
    pthread_mutex_lock(&l->mu);
    r->err_status = status;
    r->err_type = type;
    r->err_code = code;
    pthread_mutex_unlock(&l->mu);
}

static size_t common_prefix(bl_ctx_t *ctx, const bl_token_t *toks, size_t n)
{
    size_t have = 0, k = 0;
    const bl_token_t *cached = bl_ctx_tokens(ctx, &have);
    while (k < have && k < n && cached[k] == toks[k])
        k++;
    return k;
}

/* Embeddings: each input through bl_embed on a free slot's context (which
 * loses its cached prefix), written as OpenAI's list of embedding objects. */
static void embed(bl_local_t *l, bl_local_req_t *r)
{
    bl_slot_t *s = NULL;
    for (unsigned i = 0; i < l->cfg.slots && !s; i++)
        if (!l->slots[i].r)
            s = &l->slots[i];
    size_t dim = bl_model_info(l->model)->n_embd, total = 0;
    float *v = malloc(dim * sizeof *v);
    bl_buf_t body = {0};
    int rc = v ? BL_OK : BL_ENOMEM;
    bl_buf_append_str(&body, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; !rc && i < r->n_inputs; i++) {
        size_t nt = 0;
        if (atomic_load(&r->cancel)) {
            rc = BL_ECANCELED;
            break;
        }
        rc = bl_embed(s->ctx, r->inputs[i], strlen(r->inputs[i]), v, dim, &nt);
        if (rc == BL_ECONTEXT) {
            snprintf(r->err_msg, sizeof r->err_msg,
                     "This model's maximum context length is %u tokens; input %zu is longer.",
                     bl_ctx_size(s->ctx), i);
            fail(l, r, 400, "invalid_request_error", "context_length_exceeded");
            break;
        }
        if (rc)
            break;
        total += nt;
        bl_buf_printf(&body, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", i ? "," : "",
                      i);
        if (r->embed_base64) {
            /* OpenAI's base64 form: the little-endian float32s, base64-encoded */
            unsigned char *enc = malloc(4 * ((dim * 4 + 2) / 3) + 1);
            if (!enc) {
                rc = BL_ENOMEM;
                break;
            }
            int n = EVP_EncodeBlock(enc, (const unsigned char *)v, (int)(dim * sizeof *v));
            bl_buf_append(&body, "\"", 1);
            bl_buf_append(&body, enc, (size_t)n);
            bl_buf_append(&body, "\"", 1);
            free(enc);
        } else {
            bl_buf_append(&body, "[", 1);
            for (size_t k = 0; k < dim; k++)
                bl_buf_printf(&body, "%s%.9g", k ? "," : "", (double)v[k]);
            bl_buf_append(&body, "]", 1);
        }
        bl_buf_append(&body, "}", 1);
    }
    if (rc && !r->err_status && rc != BL_ECANCELED) {
        snprintf(r->err_msg, sizeof r->err_msg, "The local model failed: %s", bl_strerror(rc));
        fail(l, r, 500, "server_error", "engine_error");
    }
    if (!rc) {
        bl_buf_append_str(&body, "],\"model\":");
        json_t *m = json_string(r->model);
        char *ms = m ? json_dumps(m, JSON_ENCODE_ANY) : NULL;
        bl_buf_append_str(&body, ms ? ms : "\"\"");
        free(ms);
        json_decref(m);
        bl_buf_printf(&body, ",\"usage\":{\"prompt_tokens\":%zu,\"total_tokens\":%zu}}", total,
                      total);
        pthread_mutex_lock(&l->mu);
        bl_buf_append(&r->out, body.data, body.len);
        r->n_prompt = total;
        pthread_mutex_unlock(&l->mu);
    }
    bl_buf_free(&body);
    free(v);
    finish(l, NULL, r);
}

/* Prompt tokens are fed prefill_chunk (default 256) per scheduler step:
 * a long prompt is fed between decode steps of the other slots, so it
 * does not stall every stream for its whole prefill, and chunks that size
 * keep the matmuls wide enough to run at prefill speed. */
/* The prompt is in the cache: start sampling. False (the request ended)
 * when generation cannot start. */
static bool start_gen(bl_local_t *l, bl_slot_t *s)
{
    bl_local_req_t *r = s->r;
    uint32_t size = bl_ctx_size(s->ctx);
    int32_t room = (int32_t)(size - r->n_prompt);
    int32_t max = r->max_tokens > 0 ? r->max_tokens : room;
    if (max > (int32_t)l->cfg.max_tokens)
        max = (int32_t)l->cfg.max_tokens; /* degraded mode keeps answers short */
    if (max > room)
        max = room;
    r->gp.max_tokens = max;
    r->gp.on_text = on_text;
    r->gp.ud = r;
    r->gp.cancel = &r->cancel;
    int rc = bl_gen_begin(s->ctx, &r->gp, &s->gen);
    if (rc) {
        s->gen = NULL;
        snprintf(r->err_msg, sizeof r->err_msg, "The local model failed: %s", bl_strerror(rc));
        fail(l, r, 500, "server_error", "engine_error");
        finish(l, s, r);
        return false;
    }
    /* a call the client requires: constrained to a call from the first token */
    if (r->call_now && r->call_schema &&
        bl_gen_constrain(s->gen, r->call_schema, strlen(r->call_schema), r->call_then_stop, NULL,
                         0)) {
        snprintf(r->err_msg, sizeof r->err_msg, "The local model could not constrain the call.");
        fail(l, r, 500, "server_error", "engine_error");
        finish(l, s, r);
        return false;
    }
    return true;
}

static void drop_pending(bl_slot_t *s)
{
    free(s->pending);
    s->pending = NULL;
    s->n_pending = s->pos_pending = 0;
}

/* Feed the next chunk of a slot's prompt; start generating after the last.
 * False when the request ended. */
static bool prefill_step(bl_local_t *l, bl_slot_t *s)
{
    bl_local_req_t *r = s->r;
    size_t left = s->n_pending - s->pos_pending;
    size_t m = l->cfg.prefill_chunk ? BL_MIN(left, (size_t)l->cfg.prefill_chunk) : left;
    int rc = bl_ctx_feed(s->ctx, s->pending + s->pos_pending, m, &r->cancel);
    if (rc) {
        if (rc != BL_ECANCELED) {
            snprintf(r->err_msg, sizeof r->err_msg, "The local model failed: %s", bl_strerror(rc));
            fail(l, r, 500, "server_error", "engine_error");
        }
        bl_ctx_truncate(s->ctx, 0); /* a half-fed prompt is no prefix to reuse */
        drop_pending(s);
        finish(l, s, r);
        return false;
    }
    s->pos_pending += m;
    if (s->pos_pending < s->n_pending)
        return true;
    drop_pending(s);
    return start_gen(l, s);
}

/* Put a request from the queue into the best free slot and start its
 * prefill (the first chunk now). Returns the slot, or
 * NULL when the request already ended. */
static bl_slot_t *admit(bl_local_t *l, bl_local_req_t *r)
{
    bl_token_t *toks = NULL;
    size_t n = 0;
    bl_slot_t *s = NULL;
    int rc = tokenize(l, r, &toks, &n);
    if (rc) {
        snprintf(r->err_msg, sizeof r->err_msg, "The prompt could not be tokenized: %s",
                 bl_strerror(rc));
        fail(l, r, 500, "server_error", "engine_error");
        goto ended;
    }
    size_t best = 0;
    for (unsigned i = 0; i < l->cfg.slots; i++) {
        if (l->slots[i].r)
            continue;
        size_t k = common_prefix(l->slots[i].ctx, toks, n);
        if (!s || k > best) {
            s = &l->slots[i];
            best = k;
        }
    }
    uint32_t size = bl_ctx_size(s->ctx);
    /* A prompt that does not fit is the client's error (OpenAI's
     * context_length_exceeded), never a silent truncation. */
    if (n + 1 > size) {
        snprintf(r->err_msg, sizeof r->err_msg,
                 "This model's maximum context length is %u tokens. However, your messages "
                 "resulted in %zu tokens. Please reduce the length of the messages.",
                 size, n);
        fail(l, r, 400, "invalid_request_error", "context_length_exceeded");
        goto ended;
    }
    /* the last prompt token always runs again, for fresh logits */
    size_t k = best == n ? n - 1 : best;
    bl_ctx_truncate(s->ctx, k);
    r->n_cached = k;
    r->n_prompt = n;
    s->r = r;
    s->pending = toks; /* the slot owns the prompt until it is fed */
    s->n_pending = n;
    s->pos_pending = k;
    return prefill_step(l, s) ? s : NULL;
ended:
    free(toks);
    finish(l, NULL, r);
    return NULL;
}

void *bl_local_scheduler(void *arg)
{
    bl_local_t *l = arg;
    unsigned n_slots = l->cfg.slots;
    bl_ctx_t **ctxs = calloc(n_slots, sizeof *ctxs);
    bl_token_t *toks = calloc(n_slots, sizeof *toks);
    int *results = calloc(n_slots, sizeof *results);
    bl_slot_t **fed = calloc(n_slots, sizeof *fed);
    unsigned next_prefill = 0;
    if (!ctxs || !toks || !results || !fed)
        goto done; /* cannot happen in practice; requests then wait for close */
    for (;;) {
        /* admit what the queue holds while slots are free */
        unsigned active = 0;
        for (unsigned i = 0; i < n_slots; i++)
            active += l->slots[i].r != NULL;
        pthread_mutex_lock(&l->mu);
        while (!l->quit && !active && !l->q_head)
            pthread_cond_wait(&l->cv, &l->mu);
        if (l->quit) {
            pthread_mutex_unlock(&l->mu);
            break;
        }
        while (l->q_head && active < n_slots) {
            bl_local_req_t *r = l->q_head;
            l->q_head = r->q_next;
            if (!l->q_head)
                l->q_tail = NULL;
            l->q_len--;
            l->n_busy++;
            r->running = true;
            pthread_mutex_unlock(&l->mu);
            /* after finish() the loop may free r at once: don't touch it again */
            if (atomic_load(&r->cancel))
                finish(l, NULL, r); /* cancelled while waiting */
            else if (r->embed)
                embed(l, r);
            else if (admit(l, r))
                active++;
            pthread_mutex_lock(&l->mu);
        }
        pthread_mutex_unlock(&l->mu);

        /* one prompt chunk for the first slot still prefilling (round
         * robin), so long prompts advance without stalling the others */
        for (unsigned k = 0; k < n_slots; k++) {
            bl_slot_t *s = &l->slots[(next_prefill + k) % n_slots];
            if (!s->r || !s->pending)
                continue;
            next_prefill = (unsigned)(s - l->slots + 1) % n_slots;
            prefill_step(l, s); /* a request that ended frees its slot itself */
            break;
        }

        /* one step for everyone generating: sample and show a token each,
         * then feed them as one batch */
        size_t n = 0;
        for (unsigned i = 0; i < n_slots; i++) {
            bl_slot_t *s = &l->slots[i];
            if (!s->r || !s->gen)
                continue;
            bl_token_t tok;
            int st = bl_gen_step(s->gen, &tok);
            /* the model opened a tool call: its JSON is held to the tools' schemas */
            if (st == 0 && tok == s->r->call_marker && s->r->call_schema &&
                !bl_gen_constrained(s->gen))
                bl_gen_constrain(s->gen, s->r->call_schema, strlen(s->r->call_schema), false, NULL, 0);
            if (st == 0) {
                ctxs[n] = s->ctx;
                toks[n] = tok;
                fed[n++] = s;
                continue;
            }
            if (st < 0) {
                snprintf(s->r->err_msg, sizeof s->r->err_msg, "The local model failed: %s",
                         bl_strerror(st));
                fail(l, s->r, 500, "server_error", "engine_error");
            }
            finish(l, s, s->r);
        }
        if (!n)
            continue;
        int rc = bl_ctx_feed_batch(ctxs, toks, n, results, NULL);
        for (size_t i = 0; i < n; i++) {
            bl_slot_t *s = fed[i];
            if (rc == 0 && results[i] == 0)
                continue;
            int e = rc ? rc : results[i];
            if (e != BL_ECANCELED) {
                snprintf(s->r->err_msg, sizeof s->r->err_msg, "The local model failed: %s",
                         bl_strerror(e));
                fail(l, s->r, 500, "server_error", "engine_error");
            }
            finish(l, s, s->r);
        }
    }
done:
    /* quitting: whatever still runs is over (its caller is gone) */
    for (unsigned i = 0; i < n_slots; i++)
        if (l->slots[i].r)
            finish(l, &l->slots[i], l->slots[i].r);
    free(ctxs);
    free(toks);
    free(results);
    free(fed);
    return NULL;
}
