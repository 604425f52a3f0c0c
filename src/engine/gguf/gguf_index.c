/* Name -> index hash for GGUF keys and tensor names: tensors are looked up by
 * name hundreds of times at load, and a hostile file with many keys must not
 * make duplicate detection quadratic. */
#include <stdlib.h>
#include <string.h>

#include <ballast/errors.h>

#include "engine/gguf/gguf_impl.h"

uint64_t bl_gguf_hash(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static const bl_gguf_str_t *name_at(const void *base, size_t stride, size_t i)
{
    return (const bl_gguf_str_t *)((const char *)base + i * stride);
}

int bl_gguf_index_build(bl_gguf_index_t *x, const void *base, size_t stride, size_t n,
                        size_t *dup_a, size_t *dup_b)
{
    size_t cap = 8;
    while (cap < n * 2) {
        if (cap > SIZE_MAX / 4)
            return BL_ENOMEM;
        cap *= 2;
    }
    x->slots = calloc(cap, sizeof *x->slots);
    if (!x->slots)
        return BL_ENOMEM;
    x->mask = cap - 1;
    for (size_t i = 0; i < n; i++) {
        const bl_gguf_str_t *s = name_at(base, stride, i);
        size_t h = (size_t)bl_gguf_hash(s->p, (size_t)s->n) & x->mask;
        while (x->slots[h]) {
            const bl_gguf_str_t *o = name_at(base, stride, x->slots[h] - 1);
            if (o->n == s->n && !memcmp(o->p, s->p, (size_t)s->n)) {
                *dup_a = x->slots[h] - 1;
                *dup_b = i;
                return BL_EFORMAT;
            }
            h = (h + 1) & x->mask;
        }
        x->slots[h] = i + 1;
    }
    return 0;
}

size_t bl_gguf_index_find(const bl_gguf_index_t *x, const void *base, size_t stride,
                          const char *name, size_t len)
{
    if (!x->slots)
        return SIZE_MAX;
    size_t h = (size_t)bl_gguf_hash(name, len) & x->mask;
    while (x->slots[h]) {
        const bl_gguf_str_t *o = name_at(base, stride, x->slots[h] - 1);
        if (o->n == len && !memcmp(o->p, name, len))
            return x->slots[h] - 1;
        h = (h + 1) & x->mask;
    }
    return SIZE_MAX;
}

void bl_gguf_index_free(bl_gguf_index_t *x)
{
    free(x->slots);
    x->slots = NULL;
    x->mask = 0;
}
