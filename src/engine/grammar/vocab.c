/*
 * The model's vocabulary trie for grammar masks: built on first use from
 * the token pieces (what the text of a token is when shown, special=false:
 * control tokens have none and are never allowed) and the end-of-generation
 * flags, then kept on the model (freed by bl_model_free). Two threads that
 * race to build it both build; one copy wins, the other is freed.
 */
#include <stdlib.h>

#include <ballast/errors.h>

#include "engine/grammar/grammar.h"
#include "engine/model.h"

int bl_model_vtrie(bl_model_t *m, const bl_vtrie_t **out)
{
    if (!m || !out)
        return BL_EINVAL;
    bl_vtrie_t *t = atomic_load_explicit(&m->vtrie, memory_order_acquire);
    if (t) {
        *out = t;
        return 0;
    }
    uint32_t n = m->hp.n_vocab, n_tok = bl_tok_n_vocab(m->tok);
    const char **piece = calloc(n, sizeof *piece);
    uint32_t *len = calloc(n, sizeof *len);
    uint8_t *eog = calloc(n, 1);
    int rc = BL_ENOMEM;
    if (!piece || !len || !eog)
        goto done;
    for (uint32_t i = 0; i < n && i < n_tok; i++) {
        size_t pn = 0;
        if (bl_tok_piece_ref(m->tok, (bl_token_t)i, false, &piece[i], &pn) < 0)
            pn = 0;
        len[i] = pn > UINT32_MAX ? 0 : (uint32_t)pn;
        eog[i] = bl_tok_is_eog(m->tok, (bl_token_t)i);
    }
    if ((rc = bl_vtrie_new(n, piece, len, eog, &t)) < 0)
        goto done;
    bl_vtrie_t *expected = NULL;
    if (!atomic_compare_exchange_strong(&m->vtrie, &expected, t)) {
        bl_vtrie_free(t);
        t = expected;
    }
    *out = t;
done:
    free(piece);
    free(len);
    free(eog);
    return rc;
}
