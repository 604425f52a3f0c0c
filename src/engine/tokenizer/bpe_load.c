/*
 * Loading the byte-level BPE parts of a vocabulary (tokenizer.ggml.model =
 * "gpt2"): the pre-tokenizer named by tokenizer.ggml.pre, the merge ranks
 * of tokenizer.ggml.merges ("a b" strings, rank = index) keyed by the pair
 * of token ids, and the token each raw byte starts as. Names and defaults
 * follow llama.cpp's llama_vocab::load.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer/tok_internal.h"
#include "engine/tokenizer/unicode.h"

/* llama.cpp's names for each pattern set. Llama 3 style vocabularies add a
 * BOS and keep a word that is already a token whole (ignore_merges). */
static const struct {
    const char *name;
    bl_tok_pre_t pre;
    bool llama3_rules;
} pre_names[] = {
    {"default", BL_PRE_DEFAULT, false},  {"llama3", BL_PRE_LLAMA3, true},
    {"llama-v3", BL_PRE_LLAMA3, true},   {"llama-bpe", BL_PRE_LLAMA3, true},
    {"falcon3", BL_PRE_LLAMA3, true},    {"falcon-h1", BL_PRE_LLAMA3, true},
    {"pixtral", BL_PRE_LLAMA3, true},    {"midm-2.0", BL_PRE_LLAMA3, true},
    {"lfm2", BL_PRE_LLAMA3, true},       {"dbrx", BL_PRE_LLAMA3, false},
    {"smaug-bpe", BL_PRE_LLAMA3, false}, {"gpt-2", BL_PRE_GPT2, false},
    {"gpt2", BL_PRE_GPT2, false},        {"phi-2", BL_PRE_GPT2, false},
    {"jina-es", BL_PRE_GPT2, false},     {"jina-de", BL_PRE_GPT2, false},
    {"jina-v2-es", BL_PRE_GPT2, false},  {"jina-v2-de", BL_PRE_GPT2, false},
    {"gigachat", BL_PRE_GPT2, false},    {"a.x-4.0", BL_PRE_GPT2, false},
    {"mellum", BL_PRE_GPT2, false},      {"modern-bert", BL_PRE_GPT2, false},
    {"exaone4", BL_PRE_GPT2, false},     {"mpt", BL_PRE_GPT2, false},
    {"olmo", BL_PRE_GPT2, false},        {"jais", BL_PRE_GPT2, false},
    {"trillion", BL_PRE_GPT2, false},    {"granite-docling", BL_PRE_GPT2, false},
    {"qwen2", BL_PRE_QWEN2, false},      {"deepseek-r1-qwen", BL_PRE_QWEN2, false},
    {"kormo", BL_PRE_QWEN2, false},      {"f2llmv2", BL_PRE_QWEN2, false},
    {"megrez", BL_PRE_QWEN2, false},     {"stablelm2", BL_PRE_QWEN2, false},
    {"hunyuan", BL_PRE_QWEN2, false},    {"grok-2", BL_PRE_QWEN2, false},
    {"qwen35", BL_PRE_QWEN35, false},    {"smollm", BL_PRE_SMOLLM, false},
    {"starcoder", BL_PRE_SMOLLM, false}, {"refact", BL_PRE_SMOLLM, false},
    {"command-r", BL_PRE_SMOLLM, false}, {"codeshell", BL_PRE_SMOLLM, false},
    {"exaone", BL_PRE_SMOLLM, false},    {"minerva-7b", BL_PRE_SMOLLM, false},
    {"falcon", BL_PRE_FALCON, false},
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int read_pre(bl_tok_t *t, const bl_gguf_t *g, char *err, size_t errlen)
{
    bl_gguf_str_t s;
    int rc = bl_gguf_get_str(g, "tokenizer.ggml.pre", &s);
    t->pre = BL_PRE_DEFAULT;
    if (rc == BL_ENOENT || (rc == 0 && s.n == 0))
        return 0; /* llama.cpp: missing means "default" */
    if (rc != 0) {
        seterr(err, errlen, "tokenizer.ggml.pre: not a string");
        return BL_EFORMAT;
    }
    for (size_t i = 0; i < sizeof(pre_names) / sizeof(pre_names[0]); i++) {
        if (strlen(pre_names[i].name) == s.n && memcmp(pre_names[i].name, s.p, s.n) == 0) {
            t->pre = pre_names[i].pre;
            t->ignore_merges = pre_names[i].llama3_rules;
            if (pre_names[i].llama3_rules)
                t->add_bos = true;
            return 0;
        }
    }
    seterr(err, errlen,
           "tokenizer.ggml.pre '%.*s' is not a supported pre-tokenizer (supported: default, "
           "llama-bpe, gpt-2, qwen2, qwen35, smollm, falcon and their aliases)",
           (int)(s.n > 64 ? 64 : s.n), s.p);
    return BL_EUNSUPPORTED;
}

static uint64_t mix(uint64_t h)
{
    h ^= h >> 31;
    h *= 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
    return h;
}

/* Returns false when the pair is already there (the first rank wins). */
static bool merge_insert(bl_tok_t *t, uint64_t key, uint32_t rank, int32_t result)
{
    uint32_t i = (uint32_t)mix(key) & t->merge_mask;
    while (t->merges[i].key != 0) {
        if (t->merges[i].key == key)
            return false;
        i = (i + 1) & t->merge_mask;
    }
    t->merges[i] = (bl_tok_merge_t){key, rank, result};
    return true;
}

const bl_tok_merge_t *bl_tok_merge_find(const bl_tok_t *t, int32_t a, int32_t b)
{
    uint64_t key = ((uint64_t)(uint32_t)a + 1) << 32 | (uint32_t)b;
    uint32_t i = (uint32_t)mix(key) & t->merge_mask;
    for (;;) {
        const bl_tok_merge_t *m = &t->merges[i];
        if (m->key == key)
            return m;
        if (m->key == 0)
            return NULL;
        i = (i + 1) & t->merge_mask;
    }
}

static int read_merges(bl_tok_t *t, const bl_gguf_t *g, char *err, size_t errlen)
{
    const bl_gguf_kv_t *kv = bl_gguf_find(g, "tokenizer.ggml.merges");
    if (!kv) {
        seterr(err, errlen, "tokenizer.ggml.merges: missing (byte-level BPE needs merges)");
        return BL_ENOENT;
    }
    if (kv->type != BL_GGUF_ARRAY || kv->arr_type != BL_GGUF_STRING) {
        seterr(err, errlen, "tokenizer.ggml.merges: expected an array of strings");
        return BL_EFORMAT;
    }
    if (kv->arr_n >= (1u << 30)) {
        seterr(err, errlen, "tokenizer.ggml.merges: %llu merges is out of range",
               (unsigned long long)kv->arr_n);
        return BL_ERANGE;
    }
    uint32_t n = (uint32_t)kv->arr_n, cap = 16;
    while (cap < 2 * n)
        cap <<= 1;
    t->merges = calloc(cap, sizeof(*t->merges));
    char *buf = malloc((size_t)t->max_token_len + 1);
    if (!t->merges || !buf) {
        free(buf);
        return BL_ENOMEM;
    }
    t->merge_mask = cap - 1;
    int rc = 0;
    for (uint32_t i = 0; i < n; i++) {
        bl_gguf_str_t s;
        if ((rc = bl_gguf_arr_str(g, kv, i, &s)) != 0) {
            seterr(err, errlen, "tokenizer.ggml.merges[%u]: cannot read string", i);
            break;
        }
        /* the separator is the first space after the first byte (llama.cpp) */
        const char *sp = s.n > 1 ? memchr(s.p + 1, ' ', s.n - 1) : NULL;
        if (!sp)
            continue;
        size_t na = (size_t)(sp - s.p), nb = s.n - na - 1;
        if (na + nb > t->max_token_len)
            continue; /* "ab" cannot be a token */
        int32_t a = bl_tok_lookup(t, s.p, na), b = bl_tok_lookup(t, sp + 1, nb);
        memcpy(buf, s.p, na);
        memcpy(buf + na, sp + 1, nb);
        int32_t ab = bl_tok_lookup(t, buf, na + nb);
        /* a merge of (or into) a non-token can never apply to token ids */
        if (a < 0 || b < 0 || ab < 0)
            continue;
        merge_insert(t, ((uint64_t)(uint32_t)a + 1) << 32 | (uint32_t)b, i, ab);
    }
    free(buf);
    return rc;
}

int bl_tok_bpe_load(bl_tok_t *t, const bl_gguf_t *g, char *err, size_t errlen)
{
    int rc;
    if ((rc = read_pre(t, g, err, errlen)) != 0 || (rc = read_merges(t, g, err, errlen)) != 0)
        return rc;
    for (int b = 0; b < 256; b++) {
        char u[4];
        size_t n = bl_unicode_encode(bl_unicode_byte_cpt((uint8_t)b), u);
        t->byte_sym[b] = bl_tok_lookup(t, u, n);
    }
    return 0;
}

/* Text of a byte-level token as the bytes it stands for: each character is
 * mapped back through bytes_to_unicode; characters outside the mapping (not
 * produced by the byte-level encoder) are copied as they are. Writes at most
 * n bytes to dst and returns the length. */
size_t bl_tok_bpe_decode(const char *src, size_t n, char *dst)
{
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = bl_unicode_decode((const unsigned char *)src + i, n - i, &cp);
        int b = cp == BL_UNICODE_BAD ? -1 : bl_unicode_cpt_byte(cp);
        if (b >= 0) {
            dst[m++] = (char)b;
        } else {
            memcpy(dst + m, src + i, k);
            m += k;
        }
        i += k;
    }
    return m;
}
