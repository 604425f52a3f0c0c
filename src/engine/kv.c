/* KV cache of one sequence: F16 keys and values, position-major per layer. */
#include <stdlib.h>

#include "engine/model.h"

int bl_kv_init(bl_kv_t *kv, const bl_hparams_t *hp, uint32_t n_ctx)
{
    kv->n_ctx = n_ctx;
    kv->row = (size_t)hp->n_head_kv * hp->head_dim;
    size_t per_layer, total;
    if (__builtin_mul_overflow(kv->row, (size_t)n_ctx, &per_layer) ||
        __builtin_mul_overflow(per_layer, (size_t)hp->n_layer, &total))
        return BL_ENOMEM;
    /* calloc: pages are only touched as positions fill. */
    kv->k = calloc(total, sizeof(uint16_t));
    kv->v = calloc(total, sizeof(uint16_t));
    if (!kv->k || !kv->v) {
        bl_kv_free(kv);
        return BL_ENOMEM;
    }
    return 0;
}

void bl_kv_free(bl_kv_t *kv)
{
    free(kv->k);
    free(kv->v);
    kv->k = kv->v = NULL;
}

uint16_t *bl_kv_k(const bl_kv_t *kv, uint32_t layer, uint32_t pos)
{
    return kv->k + ((size_t)layer * kv->n_ctx + pos) * kv->row;
}

uint16_t *bl_kv_v(const bl_kv_t *kv, uint32_t layer, uint32_t pos)
{
    return kv->v + ((size_t)layer * kv->n_ctx + pos) * kv->row;
}
