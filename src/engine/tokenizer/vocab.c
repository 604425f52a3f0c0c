/*
 * Loading a vocabulary from a GGUF file's tokenizer.* keys (SentencePiece
 * style, or byte-level BPE with bpe_load.c adding merges and the
 * pre-tokenizer), and the lookups every tokenizer path shares (text -> id, id ->
 * piece, special ids). Defaults and load-time fix-ups follow llama.cpp's
 * llama_vocab so token ids and end-of-generation sets match it.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer/tok_internal.h"

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

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then a final mix */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h;
}

int32_t bl_tok_lookup(const bl_tok_t *t, const char *p, size_t n)
{
    uint32_t i = (uint32_t)hash_bytes(p, n) & t->hash_mask;
    for (;;) {
        uint32_t slot = t->hash[i];
        if (slot == 0)
            return -1;
        uint32_t id = slot - 1;
        if (t->text_len[id] == n && memcmp(t->text + t->text_off[id], p, n) == 0)
            return (int32_t)id;
        i = (i + 1) & t->hash_mask;
    }
}

/* Insert id; returns the id already holding the same text, or -1. */
static int32_t hash_insert(bl_tok_t *t, uint32_t id)
{
    const char *p = t->text + t->text_off[id];
    size_t n = t->text_len[id];
    uint32_t i = (uint32_t)hash_bytes(p, n) & t->hash_mask;
    for (;;) {
        uint32_t slot = t->hash[i];
        if (slot == 0) {
            t->hash[i] = id + 1;
            return -1;
        }
        uint32_t other = slot - 1;
        if (t->text_len[other] == n && memcmp(t->text + t->text_off[other], p, n) == 0)
            return (int32_t)other;
        i = (i + 1) & t->hash_mask;
    }
}

static int32_t find_cstr(const bl_tok_t *t, const char *s)
{
    return bl_tok_lookup(t, s, strlen(s));
}

/* Reads an optional token id key. Negative values and 0xFFFFFFFF mean "none"
 * (converters write both). An id past the vocabulary is an error when strict;
 * otherwise the default stays, as llama.cpp does (files with a padding id one
 * past the vocabulary exist). */
static int read_id(const bl_gguf_t *g, const char *key, uint32_t n_vocab, bool strict,
                   bl_token_t *id, char *err, size_t errlen)
{
    const bl_gguf_kv_t *kv = bl_gguf_find(g, key);
    if (!kv)
        return 0;
    int64_t v;
    switch (kv->type) {
    case BL_GGUF_U8:
    case BL_GGUF_U16:
    case BL_GGUF_U32:
    case BL_GGUF_U64:
        v = kv->v.u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)kv->v.u;
        break;
    case BL_GGUF_I8:
    case BL_GGUF_I16:
    case BL_GGUF_I32:
    case BL_GGUF_I64:
        v = kv->v.i;
        break;
    default:
        seterr(err, errlen, "%s: expected an integer token id (type %d)", key, (int)kv->type);
        return BL_EFORMAT;
    }
    if (v < 0 || (kv->type == BL_GGUF_U32 && v == UINT32_MAX)) {
        *id = -1;
        return 0;
    }
    if ((uint64_t)v >= n_vocab && !strict)
        return 0;
    if ((uint64_t)v >= n_vocab) {
        seterr(err, errlen, "%s = %lld is out of range (vocabulary has %u tokens)", key,
               (long long)v, n_vocab);
        return BL_ERANGE;
    }
    *id = (bl_token_t)v;
    return 0;
}

static int read_flag(const bl_gguf_t *g, const char *key, bool *flag, char *err, size_t errlen)
{
    const bl_gguf_kv_t *kv = bl_gguf_find(g, key);
    if (!kv)
        return 0;
    if (kv->type != BL_GGUF_BOOL) {
        seterr(err, errlen, "%s: expected a bool (type %d)", key, (int)kv->type);
        return BL_EFORMAT;
    }
    *flag = kv->v.b;
    return 0;
}

/* An optional numeric array with at least n elements; *data stays NULL when
 * the key is absent. */
static int read_arr(const bl_gguf_t *g, const char *key, uint32_t n, bl_gguf_vtype_t want,
                    bl_gguf_vtype_t alt, const bl_gguf_kv_t **out, char *err, size_t errlen)
{
    const bl_gguf_kv_t *kv = bl_gguf_find(g, key);
    *out = NULL;
    if (!kv)
        return 0;
    if (kv->type != BL_GGUF_ARRAY || (kv->arr_type != want && kv->arr_type != alt)) {
        seterr(err, errlen, "%s: expected an array of type %d (got type %d)", key, (int)want,
               (int)(kv->type == BL_GGUF_ARRAY ? kv->arr_type : kv->type));
        return BL_EFORMAT;
    }
    if (kv->arr_n < n) {
        seterr(err, errlen, "%s has %llu entries but tokenizer.ggml.tokens has %u", key,
               (unsigned long long)kv->arr_n, n);
        return BL_EFORMAT;
    }
    if (!kv->arr_data) {
        seterr(err, errlen, "%s: array data missing", key);
        return BL_EFORMAT;
    }
    *out = kv;
    return 0;
}

static uint16_t attr_of_type(int32_t type)
{
    switch (type) {
    case BL_TOKTYPE_NORMAL:
        return TOK_ATTR_NORMAL;
    case BL_TOKTYPE_UNKNOWN:
        return TOK_ATTR_UNKNOWN;
    case BL_TOKTYPE_CONTROL:
        return TOK_ATTR_CONTROL;
    case BL_TOKTYPE_USER_DEFINED:
        return TOK_ATTR_USER_DEFINED;
    case BL_TOKTYPE_UNUSED:
        return TOK_ATTR_UNUSED;
    case BL_TOKTYPE_BYTE:
        return TOK_ATTR_BYTE;
    default:
        return TOK_ATTR_UNDEFINED;
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The byte of a "<0xNN>" token (llama.cpp reads the two characters after
 * "<0x" as hex). */
static uint8_t byte_of_token(const bl_tok_t *t, uint32_t id)
{
    const char *p = t->text + t->text_off[id];
    if (t->text_len[id] < 5)
        return 0;
    int hi = hexval(p[3]), lo = hexval(p[4]);
    if (hi < 0)
        return 0;
    if (lo < 0)
        return (uint8_t)hi;
    return (uint8_t)(hi * 16 + lo);
}

/* Token texts that end generation, from llama.cpp's list (its eog set is
 * chosen by text because GGUF files do not mark them). */
static const char *const eog_texts[] = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "[e~[",
    ("<\xef\xbd\x9c"
     "end\xe2\x96\x81"
     "of\xe2\x96\x81"
     "sentence\xef\xbd\x9c>"),
};

static const char *const eot_texts[] = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    ("<\xef\xbd\x9c"
     "end\xe2\x96\x81"
     "of\xe2\x96\x81"
     "sentence\xef\xbd\x9c>"),
    "<end_of_utterance>",
};

/* FIM pad / repo / file-separator tokens also end generation. */
static const char *const fim_eog_texts[] = {
    "<|fim_pad|>",   "<fim-pad>",  "<fim_pad>", "<PAD>",      "[PAD]",        "<|fim_repo|>",
    "<|repo_name|>", "<fim-repo>", "<REPO>",    "<reponame>", "<|file_sep|>",
};

static void mark_eog(bl_tok_t *t, int32_t id)
{
    if (id < 0)
        return;
    t->eog[id] = 1;
    t->attr[id] |= TOK_ATTR_CONTROL;
}

static void detect_special(bl_tok_t *t)
{
    if (t->eot < 0) {
        for (size_t i = 0; i < sizeof(eot_texts) / sizeof(eot_texts[0]) && t->eot < 0; i++)
            t->eot = find_cstr(t, eot_texts[i]);
        if (t->eot >= 0)
            t->attr[t->eot] |= TOK_ATTR_CONTROL;
    }
    if (t->eom < 0) {
        t->eom = find_cstr(t, "<|eom_id|>");
        if (t->eom >= 0)
            t->attr[t->eom] |= TOK_ATTR_CONTROL;
    }
    for (size_t i = 0; i < sizeof(fim_eog_texts) / sizeof(fim_eog_texts[0]); i++)
        mark_eog(t, find_cstr(t, fim_eog_texts[i]));
    for (size_t i = 0; i < sizeof(eog_texts) / sizeof(eog_texts[0]); i++)
        mark_eog(t, find_cstr(t, eog_texts[i]));

    /* control tokens named "unused" are placeholders */
    for (uint32_t id = 0; id < t->n_vocab; id++) {
        if (!(t->attr[id] & TOK_ATTR_CONTROL))
            continue;
        const char *p = t->text + t->text_off[id];
        size_t n = t->text_len[id];
        for (size_t k = 0; k + 6 <= n; k++) {
            if (memcmp(p + k, "unused", 6) == 0) {
                t->attr[id] |= TOK_ATTR_UNUSED;
                break;
            }
        }
    }

    /* gpt-oss style chat markers are rendered like text */
    static const char *const render[] = {"<|channel|>", "<|message|>", "<|start|>",
                                         "<|constrain|>"};
    for (size_t i = 0; i < sizeof(render) / sizeof(render[0]); i++) {
        int32_t id = find_cstr(t, render[i]);
        if (id >= 0)
            t->attr[id] = TOK_ATTR_USER_DEFINED;
    }

    if (t->eos >= 0)
        t->eog[t->eos] = 1;
    if (t->eot >= 0)
        t->eog[t->eot] = 1;
    if (t->eom >= 0)
        t->eog[t->eom] = 1;

    /* Gemma 4 style vocabularies: "</s>" is ordinary text there */
    int32_t tool_resp = find_cstr(t, "<|tool_response>"), eos_s = find_cstr(t, "</s>");
    if (tool_resp >= 0 && eos_s >= 0 && t->eog[tool_resp] && t->eog[eos_s]) {
        t->eog[eos_s] = 0;
        t->attr[eos_s] = TOK_ATTR_NORMAL;
    }

    /* harmony-style vocabularies: "<|end|>" ends a message, not generation */
    int32_t end = find_cstr(t, "<|end|>");
    if (end >= 0 && t->eog[end]) {
        int32_t ret = find_cstr(t, "<|return|>"), call = find_cstr(t, "<|call|>");
        int32_t calls = find_cstr(t, "<|calls|>"), flush = find_cstr(t, "<|flush|>");
        bool has_call = (call >= 0 && t->eog[call]) || (calls >= 0 && t->eog[calls]);
        bool has_ret = ret >= 0 && t->eog[ret];
        bool has_flush = flush >= 0 && t->eog[flush];
        if ((has_ret && has_call) || (has_call && has_flush)) {
            t->eog[end] = 0;
            t->attr[end] = TOK_ATTR_USER_DEFINED;
        }
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : (x > y);
}

static int build_special(bl_tok_t *t)
{
    const uint16_t want = TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN;
    uint32_t n = 0;
    for (uint32_t id = 0; id < t->n_vocab; id++)
        if (t->attr[id] & want)
            n++;
    t->special = malloc((n ? n : 1) * sizeof(*t->special));
    uint64_t *keys = malloc((n ? n : 1) * sizeof(*keys));
    if (!t->special || !keys) {
        free(keys);
        return BL_ENOMEM;
    }
    /* key: longest text first, then lowest id (a total order, so stable) */
    n = 0;
    for (uint32_t id = 0; id < t->n_vocab; id++)
        if (t->attr[id] & want)
            keys[n++] = ((uint64_t)(UINT32_MAX - t->text_len[id]) << 32) | id;
    qsort(keys, n, sizeof(*keys), cmp_u64);
    for (uint32_t i = 0; i < n; i++)
        t->special[i] = (int32_t)(keys[i] & 0xffffffffu);
    t->n_special = n;
    free(keys);
    return 0;
}

/* Pieces with special=true, as llama.cpp's token-to-piece cache. */
static int build_pieces(bl_tok_t *t)
{
    size_t total = 0;
    for (uint32_t id = 0; id < t->n_vocab; id++)
        total += t->text_len[id]; /* unescaping only shrinks */
    t->piece = malloc(total ? total : 1);
    t->piece_off = malloc((size_t)t->n_vocab * sizeof(uint32_t));
    t->piece_len = malloc((size_t)t->n_vocab * sizeof(uint32_t));
    if (!t->piece || !t->piece_off || !t->piece_len)
        return BL_ENOMEM;
    size_t pos = 0;
    for (uint32_t id = 0; id < t->n_vocab; id++) {
        const char *src = t->text + t->text_off[id];
        size_t n = t->text_len[id];
        uint16_t a = t->attr[id];
        char *dst = t->piece + pos;
        size_t m = 0;
        if (a & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED)) {
            memcpy(dst, src, n);
            m = n;
        } else if ((a & TOK_ATTR_NORMAL) && t->kind == BL_TOK_KIND_BPE) {
            m = bl_tok_bpe_decode(src, n, dst);
        } else if (a & TOK_ATTR_NORMAL) {
            for (size_t i = 0; i < n;) {
                if (i + 3 <= n && memcmp(src + i, "\xe2\x96\x81", 3) == 0) {
                    dst[m++] = ' ';
                    i += 3;
                } else {
                    dst[m++] = src[i++];
                }
            }
        } else if (a & TOK_ATTR_BYTE) {
            if (n > 0) {
                dst[0] = (char)byte_of_token(t, id);
                m = 1;
            }
        }
        t->piece_off[id] = (uint32_t)pos;
        t->piece_len[id] = (uint32_t)m;
        pos += m;
    }
    return 0;
}

static bool name_has(const char *name, size_t n, const char *what)
{
    size_t w = strlen(what);
    for (size_t i = 0; i + w <= n; i++) {
        size_t k = 0;
        while (k < w && tolower((unsigned char)name[i + k]) == what[k])
            k++;
        if (k == w)
            return true;
    }
    return false;
}

/* Per-model strip attributes llama.cpp sets by name (GGUF does not store them). */
static void set_strip_attrs(bl_tok_t *t, const bl_gguf_t *g)
{
    bl_gguf_str_t name;
    if (bl_gguf_get_str(g, "general.name", &name) != 0)
        return;
    if (!name_has(name.p, name.n, "phi-3") && !name_has(name.p, name.n, "phi3"))
        return;
    for (uint32_t i = 0; i < t->n_special; i++)
        t->attr[t->special[i]] |= TOK_ATTR_RSTRIP;
    int32_t id = find_cstr(t, "</s>");
    if (id >= 0)
        t->attr[id] |= TOK_ATTR_RSTRIP;
    static const char *const keep[] = {"<unk>", "<s>", "<|endoftext|>"};
    for (size_t i = 0; i < 3; i++) {
        id = find_cstr(t, keep[i]);
        if (id >= 0)
            t->attr[id] &= (uint16_t)~TOK_ATTR_RSTRIP;
    }
}

static int load_tokens(bl_tok_t *t, const bl_gguf_t *g, const bl_gguf_kv_t *kv, char *err,
                       size_t errlen)
{
    uint32_t n = t->n_vocab;
    size_t total = 0;
    char tmp[32];
    for (uint32_t i = 0; i < n; i++) {
        bl_gguf_str_t s;
        int rc = bl_gguf_arr_str(g, kv, i, &s);
        if (rc != 0) {
            seterr(err, errlen, "tokenizer.ggml.tokens[%u]: cannot read string", i);
            return rc;
        }
        total += s.n ? s.n : (size_t)snprintf(tmp, sizeof(tmp), "[EMPTY_%u]", i);
        if (total >= UINT32_MAX) {
            seterr(err, errlen, "tokenizer.ggml.tokens: token text exceeds 4 GiB");
            return BL_ERANGE;
        }
    }
    t->text = malloc(total ? total : 1);
    if (!t->text)
        return BL_ENOMEM;
    size_t pos = 0;
    for (uint32_t i = 0; i < n; i++) {
        bl_gguf_str_t s;
        bl_gguf_arr_str(g, kv, i, &s);
        size_t len = s.n;
        if (len == 0) {
            /* llama.cpp names empty tokens so they stay unique */
            len = (size_t)snprintf(tmp, sizeof(tmp), "[EMPTY_%u]", i);
            memcpy(t->text + pos, tmp, len);
        } else {
            memcpy(t->text + pos, s.p, len);
        }
        t->text_off[i] = (uint32_t)pos;
        t->text_len[i] = (uint32_t)len;
        if (len > t->max_token_len)
            t->max_token_len = (uint32_t)len;
        pos += len;
    }
    return 0;
}

int bl_tok_from_gguf(const bl_gguf_t *g, bl_tok_t **out, char *err, size_t errlen)
{
    int rc = 0;
    bl_tok_t *t = NULL;
    const bl_gguf_kv_t *kv, *scores, *types;
    bl_gguf_str_t model;

    if (!g || !out)
        return BL_EINVAL;
    *out = NULL;
    rc = bl_gguf_get_str(g, "tokenizer.ggml.model", &model);
    if (rc != 0) {
        seterr(err, errlen, "tokenizer.ggml.model: %s",
               rc == BL_ENOENT ? "missing" : "not a string");
        return rc == BL_ENOENT ? BL_ENOENT : BL_EFORMAT;
    }
    bl_tok_kind_t kind;
    if (model.n == 5 && memcmp(model.p, "llama", 5) == 0) {
        kind = BL_TOK_KIND_SPM;
    } else if (model.n == 4 && memcmp(model.p, "gpt2", 4) == 0) {
        kind = BL_TOK_KIND_BPE;
    } else {
        seterr(err, errlen,
               "tokenizer.ggml.model '%.*s' is not supported (only 'llama' and 'gpt2')",
               (int)(model.n > 64 ? 64 : model.n), model.p);
        return BL_EUNSUPPORTED;
    }
    kv = bl_gguf_find(g, "tokenizer.ggml.tokens");
    if (!kv) {
        seterr(err, errlen, "tokenizer.ggml.tokens: missing");
        return BL_ENOENT;
    }
    if (kv->type != BL_GGUF_ARRAY || kv->arr_type != BL_GGUF_STRING) {
        seterr(err, errlen, "tokenizer.ggml.tokens: expected an array of strings");
        return BL_EFORMAT;
    }
    if (kv->arr_n == 0 || kv->arr_n >= INT32_MAX) {
        seterr(err, errlen, "tokenizer.ggml.tokens: %llu tokens is out of range",
               (unsigned long long)kv->arr_n);
        return BL_ERANGE;
    }

    t = calloc(1, sizeof(*t));
    if (!t)
        return BL_ENOMEM;
    t->kind = kind;
    t->n_vocab = (uint32_t)kv->arr_n;
    uint32_t n = t->n_vocab;
    uint32_t hcap = 1;
    while (hcap < 2 * n)
        hcap <<= 1;
    t->hash_mask = hcap - 1;
    t->text_off = malloc((size_t)n * sizeof(uint32_t));
    t->text_len = malloc((size_t)n * sizeof(uint32_t));
    t->score = malloc((size_t)n * sizeof(float));
    t->type = malloc(n);
    t->attr = malloc((size_t)n * sizeof(uint16_t));
    t->eog = calloc(n, 1);
    t->hash = calloc(hcap, sizeof(uint32_t));
    if (!t->text_off || !t->text_len || !t->score || !t->type || !t->attr || !t->eog || !t->hash) {
        rc = BL_ENOMEM;
        goto done;
    }
    rc = load_tokens(t, g, kv, err, errlen);
    if (rc != 0)
        goto done;

    rc = read_arr(g, "tokenizer.ggml.scores", n, BL_GGUF_F32, BL_GGUF_I32, &scores, err, errlen);
    if (rc != 0)
        goto done;
    rc = read_arr(g, "tokenizer.ggml.token_type", n, BL_GGUF_I32, BL_GGUF_I32, &types, err, errlen);
    if (rc != 0)
        goto done;
    for (uint32_t i = 0; i < n; i++) {
        float s = 0.0f;
        int32_t ty = BL_TOKTYPE_NORMAL;
        if (scores && scores->arr_type == BL_GGUF_F32) {
            memcpy(&s, (const char *)scores->arr_data + 4 * (size_t)i, 4);
        } else if (scores) {
            int32_t si;
            memcpy(&si, (const char *)scores->arr_data + 4 * (size_t)i, 4);
            s = (float)si;
        }
        if (types)
            memcpy(&ty, (const char *)types->arr_data + 4 * (size_t)i, 4);
        t->score[i] = s;
        t->type[i] = (uint8_t)(ty >= 0 && ty <= 6 ? ty : 0);
        t->attr[i] = types ? attr_of_type(ty) : TOK_ATTR_NORMAL;
        int32_t dup = hash_insert(t, i);
        if (dup >= 0) {
            seterr(err, errlen, "tokenizer.ggml.tokens: duplicate token '%.*s' at ids %d and %u",
                   (int)(t->text_len[i] > 64 ? 64 : t->text_len[i]), t->text + t->text_off[i], dup,
                   i);
            rc = BL_EFORMAT;
            goto done;
        }
    }

    for (int b = 0; b < 256; b++) {
        char buf[8];
        snprintf(buf, sizeof(buf), "<0x%02X>", b);
        t->byte_tok[b] = find_cstr(t, buf);
        if (t->byte_tok[b] < 0) {
            /* llama.cpp falls back to a token that is the byte itself */
            char c = (char)b;
            t->byte_tok[b] = bl_tok_lookup(t, &c, 1);
        }
    }

    /* SentencePiece defaults (llama.cpp): BOS 1, EOS 2, UNK 0, add BOS, no EOS,
     * add a space prefix; a default outside the vocabulary is dropped. */
    t->bos = n > 1 ? 1 : -1;
    t->eos = n > 2 ? 2 : -1;
    t->unk = 0;
    t->eot = t->eom = t->pad = t->sep = -1;
    t->add_bos = true;
    t->add_eos = false;
    t->add_space_prefix = true;
    if (kind == BL_TOK_KIND_BPE) {
        /* byte-level BPE defaults (llama.cpp): BOS = EOS = 11, no UNK, no
         * space prefix, no BOS unless the pre-tokenizer is Llama 3 style */
        t->bos = t->eos = n > 11 ? 11 : -1;
        t->unk = -1;
        t->add_bos = false;
        t->add_space_prefix = false;
        if ((rc = bl_tok_bpe_load(t, g, err, errlen)) != 0)
            goto done;
    }
    static const struct {
        const char *key;
        size_t off;
        bool strict; /* generation depends on it */
    } ids[] = {
        {"tokenizer.ggml.bos_token_id", offsetof(bl_tok_t, bos), true},
        {"tokenizer.ggml.eos_token_id", offsetof(bl_tok_t, eos), true},
        {"tokenizer.ggml.eot_token_id", offsetof(bl_tok_t, eot), true},
        {"tokenizer.ggml.eom_token_id", offsetof(bl_tok_t, eom), true},
        {"tokenizer.ggml.unknown_token_id", offsetof(bl_tok_t, unk), false},
        {"tokenizer.ggml.seperator_token_id", offsetof(bl_tok_t, sep), false}, /* sic */
        {"tokenizer.ggml.padding_token_id", offsetof(bl_tok_t, pad), false},
    };
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        rc = read_id(g, ids[i].key, n, ids[i].strict, (bl_token_t *)((char *)t + ids[i].off), err,
                     errlen);
        if (rc != 0)
            goto done;
    }
    if ((rc = read_flag(g, "tokenizer.ggml.add_bos_token", &t->add_bos, err, errlen)) != 0 ||
        (rc = read_flag(g, "tokenizer.ggml.add_eos_token", &t->add_eos, err, errlen)) != 0 ||
        (rc = read_flag(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, err, errlen)) !=
            0)
        goto done;
    if (t->add_bos && t->bos < 0) {
        seterr(err, errlen,
               "tokenizer.ggml.add_bos_token is true, but "
               "tokenizer.ggml.bos_token_id is not set");
        rc = BL_EFORMAT;
        goto done;
    }
    if (t->add_eos && t->eos < 0) {
        seterr(err, errlen,
               "tokenizer.ggml.add_eos_token is true, but "
               "tokenizer.ggml.eos_token_id is not set");
        rc = BL_EFORMAT;
        goto done;
    }

    detect_special(t);
    if ((rc = build_special(t)) != 0 || (rc = build_pieces(t)) != 0)
        goto done;
    set_strip_attrs(t, g);

done:
    if (rc != 0) {
        if (rc == BL_ENOMEM)
            seterr(err, errlen, "tokenizer: out of memory");
        bl_tok_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void bl_tok_free(bl_tok_t *t)
{
    if (!t)
        return;
    free(t->text);
    free(t->text_off);
    free(t->text_len);
    free(t->piece);
    free(t->piece_off);
    free(t->piece_len);
    free(t->score);
    free(t->type);
    free(t->attr);
    free(t->eog);
    free(t->hash);
    free(t->special);
    free(t->merges);
    free(t);
}

uint32_t bl_tok_n_vocab(const bl_tok_t *t)
{
    return t->n_vocab;
}

bl_token_t bl_tok_bos(const bl_tok_t *t)
{
    return t->bos;
}

bl_token_t bl_tok_eos(const bl_tok_t *t)
{
    return t->eos;
}

bl_token_t bl_tok_eot(const bl_tok_t *t)
{
    return t->eot;
}

bl_token_t bl_tok_unk(const bl_tok_t *t)
{
    return t->unk;
}

bool bl_tok_add_bos(const bl_tok_t *t)
{
    return t->add_bos;
}

bool bl_tok_is_eog(const bl_tok_t *t, bl_token_t id)
{
    return id >= 0 && (uint32_t)id < t->n_vocab && t->eog[id];
}

bool bl_tok_is_control(const bl_tok_t *t, bl_token_t id)
{
    return id >= 0 && (uint32_t)id < t->n_vocab &&
           (t->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN));
}

const char *bl_tok_text(const bl_tok_t *t, bl_token_t id, size_t *len)
{
    if (id < 0 || (uint32_t)id >= t->n_vocab)
        return NULL;
    if (len)
        *len = t->text_len[id];
    return t->text + t->text_off[id];
}

bl_token_t bl_tok_find(const bl_tok_t *t, const char *p, size_t n)
{
    return p ? bl_tok_lookup(t, p, n) : -1;
}

int bl_tok_piece_ref(const bl_tok_t *t, bl_token_t id, bool special, const char **p, size_t *n)
{
    if (!t || id < 0 || (uint32_t)id >= t->n_vocab)
        return BL_EINVAL;
    *p = t->piece + t->piece_off[id];
    *n = t->piece_len[id];
    if (!special && (t->attr[id] & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL)))
        *n = 0;
    return 0;
}

int bl_tok_piece(const bl_tok_t *t, bl_token_t id, bool special, char *buf, size_t cap)
{
    const char *p;
    size_t n;
    int rc = bl_tok_piece_ref(t, id, special, &p, &n);
    if (rc != 0)
        return rc;
    if (n > cap || (n > 0 && !buf))
        return BL_ERANGE;
    if (n)
        memcpy(buf, p, n);
    return (int)n;
}
