/*
 * GELU and softmax rows over AVX2 lanes, with GELU and exp as activation_vector.h computes
 * them (GELU is shared with the GEMM epilogue; exp with the AVX-512 softmax, so both paths
 * give the same floats).
 * AVX2 has no mask registers: a tail shorter than 8 goes through a small buffer padded
 * with a neutral value (0 for GELU, −∞ for softmax, whose exp is 0).
 */
#include "ckernels.h"
#include "activation_vector.h"

#include <immintrin.h>
#include <string.h>

/* libmvec's AVX2 logf, cosf and sinf (glibc ≥ 2.22). */
__attribute__((target("avx2,fma"))) __m256 _ZGVdN8v_logf(__m256);
__attribute__((target("avx2,fma"))) __m256 _ZGVdN8v_cosf(__m256);
__attribute__((target("avx2,fma"))) __m256 _ZGVdN8v_sinf(__m256);

__attribute__((target("avx2,fma")))
void restore_gelu_avx2(float *values, ptrdiff_t count) {
    ptrdiff_t i = 0;
    for (; i + 8 <= count; i += 8) _mm256_storeu_ps(values + i, restore_gelu8(_mm256_loadu_ps(values + i)));
    if (i < count) {
        float tail[8] = {0};
        memcpy(tail, values + i, sizeof(float) * (size_t)(count - i));
        _mm256_storeu_ps(tail, restore_gelu8(_mm256_loadu_ps(tail)));
        memcpy(values + i, tail, sizeof(float) * (size_t)(count - i));
    }
}

__attribute__((target("avx2,fma")))
static inline float horizontal_max(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

__attribute__((target("avx2,fma")))
static inline float horizontal_sum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma")))
void restore_softmax_row_avx2(const float *x, float *y, ptrdiff_t length) {
    if (length <= 0) return;
    const ptrdiff_t whole = length / 8 * 8;
    float tail[8];
    for (int j = 0; j < 8; j++) tail[j] = -__builtin_inff();
    memcpy(tail, x + whole, sizeof(float) * (size_t)(length - whole));
    __m256 maximum = _mm256_loadu_ps(tail);
    for (ptrdiff_t i = 0; i < whole; i += 8) maximum = _mm256_max_ps(maximum, _mm256_loadu_ps(x + i));
    const __m256 shift = _mm256_set1_ps(horizontal_max(maximum));
    __m256 sum = _mm256_setzero_ps();
    for (ptrdiff_t i = 0; i < whole; i += 8) {
        __m256 e = restore_exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), shift));
        sum = _mm256_add_ps(sum, e);
        _mm256_storeu_ps(y + i, e);
    }
    __m256 tail_exp = restore_exp8(_mm256_sub_ps(_mm256_loadu_ps(tail), shift));
    sum = _mm256_add_ps(sum, tail_exp);
    const float inverse = 1.0f / horizontal_sum(sum);
    const __m256 scale = _mm256_set1_ps(inverse);
    for (ptrdiff_t i = 0; i < whole; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), scale));
    _mm256_storeu_ps(tail, _mm256_mul_ps(tail_exp, scale));
    memcpy(y + whole, tail, sizeof(float) * (size_t)(length - whole));
}

__attribute__((target("avx2,fma")))
void restore_gaussian_pairs_avx2(float *values, const float *base, float scale, ptrdiff_t pairs) {
    const __m256 minus_two = _mm256_set1_ps(-2.0f), two_pi = _mm256_set1_ps(2.0f * 3.14159265358979323846f);
    const __m256 factor = _mm256_set1_ps(scale);
    for (ptrdiff_t p = 0; p + 8 <= pairs; p += 8) {
        float *at = values + 2 * p;
        __m256 first = _mm256_loadu_ps(at), second = _mm256_loadu_ps(at + 8);
        /* Per 128-bit lane: u = (u0 u1 u4 u5 | u2 u3 u6 u7), v likewise; unpacking the
         * results interleaves them back in the order they were read. */
        __m256 u = _mm256_shuffle_ps(first, second, _MM_SHUFFLE(2, 0, 2, 0));
        __m256 v = _mm256_shuffle_ps(first, second, _MM_SHUFFLE(3, 1, 3, 1));
        __m256 radius = _mm256_mul_ps(factor, _mm256_sqrt_ps(_mm256_mul_ps(minus_two, _ZGVdN8v_logf(u))));
        __m256 angle = _mm256_mul_ps(two_pi, v);
        __m256 a = _mm256_mul_ps(radius, _ZGVdN8v_cosf(angle)), b = _mm256_mul_ps(radius, _ZGVdN8v_sinf(angle));
        _mm256_storeu_ps(at, _mm256_add_ps(_mm256_loadu_ps(base + 2 * p), _mm256_unpacklo_ps(a, b)));
        _mm256_storeu_ps(at + 8, _mm256_add_ps(_mm256_loadu_ps(base + 2 * p + 8), _mm256_unpackhi_ps(a, b)));
    }
}
