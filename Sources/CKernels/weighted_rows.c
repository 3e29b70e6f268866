/*
 * Weighted sums of rows gathered from anywhere in a tensor: the inner loop of multi-scale
 * deformable attention (DeformableAttention.swift), where each output row of one query and
 * head is the sum over levels, points and the four bilinear corners of a scale times a
 * value token's head channels.
 *
 * The row stays in registers over all taps, a block of up to 64 floats at a time (four
 * independent sums hide the adds' latency), instead of being loaded and stored once per
 * tap. Every variant computes row[c] = (((0 + s₀·x₀[c]) + s₁·x₁[c]) + …) in tap order, a
 * multiply and an add each (no fused multiply-add), so all CPU paths give the same floats.
 */
#include "ckernels.h"


#pragma clang fp contract(off)

typedef float v16 __attribute__((vector_size(64)));
typedef float v16_unaligned __attribute__((vector_size(64), aligned(4)));

#define SUM_BLOCKS(count)                                                                  \
    for (; c + 16 * (count) <= width; c += 16 * (count)) {                                 \
        v16 sum[count];                                                                    \
        for (int i = 0; i < (count); i++) sum[i] = (v16){0};                               \
        for (ptrdiff_t t = 0; t < taps; t++) {                                             \
            const float *source = base + offsets[t] + c;                                   \
            const v16 scale = (v16){0} + scales[t];                                        \
            for (int i = 0; i < (count); i++)                                              \
                sum[i] = sum[i] + scale * *(const v16_unaligned *)(source + 16 * i);       \
        }                                                                                  \
        for (int i = 0; i < (count); i++) *(v16_unaligned *)(row + c + 16 * i) = sum[i];   \
    }

static inline void weighted_row_sum(float *row, ptrdiff_t width, const float *base, const ptrdiff_t *offsets,
                                    const float *scales, ptrdiff_t taps) {
    ptrdiff_t c = 0;
    SUM_BLOCKS(4)
    SUM_BLOCKS(2)
    SUM_BLOCKS(1)
    for (; c < width; c++) {
        float sum = 0;
        for (ptrdiff_t t = 0; t < taps; t++) sum = sum + scales[t] * base[offsets[t] + c];
        row[c] = sum;
    }
}

#define PARAMETERS float *row, ptrdiff_t width, const float *base, const ptrdiff_t *offsets, \
    const float *scales, ptrdiff_t taps
#define ARGUMENTS row, width, base, offsets, scales, taps

static void sum_generic(PARAMETERS) { weighted_row_sum(ARGUMENTS); }
__attribute__((target("avx2,fma"))) static void sum_avx2(PARAMETERS) { weighted_row_sum(ARGUMENTS); }
__attribute__((target("avx512f"))) static void sum_avx512(PARAMETERS) { weighted_row_sum(ARGUMENTS); }

void restore_weighted_row_sum(int level, PARAMETERS) {
    (level >= RESTORE_CPU_AVX512 ? sum_avx512 : level >= RESTORE_CPU_AVX2 ? sum_avx2 : sum_generic)(ARGUMENTS);
}
