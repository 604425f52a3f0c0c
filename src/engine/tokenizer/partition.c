/*
 * Special-token partition, shared by every tokenizer model (llama.cpp's
 * tokenizer_st_partition): the text is split around the vocabulary's
 * control / user-defined / unknown token strings, longest first. Without
 * parse_special only user-defined tokens are split out (as Hugging Face
 * tokenizers do); control and unknown ones stay plain text. LSTRIP / RSTRIP
 * tokens eat the whitespace beside them.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer/tok_internal.h"

static int frags_push(bl_tok_frags_t *f, int32_t token, size_t off, size_t len)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        bl_tok_frag_t *v = realloc(f->v, cap * sizeof(*v));
        if (!v)
            return BL_ENOMEM;
        f->v = v;
        f->cap = cap;
    }
    f->v[f->n++] = (bl_tok_frag_t){token, off, len};
    return 0;
}
static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Split every plain fragment of *cur around occurrences of special token id,
 * writing the result to *next. */
static int split_on(const bl_tok_t *t, int32_t id, const char *text, bl_tok_frags_t *cur,
                    bl_tok_frags_t *next)
{
    const char *tx = t->text + t->text_off[id];
    size_t tn = t->text_len[id];
    uint16_t attr = t->attr[id];
    int rc;

    next->n = 0;
    for (size_t i = 0; i < cur->n; i++) {
        bl_tok_frag_t f = cur->v[i];
        if (f.token >= 0 || f.len < tn) {
            if ((rc = frags_push(next, f.token, f.off, f.len)) != 0)
                return rc;
            continue;
        }
        size_t off = f.off, len = f.len;
        for (;;) {
            const char *m = len >= tn ? memmem(text + off, len, tx, tn) : NULL;
            if (!m) {
                if (len > 0 && (rc = frags_push(next, -1, off, len)) != 0)
                    return rc;
                break;
            }
            size_t at = (size_t)(m - text);
            size_t left = at - off;
            if (attr & TOK_ATTR_LSTRIP)
                while (left > 0 && is_space(text[off + left - 1]))
                    left--;
            if (left > 0 && (rc = frags_push(next, -1, off, left)) != 0)
                return rc;
            if ((rc = frags_push(next, id, 0, 0)) != 0)
                return rc;
            size_t roff = at + tn, rlen = off + len - roff;
            if (attr & TOK_ATTR_RSTRIP)
                while (rlen > 0 && is_space(text[roff])) {
                    roff++;
                    rlen--;
                }
            off = roff;
            len = rlen;
        }
    }
    return 0;
}

int bl_tok_partition(const bl_tok_t *t, const char *text, size_t len, bool parse_special,
                     bl_tok_frags_t *out)
{
    int rc = 0;
    bl_tok_frags_t a = {0}, b = {0};

    if (len > 0 && (rc = frags_push(&a, -1, 0, len)) != 0)
        goto done;
    for (uint32_t i = 0; i < t->n_special && a.n > 0; i++) {
        int32_t id = t->special[i];
        if (!parse_special && (t->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN)))
            continue;
        /* most special tokens never occur: check once before rebuilding */
        const char *tx = t->text + t->text_off[id];
        if (t->text_len[id] > len || !memmem(text, len, tx, t->text_len[id]))
            continue;
        if ((rc = split_on(t, id, text, &a, &b)) != 0)
            goto done;
        bl_tok_frags_t tmp = a;
        a = b;
        b = tmp;
    }
done:
    free(b.v);
    if (rc != 0) {
        free(a.v);
        return rc;
    }
    *out = a;
    return 0;
}
