/*
 * Hostile GGUF files: a valid small file is built with the writer, then each
 * test patches one field (or truncates the image) and checks the reader
 * refuses it with an error naming the problem. Each variant is opened from an
 * exactly-sized heap copy, so ASan catches any read past its end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <ballast/errors.h>

#include "engine/gguf/gguf.h"
#include "engine/types.h"

/* Where each field of the base image lives (found by walking it). */
#define NKV 7
#define NT 3
typedef struct {
    uint8_t *img;
    size_t size;
    size_t kv_key[NKV], kv_type[NKV], kv_val[NKV];
    size_t t_name[NT], t_ndims[NT], t_ne[NT], t_type[NT], t_off[NT];
    size_t infos_end, data_off;
} base_t;

static base_t B;

static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void build_base(void)
{
    bl_gguf_writer_t *w;
    assert_int_equal(bl_gguf_writer_new(&w), 0);
    int32_t ai[4] = {1, 2, 3, 4};
    const char *strs[3] = {"a", "bc", "def"};
    assert_int_equal(bl_gguf_w_str(w, "general.architecture", "llama"), 0);    /* 0 */
    assert_int_equal(bl_gguf_w_u32(w, "test.u32", 7), 0);                      /* 1 */
    assert_int_equal(bl_gguf_w_arr(w, "test.arr_i32", BL_GGUF_I32, ai, 4), 0); /* 2 */
    assert_int_equal(bl_gguf_w_arr_str(w, "test.strs", strs, 3), 0);           /* 3 */
    assert_int_equal(bl_gguf_w_u32(w, "test.dup1", 1), 0);                     /* 4 */
    assert_int_equal(bl_gguf_w_u32(w, "test.dup2", 2), 0);                     /* 5 */
    assert_int_equal(bl_gguf_w_u32(w, "general.alignment", 32), 0);            /* 6 */
    float fa[16] = {0};
    uint8_t q8[34] = {0};
    float fc[4] = {1, 2, 3, 4};
    uint64_t nea[2] = {8, 2}, neb[1] = {32}, nec[1] = {4};
    assert_int_equal(bl_gguf_w_tensor(w, "t.a", BL_TYPE_F32, 2, nea, fa, sizeof fa), 0);
    assert_int_equal(bl_gguf_w_tensor(w, "t.b", BL_TYPE_Q8_0, 1, neb, q8, sizeof q8), 0);
    assert_int_equal(bl_gguf_w_tensor(w, "t.c", BL_TYPE_F32, 1, nec, fc, sizeof fc), 0);
    void *img;
    char err[256];
    assert_int_equal(bl_gguf_writer_to_mem(w, &img, &B.size, err, sizeof err), 0);
    bl_gguf_writer_free(w);
    B.img = img;

    /* Walk the image we just wrote (trusted) to find each field. */
    size_t p = 24;
    for (int i = 0; i < NKV; i++) {
        B.kv_key[i] = p;
        p += 8 + get64(B.img + p);
        B.kv_type[i] = p;
        uint32_t t = get32(B.img + p);
        p += 4;
        B.kv_val[i] = p;
        if (t == BL_GGUF_STRING) {
            p += 8 + get64(B.img + p);
        } else if (t == BL_GGUF_ARRAY) {
            uint32_t et = get32(B.img + p);
            uint64_t n = get64(B.img + p + 4);
            p += 12;
            for (uint64_t k = 0; k < n; k++)
                p += et == BL_GGUF_STRING ? 8 + get64(B.img + p) : bl_gguf_vtype_size(et);
        } else {
            p += bl_gguf_vtype_size(t);
        }
    }
    for (int i = 0; i < NT; i++) {
        B.t_name[i] = p;
        p += 8 + get64(B.img + p);
        B.t_ndims[i] = p;
        uint32_t nd = get32(B.img + p);
        p += 4;
        B.t_ne[i] = p;
        p += 8 * nd;
        B.t_type[i] = p;
        p += 4;
        B.t_off[i] = p;
        p += 8;
    }
    B.infos_end = p;
    B.data_off = (p + 31) / 32 * 32;
}

static int setup(void **state)
{
    build_base();
    return 0;
}

static int teardown(void **state)
{
    free(B.img);
    return 0;
}

/* Open a copy of the base image of `size` bytes with one patch applied. */
static int open_variant(size_t size, size_t at, const void *patch, size_t plen, char *err,
                        size_t errlen)
{
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, B.img, size < B.size ? size : B.size);
    if (patch) {
        assert_true(at + plen <= size);
        memcpy(copy + at, patch, plen);
    }
    bl_gguf_t *g = NULL;
    err[0] = 0;
    int rc = bl_gguf_open_mem(copy, size, &g, err, errlen);
    if (!rc) {
        /* walk it like a user would */
        for (size_t i = 0; i < bl_gguf_n_tensors(g); i++)
            (void)bl_gguf_tensor_at(g, i)->size;
        bl_gguf_close(g);
    }
    free(copy);
    return rc;
}

static void expect_u64(size_t at, uint64_t v, const char *needle)
{
    char err[512];
    int rc = open_variant(B.size, at, &v, 8, err, sizeof err);
    if (rc != BL_EFORMAT || !strstr(err, needle))
        fail_msg("patch u64 %llu at %zu: rc %d, err '%s' lacks '%s'", (unsigned long long)v, at, rc,
                 err, needle);
}

static void expect_u32(size_t at, uint32_t v, const char *needle)
{
    char err[512];
    int rc = open_variant(B.size, at, &v, 4, err, sizeof err);
    if (rc != BL_EFORMAT || !strstr(err, needle))
        fail_msg("patch u32 %u at %zu: rc %d, err '%s' lacks '%s'", v, at, rc, err, needle);
}

static void expect_bytes(size_t at, const char *bytes, const char *needle)
{
    char err[512];
    int rc = open_variant(B.size, at, bytes, strlen(bytes), err, sizeof err);
    if (rc != BL_EFORMAT || !strstr(err, needle))
        fail_msg("patch '%s' at %zu: rc %d, err '%s' lacks '%s'", bytes, at, rc, err, needle);
}

static void base_is_valid(void **state)
{
    char err[512];
    assert_int_equal(open_variant(B.size, 0, NULL, 0, err, sizeof err), 0);
    bl_gguf_t *g;
    assert_int_equal(bl_gguf_open_mem(B.img, B.size, &g, err, sizeof err), 0);
    assert_int_equal(bl_gguf_n_kv(g), NKV);
    assert_int_equal(bl_gguf_n_tensors(g), NT);
    assert_int_equal(bl_gguf_data_offset(g), B.data_off);
    /* the walker found the fields the reader found */
    assert_int_equal(bl_gguf_kv_at(g, 3)->offset, B.kv_key[3]);
    assert_int_equal(bl_gguf_find_tensor(g, "t.c")->offset - B.data_off, get64(B.img + B.t_off[2]));
    bl_gguf_close(g);
}

static void truncated_everywhere(void **state)
{
    char err[512];
    /* every byte of the header, KVs and tensor infos, and the padding */
    for (size_t n = 0; n < B.data_off; n++) {
        int rc = open_variant(n, 0, NULL, 0, err, sizeof err);
        if (rc != BL_EFORMAT || !strstr(err, "offset") || !strstr(err, "<memory>: "))
            fail_msg("truncated to %zu: rc %d, err '%s'", n, rc, err);
    }
    /* a few points in the data section: some tensor no longer fits */
    size_t end_c = B.data_off + get64(B.img + B.t_off[2]) + 16; /* end of the last tensor */
    size_t cuts[] = {B.data_off, B.data_off + 1, B.data_off + 64, end_c - 16, end_c - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        int rc = open_variant(cuts[i], 0, NULL, 0, err, sizeof err);
        if (rc != BL_EFORMAT || !strstr(err, "exceeds file size"))
            fail_msg("truncated to %zu: rc %d, err '%s'", cuts[i], rc, err);
    }
    /* trailing padding after the last tensor is not needed */
    assert_int_equal(open_variant(end_c, 0, NULL, 0, err, sizeof err), 0);
    /* the header truncation message says what it was reading */
    assert_int_equal(open_variant(10, 0, NULL, 0, err, sizeof err), BL_EFORMAT);
    assert_non_null(strstr(err, "n_tensors"));
    assert_int_equal(open_variant(B.t_type[1] + 2, 0, NULL, 0, err, sizeof err), BL_EFORMAT);
    assert_non_null(strstr(err, "tensor #1 't.b'"));
    assert_non_null(strstr(err, "truncated: tensor type"));
}

static void absurd_counts(void **state)
{
    expect_u64(16, UINT64_MAX, "n_kv 18446744073709551615 at offset 16 exceeds what");
    expect_u64(16, 1ull << 40, "n_kv 1099511627776");
    expect_u64(8, UINT64_MAX, "n_tensors 18446744073709551615 at offset 8 exceeds");
    expect_u64(8, 1ull << 40, "n_tensors");
    expect_u64(B.kv_val[2] + 4, UINT64_MAX, "array count 18446744073709551615");
    expect_u64(B.kv_val[2] + 4, 1ull << 40, "array count 1099511627776");
    expect_u64(B.kv_val[2] + 4, (1ull << 62) + 1, "array count"); /* count*4 wraps */
    expect_u64(B.kv_val[3] + 4, 1ull << 40, "string array count");
    expect_u64(B.kv_val[3] + 4, UINT64_MAX / 8 + 1, "string array count");
}

static void absurd_string_lengths(void **state)
{
    char want[96];
    snprintf(want, sizeof want,
             "<memory>: key #0 at offset 24: string length "
             "18446744073709551615 exceeds the %zu bytes left",
             B.size - 32);
    expect_u64(B.kv_key[0], UINT64_MAX, want);
    expect_u64(B.kv_key[1], 1ull << 40, "string length 1099511627776");
    expect_u64(B.kv_key[1], 0, "empty key");
    expect_u64(B.kv_val[0], UINT64_MAX, "string value");
    /* an element of a string array */
    expect_u64(B.kv_val[3] + 12, 1ull << 40, "array string");
    expect_u64(B.t_name[0], UINT64_MAX, "tensor #0 at offset");
    expect_u64(B.t_name[1], 0, "empty tensor name");
}

static void bad_value_types(void **state)
{
    expect_u32(B.kv_type[1], 13, "unknown value type 13");
    expect_u32(B.kv_type[1], UINT32_MAX, "unknown value type 4294967295");
    expect_u32(B.kv_val[2], BL_GGUF_ARRAY, "nested arrays");
    expect_u32(B.kv_val[2], 77, "unknown array element type 77");
}

static void bad_tensor_shapes_and_types(void **state)
{
    expect_u32(B.t_type[0], 4, "unknown tensor type 4"); /* Q4_2, removed from ggml */
    expect_u32(B.t_type[0], 1000, "unknown tensor type 1000");
    expect_u32(B.t_ndims[0], 0, "n_dims 0");
    expect_u32(B.t_ndims[0], 5, "n_dims 5");
    expect_u64(B.t_ne[0], 0, "ne[0] is 0");
    expect_u64(B.t_ne[0] + 8, 0, "ne[1] is 0");
    expect_u64(B.t_ne[0] + 8, 1ull << 62, "element count overflows");
    expect_u64(B.t_ne[0] + 8, 1ull << 61, "element count overflows"); /* > INT64_MAX */
    expect_u64(B.t_ne[0] + 8, 1ull << 40, "exceeds file size");
    expect_u64(B.t_ne[1], 31, "not a multiple of the Q8_0 block size 32");
    /* F32 -> Q4_0 changes the size but stays valid when it still fits */
    char err[512];
    uint32_t q40 = BL_TYPE_Q4_0;
    assert_int_equal(open_variant(B.size, B.t_type[1], &q40, 4, err, sizeof err), 0);
}

static void bad_offsets(void **state)
{
    uint64_t off_b = get64(B.img + B.t_off[1]);
    expect_u64(B.t_off[1], off_b + 1, "offset " /* ... */);
    expect_u64(B.t_off[1], off_b + 1, "is not a multiple of the alignment 32");
    expect_u64(B.t_off[1], 1ull << 40, "exceeds file size");
    expect_u64(B.t_off[1], UINT64_MAX - 31, "exceeds file size"); /* aligned, add wraps */
    expect_u64(B.t_off[2], B.size - B.data_off, "exceeds file size");
    expect_u64(B.t_off[1], 0, "overlaps tensor 't.a'");
    expect_u64(B.t_off[0], off_b, "overlaps");
    /* the message names the tensor and the file size */
    char err[512];
    uint64_t v = 1ull << 40;
    assert_int_equal(open_variant(B.size, B.t_off[2], &v, 8, err, sizeof err), BL_EFORMAT);
    char want[128];
    snprintf(want, sizeof want, "tensor 't.c' offset %llu + size 16 exceeds file size %zu",
             (unsigned long long)(B.data_off + v), B.size);
    assert_non_null(strstr(err, want));
}

static void duplicates(void **state)
{
    /* "test.dup2" -> "test.dup1" */
    expect_bytes(B.kv_key[5] + 8 + 8, "1", "duplicate key 'test.dup1'");
    /* "t.b" -> "t.a" */
    expect_bytes(B.t_name[1] + 8 + 2, "a", "duplicate tensor name 't.a'");
}

static void bad_alignment(void **state)
{
    expect_u32(B.kv_val[6], 0, "alignment 0 is not a power of two");
    expect_u32(B.kv_val[6], 3, "alignment 3");
    expect_u32(B.kv_val[6], 1u << 31, "alignment 2147483648");
    expect_u32(B.kv_type[6], BL_GGUF_I32, "must be a u32");
    /* 64 is fine in itself, but t.b moved to offset 32 is then unaligned */
    char err[512];
    uint8_t *copy = malloc(B.size);
    memcpy(copy, B.img, B.size);
    uint32_t a64 = 64;
    uint64_t off32 = 32;
    memcpy(copy + B.kv_val[6], &a64, 4);
    memcpy(copy + B.t_off[1], &off32, 8);
    bl_gguf_t *g;
    assert_int_equal(bl_gguf_open_mem(copy, B.size, &g, err, sizeof err), BL_EFORMAT);
    assert_non_null(strstr(err, "tensor 't.b' offset 32 is not a multiple of the alignment 64"));
    free(copy);
}

static void bad_magic_and_version(void **state)
{
    expect_bytes(0, "GGML", "bad magic 'GGML'");
    expect_bytes(0,
                 "\x7f"
                 "ELF",
                 "not a GGUF file");
    expect_u32(4, 1, "version 1 is not supported");
    expect_u32(4, 99, "unsupported GGUF version 99");
    expect_u32(4, 0, "unsupported GGUF version 0");
    expect_u32(4, 0x03000000u, "big-endian");
    /* v2 differs from v3 in nothing we read */
    char err[512];
    uint32_t v2 = 2;
    assert_int_equal(open_variant(B.size, 4, &v2, 4, err, sizeof err), 0);
}

static void hostile_names_are_printed_safely(void **state)
{
    /* control bytes in a key must not reach the terminal raw */
    char err[512];
    uint8_t *copy = malloc(B.size);
    memcpy(copy, B.img, B.size);
    copy[B.kv_key[1] + 8] = 0x1b; /* ESC in "test.u32" */
    uint32_t bad = 13;
    memcpy(copy + B.kv_type[1], &bad, 4);
    bl_gguf_t *g;
    assert_int_equal(bl_gguf_open_mem(copy, B.size, &g, err, sizeof err), BL_EFORMAT);
    assert_non_null(strstr(err, "'?est.u32'"));
    assert_null(strchr(err, 0x1b));
    free(copy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(base_is_valid),
        cmocka_unit_test(truncated_everywhere),
        cmocka_unit_test(absurd_counts),
        cmocka_unit_test(absurd_string_lengths),
        cmocka_unit_test(bad_value_types),
        cmocka_unit_test(bad_tensor_shapes_and_types),
        cmocka_unit_test(bad_offsets),
        cmocka_unit_test(duplicates),
        cmocka_unit_test(bad_alignment),
        cmocka_unit_test(bad_magic_and_version),
        cmocka_unit_test(hostile_names_are_printed_safely),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
