#include "engine/types.h"

/* Block geometry from the GGUF/ggml specification (ggml.c type_traits). */
static const bl_type_info_t TYPES[BL_TYPE_COUNT] = {
    [BL_TYPE_F32] = {"F32", 1, 4},
    [BL_TYPE_F16] = {"F16", 1, 2},
    [BL_TYPE_Q4_0] = {"Q4_0", 32, 18},
    [BL_TYPE_Q4_1] = {"Q4_1", 32, 20},
    [BL_TYPE_Q5_0] = {"Q5_0", 32, 22},
    [BL_TYPE_Q5_1] = {"Q5_1", 32, 24},
    [BL_TYPE_Q8_0] = {"Q8_0", 32, 34},
    [BL_TYPE_Q8_1] = {"Q8_1", 32, 36},
    [BL_TYPE_Q2_K] = {"Q2_K", 256, 84},
    [BL_TYPE_Q3_K] = {"Q3_K", 256, 110},
    [BL_TYPE_Q4_K] = {"Q4_K", 256, 144},
    [BL_TYPE_Q5_K] = {"Q5_K", 256, 176},
    [BL_TYPE_Q6_K] = {"Q6_K", 256, 210},
    [BL_TYPE_Q8_K] = {"Q8_K", 256, 292},
    [BL_TYPE_IQ2_XXS] = {"IQ2_XXS", 256, 66},
    [BL_TYPE_IQ2_XS] = {"IQ2_XS", 256, 74},
    [BL_TYPE_IQ3_XXS] = {"IQ3_XXS", 256, 98},
    [BL_TYPE_IQ1_S] = {"IQ1_S", 256, 50},
    [BL_TYPE_IQ4_NL] = {"IQ4_NL", 32, 18},
    [BL_TYPE_IQ3_S] = {"IQ3_S", 256, 110},
    [BL_TYPE_IQ2_S] = {"IQ2_S", 256, 82},
    [BL_TYPE_IQ4_XS] = {"IQ4_XS", 256, 136},
    [BL_TYPE_I8] = {"I8", 1, 1},
    [BL_TYPE_I16] = {"I16", 1, 2},
    [BL_TYPE_I32] = {"I32", 1, 4},
    [BL_TYPE_I64] = {"I64", 1, 8},
    [BL_TYPE_F64] = {"F64", 1, 8},
    [BL_TYPE_IQ1_M] = {"IQ1_M", 256, 56},
    [BL_TYPE_BF16] = {"BF16", 1, 2},
    [BL_TYPE_TQ1_0] = {"TQ1_0", 256, 54},
    [BL_TYPE_TQ2_0] = {"TQ2_0", 256, 66},
    [BL_TYPE_MXFP4] = {"MXFP4", 32, 17},
};

const bl_type_info_t *bl_type_info(uint32_t type)
{
    if (type >= BL_TYPE_COUNT || !TYPES[type].name)
        return 0;
    return &TYPES[type];
}

bool bl_type_row_bytes(uint32_t type, uint64_t n, uint64_t *bytes)
{
    const bl_type_info_t *t = bl_type_info(type);
    if (!t || n % t->block_elems)
        return false;
    return !__builtin_mul_overflow(n / t->block_elems, (uint64_t)t->block_bytes, bytes);
}
