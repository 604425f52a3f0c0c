/* A synthetic SentencePiece vocabulary, so a generated model has a working
 * tokenizer without a real one. Pieces are unique by construction: piece k is
 * the bijective base-26 spelling of k/2 in a..z, with the SentencePiece word
 * marker "▁" (U+2581) in front when k is even. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ballast/errors.h>

#include "gen.h"

/* llama.cpp's token types */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_BYTE = 6 };

#define N_SPECIAL 3
#define N_BYTES 256
#define PIECE_MAX 24 /* "▁" (3 bytes) + up to 13 letters covers 2^32 pieces */

static void piece(uint64_t k, char *out)
{
    char rev[16];
    size_t n = 0;
    uint64_t v = k / 2 + 1; /* bijective base 26: 1 -> "a", 27 -> "aa" */
    while (v) {
        v--;
        rev[n++] = (char)('a' + v % 26);
        v /= 26;
    }
    size_t j = 0;
    if (k % 2 == 0) {
        memcpy(out, "\xe2\x96\x81", 3);
        j = 3;
    }
    while (n)
        out[j++] = rev[--n];
    out[j] = 0;
}

int gen_write_synthetic_vocab(bl_gguf_writer_t *w, uint32_t n_vocab, const char *last_control)
{
    if (n_vocab < N_SPECIAL + N_BYTES + 1) {
        fprintf(stderr, "gguf-gen: a synthetic vocab needs at least %d tokens\n",
                N_SPECIAL + N_BYTES + 1);
        return BL_EINVAL;
    }
    int rc = BL_ENOMEM;
    char *text = malloc((size_t)n_vocab * PIECE_MAX);
    const char **tokens = malloc((size_t)n_vocab * sizeof *tokens);
    float *scores = malloc((size_t)n_vocab * sizeof *scores);
    int32_t *types = malloc((size_t)n_vocab * sizeof *types);
    if (!text || !tokens || !scores || !types)
        goto done;
    for (uint32_t i = 0; i < n_vocab; i++) {
        char *t = text + (size_t)i * PIECE_MAX;
        tokens[i] = t;
        if (i < N_SPECIAL) {
            static const char *const special[N_SPECIAL] = {"<unk>", "<s>", "</s>"};
            strcpy(t, special[i]);
            scores[i] = 0.0f;
            types[i] = i == 0 ? TT_UNKNOWN : TT_CONTROL;
        } else if (i < N_SPECIAL + N_BYTES) {
            snprintf(t, PIECE_MAX, "<0x%02X>", i - N_SPECIAL);
            scores[i] = 0.0f;
            types[i] = TT_BYTE;
        } else if (last_control && i == n_vocab - 1) {
            snprintf(t, PIECE_MAX, "%s", last_control);
            scores[i] = 0.0f;
            types[i] = TT_CONTROL;
        } else {
            uint64_t k = i - (N_SPECIAL + N_BYTES);
            piece(k, t);
            scores[i] = -(float)k; /* earlier pieces merge first */
            types[i] = TT_NORMAL;
        }
    }
    if ((rc = bl_gguf_w_str(w, "tokenizer.ggml.model", "llama")) ||
        (rc = bl_gguf_w_str(w, "tokenizer.ggml.pre", "default")) ||
        (rc = bl_gguf_w_arr_str(w, "tokenizer.ggml.tokens", tokens, n_vocab)) ||
        (rc = bl_gguf_w_arr(w, "tokenizer.ggml.scores", BL_GGUF_F32, scores, n_vocab)) ||
        (rc = bl_gguf_w_arr(w, "tokenizer.ggml.token_type", BL_GGUF_I32, types, n_vocab)) ||
        (rc = bl_gguf_w_u32(w, "tokenizer.ggml.unknown_token_id", 0)) ||
        (rc = bl_gguf_w_u32(w, "tokenizer.ggml.bos_token_id", 1)) ||
        (rc = bl_gguf_w_u32(w, "tokenizer.ggml.eos_token_id", 2)) ||
        (rc = bl_gguf_w_bool(w, "tokenizer.ggml.add_bos_token", true)) ||
        (rc = bl_gguf_w_bool(w, "tokenizer.ggml.add_eos_token", false)))
        goto done;
done:
    free(text);
    free(tokens);
    free(scores);
    free(types);
    return rc;
}
