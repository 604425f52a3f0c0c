/*
 * Pre-tokenizers of byte-level BPE vocabularies: the text is cut into words
 * before merging, by the regular expressions Hugging Face tokenizer.json
 * files name. There is no Unicode-aware regex engine among our dependencies,
 * so each pattern is matched by hand, alternative by alternative, the way
 * llama.cpp's unicode.cpp does for the common ones. (During development the
 * splits were compared with Python's `regex` module on random strings of
 * letters, digits, marks, CJK, emoji, punctuation and Unicode spaces.)
 *
 *  gpt-2:  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
 *  llama3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *          ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *  qwen2:  llama3 with \p{N} (one digit per word)
 *  qwen35: qwen2 with [\p{L}\p{M}]+ for letters (and \p{M} out of the symbol run)
 *  smollm: \p{N}, then gpt-2 within what is left
 *  default (llama.cpp's fallback): [\p{P}\$\+<=>\^~\|]+, then gpt-2, then
 *          \p{N}+, then [0-9][0-9][0-9]
 *  falcon: [\p{P}\$\+<=>\^~\|`]+, then gpt-2, then [0-9][0-9][0-9]
 *
 * Patterns in a sequence each split the previous pattern's pieces further;
 * the text between matches stays a piece of its own. Work is on codepoints;
 * bytes that are not well-formed UTF-8 are one codepoint each, in the symbol
 * class (llama.cpp turns them into U+FFFD, which is a symbol too, but we keep
 * the bytes so decoding gives the input back).
 */
#include <stdlib.h>

#include "engine/tokenizer/tok_internal.h"
#include "engine/tokenizer/unicode.h"

#define OOR 0xFFFFFFFEu /* codepoint past the piece being split */
#define CLS_NONE 0xFF   /* class past the piece: matches nothing */

typedef struct {
    const uint32_t *cp;
    const uint8_t *cls;
    size_t ini, end; /* the piece being split, in codepoints */
    uint32_t *out;   /* piece ends, in codepoints */
    size_t n_out;
    size_t prev; /* end of the last emitted piece */
} split_t;

static uint32_t cpt(const split_t *s, size_t i)
{
    return i >= s->ini && i < s->end ? s->cp[i] : OOR;
}

static uint8_t cls(const split_t *s, size_t i)
{
    return i >= s->ini && i < s->end ? s->cls[i] : CLS_NONE;
}

static bool is_l(uint8_t c)
{
    return c == BL_UCLASS_LETTER;
}

static bool is_n(uint8_t c)
{
    return c == BL_UCLASS_NUMBER;
}

static bool is_s(uint8_t c)
{
    return c == BL_UCLASS_SPACE;
}

/* [^\s\p{L}\p{N}] (and not past the end) */
static bool is_sym(uint8_t c)
{
    return c != CLS_NONE && !is_s(c) && !is_l(c) && !is_n(c);
}

/* Emit the piece ending at end; returns its length. */
static size_t add(split_t *s, size_t end)
{
    size_t n = end - s->prev;
    if (n > 0)
        s->out[s->n_out++] = (uint32_t)end;
    s->prev = end;
    return n;
}

static uint32_t lower_ascii(uint32_t c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* 's|'t|'re|'ve|'m|'ll|'d at pos (case-insensitive when asked): the length, or 0 */
static size_t contraction(const split_t *s, size_t pos, bool icase)
{
    if (cpt(s, pos) != '\'')
        return 0;
    uint32_t a = cpt(s, pos + 1), b = cpt(s, pos + 2);
    if (icase) {
        a = lower_ascii(a);
        b = lower_ascii(b);
    }
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
        return 3;
    return 0;
}

/* The whitespace alternatives shared by the patterns: \s+(?!\S) leaves the
 * last space to prefix the next word; a run ending the piece is taken whole. */
static void spaces(split_t *s, size_t *pos)
{
    size_t n = 0;
    while (is_s(cls(s, *pos + n)))
        n++;
    if (n > 1 && cpt(s, *pos + n) != OOR) {
        *pos += n - 1;
        add(s, *pos);
    } else if (n > 0) {
        *pos += n;
        add(s, *pos);
    } else {
        add(s, ++*pos); /* nothing matches: one codepoint on its own */
    }
}

static void split_gpt2(split_t *s)
{
    for (size_t pos = s->ini; pos < s->end;) {
        uint32_t c = cpt(s, pos);
        size_t k = contraction(s, pos, false);
        if (k) {
            pos += add(s, pos + k);
            continue;
        }
        /* ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+' */
        uint8_t c2 = c == ' ' ? cls(s, pos + 1) : cls(s, pos);
        bool (*run)(uint8_t) = is_l(c2) ? is_l : is_n(c2) ? is_n : is_sym(c2) ? is_sym : NULL;
        if (run) {
            pos += c == ' ';
            while (run(cls(s, pos)))
                pos++;
            add(s, pos);
            continue;
        }
        spaces(s, &pos);
    }
}

/* llama3 / qwen2 / qwen35; max_digits 3 or 1; marks: \p{M} joins letters */
static void split_llama3(split_t *s, size_t max_digits, bool marks)
{
    for (size_t pos = s->ini; pos < s->end;) {
        uint32_t c = cpt(s, pos);
        uint8_t f = cls(s, pos);
#define LETTER(x) (is_l(x) || (marks && (x) == BL_UCLASS_MARK))
#define SYM(x) (is_sym(x) && !(marks && (x) == BL_UCLASS_MARK))
        size_t k = contraction(s, pos, true);
        if (k) {
            pos += add(s, pos + k);
            continue;
        }
        /* [^\r\n\p{L}\p{N}]?\p{L}+ */
        if (!(c == '\r' || c == '\n' || is_n(f)) && (LETTER(f) || LETTER(cls(s, pos + 1)))) {
            pos++;
            while (LETTER(cls(s, pos)))
                pos++;
            add(s, pos);
            continue;
        }
        /* \p{N}{1,max} */
        if (is_n(f)) {
            size_t ini = pos;
            while (is_n(cls(s, pos))) {
                if (++pos - ini >= max_digits) {
                    add(s, pos);
                    ini = pos;
                }
            }
            add(s, pos);
            continue;
        }
        /* ' ?[^\s\p{L}\p{N}]+[\r\n]*' */
        uint8_t f2 = c == ' ' ? cls(s, pos + 1) : f;
        if (SYM(f2) || (c == ' ' && f2 == CLS_NONE)) {
            pos += c == ' ';
            while (SYM(cls(s, pos)))
                pos++;
            while (cpt(s, pos) == '\r' || cpt(s, pos) == '\n')
                pos++;
            add(s, pos);
            continue;
        }
#undef LETTER
#undef SYM
        /* \s*[\r\n]+ : up to the last line break of the whitespace run */
        size_t n = 0, last_nl = 0;
        while (is_s(cls(s, pos + n))) {
            uint32_t w = cpt(s, pos + n);
            if (w == '\r' || w == '\n')
                last_nl = pos + n + 1;
            n++;
        }
        if (last_nl > 0) {
            pos = last_nl;
            add(s, pos);
            continue;
        }
        spaces(s, &pos);
    }
}

/* Maximal runs of pred and of !pred alike become pieces (a pattern "X+"
 * with the gaps kept); single: every pred codepoint alone (pattern "X"). */
static void split_runs(split_t *s, bool (*pred)(uint32_t, uint8_t), bool single)
{
    size_t pos = s->ini;
    while (pos < s->end) {
        bool in = pred(s->cp[pos], s->cls[pos]);
        pos++;
        if (!(in && single))
            while (pos < s->end && pred(s->cp[pos], s->cls[pos]) == in)
                pos++;
        add(s, pos);
    }
}

static bool p_number(uint32_t c, uint8_t k)
{
    (void)c;
    return is_n(k);
}

static bool p_punct(uint32_t c, uint8_t k)
{
    return k == BL_UCLASS_PUNCT || c == '$' || c == '+' || c == '<' || c == '=' || c == '>' ||
           c == '^' || c == '~' || c == '|';
}

static bool p_punct_bt(uint32_t c, uint8_t k)
{
    return p_punct(c, k) || c == '`';
}

static bool is_digit(uint32_t c)
{
    return c >= '0' && c <= '9';
}

/* [0-9][0-9][0-9], leftmost first, gaps kept */
static void split_triples(split_t *s)
{
    for (size_t pos = s->ini; pos < s->end;) {
        if (pos + 3 <= s->end && is_digit(s->cp[pos]) && is_digit(s->cp[pos + 1]) &&
            is_digit(s->cp[pos + 2])) {
            add(s, pos);
            pos += 3;
            add(s, pos);
        } else {
            pos++;
        }
    }
    add(s, s->end);
}

typedef enum {
    PAT_GPT2,
    PAT_LLAMA3,
    PAT_QWEN2,
    PAT_QWEN35,
    PAT_DIGIT,
    PAT_NUMBERS,
    PAT_PUNCT,
    PAT_PUNCT_BT,
    PAT_TRIPLES
} pat_t;

static void run_pattern(split_t *s, pat_t p)
{
    switch (p) {
    case PAT_GPT2:
        split_gpt2(s);
        break;
    case PAT_LLAMA3:
        split_llama3(s, 3, false);
        break;
    case PAT_QWEN2:
        split_llama3(s, 1, false);
        break;
    case PAT_QWEN35:
        split_llama3(s, 1, true);
        break;
    case PAT_DIGIT:
        split_runs(s, p_number, true);
        break;
    case PAT_NUMBERS:
        split_runs(s, p_number, false);
        break;
    case PAT_PUNCT:
        split_runs(s, p_punct, false);
        break;
    case PAT_PUNCT_BT:
        split_runs(s, p_punct_bt, false);
        break;
    case PAT_TRIPLES:
        split_triples(s);
        break;
    }
}

int bl_tok_pretokenize(bl_tok_pre_t pre, const char *text, size_t len, uint32_t *ends,
                       size_t *n_words)
{
    static const pat_t seq_default[] = {PAT_PUNCT, PAT_GPT2, PAT_NUMBERS, PAT_TRIPLES};
    static const pat_t seq_smollm[] = {PAT_DIGIT, PAT_GPT2};
    static const pat_t seq_falcon[] = {PAT_PUNCT_BT, PAT_GPT2, PAT_TRIPLES};
    pat_t one;
    const pat_t *seq = &one;
    size_t n_seq = 1;
    switch (pre) {
    case BL_PRE_GPT2:
        one = PAT_GPT2;
        break;
    case BL_PRE_LLAMA3:
        one = PAT_LLAMA3;
        break;
    case BL_PRE_QWEN2:
        one = PAT_QWEN2;
        break;
    case BL_PRE_QWEN35:
        one = PAT_QWEN35;
        break;
    case BL_PRE_SMOLLM:
        seq = seq_smollm;
        n_seq = 2;
        break;
    case BL_PRE_FALCON:
        seq = seq_falcon;
        n_seq = 3;
        break;
    default:
        seq = seq_default;
        n_seq = 4;
        break;
    }

    *n_words = 0;
    if (len == 0)
        return 0;
    if (len >= UINT32_MAX)
        return BL_ERANGE;
    int rc = 0;
    uint32_t *cp = malloc(len * sizeof(*cp));
    uint32_t *off = malloc((len + 1) * sizeof(*off));
    uint8_t *cl = malloc(len);
    uint32_t *a = malloc(len * sizeof(*a)), *b = malloc(len * sizeof(*b));
    if (!cp || !off || !cl || !a || !b) {
        rc = BL_ENOMEM;
        goto done;
    }
    size_t n = 0;
    const unsigned char *u = (const unsigned char *)text;
    for (size_t i = 0; i < len; n++) {
        uint32_t c;
        size_t k = bl_unicode_decode(u + i, len - i, &c);
        cp[n] = c;
        cl[n] = c == BL_UNICODE_BAD ? BL_UCLASS_OTHER : (uint8_t)bl_unicode_class(c);
        off[n] = (uint32_t)i;
        i += k;
    }
    off[n] = (uint32_t)len;

    /* a[] holds the current pieces' ends (in codepoints); each pattern
     * splits every piece into b[] */
    a[0] = (uint32_t)n;
    size_t n_a = 1;
    for (size_t p = 0; p < n_seq; p++) {
        split_t s = {cp, cl, 0, 0, b, 0, 0};
        size_t start = 0;
        for (size_t i = 0; i < n_a; i++) {
            s.ini = s.prev = start;
            s.end = a[i];
            run_pattern(&s, seq[p]);
            start = a[i];
        }
        uint32_t *t = a;
        a = b;
        b = t;
        n_a = s.n_out;
    }
    for (size_t i = 0; i < n_a; i++)
        ends[i] = off[a[i]];
    *n_words = n_a;
done:
    free(cp);
    free(off);
    free(cl);
    free(a);
    free(b);
    return rc;
}
