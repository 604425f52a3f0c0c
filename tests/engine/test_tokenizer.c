/*
 * SentencePiece tokenizer against llama.cpp: its own test vectors for the
 * LLaMA and Phi-3 vocabularies, the reference prompts of
 * $BALLAST_SHARED/models/llamacpp-reference.json (ids and piece bytes), the
 * streaming detokenizer, and load-time validation of tokenizer.* keys.
 * Expected outputs are read from the shared files at test time.
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
#include <jansson.h>

#include "test_files.h"

#include "engine/gguf/gguf.h"
#include "engine/tokenizer/tokenizer.h"

#define SEP "\n__ggml_vocab_test__\n"

typedef struct {
    bl_gguf_t *g;
    bl_tok_t *t;
} vocab_t;

static void vocab_open(vocab_t *v, const char *rel)
{
    char err[256] = "";
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

/* Concatenated pieces (special=false) of ids. */
static size_t detok_all(const bl_tok_t *t, const bl_token_t *ids, size_t n, char *out, size_t cap)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        int k = bl_tok_piece(t, ids[i], false, out + len, cap - len);
        assert_true(k >= 0);
        len += (size_t)k;
    }
    return len;
}

/* Runs llama.cpp's vectors (add_special=false); returns how many match. */
static int run_vectors(const char *vocab_rel, const char *inp_rel, const char *out_rel,
                       bool parse_special, int *n_total)
{
    vocab_t v;
    vocab_open(&v, vocab_rel);
    char *inp_path = path_in_shared(inp_rel), *out_path = path_in_shared(out_rel);
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
        for (char *q = line; *q;) {
            char *end;
            long id = strtol(q, &end, 10);
            if (end == q)
                break;
            want[n_want++] = (bl_token_t)id;
            q = end;
        }
        size_t n_got = encode(v.t, p, n, false, parse_special, ids, 65536);
        bool ok = n_got == n_want && memcmp(ids, want, n_want * sizeof(*ids)) == 0;
        if (ok) {
            pass++;
        } else {
            fprintf(stderr, "%s vector %d mismatch: want %zu ids, got %zu:", vocab_rel, total,
                    n_want, n_got);
            for (size_t i = 0; i < n_got && i < 40; i++)
                fprintf(stderr, " %d", ids[i]);
            fprintf(stderr, "\n  want: %s\n", line);
        }
        /* SPM round trip: the pieces spell " " + text */
        if (n > 0) {
            size_t len = detok_all(v.t, ids, n_got, round, 65536);
            assert_int_equal(len, n + 1);
            assert_int_equal(round[0], ' ');
            assert_memory_equal(round + 1, p, n);
        }
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

static void llama_spm_vectors(void **state)
{
    int total, pass;
    pass = run_vectors("models/llama-2-tiny-random.gguf", "models/ggml-vocab-llama-spm.gguf.inp",
                       "models/ggml-vocab-llama-spm.gguf.out", false, &total);
    printf("llama-spm vectors: %d/%d\n", pass, total);
    assert_int_equal(total, 46);
    assert_int_equal(pass, 46);
    /* llama.cpp gives the same ids with parse_special on these inputs */
    pass = run_vectors("models/llama-2-tiny-random.gguf", "models/ggml-vocab-llama-spm.gguf.inp",
                       "models/ggml-vocab-llama-spm.gguf.out", true, &total);
    assert_int_equal(pass, 46);
}

static void phi3_vectors(void **state)
{
    int total;
    int pass =
        run_vectors("models/vocab/ggml-vocab-phi-3.gguf", "models/vocab/ggml-vocab-phi-3.gguf.inp",
                    "models/vocab/ggml-vocab-phi-3.gguf.out", false, &total);
    printf("phi-3 vectors: %d/%d\n", pass, total);
    assert_int_equal(total, 46);
    assert_int_equal(pass, 46);
}

/* Phi-3's chat markers: control tokens split out with parse_special, and
 * (llama.cpp sets this for Phi-3 by name) the whitespace after them dropped. */
static void phi3_chat_markers(void **state)
{
    vocab_t v;
    vocab_open(&v, "models/vocab/ggml-vocab-phi-3.gguf");
    bl_token_t user = bl_tok_find(v.t, "<|user|>", 8), end = bl_tok_find(v.t, "<|end|>", 7);
    bl_token_t asst = bl_tok_find(v.t, "<|assistant|>", 13);
    bl_token_t hello = bl_tok_find(v.t,
                                   "\xe2\x96\x81"
                                   "Hello",
                                   8);
    assert_true(user >= 0 && end >= 0 && asst >= 0 && hello >= 0);
    assert_true(bl_tok_is_eog(v.t, end));
    assert_true(bl_tok_is_eog(v.t, bl_tok_eos(v.t)));
    assert_false(bl_tok_is_eog(v.t, user));
    const char *chat = "<|user|>\nHello<|end|>\n<|assistant|>";
    bl_token_t ids[64];
    size_t n = encode(v.t, chat, strlen(chat), false, true, ids, 64);
    bl_token_t want[] = {user, hello, end, asst};
    assert_int_equal(n, 4);
    assert_memory_equal(ids, want, sizeof want);
    /* without parse_special the markers are plain text */
    n = encode(v.t, chat, strlen(chat), false, false, ids, 64);
    assert_true(n > 8);
    for (size_t i = 0; i < n; i++)
        assert_true(ids[i] != user && ids[i] != end && ids[i] != asst);
    vocab_close(&v);
}

static void hex_of(const char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", (unsigned char)p[i]);
    out[2 * n] = 0;
}

static void check_pieces(const bl_tok_t *t, json_t *ids, json_t *hexes)
{
    assert_true(json_is_array(ids) && json_is_array(hexes));
    assert_int_equal(json_array_size(ids), json_array_size(hexes));
    for (size_t i = 0; i < json_array_size(ids); i++) {
        char piece[512], hex[1100];
        bl_token_t id = (bl_token_t)json_integer_value(json_array_get(ids, i));
        int n = bl_tok_piece(t, id, false, piece, sizeof piece);
        assert_true(n >= 0);
        hex_of(piece, (size_t)n, hex);
        assert_string_equal(hex, json_string_value(json_array_get(hexes, i)));
    }
}

static void reference_prompts(void **state)
{
    char *path = path_in_shared("models/llamacpp-reference.json");
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root)
        fail_msg("%s:%d: %s", path, jerr.line, jerr.text);
    json_t *models = json_object_get(root, "models");
    assert_true(json_array_size(models) >= 1);
    size_t n_checked = 0;
    for (size_t m = 0; m < json_array_size(models); m++) {
        json_t *model = json_array_get(models, m);
        char rel[256];
        snprintf(rel, sizeof rel, "models/%s", json_string_value(json_object_get(model, "file")));
        vocab_t v;
        vocab_open(&v, rel);
        json_int_t n_vocab = json_integer_value(json_object_get(model, "n_vocab"));
        assert_int_equal(bl_tok_n_vocab(v.t), n_vocab);
        assert_int_equal(bl_tok_bos(v.t), json_integer_value(json_object_get(model, "bos")));
        assert_int_equal(bl_tok_eos(v.t), json_integer_value(json_object_get(model, "eos")));
        assert_int_equal(bl_tok_add_bos(v.t), json_is_true(json_object_get(model, "add_bos")));
        assert_true(bl_tok_is_eog(v.t, bl_tok_eos(v.t)));

        json_t *results = json_object_get(model, "results");
        for (size_t r = 0; r < json_array_size(results); r++) {
            json_t *res = json_array_get(results, r);
            const char *prompt = json_string_value(json_object_get(res, "prompt"));
            json_t *want = json_object_get(res, "tokens");
            bl_token_t ids[1024];
            size_t n = encode(v.t, prompt, strlen(prompt), true, false, ids, 1024);
            assert_int_equal(n, json_array_size(want));
            for (size_t i = 0; i < n; i++)
                assert_int_equal(ids[i], json_integer_value(json_array_get(want, i)));
            check_pieces(v.t, want, json_object_get(res, "token_pieces_hex"));
            check_pieces(v.t, json_object_get(res, "generated"),
                         json_object_get(res, "generated_pieces_hex"));
            n_checked++;
        }
        vocab_close(&v);
    }
    assert_true(n_checked >= 3);
    json_decref(root);
    free(path);
}

static void special_tokens_and_bos(void **state)
{
    vocab_t v;
    vocab_open(&v, "models/llama-2-tiny-random.gguf");
    bl_token_t ids[64];
    size_t n;

    /* empty text: just BOS with add_special, nothing without */
    n = encode(v.t, "", 0, true, false, ids, 64);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 1);
    assert_int_equal(encode(v.t, "", 0, false, false, ids, 64), 0);

    /* "<s>" is a control token: an id only with parse_special */
    n = encode(v.t, "<s>hi", 5, false, true, ids, 64);
    assert_true(n >= 2);
    assert_int_equal(ids[0], 1);
    n = encode(v.t, "<s>hi", 5, false, false, ids, 64);
    for (size_t i = 0; i < n; i++)
        assert_int_not_equal(ids[i], 1);
    /* after a special token the next fragment gets the space prefix again */
    bl_token_t a[64], b[64];
    size_t na = encode(v.t, "</s>hi", 6, false, true, a, 64);
    size_t nb = encode(v.t, "hi", 2, false, false, b, 64);
    assert_int_equal(na, nb + 1);
    assert_int_equal(a[0], 2);
    assert_memory_equal(a + 1, b, nb * sizeof(*b));

    /* too small a buffer: the full count and BL_ERANGE */
    size_t full = encode(v.t, "Hello world, again and again", 28, true, false, ids, 64);
    assert_true(full > 3);
    size_t n_out = 0;
    assert_int_equal(
        bl_tok_encode(v.t, "Hello world, again and again", 28, true, false, ids, 2, &n_out),
        BL_ERANGE);
    assert_int_equal(n_out, full);

    /* control pieces are empty unless special; byte tokens give their byte */
    char buf[16];
    assert_int_equal(bl_tok_piece(v.t, 1, false, buf, sizeof buf), 0);
    assert_int_equal(bl_tok_piece(v.t, 1, true, buf, sizeof buf), 3);
    assert_memory_equal(buf, "<s>", 3);
    bl_token_t nl = bl_tok_find(v.t, "<0x0A>", 6);
    assert_true(nl >= 0);
    assert_int_equal(bl_tok_piece(v.t, nl, false, buf, sizeof buf), 1);
    assert_int_equal(buf[0], '\n');
    assert_int_equal(bl_tok_piece(v.t, 32000, false, buf, sizeof buf), BL_EINVAL);
    assert_int_equal(bl_tok_piece(v.t, -1, false, buf, sizeof buf), BL_EINVAL);
    vocab_close(&v);
}

/* Whole, valid UTF-8 (no partial character at the end). */
static bool utf8_complete(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t L = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
        if (L == 0 || i + L > n)
            return false;
        for (size_t k = 1; k < L; k++)
            if (((unsigned char)s[i + k] & 0xc0) != 0x80)
                return false;
        i += L;
    }
    return true;
}

static void detok_streams_whole_characters(void **state)
{
    vocab_t v;
    vocab_open(&v, "models/llama-2-tiny-random.gguf");
    const char *text = "日本語のテキスト 🦙🤖 naïve façade 한국어 ✓";
    bl_token_t ids[256];
    size_t n = encode(v.t, text, strlen(text), false, false, ids, 256);
    size_t n_byte_tokens = 0;
    for (size_t i = 0; i < n; i++) {
        size_t tl;
        const char *tx = bl_tok_text(v.t, ids[i], &tl);
        if (tl == 6 && memcmp(tx, "<0x", 3) == 0)
            n_byte_tokens++;
    }
    assert_true(n_byte_tokens >= 4); /* the emoji fall back to bytes */

    bl_detok_t d;
    bl_detok_init(&d);
    char all[1024];
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        char chunk[64];
        int k = bl_tok_detok_push(&d, v.t, ids[i], chunk, sizeof chunk);
        assert_true(k >= 0);
        assert_true(utf8_complete(chunk, (size_t)k));
        memcpy(all + len, chunk, (size_t)k);
        len += (size_t)k;
    }
    assert_int_equal(bl_detok_flush(&d, all + len, sizeof all - len), 0);
    assert_int_equal(len, strlen(text) + 1);
    assert_memory_equal(all, " ", 1);
    assert_memory_equal(all + 1, text, strlen(text));

    /* an incomplete character held at the end comes out as U+FFFD at flush */
    bl_token_t e4 = bl_tok_find(v.t, "<0xE4>", 6), b8 = bl_tok_find(v.t, "<0xB8>", 6);
    bl_token_t x80 = bl_tok_find(v.t, "<0x80>", 6);
    assert_true(e4 >= 0 && b8 >= 0 && x80 >= 0);
    char out[32];
    bl_detok_init(&d);
    assert_int_equal(bl_tok_detok_push(&d, v.t, e4, out, sizeof out), 0);
    assert_int_equal(bl_tok_detok_push(&d, v.t, b8, out, sizeof out), 0);
    assert_int_equal(bl_detok_flush(&d, out, sizeof out), 3);
    assert_memory_equal(out, "\xef\xbf\xbd", 3);
    assert_int_equal(bl_detok_flush(&d, out, sizeof out), 0);

    /* a stray continuation byte can never complete: replaced at once */
    bl_detok_init(&d);
    assert_int_equal(bl_tok_detok_push(&d, v.t, x80, out, sizeof out), 3);
    assert_memory_equal(out, "\xef\xbf\xbd", 3);
    /* a started character interrupted by ASCII: U+FFFD, then the ASCII */
    bl_token_t a = bl_tok_find(v.t, "a", 1);
    assert_true(a >= 0);
    assert_int_equal(bl_tok_detok_push(&d, v.t, e4, out, sizeof out), 0);
    assert_int_equal(bl_tok_detok_push(&d, v.t, a, out, sizeof out), 4);
    assert_memory_equal(out,
                        "\xef\xbf\xbd"
                        "a",
                        4);
    /* no room: an error, and the held bytes are kept */
    assert_int_equal(bl_tok_detok_push(&d, v.t, e4, out, sizeof out), 0);
    assert_int_equal(bl_tok_detok_push(&d, v.t, b8, out, 0), 0);
    bl_token_t ad = bl_tok_find(v.t, "<0xAD>", 6);
    assert_int_equal(bl_tok_detok_push(&d, v.t, ad, out, 2), BL_ERANGE);
    assert_int_equal(bl_tok_detok_push(&d, v.t, ad, out, sizeof out), 3);
    assert_memory_equal(out, "\xe4\xb8\xad", 3); /* 中 */
    vocab_close(&v);
}

static void long_text_round_trips(void **state)
{
    vocab_t v;
    vocab_open(&v, "models/llama-2-tiny-random.gguf");
    const char *para = "The quick brown fox jumps over the lazy dog; 数字 12345, émoji 🦙!\n";
    size_t pl = strlen(para), reps = 400;
    size_t len = pl * reps;
    char *text = malloc(len + 1);
    for (size_t i = 0; i < reps; i++)
        memcpy(text + i * pl, para, pl);
    text[len] = 0;
    size_t n_out = 0;
    assert_int_equal(bl_tok_encode(v.t, text, len, true, false, NULL, 0, &n_out), BL_ERANGE);
    bl_token_t *ids = malloc(n_out * sizeof(*ids));
    assert_int_equal(encode(v.t, text, len, true, false, ids, n_out), n_out);
    assert_int_equal(ids[0], 1);
    char *back = malloc(len + 2);
    size_t bl = detok_all(v.t, ids + 1, n_out - 1, back, len + 2);
    assert_int_equal(bl, len + 1);
    assert_memory_equal(back + 1, text, len);
    free(back);
    free(ids);
    free(text);
    vocab_close(&v);
}

/* Arbitrary bytes (invalid UTF-8, NULs, truncated sequences) encode without
 * error and decode back exactly through byte fallback. */
static void random_bytes_round_trip(void **state)
{
    vocab_t v;
    vocab_open(&v, "models/llama-2-tiny-random.gguf");
    uint32_t x = 12345;
    char text[300], back[400];
    bl_token_t ids[400];
    for (int round = 0; round < 300; round++) {
        size_t len = (size_t)(round % 290) + 1;
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            /* No 0xE2: "\xe2\x96\x81" is how SentencePiece spells a space.
             * No space either: after a broken lead byte its "▁" would be
             * split into bytes (as in llama.cpp), so it would not come back
             * as a space. */
            unsigned char c = (unsigned char)(x >> 8);
            if (round % 3 == 0)
                c &= 0x7f;
            text[i] = (char)(c == 0xe2 ? 'x' : c == ' ' ? 'y' : c);
        }
        size_t n = encode(v.t, text, len, round % 2, false, ids, 400);
        size_t skip = round % 2; /* BOS */
        size_t bl = detok_all(v.t, ids + skip, n - skip, back, sizeof back);
        assert_int_equal(bl, len + 1);
        assert_memory_equal(back + 1, text, len);
        /* the streaming detokenizer always emits whole valid characters */
        bl_detok_t d;
        bl_detok_init(&d);
        for (size_t i = 0; i < n; i++) {
            char chunk[64];
            int k = bl_tok_detok_push(&d, v.t, ids[i], chunk, sizeof chunk);
            assert_true(k >= 0);
            assert_true(utf8_complete(chunk, (size_t)k));
        }
        char tail[8];
        int k = bl_detok_flush(&d, tail, sizeof tail);
        assert_true(k == 0 || k == 3);
    }
    vocab_close(&v);
}

/* ---- validation of tokenizer.* keys, on files written here ---------------- */

static const char *toks[] = {"<unk>",
                             "<s>",
                             "</s>",
                             ("\xe2\x96\x81"
                              "a"),
                             "a",
                             "b"};
static const float scores[] = {0, 0, 0, -1, -2, -3};
static const int32_t types[] = {2, 3, 3, 1, 1, 1};

typedef enum { BAD_NONE, BAD_BOS, BAD_SCORES, BAD_MODEL, BAD_DUP, BAD_TYPES } bad_t;

static int build_and_load(bad_t bad, char *err, size_t errlen)
{
    char path[] = "/tmp/bl_tok_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    bl_gguf_writer_t *w;
    assert_int_equal(bl_gguf_writer_new(&w), 0);
    const char *dup[] = {"<unk>", "<s>", "</s>", "a", "a", "b"};
    assert_int_equal(bl_gguf_w_str(w, "tokenizer.ggml.model", bad == BAD_MODEL ? "t5" : "llama"),
                     0);
    assert_int_equal(bl_gguf_w_arr_str(w, "tokenizer.ggml.tokens", bad == BAD_DUP ? dup : toks, 6),
                     0);
    assert_int_equal(
        bl_gguf_w_arr(w, "tokenizer.ggml.scores", BL_GGUF_F32, scores, bad == BAD_SCORES ? 5 : 6),
        0);
    if (bad == BAD_TYPES)
        assert_int_equal(bl_gguf_w_arr(w, "tokenizer.ggml.token_type", BL_GGUF_F32, scores, 6), 0);
    else
        assert_int_equal(bl_gguf_w_arr(w, "tokenizer.ggml.token_type", BL_GGUF_I32, types, 6), 0);
    assert_int_equal(bl_gguf_w_u32(w, "tokenizer.ggml.bos_token_id", bad == BAD_BOS ? 6 : 1), 0);
    assert_int_equal(bl_gguf_w_u32(w, "tokenizer.ggml.eos_token_id", 2), 0);
    assert_int_equal(bl_gguf_writer_save(w, path, err, errlen), 0);
    bl_gguf_writer_free(w);

    bl_gguf_t *g;
    assert_int_equal(bl_gguf_open(path, &g, err, errlen), 0);
    bl_tok_t *t = NULL;
    int rc = bl_tok_from_gguf(g, &t, err, errlen);
    if (rc == 0) {
        bl_token_t ids[8];
        size_t n = 0;
        /* " a a" -> ▁a ▁a; "ab" -> ▁a b */
        assert_int_equal(bl_tok_encode(t, "a a", 3, true, false, ids, 8, &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(ids[0], 1);
        assert_int_equal(ids[1], 3);
        assert_int_equal(ids[2], 3);
        /* no byte tokens in this vocabulary: unknown characters become <unk> */
        assert_int_equal(bl_tok_encode(t, "az", 2, false, false, ids, 8, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(ids[0], 3);
        assert_int_equal(ids[1], 0);
        bl_tok_free(t);
    }
    bl_gguf_close(g);
    unlink(path);
    return rc;
}

static void validation_errors_name_the_key(void **state)
{
    char err[256];
    assert_int_equal(build_and_load(BAD_NONE, err, sizeof err), 0);
    err[0] = 0;
    assert_int_equal(build_and_load(BAD_BOS, err, sizeof err), BL_ERANGE);
    assert_non_null(strstr(err, "tokenizer.ggml.bos_token_id"));
    err[0] = 0;
    assert_int_equal(build_and_load(BAD_SCORES, err, sizeof err), BL_EFORMAT);
    assert_non_null(strstr(err, "tokenizer.ggml.scores"));
    err[0] = 0;
    assert_int_equal(build_and_load(BAD_MODEL, err, sizeof err), BL_EUNSUPPORTED);
    assert_non_null(strstr(err, "tokenizer.ggml.model"));
    err[0] = 0;
    assert_int_equal(build_and_load(BAD_DUP, err, sizeof err), BL_EFORMAT);
    assert_non_null(strstr(err, "duplicate"));
    err[0] = 0;
    assert_int_equal(build_and_load(BAD_TYPES, err, sizeof err), BL_EFORMAT);
    assert_non_null(strstr(err, "tokenizer.ggml.token_type"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(llama_spm_vectors),
        cmocka_unit_test(phi3_vectors),
        cmocka_unit_test(phi3_chat_markers),
        cmocka_unit_test(reference_prompts),
        cmocka_unit_test(special_tokens_and_bos),
        cmocka_unit_test(detok_streams_whole_characters),
        cmocka_unit_test(long_text_round_trips),
        cmocka_unit_test(random_bytes_round_trip),
        cmocka_unit_test(validation_errors_name_the_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
