/* GGUF reader on real files and the writer's round trip of every value type. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <ballast/errors.h>

#include "engine/gguf/gguf.h"
#include "engine/types.h"

static char *shared_path(const char *rel)
{
    const char *root = getenv("BALLAST_SHARED");
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", root ? root : "../shared", rel);
    return buf;
}

static bl_gguf_t *open_ok(const char *path)
{
    char err[512] = "";
    bl_gguf_t *g = NULL;
    int rc = bl_gguf_open(path, &g, err, sizeof err);
    if (rc)
        fail_msg("open %s: %s", path, err);
    return g;
}

static void check_all_tensors_findable(const bl_gguf_t *g)
{
    const uint8_t *base = bl_gguf_base(g);
    for (size_t i = 0; i < bl_gguf_n_tensors(g); i++) {
        const bl_gguf_tensor_t *t = bl_gguf_tensor_at(g, i);
        char name[256];
        assert_true(t->name.n < sizeof name);
        memcpy(name, t->name.p, t->name.n);
        name[t->name.n] = 0;
        assert_ptr_equal(bl_gguf_find_tensor(g, name), t);
        assert_ptr_equal(t->data, base + t->offset);
        assert_true(t->offset + t->size <= bl_gguf_file_size(g));
        assert_int_equal(t->offset % bl_gguf_alignment(g), 0);
    }
    assert_null(bl_gguf_tensor_at(g, bl_gguf_n_tensors(g)));
}

static void stories260k_facts(void **state)
{
    bl_gguf_t *g = open_ok(shared_path("models/stories260K.gguf"));
    assert_int_equal(bl_gguf_version(g), 3);
    assert_int_equal(bl_gguf_file_size(g), 1185376);
    assert_int_equal(bl_gguf_n_tensors(g), 48);
    assert_int_equal(bl_gguf_n_kv(g), 19);
    bl_gguf_str_t s;
    assert_int_equal(bl_gguf_get_str(g, "general.architecture", &s), 0);
    assert_true(bl_gguf_str_eq(s, "llama"));
    uint32_t u;
    assert_int_equal(bl_gguf_get_u32(g, "llama.block_count", &u), 0);
    assert_int_equal(u, 5);
    assert_int_equal(bl_gguf_get_u32(g, "llama.attention.head_count_kv", &u), 0);
    assert_int_equal(u, 4);
    float f;
    assert_int_equal(bl_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &f), 0);
    assert_float_equal(f, 1e-5f, 1e-9f);
    /* wrong type and missing keys */
    assert_int_equal(bl_gguf_get_f32(g, "llama.block_count", &f), BL_EFORMAT);
    assert_int_equal(bl_gguf_get_str(g, "llama.block_count", &s), BL_EFORMAT);
    assert_int_equal(bl_gguf_get_u32(g, "no.such.key", &u), BL_ENOENT);
    assert_null(bl_gguf_find(g, "general.architectur"));

    const bl_gguf_kv_t *tok;
    assert_int_equal(bl_gguf_get_arr(g, "tokenizer.ggml.tokens", BL_GGUF_STRING, &tok), 0);
    assert_int_equal(tok->arr_n, 512);
    assert_int_equal(bl_gguf_arr_str(g, tok, 1, &s), 0);
    assert_true(bl_gguf_str_eq(s, "<s>"));
    assert_int_equal(bl_gguf_arr_str(g, tok, 3, &s), 0);
    assert_true(bl_gguf_str_eq(s, "<0x00>"));
    assert_int_equal(bl_gguf_arr_str(g, tok, 512, &s), BL_ERANGE);
    const bl_gguf_kv_t *types;
    assert_int_equal(bl_gguf_get_arr(g, "tokenizer.ggml.token_type", BL_GGUF_I32, &types), 0);
    int64_t tt;
    assert_int_equal(bl_gguf_arr_i64(types, 1, &tt), 0);
    assert_int_equal(tt, 3); /* <s> is a control token */
    assert_int_equal(bl_gguf_get_arr(g, "tokenizer.ggml.tokens", BL_GGUF_I32, &types), BL_EFORMAT);

    const bl_gguf_tensor_t *t = bl_gguf_find_tensor(g, "token_embd.weight");
    assert_non_null(t);
    assert_int_equal(t->type, BL_TYPE_F32);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->ne[0], 64);
    assert_int_equal(t->ne[1], 512);
    assert_int_equal(t->size, 64 * 512 * 4);
    t = bl_gguf_find_tensor(g, "blk.4.ffn_down.weight");
    assert_non_null(t);
    assert_int_equal(t->ne[0], 172);
    assert_int_equal(t->ne[1], 64);
    assert_null(bl_gguf_find_tensor(g, "blk.5.ffn_down.weight"));
    check_all_tensors_findable(g);
    bl_gguf_close(g);
}

static void llama2_tiny_random_facts(void **state)
{
    bl_gguf_t *g = open_ok(shared_path("models/llama-2-tiny-random.gguf"));
    assert_int_equal(bl_gguf_n_tensors(g), 12);
    bl_gguf_str_t s;
    assert_int_equal(bl_gguf_get_str(g, "general.architecture", &s), 0);
    assert_true(bl_gguf_str_eq(s, "llama"));
    assert_int_equal(bl_gguf_get_str(g, "general.name", &s), 0);
    assert_true(bl_gguf_str_eq(s, "LLaMA v2"));
    const bl_gguf_kv_t *tok, *scores;
    assert_int_equal(bl_gguf_get_arr(g, "tokenizer.ggml.tokens", BL_GGUF_STRING, &tok), 0);
    assert_int_equal(tok->arr_n, 32000);
    assert_int_equal(bl_gguf_arr_str(g, tok, 31999, &s), 0);
    assert_true(s.n > 0);
    assert_int_equal(bl_gguf_get_arr(g, "tokenizer.ggml.scores", BL_GGUF_F32, &scores), 0);
    assert_int_equal(scores->arr_n, 32000);
    float f;
    assert_int_equal(bl_gguf_arr_f32(scores, 0, &f), 0);
    assert_int_equal(bl_gguf_arr_f32(scores, 32000, &f), BL_ERANGE);
    const bl_gguf_tensor_t *t = bl_gguf_find_tensor(g, "token_embd.weight");
    assert_non_null(t);
    assert_int_equal(t->type, BL_TYPE_F16);
    assert_int_equal(t->ne[0], 8);
    assert_int_equal(t->ne[1], 32000);
    t = bl_gguf_find_tensor(g, "output_norm.weight");
    assert_non_null(t);
    assert_int_equal(t->type, BL_TYPE_F32);
    assert_int_equal(t->n_dims, 1);
    assert_int_equal(t->ne[1], 1);
    check_all_tensors_findable(g);
    bl_gguf_close(g);
}

static void vocab_only_files_open(void **state)
{
    /* No tensors: the data section (and its padding) may be absent. */
    bl_gguf_t *g = open_ok(shared_path("models/vocab/ggml-vocab-qwen2.gguf"));
    assert_int_equal(bl_gguf_n_tensors(g), 0);
    const bl_gguf_kv_t *merges;
    assert_int_equal(bl_gguf_get_arr(g, "tokenizer.ggml.merges", BL_GGUF_STRING, &merges), 0);
    assert_int_equal(merges->arr_n, 151387);
    bl_gguf_str_t s;
    assert_int_equal(bl_gguf_arr_str(g, merges, 151386, &s), 0);
    assert_true(s.n > 2);
    bl_gguf_close(g);
}

static void open_errors_name_the_file(void **state)
{
    char err[512] = "";
    bl_gguf_t *g = (bl_gguf_t *)1;
    assert_int_equal(bl_gguf_open("/nonexistent/x.gguf", &g, err, sizeof err), BL_ENOENT);
    assert_null(g);
    assert_non_null(strstr(err, "/nonexistent/x.gguf"));
    assert_int_not_equal(bl_gguf_open("/", &g, err, sizeof err), 0);
    assert_non_null(strstr(err, "not a regular file"));
    char path[] = "/tmp/bl_gguf_empty_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(bl_gguf_open(path, &g, err, sizeof err), BL_EFORMAT);
    assert_non_null(strstr(err, "empty"));
    unlink(path);
    /* a short error buffer is truncated, not overrun */
    char tiny[8];
    assert_int_equal(bl_gguf_open_mem("GGUX", 4, &g, tiny, sizeof tiny), BL_EFORMAT);
    assert_int_equal(strlen(tiny), 7);
}

static void real_file_truncations_fail_cleanly(void **state)
{
    /* every prefix of a real file, sampled, from exact-size heap copies */
    FILE *f = fopen(shared_path("models/llama-2-tiny-random.gguf"), "rb");
    assert_non_null(f);
    size_t size = 1750560;
    uint8_t *all = malloc(size);
    assert_int_equal(fread(all, 1, size, f), size);
    fclose(f);
    for (size_t cut = 0; cut < size; cut += 4099) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, all, cut);
        bl_gguf_t *g = NULL;
        char err[512] = "";
        int rc = bl_gguf_open_mem(copy, cut, &g, err, sizeof err);
        if (rc != BL_EFORMAT || !strstr(err, "offset"))
            fail_msg("cut at %zu: rc %d, '%s'", cut, rc, err);
        assert_null(g);
        free(copy);
    }
    bl_gguf_t *g;
    char err[512];
    assert_int_equal(bl_gguf_open_mem(all, size, &g, err, sizeof err), 0);
    bl_gguf_close(g);
    free(all);
}

/* ---- writer round trip ------------------------------------------------- */

static void writer_round_trips_every_type(void **state)
{
    bl_gguf_writer_t *w;
    assert_int_equal(bl_gguf_writer_new(&w), 0);
    uint8_t u8 = 200;
    int8_t i8 = -100;
    uint16_t u16 = 60000;
    int16_t i16 = -30000;
    uint32_t u32 = 4000000000u;
    int32_t i32 = -2000000000;
    float f32 = 3.25f;
    uint64_t u64 = 0xfedcba9876543210ull;
    int64_t i64 = -(1ll << 60);
    double f64 = -1.5e300;
    uint8_t bt = 1;
    assert_int_equal(bl_gguf_w_val(w, "t.u8", BL_GGUF_U8, &u8), 0);
    assert_int_equal(bl_gguf_w_val(w, "t.i8", BL_GGUF_I8, &i8), 0);
    assert_int_equal(bl_gguf_w_val(w, "t.u16", BL_GGUF_U16, &u16), 0);
    assert_int_equal(bl_gguf_w_val(w, "t.i16", BL_GGUF_I16, &i16), 0);
    assert_int_equal(bl_gguf_w_u32(w, "t.u32", u32), 0);
    assert_int_equal(bl_gguf_w_i32(w, "t.i32", i32), 0);
    assert_int_equal(bl_gguf_w_f32(w, "t.f32", f32), 0);
    assert_int_equal(bl_gguf_w_val(w, "t.bool", BL_GGUF_BOOL, &bt), 0);
    assert_int_equal(bl_gguf_w_bool(w, "t.false", false), 0);
    assert_int_equal(bl_gguf_w_u64(w, "t.u64", u64), 0);
    assert_int_equal(bl_gguf_w_val(w, "t.i64", BL_GGUF_I64, &i64), 0);
    assert_int_equal(bl_gguf_w_val(w, "t.f64", BL_GGUF_F64, &f64), 0);
    assert_int_equal(bl_gguf_w_str(w, "t.str", "héllo"), 0);
    assert_int_equal(bl_gguf_w_str(w, "t.empty", ""), 0);
    int16_t ai16[3] = {-1, 2, -3};
    double af64[2] = {0.5, -0.25};
    float af32[2] = {1.5f, -2.5f};
    uint64_t au64[2] = {1, UINT64_MAX};
    assert_int_equal(bl_gguf_w_arr(w, "a.i16", BL_GGUF_I16, ai16, 3), 0);
    assert_int_equal(bl_gguf_w_arr(w, "a.f64", BL_GGUF_F64, af64, 2), 0);
    assert_int_equal(bl_gguf_w_arr(w, "a.f32", BL_GGUF_F32, af32, 2), 0);
    assert_int_equal(bl_gguf_w_arr(w, "a.u64", BL_GGUF_U64, au64, 2), 0);
    assert_int_equal(bl_gguf_w_arr(w, "a.none", BL_GGUF_U8, NULL, 0), 0);
    const char *strs[] = {"alpha", "", "γάμμα"};
    assert_int_equal(bl_gguf_w_arr_str(w, "a.str", strs, 3), 0);
    /* misuse is refused, and leaves the writer usable */
    assert_int_equal(bl_gguf_w_u32(w, "t.u32", 1), BL_EINVAL);
    assert_int_equal(bl_gguf_w_u32(w, "", 1), BL_EINVAL);
    assert_int_equal(bl_gguf_w_arr(w, "a.bad", BL_GGUF_STRING, strs, 1), BL_EINVAL);
    assert_int_equal(bl_gguf_w_u32(w, "general.alignment", 48), BL_EINVAL);
    assert_int_equal(bl_gguf_w_u32(w, "general.alignment", 64), 0);

    float tf[3 * 2] = {1, 2, 3, 4, 5, 6};
    uint64_t ne2[2] = {3, 2}, ne1[1] = {32}, ne_bad[1] = {31};
    uint8_t q8[34];
    for (size_t i = 0; i < sizeof q8; i++)
        q8[i] = (uint8_t)i;
    assert_int_equal(bl_gguf_w_tensor(w, "w.f32", BL_TYPE_F32, 2, ne2, tf, sizeof tf), 0);
    assert_int_equal(bl_gguf_w_tensor(w, "w.q8", BL_TYPE_Q8_0, 1, ne1, q8, sizeof q8), 0);
    assert_int_equal(bl_gguf_w_tensor(w, "w.f32", BL_TYPE_F32, 2, ne2, tf, sizeof tf), BL_EINVAL);
    assert_int_equal(bl_gguf_w_tensor(w, "w.bad", BL_TYPE_Q8_0, 1, ne_bad, q8, 34), BL_EINVAL);
    assert_int_equal(bl_gguf_w_tensor(w, "w.size", BL_TYPE_F32, 2, ne2, tf, 8), BL_EINVAL);
    assert_int_equal(bl_gguf_w_tensor(w, "w.type", 4, 1, ne1, q8, 34), BL_EINVAL);

    void *img;
    size_t n;
    char err[256];
    assert_int_equal(bl_gguf_writer_to_mem(w, &img, &n, err, sizeof err), 0);
    bl_gguf_writer_free(w);

    bl_gguf_t *g;
    assert_int_equal(bl_gguf_open_mem(img, n, &g, err, sizeof err), 0);
    assert_int_equal(bl_gguf_alignment(g), 64);
    assert_int_equal(bl_gguf_n_kv(g), 21);
    const bl_gguf_kv_t *kv = bl_gguf_find(g, "t.u8");
    assert_int_equal(kv->type, BL_GGUF_U8);
    assert_int_equal(kv->v.u, 200);
    assert_int_equal(bl_gguf_find(g, "t.i8")->v.i, -100);
    assert_int_equal(bl_gguf_find(g, "t.u16")->v.u, 60000);
    assert_int_equal(bl_gguf_find(g, "t.i16")->v.i, -30000);
    assert_int_equal(bl_gguf_find(g, "t.u32")->v.u, 4000000000u);
    assert_int_equal(bl_gguf_find(g, "t.i32")->v.i, -2000000000);
    assert_true(bl_gguf_find(g, "t.f32")->v.f == 3.25);
    assert_true(bl_gguf_find(g, "t.bool")->v.b);
    assert_false(bl_gguf_find(g, "t.false")->v.b);
    assert_true(bl_gguf_find(g, "t.u64")->v.u == u64);
    assert_true(bl_gguf_find(g, "t.i64")->v.i == i64);
    assert_true(bl_gguf_find(g, "t.f64")->v.f == f64);
    uint32_t u;
    uint64_t u64o;
    int64_t i64o;
    assert_int_equal(bl_gguf_get_u32(g, "t.u8", &u), 0); /* widening */
    assert_int_equal(u, 200);
    assert_int_equal(bl_gguf_get_u32(g, "t.i8", &u), BL_EFORMAT);  /* negative */
    assert_int_equal(bl_gguf_get_u32(g, "t.u64", &u), BL_EFORMAT); /* does not fit */
    assert_int_equal(bl_gguf_get_u64(g, "t.u64", &u64o), 0);
    assert_true(u64o == u64);
    assert_int_equal(bl_gguf_get_i64(g, "t.i64", &i64o), 0);
    assert_true(i64o == i64);
    assert_int_equal(bl_gguf_get_i64(g, "t.u64", &i64o), BL_EFORMAT);
    bool b;
    assert_int_equal(bl_gguf_get_bool(g, "t.bool", &b), 0);
    assert_true(b);
    float f;
    assert_int_equal(bl_gguf_get_f32(g, "t.f64", &f), 0);
    bl_gguf_str_t s;
    assert_int_equal(bl_gguf_get_str(g, "t.str", &s), 0);
    assert_true(bl_gguf_str_eq(s, "héllo"));
    assert_int_equal(bl_gguf_get_str(g, "t.empty", &s), 0);
    assert_int_equal(s.n, 0);

    const bl_gguf_kv_t *a;
    int64_t iv;
    assert_int_equal(bl_gguf_get_arr(g, "a.i16", BL_GGUF_I16, &a), 0);
    assert_int_equal(a->arr_n, 3);
    assert_int_equal(bl_gguf_arr_i64(a, 2, &iv), 0);
    assert_int_equal(iv, -3);
    assert_int_equal(bl_gguf_arr_f32(a, 0, &f), BL_EFORMAT);
    assert_int_equal(bl_gguf_get_arr(g, "a.f64", BL_GGUF_F64, &a), 0);
    assert_int_equal(bl_gguf_arr_f32(a, 1, &f), 0);
    assert_true(f == -0.25f);
    assert_int_equal(bl_gguf_get_arr(g, "a.f32", BL_GGUF_F32, &a), 0);
    assert_int_equal(bl_gguf_arr_f32(a, 1, &f), 0);
    assert_true(f == -2.5f);
    assert_int_equal(bl_gguf_get_arr(g, "a.u64", BL_GGUF_U64, &a), 0);
    assert_int_equal(bl_gguf_arr_i64(a, 0, &iv), 0);
    assert_int_equal(bl_gguf_arr_i64(a, 1, &iv), BL_ERANGE);
    assert_int_equal(bl_gguf_get_arr(g, "a.none", BL_GGUF_U8, &a), 0);
    assert_int_equal(a->arr_n, 0);
    assert_int_equal(bl_gguf_get_arr(g, "a.str", BL_GGUF_STRING, &a), 0);
    assert_int_equal(a->arr_n, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(bl_gguf_arr_str(g, a, (uint64_t)i, &s), 0);
        assert_true(bl_gguf_str_eq(s, strs[i]));
    }

    assert_int_equal(bl_gguf_n_tensors(g), 2);
    const bl_gguf_tensor_t *t = bl_gguf_find_tensor(g, "w.f32");
    assert_non_null(t);
    assert_int_equal(t->ne[0], 3);
    assert_int_equal(t->ne[1], 2);
    assert_int_equal(t->n_elems, 6);
    assert_memory_equal(t->data, tf, sizeof tf);
    assert_int_equal(t->offset % 64, 0);
    t = bl_gguf_find_tensor(g, "w.q8");
    assert_int_equal(t->type, BL_TYPE_Q8_0);
    assert_int_equal(t->size, 34);
    assert_memory_equal(t->data, q8, sizeof q8);
    assert_int_equal(t->offset % 64, 0);
    bl_gguf_close(g);
    free(img);
}

typedef struct {
    uint8_t seed;
    int calls;
} fill_ctx_t;

static int fill_bytes(void *ctx, void *dst, size_t size)
{
    fill_ctx_t *c = ctx;
    c->calls++;
    for (size_t i = 0; i < size; i++)
        ((uint8_t *)dst)[i] = (uint8_t)(c->seed + i);
    return 0;
}

static int fill_fails(void *ctx, void *dst, size_t size)
{
    return BL_EIO;
}

static void writer_saves_atomically_and_copies_vocab(void **state)
{
    bl_gguf_t *src = open_ok(shared_path("models/stories260K.gguf"));
    bl_gguf_writer_t *w;
    assert_int_equal(bl_gguf_writer_new(&w), 0);
    size_t copied = 0;
    for (size_t i = 0; i < bl_gguf_n_kv(src); i++) {
        const bl_gguf_kv_t *kv = bl_gguf_kv_at(src, i);
        assert_int_equal(bl_gguf_w_copy_kv(w, src, kv), 0);
        copied++;
    }
    fill_ctx_t c1 = {7, 0}, c2 = {9, 0};
    uint64_t ne[2] = {64, 3};
    assert_int_equal(bl_gguf_w_tensor_fn(w, "a", BL_TYPE_F32, 2, ne, fill_bytes, &c1), 0);
    assert_int_equal(bl_gguf_w_tensor_fn(w, "b", BL_TYPE_F16, 2, ne, fill_bytes, &c2), 0);

    char dir[] = "/tmp/bl_gguf_w_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], tmp[300], err[512];
    snprintf(path, sizeof path, "%s/out.gguf", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_equal(bl_gguf_writer_save(w, path, err, sizeof err), 0);
    assert_int_equal(c1.calls, 1);
    assert_int_equal(c2.calls, 1);
    assert_int_not_equal(access(tmp, F_OK), 0);
    bl_gguf_writer_free(w);

    bl_gguf_t *g = open_ok(path);
    assert_int_equal(bl_gguf_n_kv(g), copied);
    for (size_t i = 0; i < bl_gguf_n_kv(src); i++) {
        const bl_gguf_kv_t *a = bl_gguf_kv_at(src, i), *b = bl_gguf_kv_at(g, i);
        assert_int_equal(a->key.n, b->key.n);
        assert_memory_equal(a->key.p, b->key.p, a->key.n);
        assert_int_equal(a->type, b->type);
        if (a->type == BL_GGUF_ARRAY) {
            assert_int_equal(a->arr_type, b->arr_type);
            assert_int_equal(a->arr_n, b->arr_n);
            for (uint64_t k = 0; k < a->arr_n; k++) {
                if (a->arr_type == BL_GGUF_STRING) {
                    bl_gguf_str_t sa, sb;
                    assert_int_equal(bl_gguf_arr_str(src, a, k, &sa), 0);
                    assert_int_equal(bl_gguf_arr_str(g, b, k, &sb), 0);
                    assert_int_equal(sa.n, sb.n);
                    assert_memory_equal(sa.p, sb.p, sa.n);
                }
            }
            if (a->arr_type != BL_GGUF_STRING)
                assert_memory_equal(a->arr_data, b->arr_data,
                                    a->arr_n * bl_gguf_vtype_size(a->arr_type));
        } else if (a->type == BL_GGUF_STRING) {
            assert_int_equal(a->v.s.n, b->v.s.n);
            assert_memory_equal(a->v.s.p, b->v.s.p, a->v.s.n);
        } else {
            assert_true(a->v.u == b->v.u);
        }
    }
    const bl_gguf_tensor_t *t = bl_gguf_find_tensor(g, "b");
    assert_int_equal(t->size, 64 * 3 * 2);
    assert_int_equal(((const uint8_t *)t->data)[5], 9 + 5);
    bl_gguf_close(g);

    /* a failing producer leaves the old file in place and no .tmp behind */
    assert_int_equal(bl_gguf_writer_new(&w), 0);
    assert_int_equal(bl_gguf_w_tensor_fn(w, "a", BL_TYPE_F32, 2, ne, fill_fails, NULL), 0);
    assert_int_equal(bl_gguf_writer_save(w, path, err, sizeof err), BL_EIO);
    assert_int_not_equal(access(tmp, F_OK), 0);
    bl_gguf_writer_free(w);
    g = open_ok(path);
    assert_int_equal(bl_gguf_n_tensors(g), 2);
    bl_gguf_close(g);

    unlink(path);
    rmdir(dir);
    bl_gguf_close(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stories260k_facts),
        cmocka_unit_test(llama2_tiny_random_facts),
        cmocka_unit_test(vocab_only_files_open),
        cmocka_unit_test(open_errors_name_the_file),
        cmocka_unit_test(real_file_truncations_fail_cleanly),
        cmocka_unit_test(writer_round_trips_every_type),
        cmocka_unit_test(writer_saves_atomically_and_copies_vocab),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
