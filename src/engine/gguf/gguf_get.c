/* Lookups and typed getters over an opened (already validated) GGUF file. */
#include <string.h>

#include <ballast/errors.h>

#include "engine/gguf/gguf_impl.h"

uint32_t bl_gguf_version(const bl_gguf_t *g)
{
    return g->version;
}

size_t bl_gguf_file_size(const bl_gguf_t *g)
{
    return g->size;
}

const void *bl_gguf_base(const bl_gguf_t *g)
{
    return g->base;
}

uint32_t bl_gguf_alignment(const bl_gguf_t *g)
{
    return g->alignment;
}

uint64_t bl_gguf_data_offset(const bl_gguf_t *g)
{
    return g->data_offset;
}

bool bl_gguf_str_eq(bl_gguf_str_t s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && !memcmp(s.p, lit, n);
}

size_t bl_gguf_n_kv(const bl_gguf_t *g)
{
    return g->n_kv;
}

const bl_gguf_kv_t *bl_gguf_kv_at(const bl_gguf_t *g, size_t i)
{
    return i < g->n_kv ? &g->kvs[i] : NULL;
}

const bl_gguf_kv_t *bl_gguf_find(const bl_gguf_t *g, const char *key)
{
    size_t i = bl_gguf_index_find(&g->kv_index, g->kvs, sizeof *g->kvs, key, strlen(key));
    return i == SIZE_MAX ? NULL : &g->kvs[i];
}

static bool is_unsigned(bl_gguf_vtype_t t)
{
    return t == BL_GGUF_U8 || t == BL_GGUF_U16 || t == BL_GGUF_U32 || t == BL_GGUF_U64;
}

static bool is_signed(bl_gguf_vtype_t t)
{
    return t == BL_GGUF_I8 || t == BL_GGUF_I16 || t == BL_GGUF_I32 || t == BL_GGUF_I64;
}

int bl_gguf_get_u64(const bl_gguf_t *g, const char *key, uint64_t *out)
{
    const bl_gguf_kv_t *kv = bl_gguf_find(g, key);
    if (!kv)
        return BL_ENOENT;
    if (is_unsigned(kv->type)) {
        *out = kv->v.u;
        return 0;
    }
    if (is_signed(kv->type) && kv->v.i >= 0) {
        *out = (uint64_t)kv->v.i;
        return 0;
    }
    return BL_EFORMAT;
}

int bl_gguf_get_i64(const bl_gguf_t *g, const char *key, int64_t *out)
{
    const bl_gguf_kv_t *kv = bl_gguf_find(g, key);
    if (!kv)
        return BL_ENOENT;
    if (is_signed(kv->type)) {
        *out = kv->v.i;
        return 0;
    }
    if (is_unsigned(kv->type) && kv->v.u <= (uint64_t)INT64_MAX) {
        *out = (int64_t)kv->v.u;
        return 0;
    }
    return BL_EFORMAT;
}

int bl_gguf_get_u32(const bl_gguf_t *g, const char *key, uint32_t *out)
{
    uint64_t v;
    int rc = bl_gguf_get_u64(g, key, &v);
    if (rc)
        return rc;
    if (v > UINT32_MAX)
        return BL_EFORMAT;
    *out = (uint32_t)v;
    return 0;
}

int bl_gguf_get_f32(const bl_gguf_t *g, const char *key, float *out)
{
    const bl_gguf_kv_t *kv = bl_gguf_find(g, key);
    if (!kv)
        return BL_ENOENT;
    if (kv->type != BL_GGUF_F32 && kv->type != BL_GGUF_F64)
        return BL_EFORMAT;
    *out = (float)kv->v.f;
    return 0;
}

int bl_gguf_get_bool(const bl_gguf_t *g, const char *key, bool *out)
{
    const bl_gguf_kv_t *kv = bl_gguf_find(g, key);
    if (!kv)
        return BL_ENOENT;
    if (kv->type != BL_GGUF_BOOL)
        return BL_EFORMAT;
    *out = kv->v.b;
    return 0;
}

int bl_gguf_get_str(const bl_gguf_t *g, const char *key, bl_gguf_str_t *out)
{
    const bl_gguf_kv_t *kv = bl_gguf_find(g, key);
    if (!kv)
        return BL_ENOENT;
    if (kv->type != BL_GGUF_STRING)
        return BL_EFORMAT;
    *out = kv->v.s;
    return 0;
}

int bl_gguf_get_arr(const bl_gguf_t *g, const char *key, bl_gguf_vtype_t elem_type,
                    const bl_gguf_kv_t **out)
{
    const bl_gguf_kv_t *kv = bl_gguf_find(g, key);
    if (!kv)
        return BL_ENOENT;
    if (kv->type != BL_GGUF_ARRAY || kv->arr_type != elem_type)
        return BL_EFORMAT;
    *out = kv;
    return 0;
}

int bl_gguf_arr_str(const bl_gguf_t *g, const bl_gguf_kv_t *kv, uint64_t i, bl_gguf_str_t *out)
{
    if (kv < g->kvs || kv >= g->kvs + g->n_kv)
        return BL_EINVAL;
    if (kv->type != BL_GGUF_ARRAY || kv->arr_type != BL_GGUF_STRING)
        return BL_EFORMAT;
    if (i >= kv->arr_n)
        return BL_ERANGE;
    /* Each element's offset was recorded (and its length validated) at open. */
    uint64_t off = g->str_offs[kv - g->kvs][i];
    uint64_t n;
    memcpy(&n, g->base + off, 8);
    out->p = (const char *)g->base + off + 8;
    out->n = n;
    return 0;
}

int bl_gguf_arr_f32(const bl_gguf_kv_t *kv, uint64_t i, float *out)
{
    if (kv->type != BL_GGUF_ARRAY)
        return BL_EFORMAT;
    if (i >= kv->arr_n)
        return BL_ERANGE;
    const uint8_t *p = kv->arr_data;
    if (kv->arr_type == BL_GGUF_F32) {
        memcpy(out, p + i * 4, 4);
    } else if (kv->arr_type == BL_GGUF_F64) {
        double d;
        memcpy(&d, p + i * 8, 8);
        *out = (float)d;
    } else {
        return BL_EFORMAT;
    }
    return 0;
}

int bl_gguf_arr_i64(const bl_gguf_kv_t *kv, uint64_t i, int64_t *out)
{
    if (kv->type != BL_GGUF_ARRAY)
        return BL_EFORMAT;
    if (i >= kv->arr_n)
        return BL_ERANGE;
    const uint8_t *p = kv->arr_data;
    size_t es = bl_gguf_vtype_size(kv->arr_type);
    if (!es || kv->arr_type == BL_GGUF_F32 || kv->arr_type == BL_GGUF_F64)
        return BL_EFORMAT;
    p += i * es;
    if (kv->arr_type == BL_GGUF_U64) {
        uint64_t v = bl_gguf_ld_u(p, 8);
        if (v > (uint64_t)INT64_MAX)
            return BL_ERANGE;
        *out = (int64_t)v;
    } else if (is_signed(kv->arr_type)) {
        *out = bl_gguf_ld_i(p, es);
    } else {
        *out = (int64_t)bl_gguf_ld_u(p, es); /* u8..u32, bool */
    }
    return 0;
}

size_t bl_gguf_n_tensors(const bl_gguf_t *g)
{
    return g->n_tensors;
}

const bl_gguf_tensor_t *bl_gguf_tensor_at(const bl_gguf_t *g, size_t i)
{
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const bl_gguf_tensor_t *bl_gguf_find_tensor(const bl_gguf_t *g, const char *name)
{
    size_t i =
        bl_gguf_index_find(&g->tensor_index, g->tensors, sizeof *g->tensors, name, strlen(name));
    return i == SIZE_MAX ? NULL : &g->tensors[i];
}
