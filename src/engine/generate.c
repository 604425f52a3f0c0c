/*
 * bl_generate: prompt in, streamed text out.
 *
 * Text reaches the caller in whole UTF-8 characters (the detokenizer holds
 * back partial ones) and never contains any part of a stop string: text that
 * could be the start of a stop string is held back until the next tokens
 * show whether it is.
 *
 * Structured output: with a grammar (engine/grammar/) in force, each step's
 * logits are copied and every token the grammar cannot take next is set to
 * -inf before sampling (greedy and sampled alike); the sampled token's
 * piece then advances the grammar.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/grammar/grammar.h"
#include "engine/model.h"

void bl_generate_params_default(bl_generate_params_t *p)
{
    memset(p, 0, sizeof *p);
    bl_sampling_default(&p->sampling);
    p->max_tokens = -1;
}

typedef struct {
    const bl_generate_params_t *p;
    char *pend; /* decoded text not yet shown */
    size_t n_pend, cap;
    bool user_stop; /* on_text asked to stop */
} gen_t;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void emit(gen_t *g, const char *text, size_t len)
{
    if (len == 0 || g->user_stop || !g->p->on_text)
        return;
    if (g->p->on_text(g->p->ud, text, len))
        g->user_stop = true;
}

/* Is pend[q..] a proper prefix of some stop string? */
static bool prefix_of_stop(const gen_t *g, size_t q)
{
    size_t tail = g->n_pend - q;
    for (size_t i = 0; i < g->p->n_stop; i++) {
        const char *s = g->p->stop[i];
        size_t sl = s ? strlen(s) : 0;
        if (sl > tail && !memcmp(g->pend + q, s, tail))
            return true;
    }
    return false;
}

/* Add decoded text; show what is safe. Returns 1 when a stop string is
 * complete (the text before it has been shown), 0 otherwise, or BL_ENOMEM. */
static int push_text(gen_t *g, const char *text, size_t len, bool final)
{
    if (g->n_pend + len > g->cap) {
        size_t cap = (g->n_pend + len) * 2 + 64;
        char *p = realloc(g->pend, cap);
        if (!p)
            return BL_ENOMEM;
        g->pend = p;
        g->cap = cap;
    }
    if (len) /* an empty piece may come with a NULL buffer */
        memcpy(g->pend + g->n_pend, text, len);
    g->n_pend += len;

    /* The earliest complete stop string wins. */
    size_t cut = g->n_pend;
    for (size_t i = 0; i < g->p->n_stop; i++) {
        const char *s = g->p->stop[i];
        size_t sl = s ? strlen(s) : 0;
        if (sl == 0 || sl > g->n_pend)
            continue;
        const char *hit = memmem(g->pend, g->n_pend, s, sl);
        if (hit && (size_t)(hit - g->pend) < cut)
            cut = (size_t)(hit - g->pend);
    }
    if (cut < g->n_pend) {
        emit(g, g->pend, cut);
        g->n_pend = 0;
        return 1;
    }
    size_t show = g->n_pend;
    if (!final)
        for (size_t q = 0; q < g->n_pend; q++)
            if (prefix_of_stop(g, q)) {
                show = q;
                break;
            }
    if (show) { /* pend may still be NULL when nothing was held */
        emit(g, g->pend, show);
        memmove(g->pend, g->pend + show, g->n_pend - show);
        g->n_pend -= show;
    }
    return 0;
}

static int tokenize_prompt(bl_ctx_t *c, const char *prompt, size_t len, bl_token_t **out, size_t *n)
{
    /* BOS only at the start of a sequence; a prompt fed after earlier text
     * continues it. Spelled-out control tokens are parsed so chat templates
     * work. */
    bool add_special = c->n_past == 0;
    size_t cap = len + 8;
    for (int attempt = 0; attempt < 2; attempt++) {
        bl_token_t *toks = malloc(cap * sizeof *toks);
        if (!toks)
            return BL_ENOMEM;
        int rc = bl_tokenize(c->m, prompt, len, add_special, true, toks, cap, n);
        if (rc == 0) {
            *out = toks;
            return 0;
        }
        free(toks);
        if (rc != BL_ERANGE)
            return rc;
        cap = *n;
    }
    return BL_ERANGE;
}

/* ---- step by step -----------------------------------------------------------
 * A scheduler that decodes many sequences as one batch needs generation one
 * token at a time: bl_gen_step samples and shows a token, and the caller
 * feeds it (alone or in a batch). bl_generate below is the same steps with
 * bl_ctx_feed in between. */

struct bl_gen {
    bl_ctx_t *c;
    const bl_generate_params_t *p;
    gen_t g;
    bl_sampler_t *smp;
    bl_detok_t dt;
    bl_generate_result_t res;
    double t0;
    bool done;
    /* structured output: the grammar, its matcher and the masked logits */
    bl_grammar_t *gram;
    bl_gmatch_t *gm;
    const bl_vtrie_t *vt;
    float *masked; /* n_vocab */
    bool end_when_complete;
};

static void drop_constraint(bl_gen_t *g)
{
    bl_gmatch_free(g->gm);
    bl_grammar_free(g->gram);
    g->gm = NULL;
    g->gram = NULL;
}

int bl_json_schema_check(const char *schema, size_t len, char *err, size_t errlen)
{
    bl_grammar_t *gram = NULL;
    int rc = bl_grammar_from_schema(schema, len, &gram, err, errlen);
    bl_grammar_free(gram);
    return rc;
}

int bl_gen_constrain(bl_gen_t *g, const char *schema, size_t len, bool end_when_complete, char *err,
                     size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!g)
        return BL_EINVAL;
    bl_grammar_t *gram = NULL;
    bl_gmatch_t *gm = NULL;
    int rc = schema ? bl_grammar_from_schema(schema, len, &gram, err, errlen)
                    : bl_grammar_json_object(&gram);
    if (rc < 0)
        goto done;
    if (!g->vt && (rc = bl_model_vtrie(g->c->m, &g->vt)) < 0)
        goto done;
    if (!g->masked) {
        g->masked = malloc((size_t)g->c->m->hp.n_vocab * sizeof *g->masked);
        if (!g->masked) {
            rc = BL_ENOMEM;
            goto done;
        }
    }
    if ((rc = bl_gmatch_new(gram, &gm)) < 0)
        goto done;
    drop_constraint(g);
    g->gram = gram;
    g->gm = gm;
    g->end_when_complete = end_when_complete;
    gram = NULL;
    gm = NULL;
done:
    if (rc == BL_ENOMEM && err && errlen && !err[0])
        snprintf(err, errlen, "out of memory");
    bl_gmatch_free(gm);
    bl_grammar_free(gram);
    return rc;
}

bool bl_gen_constrained(const bl_gen_t *g)
{
    return g && g->gm;
}

int bl_gen_begin(bl_ctx_t *c, const bl_generate_params_t *p, bl_gen_t **out)
{
    *out = NULL;
    if (!c || !p || (p->n_stop && !p->stop))
        return BL_EINVAL;
    if (!c->have_logits)
        return BL_ESTATE; /* feed the prompt first */
    bl_gen_t *g = calloc(1, sizeof *g);
    if (!g)
        return BL_ENOMEM;
    g->c = c;
    g->p = p;
    g->g.p = p;
    g->res.finish = BL_FINISH_ERROR;
    int rc = bl_sampler_new(c->m, &p->sampling, &g->smp);
    if (rc < 0) {
        free(g);
        return rc;
    }
    bl_detok_init(&g->dt);
    if (p->json_schema || p->json_object) {
        rc = bl_gen_constrain(g, p->json_schema, p->json_schema_len, true, NULL, 0);
        if (rc < 0) {
            bl_gen_end(g, NULL);
            return rc;
        }
    }
    g->t0 = now_ms();
    *out = g;
    return BL_OK;
}

/* End of generation: show what was held back (a trailing partial character,
 * text that turned out not to begin a stop string) unless a stop string or a
 * cancel ended it. */
static int gen_finish(bl_gen_t *g, bl_finish_t why, bool stopped)
{
    g->done = true;
    g->res.finish = why;
    g->res.decode_ms = now_ms() - g->t0;
    if (stopped || why == BL_FINISH_CANCELED)
        return 1;
    char piece[1024];
    int n = bl_detok_flush(&g->dt, piece, sizeof piece);
    if (n < 0)
        return n;
    int st = push_text(&g->g, piece, (size_t)n, true);
    if (st < 0)
        return st;
    if (st == 1)
        g->res.finish = BL_FINISH_STOP;
    return 1;
}

int bl_gen_step(bl_gen_t *g, bl_token_t *next)
{
    if (g->done)
        return 1;
    bl_ctx_t *c = g->c;
    const bl_generate_params_t *p = g->p;
    if (p->cancel && atomic_load(p->cancel))
        return gen_finish(g, BL_FINISH_CANCELED, false);
    if (p->max_tokens >= 0 && g->res.n_generated >= (size_t)p->max_tokens)
        return gen_finish(g, BL_FINISH_LENGTH, false);
    size_t n_hist;
    const bl_token_t *hist = bl_ctx_tokens(c, &n_hist);
    const float *logits = bl_ctx_logits(c);
    if (g->gm) {
        size_t nv = c->m->hp.n_vocab;
        memcpy(g->masked, logits, nv * sizeof *logits);
        int n_ok = bl_gmatch_mask(g->gm, g->vt, g->masked, nv);
        if (n_ok < 0)
            return n_ok;
        if (n_ok == 0) /* the vocabulary cannot continue the value */
            return gen_finish(g, BL_FINISH_ERROR, false);
        logits = g->masked;
    }
    bl_token_t tok = bl_sampler_sample(g->smp, logits, hist, n_hist);
    if (tok < 0)
        return tok;
    g->res.n_generated++;
    if (bl_token_is_eog(c->m, tok))
        return gen_finish(g, BL_FINISH_STOP, false);
    bool value_done = false;
    if (g->gm) {
        const char *tp;
        size_t tn;
        /* only when every allowed logit was -inf or NaN: the model failed */
        if (bl_vtrie_piece(g->vt, tok, &tp, &tn) < 0 || bl_gmatch_advance(g->gm, tp, tn) < 0)
            return gen_finish(g, BL_FINISH_ERROR, false);
        if (bl_gmatch_done(g->gm)) {
            value_done = g->end_when_complete;
            drop_constraint(g);
        }
    }
    char piece[1024];
    int n = bl_detok_push(&g->dt, c->m, tok, piece, sizeof piece);
    if (n < 0)
        return n;
    int st = push_text(&g->g, piece, (size_t)n, false);
    if (st < 0)
        return st;
    /* From here on the token's text has been shown: if generation ends now,
     * the token is left for the next feed instead of running a forward pass
     * nobody may need. */
    if (st == 1 || g->g.user_stop || value_done ||
        (p->max_tokens >= 0 && g->res.n_generated >= (size_t)p->max_tokens) ||
        c->n_past >= bl_ctx_size(c)) {
        c->pending = tok;
        if (st == 1)
            return gen_finish(g, BL_FINISH_STOP, true);
        if (value_done && !g->g.user_stop)
            return gen_finish(g, BL_FINISH_STOP, false);
        return gen_finish(g, g->g.user_stop ? BL_FINISH_CANCELED : BL_FINISH_LENGTH, false);
    }
    *next = tok;
    return 0;
}

void bl_gen_end(bl_gen_t *g, bl_generate_result_t *res)
{
    if (!g)
        return;
    if (res)
        *res = g->res;
    bl_sampler_free(g->smp);
    drop_constraint(g);
    free(g->masked);
    free(g->g.pend);
    free(g);
}

int bl_generate(bl_ctx_t *c, const char *prompt, size_t prompt_len, const bl_generate_params_t *p,
                bl_generate_result_t *res)
{
    bl_generate_result_t dummy;
    if (!res)
        res = &dummy;
    memset(res, 0, sizeof *res);
    res->finish = BL_FINISH_ERROR;
    if (!p || (!prompt && prompt_len) || (p->n_stop && !p->stop))
        return BL_EINVAL;
    bl_token_t *toks = NULL;
    bl_gen_t *g = NULL;
    size_t n_toks = 0;
    int rc = tokenize_prompt(c, prompt ? prompt : "", prompt_len, &toks, &n_toks);
    if (rc < 0)
        goto done;
    if (n_toks == 0 && !c->have_logits && c->pending < 0) {
        rc = BL_EINVAL; /* nothing to continue from */
        goto done;
    }
    if (n_toks + (c->pending >= 0) > bl_ctx_size(c) - c->n_past) {
        rc = BL_ECONTEXT;
        goto done;
    }
    double t0 = now_ms();
    rc = bl_ctx_feed(c, toks, n_toks, p->cancel);
    double prefill_ms = now_ms() - t0;
    if (rc == BL_ECANCELED) {
        res->n_prompt = n_toks;
        res->prefill_ms = prefill_ms;
        res->finish = BL_FINISH_CANCELED;
        rc = 0;
        goto done;
    }
    if (rc < 0 || (rc = bl_gen_begin(c, p, &g)) < 0)
        goto done;
    for (;;) {
        bl_token_t tok;
        rc = bl_gen_step(g, &tok);
        if (rc != 0)
            break;
        rc = bl_ctx_feed(c, &tok, 1, p->cancel);
        if (rc == BL_ECANCELED) {
            c->pending = tok; /* shown but not run */
            gen_finish(g, BL_FINISH_CANCELED, false);
            rc = 1;
            break;
        }
        if (rc < 0)
            break;
    }
    bl_gen_end(g, res);
    g = NULL;
    res->n_prompt = n_toks;
    res->prefill_ms = prefill_ms;
    if (rc < 0) {
        res->finish = BL_FINISH_ERROR;
        goto done;
    }
    rc = 0;
done:
    bl_gen_end(g, NULL);
    if (rc < 0)
        res->finish = BL_FINISH_ERROR;
    free(toks);
    return rc;
}
