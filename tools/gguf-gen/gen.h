/* gguf-gen: write a llama-architecture GGUF model with random weights. */
#ifndef BL_TOOLS_GGUF_GEN_H
#define BL_TOOLS_GGUF_GEN_H

#include <stdint.h>

#include "engine/gguf/gguf.h"

/* Write a synthetic SentencePiece-style vocabulary of n_vocab tokens
 * ("<unk>", "<s>", "</s>", 256 byte tokens, then "▁a", "a", "▁b", ...) as the
 * tokenizer.* keys llama.cpp reads for tokenizer.ggml.model "llama". */
int gen_write_synthetic_vocab(bl_gguf_writer_t *w, uint32_t n_vocab);

#endif
