/*
 * Text embeddings from the generative model (bl_embed), for /v1/embeddings.
 *
 * What llama.cpp computes with pooling MEAN and what llama-server then
 * returns (embd_normalize 2, the default): the final hidden state of every
 * token, after the output norm and before the output projection, averaged
 * over the text's tokens and scaled to unit L2 length. Attention stays
 * causal, as for generation. The sums are kept in double so that long texts
 * do not lose the small tokens' share to rounding.
 *
 * The text runs through the ordinary forward pass (bl_forward) in the
 * context's own cache; bl_ctx.embd_sum tells it to pool the hidden states
 * instead of computing logits.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"

int bl_embed(bl_ctx_t *c, const char *text, size_t len, float *out, size_t cap, size_t *n_tokens)
{
    if (n_tokens)
        *n_tokens = 0;
    if (!c)
        return BL_EINVAL;
    bl_ctx_truncate(c, 0);
    if ((!text && len) || !out)
        return BL_EINVAL;
    const uint32_t E = c->m->hp.n_embd;
    if (cap < E)
        return BL_ERANGE;

    bl_token_t *tokens = malloc((size_t)c->kv.n_ctx * sizeof *tokens);
    double *sum = calloc(E, sizeof *sum);
    size_t n = 0;
    int rc = tokens && sum ? 0 : BL_ENOMEM;
    if (rc == 0)
        rc = bl_tokenize(c->m, text ? text : "", len, true, false, tokens, c->kv.n_ctx, &n);
    if (rc == BL_ERANGE)
        rc = BL_ECONTEXT; /* more tokens than the cache holds */
    if (rc == 0 && n == 0)
        rc = BL_EINVAL;
    if (rc < 0)
        goto done;

    pthread_mutex_lock(&c->m->run_lock);
    c->embd_sum = sum;
    for (size_t i = 0; i < n && rc == 0;) {
        uint32_t k = (uint32_t)(n - i < c->s.cap ? n - i : c->s.cap);
        rc = bl_forward(c, tokens + i, k, NULL);
        if (rc == 0) {
            memcpy(c->tokens + c->n_past, tokens + i, k * sizeof *tokens);
            c->n_past += k;
            i += k;
        }
    }
    c->embd_sum = NULL;
    pthread_mutex_unlock(&c->m->run_lock);
    if (rc < 0)
        goto done;

    /* mean, then unit length: the 1/n cancels, so scale the sum directly */
    double sq = 0;
    for (uint32_t i = 0; i < E; i++)
        sq += sum[i] * sum[i];
    double inv = sq > 0 ? 1.0 / sqrt(sq) : 0.0;
    for (uint32_t i = 0; i < E; i++)
        out[i] = (float)(sum[i] * inv);
    if (n_tokens)
        *n_tokens = n;

done:
    bl_ctx_truncate(c, 0);
    free(tokens);
    free(sum);
    return rc;
}
