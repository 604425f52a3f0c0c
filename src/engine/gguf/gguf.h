/*
 * GGUF v3 reader and writer.
 *
 * The reader maps the file read-only and validates everything before anyone
 * uses it: every length, count, offset, alignment, shape and type is checked
 * against the mapping's size, so a truncated or hostile file yields an error
 * naming the field and its offset, never an out-of-bounds read or a huge
 * allocation. Strings and tensor data point into the mapping (no copies).
 *
 * The writer builds files for tests and benchmarks (random weights at any
 * shape); it is not used by the daemon's serving path.
 */
#ifndef BL_ENGINE_GGUF_H
#define BL_ENGINE_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* GGUF metadata value types (GGUF spec). */
typedef enum {
    BL_GGUF_U8 = 0,
    BL_GGUF_I8 = 1,
    BL_GGUF_U16 = 2,
    BL_GGUF_I16 = 3,
    BL_GGUF_U32 = 4,
    BL_GGUF_I32 = 5,
    BL_GGUF_F32 = 6,
    BL_GGUF_BOOL = 7,
    BL_GGUF_STRING = 8,
    BL_GGUF_ARRAY = 9,
    BL_GGUF_U64 = 10,
    BL_GGUF_I64 = 11,
    BL_GGUF_F64 = 12,
} bl_gguf_vtype_t;

typedef struct {
    const char *p; /* not NUL-terminated: points into the mapping */
    uint64_t n;
} bl_gguf_str_t;

typedef struct {
    bl_gguf_str_t key;
    bl_gguf_vtype_t type;
    /* for ARRAY: */
    bl_gguf_vtype_t arr_type;
    uint64_t arr_n;
    const void *arr_data;   /* raw little-endian elements; for string arrays, use
                               bl_gguf_arr_str() */
    union {
        uint64_t u;
        int64_t i;
        double f;
        bool b;
        bl_gguf_str_t s;
    } v;                    /* scalar value, widened */
    uint64_t offset;        /* file offset of the key, for error messages */
} bl_gguf_kv_t;

#define BL_GGUF_MAX_DIMS 4

typedef struct {
    bl_gguf_str_t name;
    uint32_t type;          /* bl_type_t */
    uint32_t n_dims;
    uint64_t ne[BL_GGUF_MAX_DIMS]; /* ne[0] is the row length (fastest varying) */
    uint64_t n_elems;
    uint64_t offset;        /* absolute file offset of the data */
    uint64_t size;          /* bytes */
    const void *data;       /* into the mapping */
} bl_gguf_tensor_t;

typedef struct bl_gguf bl_gguf_t;

/* Open and validate a file (mmap) or a memory image (not copied; must outlive
 * the handle). On failure err says what and where. */
int bl_gguf_open(const char *path, bl_gguf_t **out, char *err, size_t errlen);
int bl_gguf_open_mem(const void *data, size_t size, bl_gguf_t **out, char *err, size_t errlen);
void bl_gguf_close(bl_gguf_t *g);
/* bl_gguf_open with flags: BL_GGUF_POPULATE asks the kernel to read the whole
 * file ahead (MADV_WILLNEED); off by default so opening is cheap. */
#define BL_GGUF_POPULATE 1u
int bl_gguf_open_ex(const char *path, unsigned flags, bl_gguf_t **out, char *err,
                    size_t errlen);

uint32_t bl_gguf_version(const bl_gguf_t *g);
size_t bl_gguf_file_size(const bl_gguf_t *g);
const void *bl_gguf_base(const bl_gguf_t *g);
uint32_t bl_gguf_alignment(const bl_gguf_t *g);
uint64_t bl_gguf_data_offset(const bl_gguf_t *g); /* absolute offset of the tensor data */

/* Bytes of one scalar of type t (0 for string, array, unknown); its name ("u32"). */
size_t bl_gguf_vtype_size(bl_gguf_vtype_t t);
const char *bl_gguf_vtype_name(bl_gguf_vtype_t t);
/* Does the (not NUL-terminated) string equal the C string? */
bool bl_gguf_str_eq(bl_gguf_str_t s, const char *lit);

size_t bl_gguf_n_kv(const bl_gguf_t *g);
const bl_gguf_kv_t *bl_gguf_kv_at(const bl_gguf_t *g, size_t i);
const bl_gguf_kv_t *bl_gguf_find(const bl_gguf_t *g, const char *key);

/* Typed getters: BL_ENOENT when missing, BL_EFORMAT when of another type
 * (integers of any width convert when the value fits). */
int bl_gguf_get_u32(const bl_gguf_t *g, const char *key, uint32_t *out);
int bl_gguf_get_f32(const bl_gguf_t *g, const char *key, float *out);
int bl_gguf_get_bool(const bl_gguf_t *g, const char *key, bool *out);
int bl_gguf_get_str(const bl_gguf_t *g, const char *key, bl_gguf_str_t *out);
int bl_gguf_get_u64(const bl_gguf_t *g, const char *key, uint64_t *out);
int bl_gguf_get_i64(const bl_gguf_t *g, const char *key, int64_t *out);
/* An array key whose elements are of elem_type (BL_EFORMAT when another type). */
int bl_gguf_get_arr(const bl_gguf_t *g, const char *key, bl_gguf_vtype_t elem_type,
                    const bl_gguf_kv_t **out);
/* Element i of a numeric array, converted (arr_data may be unaligned; these
 * copy). arr_f32 takes f32/f64 arrays; arr_i64 any integer or bool array. */
int bl_gguf_arr_f32(const bl_gguf_kv_t *kv, uint64_t i, float *out);
int bl_gguf_arr_i64(const bl_gguf_kv_t *kv, uint64_t i, int64_t *out);
/* Element i of a string array (bounds-checked; strings were validated at open). */
int bl_gguf_arr_str(const bl_gguf_t *g, const bl_gguf_kv_t *kv, uint64_t i, bl_gguf_str_t *out);

size_t bl_gguf_n_tensors(const bl_gguf_t *g);
const bl_gguf_tensor_t *bl_gguf_tensor_at(const bl_gguf_t *g, size_t i);
const bl_gguf_tensor_t *bl_gguf_find_tensor(const bl_gguf_t *g, const char *name);

/* ---- writer --------------------------------------------------------------- */

typedef struct bl_gguf_writer bl_gguf_writer_t;

int bl_gguf_writer_new(bl_gguf_writer_t **out);
void bl_gguf_writer_free(bl_gguf_writer_t *w);
int bl_gguf_w_u32(bl_gguf_writer_t *w, const char *key, uint32_t v);
int bl_gguf_w_i32(bl_gguf_writer_t *w, const char *key, int32_t v);
int bl_gguf_w_f32(bl_gguf_writer_t *w, const char *key, float v);
int bl_gguf_w_bool(bl_gguf_writer_t *w, const char *key, bool v);
int bl_gguf_w_str(bl_gguf_writer_t *w, const char *key, const char *v);
int bl_gguf_w_u64(bl_gguf_writer_t *w, const char *key, uint64_t v);
/* Any scalar type (not string/array); v points at one element of that type. */
int bl_gguf_w_val(bl_gguf_writer_t *w, const char *key, bl_gguf_vtype_t type, const void *v);
int bl_gguf_w_strn(bl_gguf_writer_t *w, const char *key, const char *v, size_t n);
int bl_gguf_w_arr(bl_gguf_writer_t *w, const char *key, bl_gguf_vtype_t type, const void *data,
                  uint64_t n);
int bl_gguf_w_arr_str(bl_gguf_writer_t *w, const char *key, const char *const *v, uint64_t n);
/* Copy a key (any type) from an opened file, e.g. a real vocabulary. */
int bl_gguf_w_copy_kv(bl_gguf_writer_t *w, const bl_gguf_t *src, const bl_gguf_kv_t *kv);
/* Add a tensor; data (size bytes of `type` for shape ne) is copied. */
int bl_gguf_w_tensor(bl_gguf_writer_t *w, const char *name, uint32_t type, uint32_t n_dims,
                     const uint64_t *ne, const void *data, size_t size);
/* Add a tensor whose data is produced at save time: fill(ctx, dst, size) writes
 * the tensor's size bytes into dst and returns 0 or a BL_E* code. Only one
 * tensor's data is in memory at a time, so multi-GB files stream. ctx must
 * stay valid until save. */
typedef int (*bl_gguf_fill_fn)(void *ctx, void *dst, size_t size);
int bl_gguf_w_tensor_fn(bl_gguf_writer_t *w, const char *name, uint32_t type, uint32_t n_dims,
                        const uint64_t *ne, bl_gguf_fill_fn fill, void *ctx);
/* Write PATH.tmp and rename it to path (atomic). general.alignment, when set
 * as a u32, is honored; otherwise 32. */
int bl_gguf_writer_save(bl_gguf_writer_t *w, const char *path, char *err, size_t errlen);
/* The same file image in memory (malloc'd, caller frees); for tests/fuzz seeds. */
int bl_gguf_writer_to_mem(bl_gguf_writer_t *w, void **out, size_t *size, char *err,
                          size_t errlen);

#endif
