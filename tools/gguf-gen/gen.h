/* gguf-gen: write a GGUF model (llama, qwen2, qwen3, phi3) with random weights. */
#ifndef BL_TOOLS_GGUF_GEN_H
#define BL_TOOLS_GGUF_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/gguf/gguf.h"

/* A model shape. head_dim 0 means n_embd / n_head (then no key_length key is
 * written); ctx_orig is phi3's rope.scaling.original_context_length. */
typedef struct {
    const char *name, *arch;
    uint32_t n_layer, n_embd, n_head, n_head_kv, n_ff, n_vocab, ctx;
    float rope_base, rms_eps;
    int tied;
    uint32_t head_dim, ctx_orig;
    float qk_std; /* std of the q and k projections (and phi3's fused qkv); 0 = 0.02 */
} gen_shape_t;

/* Registers one tensor of ne0 x ne1 random values (mean, std). */
typedef int (*gen_add_fn)(void *ud, const char *name, uint32_t type, uint64_t ne0, uint64_t ne1,
                          float mean, float std);

/* arch.c: llama, qwen2, qwen3, phi3 as llama.cpp's converter writes them. */
bool gen_arch_known(const char *arch);
uint32_t gen_head_dim(const gen_shape_t *s);
size_t gen_arch_n_tensors(const gen_shape_t *s); /* an upper bound */
int gen_arch_write_kv(bl_gguf_writer_t *w, const gen_shape_t *s);
int gen_arch_add_tensors(const gen_shape_t *s, uint32_t type, gen_add_fn add, void *ud);

/* Write a synthetic SentencePiece-style vocabulary of n_vocab tokens
 * ("<unk>", "<s>", "</s>", 256 byte tokens, then "▁a", "a", "▁b", ...) as the
 * tokenizer.* keys llama.cpp reads for tokenizer.ggml.model "llama". */
/* last_control, when not NULL, replaces the last piece as a control token
 * (llama.cpp requires "<|endoftext|>" in a model whose name says phi3). */
int gen_write_synthetic_vocab(bl_gguf_writer_t *w, uint32_t n_vocab, const char *last_control);

#endif
