/*
 * Internal constructor of the sampler (include/ballast/engine.h has the
 * rest). bl_sampler_new() takes a model only to learn n_vocab; the model code
 * implements it by calling bl_sampler_new_n() with the model's vocabulary size,
 * and tests build samplers without a model through it.
 */
#ifndef BL_ENGINE_SAMPLER_H
#define BL_ENGINE_SAMPLER_H

#include <stdint.h>

#include <ballast/engine.h>

/* BL_EINVAL for n_vocab 0, NaN parameters or repeat_penalty <= 0.
 *
 * Behaviour of the sampler built here, beyond engine.h: the penalties also
 * apply when temperature <= 0 (greedy takes the argmax of the penalised
 * logits, as llama.cpp's chain does); repeat_last_n < 0 means the whole
 * history; top_k <= 0 or >= n_vocab is off; bl_sampler_sample() returns
 * BL_EINVAL (negative) for NULL sampler or logits; history ids outside the
 * vocabulary are ignored. */
int bl_sampler_new_n(uint32_t n_vocab, const bl_sampling_t *s, bl_sampler_t **out);

#endif
