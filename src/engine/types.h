/*
 * Tensor element types. The numbers are ggml's (and so GGUF's) type ids, so a
 * GGUF tensor's type field indexes this table directly. Every type ggml knows
 * has its block geometry here, so the loader can validate tensor sizes even
 * for types the kernels do not (yet) support.
 */
#ifndef BL_ENGINE_TYPES_H
#define BL_ENGINE_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    BL_TYPE_F32 = 0,
    BL_TYPE_F16 = 1,
    BL_TYPE_Q4_0 = 2,
    BL_TYPE_Q4_1 = 3,
    BL_TYPE_Q5_0 = 6,
    BL_TYPE_Q5_1 = 7,
    BL_TYPE_Q8_0 = 8,
    BL_TYPE_Q8_1 = 9,
    BL_TYPE_Q2_K = 10,
    BL_TYPE_Q3_K = 11,
    BL_TYPE_Q4_K = 12,
    BL_TYPE_Q5_K = 13,
    BL_TYPE_Q6_K = 14,
    BL_TYPE_Q8_K = 15,
    BL_TYPE_IQ2_XXS = 16,
    BL_TYPE_IQ2_XS = 17,
    BL_TYPE_IQ3_XXS = 18,
    BL_TYPE_IQ1_S = 19,
    BL_TYPE_IQ4_NL = 20,
    BL_TYPE_IQ3_S = 21,
    BL_TYPE_IQ2_S = 22,
    BL_TYPE_IQ4_XS = 23,
    BL_TYPE_I8 = 24,
    BL_TYPE_I16 = 25,
    BL_TYPE_I32 = 26,
    BL_TYPE_I64 = 27,
    BL_TYPE_F64 = 28,
    BL_TYPE_IQ1_M = 29,
    BL_TYPE_BF16 = 30,
    BL_TYPE_TQ1_0 = 34,
    BL_TYPE_TQ2_0 = 35,
    BL_TYPE_MXFP4 = 39,
    BL_TYPE_COUNT = 40
} bl_type_t;

typedef struct {
    const char *name;      /* "Q4_0"; NULL for ids ggml does not use */
    uint32_t block_elems;  /* elements per block (1 for plain types) */
    uint32_t block_bytes;  /* bytes per block */
} bl_type_info_t;

/* Geometry of a type id, or NULL when the id is not a ggml type. */
const bl_type_info_t *bl_type_info(uint32_t type);

/* Bytes of a row of n elements; false when n is not a whole number of blocks
 * or the size overflows. */
bool bl_type_row_bytes(uint32_t type, uint64_t n, uint64_t *bytes);

#endif
