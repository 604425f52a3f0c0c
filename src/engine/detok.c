/*
 * Streaming detokenizer: token pieces in, whole UTF-8 characters out.
 *
 * Byte-fallback tokens split one character over several tokens (an emoji is
 * four <0xNN> tokens), so a piece may end inside a character. The incomplete
 * tail is held in bl_detok_t until the next piece completes it; bytes that can
 * never become valid UTF-8 come out as U+FFFD right away, and a tail still
 * incomplete at the end comes out as one U+FFFD at flush. Output is always
 * valid UTF-8. bl_detok_push() (it takes a bl_model_t) lives with the model
 * and calls bl_tok_detok_push() with the model's tokenizer.
 */
#include <string.h>

#include <ballast/engine.h>

#include "engine/tokenizer/tokenizer.h"

static const char replacement[3] = {'\xef', '\xbf', '\xbd'}; /* U+FFFD */

void bl_detok_init(bl_detok_t *d)
{
    memset(d, 0, sizeof(*d));
}

/* Length of the sequence this lead byte starts, 0 if it cannot start one. */
static size_t seq_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return 2;
    if (c >= 0xe0 && c <= 0xef)
        return 3;
    if (c >= 0xf0 && c <= 0xf4)
        return 4;
    return 0;
}

/* Whether c may follow lead at position k (1..) of a sequence: the second
 * byte's range excludes overlong forms, surrogates and values past U+10FFFF. */
static bool cont_ok(unsigned char lead, size_t k, unsigned char c)
{
    if (k == 1) {
        if (lead == 0xe0)
            return c >= 0xa0 && c <= 0xbf;
        if (lead == 0xed)
            return c >= 0x80 && c <= 0x9f;
        if (lead == 0xf0)
            return c >= 0x90 && c <= 0xbf;
        if (lead == 0xf4)
            return c >= 0x80 && c <= 0x8f;
    }
    return c >= 0x80 && c <= 0xbf;
}

typedef struct {
    char *out;
    size_t cap, n;
} sink_t;

static bool put(sink_t *s, const void *p, size_t n)
{
    if (n > s->cap - s->n)
        return false;
    memcpy(s->out + s->n, p, n);
    s->n += n;
    return true;
}

/* Validate pending + piece, write complete characters, and keep an
 * incomplete tail. d is only updated when everything fit. */
static int feed(bl_detok_t *d, const char *piece, size_t plen, char *out, size_t cap)
{
    sink_t s = {out, out ? cap : 0, 0};
    size_t np = d->n_pending;
    size_t total = np + plen;
    char tail[8];
    size_t n_tail = 0;
#define AT(i) ((unsigned char)((i) < np ? d->pending[(i)] : piece[(i)-np]))

    for (size_t i = 0; i < total;) {
        unsigned char c = AT(i);
        size_t L = seq_len(c);
        if (L == 0) {
            if (!put(&s, replacement, 3))
                return BL_ERANGE;
            i++;
            continue;
        }
        size_t k = 1;
        while (k < L && i + k < total && cont_ok(c, k, AT(i + k)))
            k++;
        if (k == L) {
            char ch[4];
            for (size_t j = 0; j < L; j++)
                ch[j] = (char)AT(i + j);
            if (!put(&s, ch, L))
                return BL_ERANGE;
            i += L;
        } else if (i + k == total) {
            /* a valid prefix cut off by the end of the input: hold it back */
            for (size_t j = 0; j < k; j++)
                tail[n_tail++] = (char)AT(i + j);
            i += k;
        } else {
            /* the maximal valid prefix is replaced, the bad byte is retried */
            if (!put(&s, replacement, 3))
                return BL_ERANGE;
            i += k;
        }
    }
#undef AT
    memcpy(d->pending, tail, n_tail);
    d->n_pending = n_tail;
    return (int)s.n;
}

int bl_tok_detok_push(bl_detok_t *d, const bl_tok_t *t, bl_token_t id, char *out, size_t cap)
{
    const char *p;
    size_t n;
    if (!d || !t || d->n_pending > 3)
        return BL_EINVAL;
    int rc = bl_tok_piece_ref(t, id, false, &p, &n);
    if (rc != 0)
        return rc;
    if (n > (size_t)INT32_MAX / 4)
        return BL_ERANGE;
    return feed(d, p, n, out, cap);
}

int bl_detok_flush(bl_detok_t *d, char *out, size_t cap)
{
    if (!d || d->n_pending > 3)
        return BL_EINVAL;
    if (d->n_pending == 0)
        return 0;
    /* only ever a valid but incomplete prefix is held: one replacement */
    if (!out || cap < 3)
        return BL_ERANGE;
    memcpy(out, replacement, 3);
    d->n_pending = 0;
    return 3;
}
