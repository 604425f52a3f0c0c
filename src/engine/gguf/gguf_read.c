/*
 * GGUF reader: parse and validate a whole file image before handing it out.
 *
 * Layout (GGUF v2/v3, little-endian): magic "GGUF", version u32, n_tensors
 * u64, n_kv u64, the KVs (key string, value type u32, value), the tensor infos
 * (name string, n_dims u32, ne[n_dims] u64, type u32, offset u64 relative to
 * the data section), padding to general.alignment, then the tensor data.
 * A string is a u64 length and that many bytes (no NUL).
 *
 * Every read goes through need(), which checks the bytes are there, and every
 * size is computed with overflow checks; counts are bounded by what the bytes
 * left could possibly hold before anything is allocated from them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ballast/errors.h>

#include "engine/gguf/gguf_impl.h"
#include "engine/types.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "GGUF reader assumes a LE host");

#define KEY_MAX_LEN (64u * 1024u)
#define NAME_MAX_LEN (64u * 1024u)
#define ALIGN_MAX (1u << 20)
#define DEFAULT_ALIGNMENT 32u
/* Smallest possible encodings, used to bound counts by the bytes left. */
#define MIN_KV_BYTES (8 + 1 + 4 + 1)
#define MIN_TENSOR_INFO_BYTES (8 + 1 + 4 + 8 + 4 + 8)

typedef struct {
    bl_gguf_t *g;
    const uint8_t *p;
    size_t size;
    size_t pos;
    const char *fname;
    char where[192]; /* context prefix for errors: "key #3 'general.name' at offset 40" */
    size_t where_at; /* the offset that prefix names */
    char *err;
    size_t errlen;
} rd_t;

__attribute__((format(printf, 2, 3))) static int fail(rd_t *r, const char *fmt, ...)
{
    if (!r->err || !r->errlen)
        return BL_EFORMAT;
    int n = snprintf(r->err, r->errlen, "%s: %s%s", r->fname, r->where, r->where[0] ? ": " : "");
    if (n < 0 || (size_t)n >= r->errlen)
        return BL_EFORMAT;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return BL_EFORMAT;
}

static int oom(rd_t *r)
{
    fail(r, "out of memory");
    return BL_ENOMEM;
}

/* A name from the file, made safe to print (hostile bytes become '?'). */
static void printable(char *out, size_t outlen, const char *p, uint64_t n)
{
    size_t j = 0;
    for (uint64_t i = 0; i < n && j + 4 < outlen; i++) {
        unsigned char c = (unsigned char)p[i];
        out[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (n > outlen - 4 && outlen > 4) {
        memcpy(out + j, "...", 3);
        j += 3;
    }
    out[j] = 0;
}

static size_t left(const rd_t *r)
{
    return r->size - r->pos;
}

static int need(rd_t *r, uint64_t n, const char *what)
{
    if (n > left(r))
        return fail(r, "truncated: %s at offset %zu needs %llu bytes, only %zu left", what, r->pos,
                    (unsigned long long)n, left(r));
    return 0;
}

static int rd_u32(rd_t *r, const char *what, uint32_t *v)
{
    int rc = need(r, 4, what);
    if (rc)
        return rc;
    memcpy(v, r->p + r->pos, 4);
    r->pos += 4;
    return 0;
}

static int rd_u64(rd_t *r, const char *what, uint64_t *v)
{
    int rc = need(r, 8, what);
    if (rc)
        return rc;
    memcpy(v, r->p + r->pos, 8);
    r->pos += 8;
    return 0;
}

static int rd_str(rd_t *r, const char *what, uint64_t max, bl_gguf_str_t *s)
{
    size_t at = r->pos;
    uint64_t n;
    int rc = rd_u64(r, what, &n);
    if (rc)
        return rc;
    if (n > left(r) && at == r->where_at)
        return fail(r, "string length %llu exceeds the %zu bytes left", (unsigned long long)n,
                    left(r));
    if (n > left(r))
        return fail(r, "%s at offset %zu: string length %llu exceeds the %zu bytes left", what, at,
                    (unsigned long long)n, left(r));
    if (n > max)
        return fail(r, "%s at offset %zu: string length %llu exceeds the limit of %llu", what, at,
                    (unsigned long long)n, (unsigned long long)max);
    s->p = (const char *)r->p + r->pos;
    s->n = n;
    r->pos += (size_t)n;
    return 0;
}

static size_t vtype_size(uint32_t t)
{
    switch (t) {
    case BL_GGUF_U8:
    case BL_GGUF_I8:
    case BL_GGUF_BOOL:
        return 1;
    case BL_GGUF_U16:
    case BL_GGUF_I16:
        return 2;
    case BL_GGUF_U32:
    case BL_GGUF_I32:
    case BL_GGUF_F32:
        return 4;
    case BL_GGUF_U64:
    case BL_GGUF_I64:
    case BL_GGUF_F64:
        return 8;
    }
    return 0;
}

size_t bl_gguf_vtype_size(bl_gguf_vtype_t t)
{
    return vtype_size((uint32_t)t);
}

const char *bl_gguf_vtype_name(bl_gguf_vtype_t t)
{
    static const char *const names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                        "bool", "string", "array", "u64", "i64", "f64"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

uint64_t bl_gguf_ld_u(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    memcpy(&v, p, n); /* little-endian host */
    return v;
}

int64_t bl_gguf_ld_i(const uint8_t *p, size_t n)
{
    unsigned shift = (unsigned)(64 - 8 * n);
    return (int64_t)(bl_gguf_ld_u(p, n) << shift) >> shift; /* sign-extend */
}

/* Decode a scalar at p into kv->v, widened. */
static void scalar(bl_gguf_kv_t *kv, uint32_t t, const uint8_t *p)
{
    size_t n = vtype_size(t);
    if (t == BL_GGUF_U8 || t == BL_GGUF_U16 || t == BL_GGUF_U32 || t == BL_GGUF_U64) {
        kv->v.u = bl_gguf_ld_u(p, n);
    } else if (t == BL_GGUF_I8 || t == BL_GGUF_I16 || t == BL_GGUF_I32 || t == BL_GGUF_I64) {
        kv->v.i = bl_gguf_ld_i(p, n);
    } else if (t == BL_GGUF_F32) {
        float f;
        memcpy(&f, p, 4);
        kv->v.f = f;
    } else if (t == BL_GGUF_F64) {
        memcpy(&kv->v.f, p, 8);
    } else if (t == BL_GGUF_BOOL) {
        kv->v.b = p[0] != 0;
    }
}

static int read_array(rd_t *r, bl_gguf_kv_t *kv, uint64_t **offs_out)
{
    uint32_t et;
    int rc = rd_u32(r, "array element type", &et);
    if (rc)
        return rc;
    if (et == BL_GGUF_ARRAY)
        return fail(r, "nested arrays (array of array) are not supported");
    if (et != BL_GGUF_STRING && !vtype_size(et))
        return fail(r, "unknown array element type %u at offset %zu", et, r->pos - 4);
    size_t at = r->pos;
    uint64_t n;
    if ((rc = rd_u64(r, "array count", &n)))
        return rc;
    kv->arr_type = (bl_gguf_vtype_t)et;
    kv->arr_n = n;
    kv->arr_data = r->p + r->pos;
    if (et != BL_GGUF_STRING) {
        size_t es = vtype_size(et);
        if (n > left(r) / es)
            return fail(r,
                        "array count %llu at offset %zu: %llu-byte elements exceed the %zu "
                        "bytes left",
                        (unsigned long long)n, at, (unsigned long long)es, left(r));
        r->pos += (size_t)(n * es);
        return 0;
    }
    if (n > left(r) / 8)
        return fail(r,
                    "string array count %llu at offset %zu exceeds what the %zu bytes left "
                    "could hold",
                    (unsigned long long)n, at, left(r));
    /* n <= bytes left / 8, so this table is at most the size of the file. */
    uint64_t *offs = malloc((size_t)(n ? n : 1) * sizeof *offs);
    if (!offs)
        return oom(r);
    for (uint64_t i = 0; i < n; i++) {
        bl_gguf_str_t s;
        offs[i] = r->pos;
        if ((rc = rd_str(r, "array string", UINT64_MAX, &s))) {
            free(offs);
            return rc;
        }
    }
    *offs_out = offs;
    return 0;
}

static int read_kv(rd_t *r, size_t i)
{
    bl_gguf_t *g = r->g;
    bl_gguf_kv_t *kv = &g->kvs[i];
    memset(kv, 0, sizeof *kv);
    g->str_offs[i] = NULL;
    kv->offset = r->pos;
    r->where_at = r->pos;
    snprintf(r->where, sizeof r->where, "key #%zu at offset %zu", i, r->pos);
    int rc = rd_str(r, "key", KEY_MAX_LEN, &kv->key);
    if (rc)
        return rc;
    if (!kv->key.n)
        return fail(r, "empty key");
    char name[80];
    printable(name, sizeof name, kv->key.p, kv->key.n);
    snprintf(r->where, sizeof r->where, "key #%zu '%s' at offset %llu", i, name,
             (unsigned long long)kv->offset);
    r->where_at = SIZE_MAX;
    uint32_t t;
    if ((rc = rd_u32(r, "value type", &t)))
        return rc;
    kv->type = (bl_gguf_vtype_t)t;
    if (t == BL_GGUF_STRING)
        return rd_str(r, "string value", UINT64_MAX, &kv->v.s);
    if (t == BL_GGUF_ARRAY)
        return read_array(r, kv, &g->str_offs[i]);
    size_t sz = vtype_size(t);
    if (!sz)
        return fail(r, "unknown value type %u at offset %zu", t, r->pos - 4);
    if ((rc = need(r, sz, "value")))
        return rc;
    scalar(kv, t, r->p + r->pos);
    r->pos += sz;
    return 0;
}

static int read_alignment(rd_t *r)
{
    bl_gguf_t *g = r->g;
    g->alignment = DEFAULT_ALIGNMENT;
    size_t i = bl_gguf_index_find(&g->kv_index, g->kvs, sizeof *g->kvs, "general.alignment",
                                  strlen("general.alignment"));
    if (i == SIZE_MAX)
        return 0;
    const bl_gguf_kv_t *kv = &g->kvs[i];
    snprintf(r->where, sizeof r->where, "key 'general.alignment' at offset %llu",
             (unsigned long long)kv->offset);
    if (kv->type != BL_GGUF_U32)
        return fail(r, "must be a u32, not %s", bl_gguf_vtype_name(kv->type));
    if (!kv->v.u || (kv->v.u & (kv->v.u - 1)) || kv->v.u > ALIGN_MAX)
        return fail(r, "alignment %llu is not a power of two in 1..%u", (unsigned long long)kv->v.u,
                    ALIGN_MAX);
    g->alignment = (uint32_t)kv->v.u;
    r->where[0] = 0;
    return 0;
}

static int read_tensor_info(rd_t *r, size_t i)
{
    bl_gguf_tensor_t *t = &r->g->tensors[i];
    memset(t, 0, sizeof *t);
    size_t at = r->where_at = r->pos;
    snprintf(r->where, sizeof r->where, "tensor #%zu at offset %zu", i, at);
    int rc = rd_str(r, "tensor name", NAME_MAX_LEN, &t->name);
    if (rc)
        return rc;
    if (!t->name.n)
        return fail(r, "empty tensor name");
    char name[80];
    printable(name, sizeof name, t->name.p, t->name.n);
    snprintf(r->where, sizeof r->where, "tensor #%zu '%s' at offset %zu", i, name, at);
    r->where_at = SIZE_MAX;
    if ((rc = rd_u32(r, "n_dims", &t->n_dims)))
        return rc;
    if (t->n_dims < 1 || t->n_dims > BL_GGUF_MAX_DIMS)
        return fail(r, "n_dims %u at offset %zu is not in 1..%d", t->n_dims, r->pos - 4,
                    BL_GGUF_MAX_DIMS);
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if ((rc = rd_u64(r, "ne", &t->ne[d])))
            return rc;
        if (t->ne[d] == 0)
            return fail(r, "ne[%u] is 0 at offset %zu", d, r->pos - 8);
        if (__builtin_mul_overflow(n, t->ne[d], &n) || n > (uint64_t)INT64_MAX)
            return fail(r, "ne[%u] = %llu at offset %zu: element count overflows", d,
                        (unsigned long long)t->ne[d], r->pos - 8);
    }
    for (uint32_t d = t->n_dims; d < BL_GGUF_MAX_DIMS; d++)
        t->ne[d] = 1;
    t->n_elems = n;
    if ((rc = rd_u32(r, "tensor type", &t->type)))
        return rc;
    const bl_type_info_t *ti = bl_type_info(t->type);
    if (!ti)
        return fail(r, "unknown tensor type %u at offset %zu", t->type, r->pos - 4);
    uint64_t row;
    if (!bl_type_row_bytes(t->type, t->ne[0], &row))
        return fail(r, "ne[0] = %llu is not a multiple of the %s block size %u",
                    (unsigned long long)t->ne[0], ti->name, ti->block_elems);
    if (__builtin_mul_overflow(row, n / t->ne[0], &t->size))
        return fail(r, "tensor size overflows");
    return rd_u64(r, "tensor offset", &t->offset);
}

typedef struct {
    uint64_t start, end;
    size_t i;
} span_t;

static int cmp_span(const void *a, const void *b)
{
    const span_t *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Place each tensor in the data section and check none leaves the file or
 * overlaps another. */
static int place_tensors(rd_t *r)
{
    bl_gguf_t *g = r->g;
    r->where[0] = 0;
    uint64_t data = (r->pos + (uint64_t)g->alignment - 1) / g->alignment * g->alignment;
    g->data_offset = data;
    if (!g->n_tensors)
        return 0;
    if (data > r->size)
        return fail(r,
                    "tensor data section at offset %llu (after padding to %u) starts past "
                    "the end of the file (size %zu)",
                    (unsigned long long)data, g->alignment, r->size);
    span_t *sp = malloc(g->n_tensors * sizeof *sp);
    if (!sp)
        return oom(r);
    int rc = 0;
    char name[80], prev[80];
    for (size_t i = 0; i < g->n_tensors && !rc; i++) {
        bl_gguf_tensor_t *t = &g->tensors[i];
        printable(name, sizeof name, t->name.p, t->name.n);
        uint64_t abs, end;
        if (t->offset % g->alignment)
            rc = fail(r, "tensor '%s' offset %llu is not a multiple of the alignment %u", name,
                      (unsigned long long)t->offset, g->alignment);
        else if (__builtin_add_overflow(data, t->offset, &abs) || abs > r->size ||
                 __builtin_add_overflow(abs, t->size, &end) || end > r->size)
            rc = fail(r, "tensor '%s' offset %llu + size %llu exceeds file size %zu", name,
                      (unsigned long long)(data + t->offset), (unsigned long long)t->size, r->size);
        else {
            t->offset = abs;
            t->data = r->p + abs;
            sp[i] = (span_t){abs, end, i};
        }
    }
    if (!rc) {
        qsort(sp, g->n_tensors, sizeof *sp, cmp_span);
        for (size_t k = 1; k < g->n_tensors; k++) {
            if (sp[k].start < sp[k - 1].end) {
                const bl_gguf_tensor_t *a = &g->tensors[sp[k - 1].i], *b = &g->tensors[sp[k].i];
                printable(prev, sizeof prev, a->name.p, a->name.n);
                printable(name, sizeof name, b->name.p, b->name.n);
                rc = fail(r,
                          "tensor '%s' at offset %llu overlaps tensor '%s' (offset %llu, "
                          "size %llu)",
                          name, (unsigned long long)b->offset, prev, (unsigned long long)a->offset,
                          (unsigned long long)a->size);
                break;
            }
        }
    }
    free(sp);
    return rc;
}

static int parse(rd_t *r)
{
    bl_gguf_t *g = r->g;
    char magic[4];
    int rc = need(r, 4, "magic");
    if (rc)
        return rc;
    memcpy(magic, r->p, 4);
    if (memcmp(magic, "GGUF", 4)) {
        char m[16];
        printable(m, sizeof m, magic, 4);
        return fail(r, "bad magic '%s' at offset 0: not a GGUF file", m);
    }
    r->pos = 4;
    if ((rc = rd_u32(r, "version", &g->version)))
        return rc;
    if (g->version == 1)
        return fail(r, "GGUF version 1 is not supported (it used 32-bit counts); re-convert "
                       "the model with a current llama.cpp");
    if (g->version == 0x03000000u || g->version == 0x02000000u)
        return fail(r, "big-endian GGUF files are not supported");
    if (g->version != 2 && g->version != 3)
        return fail(r, "unsupported GGUF version %u (expected 2 or 3)", g->version);
    uint64_t n_tensors, n_kv;
    if ((rc = rd_u64(r, "n_tensors", &n_tensors)) || (rc = rd_u64(r, "n_kv", &n_kv)))
        return rc;
    if (n_tensors > left(r) / MIN_TENSOR_INFO_BYTES)
        return fail(r, "n_tensors %llu at offset 8 exceeds what the %zu bytes left could hold",
                    (unsigned long long)n_tensors, left(r));
    if (n_kv > left(r) / MIN_KV_BYTES)
        return fail(r, "n_kv %llu at offset 16 exceeds what the %zu bytes left could hold",
                    (unsigned long long)n_kv, left(r));

    /* The tables grow as entries are actually read, so memory follows the
     * bytes present, never the count the file claims. */
    size_t cap_kv = 0, cap_t = 0;
    for (size_t i = 0; i < n_kv; i++) {
        if (i == cap_kv) {
            cap_kv = cap_kv ? cap_kv * 2 : 64;
            bl_gguf_kv_t *kvs = realloc(g->kvs, cap_kv * sizeof *kvs);
            if (kvs)
                g->kvs = kvs;
            uint64_t **so = realloc(g->str_offs, cap_kv * sizeof *so);
            if (so)
                g->str_offs = so;
            if (!kvs || !so)
                return oom(r);
        }
        rc = read_kv(r, i);
        g->n_kv = i + 1; /* so close() frees this kv's string offsets */
        if (rc)
            return rc;
    }
    r->where[0] = 0;
    size_t da, db;
    rc = bl_gguf_index_build(&g->kv_index, g->kvs, sizeof *g->kvs, g->n_kv, &da, &db);
    if (rc == BL_EFORMAT) {
        char name[80];
        printable(name, sizeof name, g->kvs[db].key.p, g->kvs[db].key.n);
        return fail(r, "duplicate key '%s': key #%zu at offset %llu repeats key #%zu", name, db,
                    (unsigned long long)g->kvs[db].offset, da);
    }
    if (rc)
        return oom(r);
    if ((rc = read_alignment(r)))
        return rc;
    for (size_t i = 0; i < n_tensors; i++) {
        if (i == cap_t) {
            cap_t = cap_t ? cap_t * 2 : 64;
            bl_gguf_tensor_t *t = realloc(g->tensors, cap_t * sizeof *t);
            if (!t)
                return oom(r);
            g->tensors = t;
        }
        if ((rc = read_tensor_info(r, i)))
            return rc;
        g->n_tensors = i + 1;
    }
    r->where[0] = 0;
    rc = bl_gguf_index_build(&g->tensor_index, g->tensors, sizeof *g->tensors, g->n_tensors, &da,
                             &db);
    if (rc == BL_EFORMAT) {
        char name[80];
        printable(name, sizeof name, g->tensors[db].name.p, g->tensors[db].name.n);
        return fail(r, "duplicate tensor name '%s': tensor #%zu repeats tensor #%zu", name, db, da);
    }
    if (rc)
        return oom(r);
    return place_tensors(r);
}

static int open_image(const uint8_t *p, size_t size, bool mapped, const char *fname,
                      bl_gguf_t **out, char *err, size_t errlen)
{
    *out = NULL;
    bl_gguf_t *g = calloc(1, sizeof *g);
    if (!g) {
        if (mapped)
            munmap((void *)p, size);
        return BL_ENOMEM;
    }
    g->base = p;
    g->size = size;
    g->mapped = mapped;
    rd_t r = {.g = g,
              .p = p,
              .size = size,
              .fname = fname,
              .err = err,
              .errlen = errlen,
              .where_at = SIZE_MAX};
    int rc = parse(&r);
    if (rc) {
        bl_gguf_close(g);
        return rc;
    }
    *out = g;
    return 0;
}

int bl_gguf_open_mem(const void *data, size_t size, bl_gguf_t **out, char *err, size_t errlen)
{
    if (!data && size)
        return BL_EINVAL;
    static const uint8_t empty[1];
    return open_image(data ? data : empty, size, false, "<memory>", out, err, errlen);
}

int bl_gguf_open_ex(const char *path, unsigned flags, bl_gguf_t **out, char *err, size_t errlen)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", path, strerror(e));
        return e == ENOENT ? BL_ENOENT : BL_EIO;
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (err && errlen)
            snprintf(err, errlen, "%s: not a regular file", path);
        rc = BL_EIO;
        goto done;
    }
    size_t size = (size_t)st.st_size;
    if (size == 0) {
        if (err && errlen)
            snprintf(err, errlen, "%s: file is empty", path);
        rc = BL_EFORMAT;
        goto done;
    }
    void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
        if (err && errlen)
            snprintf(err, errlen, "%s: mmap of %zu bytes failed: %s", path, size, strerror(errno));
        rc = BL_EIO;
        goto done;
    }
    if (flags & BL_GGUF_POPULATE)
        madvise(p, size, MADV_WILLNEED);
    rc = open_image(p, size, true, path, out, err, errlen);
done:
    close(fd);
    return rc;
}

int bl_gguf_open(const char *path, bl_gguf_t **out, char *err, size_t errlen)
{
    return bl_gguf_open_ex(path, 0, out, err, errlen);
}

void bl_gguf_close(bl_gguf_t *g)
{
    if (!g)
        return;
    if (g->str_offs)
        for (size_t i = 0; i < g->n_kv; i++)
            free(g->str_offs[i]);
    free(g->str_offs);
    free(g->kvs);
    free(g->tensors);
    bl_gguf_index_free(&g->kv_index);
    bl_gguf_index_free(&g->tensor_index);
    if (g->mapped)
        munmap((void *)g->base, g->size);
    free(g);
}
