/* libFuzzer target: the GGUF reader on arbitrary bytes. Whatever it accepts
 * must be safe to walk completely: every KV, every array element, every
 * tensor's data. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy so ASan sees any read past the end */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    char err[256];
    bl_gguf_t *g = NULL;
    if (bl_gguf_open_mem(copy, size, &g, err, sizeof err)) {
        if (!memchr(err, 0, sizeof err) || !err[0])
            abort(); /* an error must always say something */
        free(copy);
        return 0;
    }
    uint64_t acc = 0;
    for (size_t i = 0; i < bl_gguf_n_kv(g); i++) {
        const bl_gguf_kv_t *kv = bl_gguf_kv_at(g, i);
        char key[80];
        size_t kn = kv->key.n < sizeof key - 1 ? (size_t)kv->key.n : sizeof key - 1;
        memcpy(key, kv->key.p, kn);
        key[kn] = 0;
        if (kn == kv->key.n && !memchr(key, 0, kn) && bl_gguf_find(g, key) != kv)
            abort(); /* every key (without NULs, short) is findable */
        if (kv->type == BL_GGUF_STRING) {
            for (uint64_t k = 0; k < kv->v.s.n; k++)
                acc += (uint8_t)kv->v.s.p[k];
        } else if (kv->type == BL_GGUF_ARRAY) {
            for (uint64_t k = 0; k < kv->arr_n; k++) {
                bl_gguf_str_t s;
                float f;
                int64_t v;
                if (kv->arr_type == BL_GGUF_STRING) {
                    if (bl_gguf_arr_str(g, kv, k, &s))
                        abort();
                    acc += s.n ? (uint8_t)s.p[s.n - 1] : 0;
                } else if (!bl_gguf_arr_f32(kv, k, &f)) {
                    acc += (uint64_t)(f == f);
                } else if (!bl_gguf_arr_i64(kv, k, &v)) {
                    acc += (uint64_t)v;
                }
            }
        } else {
            acc += kv->v.u;
        }
    }
    for (size_t i = 0; i < bl_gguf_n_tensors(g); i++) {
        const bl_gguf_tensor_t *t = bl_gguf_tensor_at(g, i);
        const uint8_t *p = t->data;
        for (uint64_t k = 0; k < t->size; k++)
            acc += p[k];
    }
    uint32_t u;
    float f;
    bl_gguf_str_t s;
    bool b;
    acc += (uint64_t)bl_gguf_get_u32(g, "general.alignment", &u);
    acc += (uint64_t)bl_gguf_get_f32(g, "llama.rope.freq_base", &f);
    acc += (uint64_t)bl_gguf_get_str(g, "general.architecture", &s);
    acc += (uint64_t)bl_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b);
    acc += (uint64_t)(uintptr_t)bl_gguf_find_tensor(g, "token_embd.weight");
    sink = acc;
    bl_gguf_close(g);
    free(copy);
    return 0;
}
