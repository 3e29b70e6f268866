/*
 * Activations over AVX-512 lanes, with glibc's vector math library (libmvec) for the
 * transcendental part: its erff is within 4 ulp of the scalar erff (checked over
 * [-10, 10) in steps of 1e-5), and runs 16 lanes per call instead of one.
 */
#include "ckernels.h"

#include <immintrin.h>

/* libmvec's AVX-512 erff (vector ABI name; glibc ≥ 2.35). */
__attribute__((target("avx512f"))) __m512 _ZGVeN16v_erff(__m512);

__attribute__((target("avx512f")))
void restore_gelu_avx512(float *values, ptrdiff_t count) {
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
    const __m512 inverse_sqrt2 = _mm512_set1_ps(0.70710678118654752f);
    for (ptrdiff_t i = 0; i < count; i += 16) {
        ptrdiff_t left = count - i;
        __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        __m512 x = _mm512_maskz_loadu_ps(mask, values + i);
        __m512 erf = _ZGVeN16v_erff(_mm512_mul_ps(x, inverse_sqrt2));
        __m512 result = _mm512_mul_ps(_mm512_mul_ps(half, x), _mm512_add_ps(one, erf));
        _mm512_mask_storeu_ps(values + i, mask, result);
    }
}
