/*
 * GELU and softmax rows over AVX-512 lanes, with GELU and exp as activation_vector.h
 * computes them (GELU is shared with the GEMM epilogue; exp with the AVX2 softmax, so both
 * paths give the same floats).
 */
#include "ckernels.h"
#include "activation_vector.h"

#include <immintrin.h>

__attribute__((target("avx512f")))
static inline __mmask16 tail_mask(ptrdiff_t left) {
    return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
}

__attribute__((target("avx512f")))
void restore_gelu_avx512(float *values, ptrdiff_t count) {
    for (ptrdiff_t i = 0; i < count; i += 16) {
        __mmask16 mask = tail_mask(count - i);
        _mm512_mask_storeu_ps(values + i, mask, restore_gelu16(_mm512_maskz_loadu_ps(mask, values + i)));
    }
}

__attribute__((target("avx512f")))
void restore_softmax_row_avx512(const float *x, float *y, ptrdiff_t length) {
    if (length <= 0) return;
    __m512 maximum = _mm512_set1_ps(-__builtin_inff());
    for (ptrdiff_t i = 0; i < length; i += 16) {
        maximum = _mm512_mask_max_ps(maximum, tail_mask(length - i), maximum, _mm512_maskz_loadu_ps(tail_mask(length - i), x + i));
    }
    const __m512 shift = _mm512_set1_ps(_mm512_reduce_max_ps(maximum));
    __m512 sum = _mm512_setzero_ps();
    for (ptrdiff_t i = 0; i < length; i += 16) {
        __mmask16 mask = tail_mask(length - i);
        __m512 e = restore_exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, x + i), shift));
        sum = _mm512_mask_add_ps(sum, mask, sum, e);
        _mm512_mask_storeu_ps(y + i, mask, e);
    }
    const __m512 scale = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
    for (ptrdiff_t i = 0; i < length; i += 16) {
        __mmask16 mask = tail_mask(length - i);
        _mm512_mask_storeu_ps(y + i, mask, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, y + i), scale));
    }
}
