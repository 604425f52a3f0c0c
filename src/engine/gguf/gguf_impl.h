/*
 * Private to the gguf module: the reader's handle and the name index shared
 * by the reader's files. Nothing outside src/engine/gguf/ includes this.
 */
#ifndef BL_ENGINE_GGUF_IMPL_H
#define BL_ENGINE_GGUF_IMPL_H

#include "engine/gguf/gguf.h"

/* Open-addressing hash from a name (key or tensor name) to its index. */
typedef struct {
    size_t *slots; /* index + 1; 0 = empty */
    size_t mask;
} bl_gguf_index_t;

struct bl_gguf {
    const uint8_t *base;
    size_t size;
    bool mapped; /* base is our mmap (unmap on close) */
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset; /* absolute offset of the tensor data section */

    bl_gguf_kv_t *kvs;
    uint64_t **str_offs; /* per kv: offsets of a string array's elements, else NULL */
    size_t n_kv;
    bl_gguf_index_t kv_index;

    bl_gguf_tensor_t *tensors;
    size_t n_tensors;
    bl_gguf_index_t tensor_index;
};

/* Little-endian integers of n bytes (1, 2, 4, 8) at p, widened. */
uint64_t bl_gguf_ld_u(const uint8_t *p, size_t n);
int64_t bl_gguf_ld_i(const uint8_t *p, size_t n);

uint64_t bl_gguf_hash(const char *p, size_t n);
/* Build an index over n names found at base + i*stride (a bl_gguf_str_t).
 * On a duplicate, returns BL_EFORMAT with *dup_a < *dup_b the two indices. */
int bl_gguf_index_build(bl_gguf_index_t *x, const void *base, size_t stride, size_t n,
                        size_t *dup_a, size_t *dup_b);
/* Index of the name, or SIZE_MAX. */
size_t bl_gguf_index_find(const bl_gguf_index_t *x, const void *base, size_t stride,
                          const char *name, size_t len);
void bl_gguf_index_free(bl_gguf_index_t *x);

#endif
