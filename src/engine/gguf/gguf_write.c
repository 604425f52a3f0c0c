/*
 * GGUF v3 writer, for tests, benchmarks and the model generator.
 *
 * KVs are serialized as they are added; tensors are kept as descriptions
 * (with a copy of their data, or a callback that produces it at save time so
 * a multi-GB file never sits in memory). save() lays the file out as GGUF v3:
 * header, KVs, tensor infos, padding to the alignment, then each tensor's data
 * padded to the alignment.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ballast/errors.h>

#include "engine/gguf/gguf.h"
#include "engine/types.h"

#define DEFAULT_ALIGNMENT 32u

typedef struct {
    uint8_t *p;
    size_t n, cap;
} wbuf_t;

typedef struct {
    char *name;
    uint32_t type, n_dims;
    uint64_t ne[BL_GGUF_MAX_DIMS];
    uint64_t size;
    void *data; /* owned copy, or NULL when fill is set */
    bl_gguf_fill_fn fill;
    void *ctx;
} wtensor_t;

struct bl_gguf_writer {
    wbuf_t kv; /* serialized KVs */
    char **keys;
    size_t n_kv, cap_kv;
    wtensor_t *t;
    size_t n_t, cap_t;
    uint32_t alignment;
};

static int wb_put(wbuf_t *b, const void *p, size_t n)
{
    if (n > SIZE_MAX - b->n)
        return BL_ENOMEM;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) {
            if (cap > SIZE_MAX / 2)
                return BL_ENOMEM;
            cap *= 2;
        }
        uint8_t *q = realloc(b->p, cap);
        if (!q)
            return BL_ENOMEM;
        b->p = q;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, p, n);
    b->n += n;
    return 0;
}

static int wb_u32(wbuf_t *b, uint32_t v)
{
    return wb_put(b, &v, 4);
}

static int wb_u64(wbuf_t *b, uint64_t v)
{
    return wb_put(b, &v, 8);
}

static int wb_str(wbuf_t *b, const char *s, uint64_t n)
{
    int rc = wb_u64(b, n);
    return rc ? rc : wb_put(b, s, (size_t)n);
}

int bl_gguf_writer_new(bl_gguf_writer_t **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return BL_ENOMEM;
    (*out)->alignment = DEFAULT_ALIGNMENT;
    return 0;
}

void bl_gguf_writer_free(bl_gguf_writer_t *w)
{
    if (!w)
        return;
    free(w->kv.p);
    for (size_t i = 0; i < w->n_kv; i++)
        free(w->keys[i]);
    free(w->keys);
    for (size_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->t);
    free(w);
}

/* Start a KV: check the key is new, remember it, write key and type. */
static int kv_begin(bl_gguf_writer_t *w, const char *key, bl_gguf_vtype_t type)
{
    if (!key || !*key)
        return BL_EINVAL;
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->keys[i], key))
            return BL_EINVAL;
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 32;
        char **k = realloc(w->keys, cap * sizeof *k);
        if (!k)
            return BL_ENOMEM;
        w->keys = k;
        w->cap_kv = cap;
    }
    char *dup = strdup(key);
    if (!dup)
        return BL_ENOMEM;
    int rc = wb_str(&w->kv, key, strlen(key));
    if (!rc)
        rc = wb_u32(&w->kv, (uint32_t)type);
    if (rc) {
        free(dup);
        return rc;
    }
    w->keys[w->n_kv++] = dup;
    return 0;
}

int bl_gguf_w_val(bl_gguf_writer_t *w, const char *key, bl_gguf_vtype_t type, const void *v)
{
    size_t sz = bl_gguf_vtype_size(type);
    if (!sz || !key)
        return BL_EINVAL;
    uint32_t align = 0;
    if (!strcmp(key, "general.alignment")) {
        if (type != BL_GGUF_U32)
            return BL_EINVAL;
        memcpy(&align, v, 4);
        if (!align || (align & (align - 1)) || align > (1u << 20))
            return BL_EINVAL;
    }
    size_t mark = w->kv.n;
    int rc = kv_begin(w, key, type);
    if (rc)
        return rc;
    if ((rc = wb_put(&w->kv, v, sz))) {
        w->kv.n = mark;
        free(w->keys[--w->n_kv]);
        return rc;
    }
    if (align)
        w->alignment = align;
    return 0;
}

int bl_gguf_w_u32(bl_gguf_writer_t *w, const char *key, uint32_t v)
{
    return bl_gguf_w_val(w, key, BL_GGUF_U32, &v);
}

int bl_gguf_w_i32(bl_gguf_writer_t *w, const char *key, int32_t v)
{
    return bl_gguf_w_val(w, key, BL_GGUF_I32, &v);
}

int bl_gguf_w_u64(bl_gguf_writer_t *w, const char *key, uint64_t v)
{
    return bl_gguf_w_val(w, key, BL_GGUF_U64, &v);
}

int bl_gguf_w_f32(bl_gguf_writer_t *w, const char *key, float v)
{
    return bl_gguf_w_val(w, key, BL_GGUF_F32, &v);
}

int bl_gguf_w_bool(bl_gguf_writer_t *w, const char *key, bool v)
{
    uint8_t b = v ? 1 : 0;
    return bl_gguf_w_val(w, key, BL_GGUF_BOOL, &b);
}

int bl_gguf_w_strn(bl_gguf_writer_t *w, const char *key, const char *v, size_t n)
{
    size_t mark = w->kv.n;
    int rc = kv_begin(w, key, BL_GGUF_STRING);
    if (rc)
        return rc;
    if ((rc = wb_str(&w->kv, v, n))) {
        w->kv.n = mark;
        free(w->keys[--w->n_kv]);
    }
    return rc;
}

int bl_gguf_w_str(bl_gguf_writer_t *w, const char *key, const char *v)
{
    return bl_gguf_w_strn(w, key, v, strlen(v));
}

int bl_gguf_w_arr(bl_gguf_writer_t *w, const char *key, bl_gguf_vtype_t type, const void *data,
                  uint64_t n)
{
    size_t es = bl_gguf_vtype_size(type), bytes;
    if (!es || __builtin_mul_overflow((size_t)n, es, &bytes) || (n && !data))
        return BL_EINVAL;
    size_t mark = w->kv.n;
    int rc = kv_begin(w, key, BL_GGUF_ARRAY);
    if (rc)
        return rc;
    if ((rc = wb_u32(&w->kv, (uint32_t)type)) || (rc = wb_u64(&w->kv, n)) ||
        (rc = wb_put(&w->kv, data, bytes))) {
        w->kv.n = mark;
        free(w->keys[--w->n_kv]);
    }
    return rc;
}

int bl_gguf_w_arr_str(bl_gguf_writer_t *w, const char *key, const char *const *v, uint64_t n)
{
    size_t mark = w->kv.n;
    int rc = kv_begin(w, key, BL_GGUF_ARRAY);
    if (rc)
        return rc;
    rc = wb_u32(&w->kv, BL_GGUF_STRING);
    if (!rc)
        rc = wb_u64(&w->kv, n);
    for (uint64_t i = 0; i < n && !rc; i++)
        rc = wb_str(&w->kv, v[i], strlen(v[i]));
    if (rc) {
        w->kv.n = mark;
        free(w->keys[--w->n_kv]);
    }
    return rc;
}

/* Re-encode a widened scalar in its own width. */
static void narrow(const bl_gguf_kv_t *kv, uint8_t out[8])
{
    switch (kv->type) {
    case BL_GGUF_U8: {
        uint8_t v = (uint8_t)kv->v.u;
        memcpy(out, &v, 1);
        break;
    }
    case BL_GGUF_I8: {
        int8_t v = (int8_t)kv->v.i;
        memcpy(out, &v, 1);
        break;
    }
    case BL_GGUF_U16: {
        uint16_t v = (uint16_t)kv->v.u;
        memcpy(out, &v, 2);
        break;
    }
    case BL_GGUF_I16: {
        int16_t v = (int16_t)kv->v.i;
        memcpy(out, &v, 2);
        break;
    }
    case BL_GGUF_U32: {
        uint32_t v = (uint32_t)kv->v.u;
        memcpy(out, &v, 4);
        break;
    }
    case BL_GGUF_I32: {
        int32_t v = (int32_t)kv->v.i;
        memcpy(out, &v, 4);
        break;
    }
    case BL_GGUF_F32: {
        float v = (float)kv->v.f;
        memcpy(out, &v, 4);
        break;
    }
    case BL_GGUF_BOOL:
        out[0] = kv->v.b ? 1 : 0;
        break;
    case BL_GGUF_U64:
        memcpy(out, &kv->v.u, 8);
        break;
    case BL_GGUF_I64:
        memcpy(out, &kv->v.i, 8);
        break;
    case BL_GGUF_F64:
        memcpy(out, &kv->v.f, 8);
        break;
    default:
        break;
    }
}

int bl_gguf_w_copy_kv(bl_gguf_writer_t *w, const bl_gguf_t *src, const bl_gguf_kv_t *kv)
{
    char *key = strndup(kv->key.p, (size_t)kv->key.n);
    if (!key)
        return BL_ENOMEM;
    int rc;
    if (kv->type == BL_GGUF_STRING) {
        rc = bl_gguf_w_strn(w, key, kv->v.s.p, (size_t)kv->v.s.n);
    } else if (kv->type != BL_GGUF_ARRAY) {
        uint8_t raw[8];
        narrow(kv, raw);
        rc = bl_gguf_w_val(w, key, kv->type, raw);
    } else if (kv->arr_type != BL_GGUF_STRING) {
        rc = bl_gguf_w_arr(w, key, kv->arr_type, kv->arr_data, kv->arr_n);
    } else {
        size_t mark = w->kv.n;
        rc = kv_begin(w, key, BL_GGUF_ARRAY);
        if (!rc) {
            rc = wb_u32(&w->kv, BL_GGUF_STRING);
            if (!rc)
                rc = wb_u64(&w->kv, kv->arr_n);
            for (uint64_t i = 0; i < kv->arr_n && !rc; i++) {
                bl_gguf_str_t s;
                rc = bl_gguf_arr_str(src, kv, i, &s);
                if (!rc)
                    rc = wb_str(&w->kv, s.p, s.n);
            }
            if (rc) {
                w->kv.n = mark;
                free(w->keys[--w->n_kv]);
            }
        }
    }
    free(key);
    return rc;
}

static int add_tensor(bl_gguf_writer_t *w, const char *name, uint32_t type, uint32_t n_dims,
                      const uint64_t *ne, wtensor_t **out)
{
    if (!name || !*name || n_dims < 1 || n_dims > BL_GGUF_MAX_DIMS)
        return BL_EINVAL;
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name))
            return BL_EINVAL;
    wtensor_t t = {.type = type, .n_dims = n_dims};
    uint64_t rows = 1, row;
    for (uint32_t d = 0; d < BL_GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (!t.ne[d] || (d && __builtin_mul_overflow(rows, t.ne[d], &rows)))
            return BL_EINVAL;
    }
    if (!bl_type_row_bytes(type, t.ne[0], &row) || __builtin_mul_overflow(row, rows, &t.size))
        return BL_EINVAL;
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? w->cap_t * 2 : 64;
        wtensor_t *p = realloc(w->t, cap * sizeof *p);
        if (!p)
            return BL_ENOMEM;
        w->t = p;
        w->cap_t = cap;
    }
    if (!(t.name = strdup(name)))
        return BL_ENOMEM;
    w->t[w->n_t] = t;
    *out = &w->t[w->n_t++];
    return 0;
}

int bl_gguf_w_tensor(bl_gguf_writer_t *w, const char *name, uint32_t type, uint32_t n_dims,
                     const uint64_t *ne, const void *data, size_t size)
{
    wtensor_t *t;
    int rc = add_tensor(w, name, type, n_dims, ne, &t);
    if (rc)
        return rc;
    if (t->size != size || !(t->data = malloc(size ? size : 1))) {
        rc = t->size != size ? BL_EINVAL : BL_ENOMEM;
        free(t->name);
        w->n_t--;
        return rc;
    }
    memcpy(t->data, data, size);
    return 0;
}

int bl_gguf_w_tensor_fn(bl_gguf_writer_t *w, const char *name, uint32_t type, uint32_t n_dims,
                        const uint64_t *ne, bl_gguf_fill_fn fill, void *ctx)
{
    if (!fill)
        return BL_EINVAL;
    wtensor_t *t;
    int rc = add_tensor(w, name, type, n_dims, ne, &t);
    if (rc)
        return rc;
    t->fill = fill;
    t->ctx = ctx;
    return 0;
}

/* Output goes to a FILE or to a memory buffer. */
typedef struct {
    FILE *f;
    wbuf_t *mem;
    uint64_t pos;
} sink_t;

static int emit(sink_t *s, const void *p, size_t n)
{
    s->pos += n;
    if (s->mem)
        return wb_put(s->mem, p, n);
    return fwrite(p, 1, n, s->f) == n ? 0 : BL_EIO;
}

static int pad(sink_t *s, uint32_t align)
{
    static const uint8_t zeros[64];
    size_t n = (size_t)((align - s->pos % align) % align);
    int rc = 0;
    while (n && !rc) {
        size_t k = n < sizeof zeros ? n : sizeof zeros;
        rc = emit(s, zeros, k);
        n -= k;
    }
    return rc;
}

static uint64_t align_up(uint64_t v, uint32_t a)
{
    return (v + a - 1) / a * a;
}

static int write_all(bl_gguf_writer_t *w, sink_t *s)
{
    wbuf_t hdr = {0};
    int rc = wb_put(&hdr, "GGUF", 4);
    if (!rc)
        rc = wb_u32(&hdr, 3);
    if (!rc)
        rc = wb_u64(&hdr, w->n_t);
    if (!rc)
        rc = wb_u64(&hdr, w->n_kv);
    if (!rc)
        rc = wb_put(&hdr, w->kv.p, w->kv.n);
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t && !rc; i++) {
        const wtensor_t *t = &w->t[i];
        rc = wb_str(&hdr, t->name, strlen(t->name));
        if (!rc)
            rc = wb_u32(&hdr, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims && !rc; d++)
            rc = wb_u64(&hdr, t->ne[d]);
        if (!rc)
            rc = wb_u32(&hdr, t->type);
        if (!rc)
            rc = wb_u64(&hdr, off);
        off = align_up(off + t->size, w->alignment);
    }
    if (!rc)
        rc = emit(s, hdr.p, hdr.n);
    free(hdr.p);
    if (!rc && w->n_t)
        rc = pad(s, w->alignment);
    void *scratch = NULL;
    size_t scratch_cap = 0;
    for (size_t i = 0; i < w->n_t && !rc; i++) {
        const wtensor_t *t = &w->t[i];
        const void *data = t->data;
        if (t->fill) {
            if (t->size > scratch_cap) {
                free(scratch);
                scratch_cap = (size_t)t->size;
                if (!(scratch = malloc(scratch_cap))) {
                    rc = BL_ENOMEM;
                    break;
                }
            }
            if ((rc = t->fill(t->ctx, scratch, (size_t)t->size)))
                break;
            data = scratch;
        }
        rc = emit(s, data, (size_t)t->size);
        if (!rc)
            rc = pad(s, w->alignment);
    }
    free(scratch);
    return rc;
}

int bl_gguf_writer_to_mem(bl_gguf_writer_t *w, void **out, size_t *size, char *err, size_t errlen)
{
    wbuf_t mem = {0};
    sink_t s = {.mem = &mem};
    int rc = write_all(w, &s);
    if (rc) {
        free(mem.p);
        if (err && errlen)
            snprintf(err, errlen, "building GGUF image: %s", bl_strerror(rc));
        return rc;
    }
    *out = mem.p;
    *size = mem.n;
    return 0;
}

int bl_gguf_writer_save(bl_gguf_writer_t *w, const char *path, char *err, size_t errlen)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp)
        return BL_ENOMEM;
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    int rc = 0;
    char *iobuf = NULL;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        rc = BL_EIO;
        goto done;
    }
    if ((iobuf = malloc(1 << 20)))
        setvbuf(f, iobuf, _IOFBF, 1 << 20);
    sink_t s = {.f = f};
    rc = write_all(w, &s);
    if (fflush(f) || fsync(fileno(f)))
        rc = rc ? rc : BL_EIO;
    if (fclose(f))
        rc = rc ? rc : BL_EIO;
    f = NULL;
    if (!rc && rename(tmp, path))
        rc = BL_EIO;
    if (rc) {
        if (err && errlen)
            snprintf(err, errlen, "%s: writing failed: %s (%s)", path, bl_strerror(rc),
                     strerror(errno));
        unlink(tmp);
    }
done:
    free(iobuf);
    free(tmp);
    return rc;
}
