/*
 * Byte-level BPE tokenizer against llama.cpp: its own test vectors for the
 * Llama 3 (llama-bpe), Qwen2, GPT-2 and Qwen3.5 vocabularies (ids with
 * add_special=false, and the pieces spelling the input back), hard strings of
 * our own (round trip, splitting at special tokens, known word splits), BOS
 * and end-of-generation rules per pre-tokenizer, long inputs, and load-time
 * errors for unknown pre-tokenizers and missing merges.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "test_files.h"

#include "engine/gguf/gguf.h"
#include "engine/tokenizer/tok_internal.h"
#include "engine/tokenizer/tokenizer.h"

#define SEP "\n__ggml_vocab_test__\n"

typedef struct {
    bl_gguf_t *g;
    bl_tok_t *t;
} vocab_t;

static void vocab_open(vocab_t *v, const char *name)
{
    char err[256] = "", rel[128];
    snprintf(rel, sizeof rel, "models/vocab/ggml-vocab-%s.gguf", name);
    char *path = path_in_shared(rel);
    int rc = bl_gguf_open(path, &v->g, err, sizeof err);
    if (rc != 0)
        fail_msg("%s: %s", path, err);
    rc = bl_tok_from_gguf(v->g, &v->t, err, sizeof err);
    if (rc != 0)
        fail_msg("%s: tokenizer: %s", path, err);
    free(path);
}

static void vocab_close(vocab_t *v)
{
    bl_tok_free(v->t);
    bl_gguf_close(v->g);
}

static size_t encode(const bl_tok_t *t, const char *s, size_t n, bool add_special,
                     bool parse_special, bl_token_t *out, size_t cap)
{
    size_t n_out = 0;
    int rc = bl_tok_encode(t, s, n, add_special, parse_special, out, cap, &n_out);
    assert_int_equal(rc, 0);
    return n_out;
}

/* Concatenated pieces (special=true, so control tokens show) of ids. */
static size_t detok_all(const bl_tok_t *t, const bl_token_t *ids, size_t n, char *out, size_t cap)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        int k = bl_tok_piece(t, ids[i], true, out + len, cap - len);
        assert_true(k >= 0);
        len += (size_t)k;
    }
    return len;
}

/* Encode without special parsing, decode, and expect the input back. */
static void check_round_trip(const bl_tok_t *t, const char *s, size_t n)
{
    bl_token_t *ids = malloc((n + 8) * sizeof(*ids));
    char *back = malloc(4 * n + 64);
    size_t k = encode(t, s, n, false, false, ids, n + 8);
    assert_true(k <= n);
    size_t m = detok_all(t, ids, k, back, 4 * n + 64);
    if (m != n || memcmp(back, s, n) != 0)
        fail_msg("round trip failed for %zu-byte input '%.40s'", n, s);
    free(ids);
    free(back);
}

/* Runs llama.cpp's vectors (add_special=false); returns how many match. */
static int run_vectors(const char *name, int *n_total)
{
    vocab_t v;
    vocab_open(&v, name);
    char rel[128];
    snprintf(rel, sizeof rel, "models/vocab/ggml-vocab-%s.gguf.inp", name);
    char *inp_path = path_in_shared(rel);
    snprintf(rel, sizeof rel, "models/vocab/ggml-vocab-%s.gguf.out", name);
    char *out_path = path_in_shared(rel);
    size_t inp_len, out_len;
    char *inp = slurp(inp_path, &inp_len);
    char *outs = slurp(out_path, &out_len);
    bl_token_t *ids = malloc(65536 * sizeof(*ids));
    char *round = malloc(65536);
    int pass = 0, total = 0;

    char *p = inp, *line = outs;
    while (p < inp + inp_len) {
        char *sep = strstr(p, SEP);
        size_t n = sep ? (size_t)(sep - p) : (size_t)(inp + inp_len - p);
        if (!sep && n == 0)
            break; /* the file ends with a separator */
        char *eol = strchr(line, '\n');
        assert_non_null(eol);
        *eol = 0;

        bl_token_t want[4096];
        size_t n_want = 0;
        for (char *q = line; *q && n_want < 4096;) {
            char *end;
            long id = strtol(q, &end, 10);
            if (end == q)
                break;
            want[n_want++] = (bl_token_t)id;
            q = end;
        }
        size_t n_got = encode(v.t, p, n, false, false, ids, 65536);
        bool ok = n_got == n_want && memcmp(ids, want, n_want * sizeof(*ids)) == 0;
        if (ok) {
            pass++;
        } else {
            fprintf(stderr, "%s vector %d mismatch: want %zu ids, got %zu:", name, total, n_want,
                    n_got);
            for (size_t i = 0; i < n_got && i < 40; i++)
                fprintf(stderr, " %d", ids[i]);
            fprintf(stderr, "\n  want: %s\n", line);
        }
        /* byte-level BPE loses nothing: the pieces spell the input */
        size_t len = detok_all(v.t, ids, n_got, round, 65536);
        assert_int_equal(len, n);
        assert_memory_equal(round, p, n);
        total++;
        line = eol + 1;
        if (!sep)
            break;
        p = sep + strlen(SEP);
    }
    free(ids);
    free(round);
    free(inp);
    free(outs);
    free(inp_path);
    free(out_path);
    vocab_close(&v);
    *n_total = total;
    return pass;
}

static void vectors_llama_bpe(void **state)
{
    (void)state;
    int total, pass = run_vectors("llama-bpe", &total);
    printf("llama-bpe vectors: %d/%d\n", pass, total);
    assert_int_equal(total, 46);
    assert_int_equal(pass, 46);
}

static void vectors_qwen2(void **state)
{
    (void)state;
    int total, pass = run_vectors("qwen2", &total);
    printf("qwen2 vectors: %d/%d\n", pass, total);
    assert_int_equal(total, 46);
    assert_int_equal(pass, 46);
}

static void vectors_gpt2(void **state)
{
    (void)state;
    int total, pass = run_vectors("gpt-2", &total);
    printf("gpt-2 vectors: %d/%d\n", pass, total);
    assert_int_equal(total, 46);
    assert_int_equal(pass, 46);
}

static void vectors_qwen35(void **state)
{
    (void)state;
    int total, pass = run_vectors("qwen35", &total);
    printf("qwen35 vectors: %d/%d\n", pass, total);
    assert_int_equal(pass, total);
}

static bl_token_t must_find(const bl_tok_t *t, const char *text)
{
    bl_token_t id = bl_tok_find(t, text, strlen(text));
    if (id < 0)
        fail_msg("token '%s' is not in the vocabulary", text);
    return id;
}

/* ids equal the tokens spelled (vocabulary form, "Ġ" for a space) in want[] */
static void check_split(const bl_tok_t *t, const char *s, const char *const *want, size_t n_want)
{
    bl_token_t ids[64];
    size_t n = encode(t, s, strlen(s), false, false, ids, 64);
    if (n != n_want)
        fail_msg("'%s': %zu tokens, want %zu", s, n, n_want);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ids[i], must_find(t, want[i]));
}

static const char *const hard[] = {
    "",
    " ",
    "\t\t  \n\n\r\n  \n",
    "     leading and trailing spaces     ",
    "1234567 12 3 00000000000000000000 3.14159 -42 1e10",
    "I'm you'll they'RE we've he'd she's IT'S don't 'tis",
    "\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c\xe3\x80\x82 "
    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83"
    "\x88",
    "emoji \xf0\x9f\x98\x80\xf0\x9f\x9a\x80 family \xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9"
    "\xe2\x80\x8d\xf0\x9f\x91\xa7 flag \xf0\x9f\x87\xa9\xf0\x9f\x87\xaa",
    "int main(void)\n{\n\tif (x != 0 && y <= 3)\n\t\treturn -1;\n    // done\r\n}\n",
    "mixed: \xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xce\xb3\xce\xb5\xce\xb9\xce\xac "
    "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 \xe0\xa4\xa8\xe0\xa4\xae\xe0\xa4\xb8\xe0\xa5\x8d"
    "\xe0\xa4\xa4\xe0\xa5\x87 caf\xc3\xa9 e\xcc\x81",
    "nbsp\xc2\xa0"
    "and\xe3\x80\x80ideographic\xe2\x80\x83"
    "em space",
    "invalid \xff\xfe bytes \xc3 cut \xe2\x82 and \x80 lone",
    "controls \x01\x02\x7f\x1b[0m",
    "<|im_start|> <|eot_id|> <|endoftext|> written as plain text",
};

static void hard_strings_round_trip(void **state)
{
    (void)state;
    static const char *const names[] = {"llama-bpe", "qwen2", "gpt-2", "qwen35"};
    for (size_t v = 0; v < 4; v++) {
        vocab_t voc;
        vocab_open(&voc, names[v]);
        for (size_t i = 0; i < sizeof(hard) / sizeof(hard[0]); i++)
            check_round_trip(voc.t, hard[i], strlen(hard[i]));
        vocab_close(&voc);
    }
}

static void known_word_splits(void **state)
{
    (void)state;
    vocab_t v;
    vocab_open(&v, "llama-bpe");
    /* \p{N}{1,3}: digits go in threes */
    check_split(v.t, "1234567", (const char *const[]){"123", "456", "7"}, 3);
    /* case-insensitive contractions split off */
    check_split(v.t, "I'm you'll", (const char *const[]){"I", "'m", "\xc4\xa0you", "'ll"}, 4);
    check_split(v.t, "IT'S", (const char *const[]){"IT", "'S"}, 2);
    /* the last space of a run prefixes the next word */
    check_split(v.t, "a   b",
                (const char *const[]){"a", "\xc4\xa0\xc4\xa0",
                                      "\xc4\xa0"
                                      "b"},
                3);
    vocab_close(&v);

    vocab_open(&v, "qwen2");
    check_split(v.t, "1234567", (const char *const[]){"1", "2", "3", "4", "5", "6", "7"}, 7);
    check_split(v.t, "I'm you'll", (const char *const[]){"I", "'m", "\xc4\xa0you", "'ll"}, 4);
    vocab_close(&v);

    vocab_open(&v, "gpt-2");
    /* gpt-2: ' ?\p{N}+' keeps a digit run whole, contractions are lower case only */
    bl_token_t ids[16];
    size_t n = encode(v.t, " 2024", 5, false, false, ids, 16);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], must_find(v.t, "\xc4\xa0"
                                            "2024"));
    check_split(v.t, "IT'S", (const char *const[]){"IT", "'", "S"}, 3);
    vocab_close(&v);
}

/* Tokens of a + special + b with parse_special equal the tokens of a, the
 * special id, and the tokens of b: the partition comes before everything. */
static void check_special_split(const bl_tok_t *t, const char *a, const char *special,
                                const char *b)
{
    char text[512];
    bl_token_t whole[256], part[256];
    snprintf(text, sizeof text, "%s%s%s", a, special, b);
    size_t n = encode(t, text, strlen(text), false, true, whole, 256);
    size_t na = encode(t, a, strlen(a), false, true, part, 256);
    part[na] = must_find(t, special);
    size_t nb = encode(t, b, strlen(b), false, true, part + na + 1, 256 - na - 1);
    assert_int_equal(n, na + 1 + nb);
    assert_memory_equal(whole, part, n * sizeof(*whole));
    /* without parse_special the marker is text, and the text round-trips */
    n = encode(t, text, strlen(text), false, false, whole, 256);
    for (size_t i = 0; i < n; i++)
        assert_int_not_equal(whole[i], must_find(t, special));
    check_round_trip(t, text, strlen(text));
}

static void special_tokens_split_first(void **state)
{
    (void)state;
    vocab_t v;
    vocab_open(&v, "llama-bpe");
    check_special_split(v.t, "Hello  ", "<|eot_id|>", "  world 123");
    check_special_split(v.t, "", "<|begin_of_text|>", "I'm\n\n");
    check_special_split(v.t, "x=1;\n", "<|start_header_id|>", "user");
    vocab_close(&v);
    vocab_open(&v, "qwen2");
    check_special_split(v.t, "system\n", "<|im_end|>", "\n");
    check_special_split(v.t, "\xe4\xbd\xa0\xe5\xa5\xbd", "<|im_start|>",
                        "assistant\n\xf0\x9f\x98\x80");
    vocab_close(&v);
}

static void bos_and_end_of_generation(void **state)
{
    (void)state;
    bl_token_t ids[16];
    size_t n;
    vocab_t v;

    vocab_open(&v, "llama-bpe");
    bl_token_t bot = must_find(v.t, "<|begin_of_text|>");
    assert_true(bl_tok_add_bos(v.t));
    assert_int_equal(bl_tok_bos(v.t), bot);
    n = encode(v.t, "Hi", 2, true, false, ids, 16);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], bot);
    assert_true(bl_tok_is_eog(v.t, must_find(v.t, "<|eot_id|>")));
    assert_true(bl_tok_is_eog(v.t, must_find(v.t, "<|end_of_text|>")));
    assert_false(bl_tok_is_eog(v.t, bot));
    assert_false(bl_tok_is_eog(v.t, ids[1]));
    /* control tokens print nothing unless asked for */
    char buf[32];
    assert_int_equal(bl_tok_piece(v.t, bot, false, buf, sizeof buf), 0);
    assert_int_equal(bl_tok_piece(v.t, bot, true, buf, sizeof buf), 17);
    assert_memory_equal(buf, "<|begin_of_text|>", 17);
    vocab_close(&v);

    vocab_open(&v, "qwen2");
    assert_false(bl_tok_add_bos(v.t));
    n = encode(v.t, "Hi", 2, true, false, ids, 16);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], must_find(v.t, "Hi"));
    assert_true(bl_tok_is_eog(v.t, must_find(v.t, "<|im_end|>")));
    assert_true(bl_tok_is_eog(v.t, must_find(v.t, "<|endoftext|>")));
    assert_false(bl_tok_is_eog(v.t, must_find(v.t, "<|im_start|>")));
    vocab_close(&v);

    vocab_open(&v, "gpt-2");
    assert_false(bl_tok_add_bos(v.t));
    assert_true(bl_tok_is_eog(v.t, must_find(v.t, "<|endoftext|>")));
    /* byte-level pieces: "Ġworld" decodes to " world", "Ċ" to "\n" */
    int k = bl_tok_piece(v.t, must_find(v.t, "\xc4\xa0world"), false, buf, sizeof buf);
    assert_int_equal(k, 6);
    assert_memory_equal(buf, " world", 6);
    k = bl_tok_piece(v.t, must_find(v.t, "\xc4\x8a"), false, buf, sizeof buf);
    assert_int_equal(k, 1);
    assert_int_equal(buf[0], '\n');
    vocab_close(&v);
}

/* Emoji and CJK split into tokens that end inside a character: the streaming
 * detokenizer holds those bytes back and emits whole characters only. */
static void detok_streams_whole_characters(void **state)
{
    (void)state;
    vocab_t v;
    vocab_open(&v, "llama-bpe");
    const char *s = hard[7];
    bl_token_t ids[128];
    size_t n = encode(v.t, s, strlen(s), false, false, ids, 128);
    char out[512];
    size_t len = 0;
    bool held = false;
    bl_detok_t d;
    bl_detok_init(&d);
    for (size_t i = 0; i < n; i++) {
        const char *p;
        size_t pn;
        assert_int_equal(bl_tok_piece_ref(v.t, ids[i], false, &p, &pn), 0);
        int k = bl_tok_detok_push(&d, v.t, ids[i], out + len, sizeof out - len);
        assert_true(k >= 0);
        held |= (size_t)k < pn;
        len += (size_t)k;
    }
    assert_true(held); /* some token ended mid-character */
    assert_int_equal(bl_detok_flush(&d, out + len, sizeof out - len), 0);
    assert_int_equal(len, strlen(s));
    assert_memory_equal(out, s, len);
    vocab_close(&v);
}

static void long_inputs(void **state)
{
    (void)state;
    const size_t n = 100 * 1024;
    char *s = malloc(n);
    vocab_t v;
    vocab_open(&v, "llama-bpe");
    /* one 100 KB word: the merge heap, not a quadratic scan */
    memset(s, 'a', n);
    check_round_trip(v.t, s, n);
    /* 100 KB of digits and of punctuation: single long pre-tokenizer runs */
    for (size_t i = 0; i < n; i++)
        s[i] = (char)('0' + i % 10);
    check_round_trip(v.t, s, n);
    memset(s, '=', n);
    check_round_trip(v.t, s, n);
    /* 100 KB of the hard strings */
    size_t len = 0;
    for (size_t i = 0; len < n; i = (i + 1) % (sizeof(hard) / sizeof(hard[0]))) {
        size_t k = strlen(hard[i]);
        if (k > n - len)
            k = n - len;
        memcpy(s + len, hard[i], k);
        len += k;
    }
    check_round_trip(v.t, s, n);
    vocab_close(&v);
    vocab_open(&v, "qwen2");
    check_round_trip(v.t, s, n);
    vocab_close(&v);
    free(s);
}

/* Random bytes (mostly invalid UTF-8, every control byte) come back exactly. */
static void random_bytes_round_trip(void **state)
{
    (void)state;
    static const char *const names[] = {"llama-bpe", "qwen2", "gpt-2"};
    uint64_t x = 0x9E3779B97F4A7C15ull;
    char buf[300];
    for (size_t v = 0; v < 3; v++) {
        vocab_t voc;
        vocab_open(&voc, names[v]);
        for (int it = 0; it < 200; it++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            size_t n = (size_t)(x >> 33) % sizeof buf;
            for (size_t i = 0; i < n; i++) {
                x = x * 6364136223846793005ull + 1442695040888963407ull;
                /* half ASCII so words form, half anything */
                buf[i] = (char)((x >> 40) & 1 ? (x >> 48) & 0x7F : (x >> 48) & 0xFF);
            }
            check_round_trip(voc.t, buf, n);
        }
        vocab_close(&voc);
    }
}

/* The word splits of the patterns run in sequence, checked against the
 * regexes (Python `regex`) for these strings. */
static void pretokenizer_sequences(void **state)
{
    (void)state;
    uint32_t ends[64];
    size_t n;
    const char *s = "Hello, world!! 12345 $x+=1;";
    /* default: ['Hello', ',', ' world', '!!', ' ', '123', '45', ' ', '$', 'x', '+=', '1', ';'] */
    static const uint32_t want_default[] = {5, 6, 12, 14, 15, 18, 20, 21, 22, 23, 25, 26, 27};
    assert_int_equal(bl_tok_pretokenize(BL_PRE_DEFAULT, s, strlen(s), ends, &n), 0);
    assert_int_equal(n, 13);
    assert_memory_equal(ends, want_default, sizeof want_default);
    /* smollm: [.., ' ', '1', '2', '3', '4', '5', ' $', 'x', '+=', '1', ';'] */
    static const uint32_t want_smollm[] = {5,  6,  12, 14, 15, 16, 17, 18,
                                           19, 20, 22, 23, 25, 26, 27};
    assert_int_equal(bl_tok_pretokenize(BL_PRE_SMOLLM, s, strlen(s), ends, &n), 0);
    assert_int_equal(n, 15);
    assert_memory_equal(ends, want_smollm, sizeof want_smollm);
    /* falcon: ['a', '`', 'b', '+=', 'c', ' ', '123', '45', '!'] */
    static const uint32_t want_falcon[] = {1, 2, 3, 5, 6, 7, 10, 12, 13};
    assert_int_equal(bl_tok_pretokenize(BL_PRE_FALCON, "a`b+=c 12345!", 13, ends, &n), 0);
    assert_int_equal(n, 9);
    assert_memory_equal(ends, want_falcon, sizeof want_falcon);
    assert_int_equal(bl_tok_pretokenize(BL_PRE_GPT2, "", 0, ends, &n), 0);
    assert_int_equal(n, 0);
}

/* A tiny byte-level vocabulary: 256 byte characters, then "ab", "bc", "Ġab". */
static int load_tiny(const char *pre, bool with_merges, bool reverse_ranks, bl_gguf_t **g,
                     bl_tok_t **t, char *err, size_t errlen)
{
    char path[] = "/tmp/bl_bpe_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    static char chars[256][4];
    const char *toks[260];
    int32_t types[260];
    for (int b = 0; b < 256; b++) {
        uint32_t cp = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE
                          ? (uint32_t)b
                      : b <= 0x20 ? 256u + (uint32_t)b
                      : b <= 0xA0 ? 256u + 33 + (uint32_t)(b - 0x7F)
                                  : 256u + 67;
        if (cp < 0x80) {
            chars[b][0] = (char)cp;
        } else {
            chars[b][0] = (char)(0xC0 | (cp >> 6));
            chars[b][1] = (char)(0x80 | (cp & 0x3F));
        }
        toks[b] = chars[b];
        types[b] = 1;
    }
    toks[256] = "ab";
    toks[257] = "bc";
    toks[258] = "\xc4\xa0"
                "ab";
    toks[259] = "<|end|>";
    types[256] = types[257] = types[258] = 1;
    types[259] = 3;
    const char *merges[] = {"a b", "b c", "\xc4\xa0 ab"};
    if (reverse_ranks) {
        merges[0] = "b c";
        merges[1] = "a b";
    }
    bl_gguf_writer_t *w;
    assert_int_equal(bl_gguf_writer_new(&w), 0);
    assert_int_equal(bl_gguf_w_str(w, "tokenizer.ggml.model", "gpt2"), 0);
    if (pre)
        assert_int_equal(bl_gguf_w_str(w, "tokenizer.ggml.pre", pre), 0);
    assert_int_equal(bl_gguf_w_arr_str(w, "tokenizer.ggml.tokens", toks, 260), 0);
    assert_int_equal(bl_gguf_w_arr(w, "tokenizer.ggml.token_type", BL_GGUF_I32, types, 260), 0);
    if (with_merges)
        assert_int_equal(bl_gguf_w_arr_str(w, "tokenizer.ggml.merges", merges, 3), 0);
    assert_int_equal(bl_gguf_w_u32(w, "tokenizer.ggml.bos_token_id", 259), 0);
    assert_int_equal(bl_gguf_w_u32(w, "tokenizer.ggml.eos_token_id", 259), 0);
    assert_int_equal(bl_gguf_writer_save(w, path, err, errlen), 0);
    bl_gguf_writer_free(w);
    assert_int_equal(bl_gguf_open(path, g, err, errlen), 0);
    unlink(path);
    *t = NULL;
    return bl_tok_from_gguf(*g, t, err, errlen);
}

static void tiny_vocab_rules(void **state)
{
    (void)state;
    char err[256] = "";
    bl_gguf_t *g;
    bl_tok_t *t;
    bl_token_t ids[16];
    size_t n;

    /* missing pre-tokenizer: llama.cpp's default, no BOS */
    assert_int_equal(load_tiny(NULL, true, false, &g, &t, err, sizeof err), 0);
    assert_false(bl_tok_add_bos(t));
    n = encode(t, "abc ab", 6, true, false, ids, 16);
    assert_int_equal(n, 3); /* "ab" ranks before "bc": ab c Ġab */
    assert_int_equal(ids[0], 256);
    assert_int_equal(ids[1], 'c' - 0x21 + 0x21);
    assert_int_equal(ids[2], 258);
    bl_tok_free(t);
    bl_gguf_close(g);

    /* the lower rank wins */
    assert_int_equal(load_tiny("gpt-2", true, true, &g, &t, err, sizeof err), 0);
    n = encode(t, "abc", 3, false, false, ids, 16);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 'a');
    assert_int_equal(ids[1], 257);
    bl_tok_free(t);
    bl_gguf_close(g);

    /* llama-bpe adds BOS by default */
    assert_int_equal(load_tiny("llama-bpe", true, false, &g, &t, err, sizeof err), 0);
    assert_true(bl_tok_add_bos(t));
    n = encode(t, "ab", 2, true, false, ids, 16);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 259);
    assert_int_equal(ids[1], 256);
    assert_true(bl_tok_is_eog(t, 259));
    bl_tok_free(t);
    bl_gguf_close(g);

    /* dbrx shares Llama 3's pattern but not its BOS rule */
    assert_int_equal(load_tiny("dbrx", true, false, &g, &t, err, sizeof err), 0);
    assert_false(bl_tok_add_bos(t));
    bl_tok_free(t);
    bl_gguf_close(g);

    /* an unknown pre-tokenizer is an error naming it */
    err[0] = 0;
    assert_int_equal(load_tiny("no-such-pre", true, false, &g, &t, err, sizeof err),
                     BL_EUNSUPPORTED);
    assert_null(t);
    assert_non_null(strstr(err, "tokenizer.ggml.pre"));
    assert_non_null(strstr(err, "no-such-pre"));
    bl_gguf_close(g);

    err[0] = 0;
    assert_int_equal(load_tiny("gpt-2", false, false, &g, &t, err, sizeof err), BL_ENOENT);
    assert_non_null(strstr(err, "tokenizer.ggml.merges"));
    bl_gguf_close(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(vectors_llama_bpe),
        cmocka_unit_test(vectors_qwen2),
        cmocka_unit_test(vectors_gpt2),
        cmocka_unit_test(vectors_qwen35),
        cmocka_unit_test(hard_strings_round_trip),
        cmocka_unit_test(known_word_splits),
        cmocka_unit_test(special_tokens_split_first),
        cmocka_unit_test(bos_and_end_of_generation),
        cmocka_unit_test(detok_streams_whole_characters),
        cmocka_unit_test(long_inputs),
        cmocka_unit_test(random_bytes_round_trip),
        cmocka_unit_test(pretokenizer_sequences),
        cmocka_unit_test(tiny_vocab_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
