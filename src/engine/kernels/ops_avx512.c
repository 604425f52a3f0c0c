/* The AVX-512 family's table: the types it speeds up. */
#include "engine/kernels/kern_impl.h"

#define MM(name)                                                                            \
    void name(const void *W, size_t row_bytes, size_t n, const void *X, size_t ncols,       \
              float *y, size_t ldy, size_t r0, size_t r1)
MM(bl_q4_0_matmul_avx512_vnni);
MM(bl_q8_0_matmul_avx512_vnni);
MM(bl_f32_matmul_avx512);
MM(bl_f16_matmul_avx512);
MM(bl_bf16_matmul_avx512);
MM(bl_bf16_matmul_avx512_bf16);
MM(bl_q4_k_matmul_avx512_vnni);
MM(bl_q5_0_matmul_avx512_vnni);
MM(bl_q5_1_matmul_avx512_vnni);
MM(bl_q5_k_matmul_avx512_vnni);
MM(bl_q6_k_matmul_avx512_vnni);

void bl_kern_fill_avx512(bl_kern_ops_t ops[BL_KT_COUNT], bool vnni, bool bf16)
{
    ops[BL_KT_F32].matmul = bl_f32_matmul_avx512;
    ops[BL_KT_F16].matmul = bl_f16_matmul_avx512;
    ops[BL_KT_BF16].matmul = bf16 ? bl_bf16_matmul_avx512_bf16 : bl_bf16_matmul_avx512;
    if (vnni) {
        ops[BL_KT_Q4_0].matmul = bl_q4_0_matmul_avx512_vnni;
        ops[BL_KT_Q8_0].matmul = bl_q8_0_matmul_avx512_vnni;
        ops[BL_KT_Q8_0].cols_exact = true;
        ops[BL_KT_Q4_0].cols_exact = true;
        ops[BL_KT_Q4_K].matmul = bl_q4_k_matmul_avx512_vnni;
        ops[BL_KT_Q5_0].matmul = bl_q5_0_matmul_avx512_vnni;
        ops[BL_KT_Q5_1].matmul = bl_q5_1_matmul_avx512_vnni;
        ops[BL_KT_Q5_K].matmul = bl_q5_k_matmul_avx512_vnni;
        ops[BL_KT_Q6_K].matmul = bl_q6_k_matmul_avx512_vnni;
    }
}
