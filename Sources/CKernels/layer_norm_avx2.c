/*
 * Layer normalisation of contiguous rows over AVX2 lanes (LayerNorm.swift's kernel on the
 * AVX2 and AVX-512 paths). The same arithmetic as the Swift loops it replaces: the mean
 * and the sum of squared deviations accumulated in double (8 lanes converted to two
 * 4-lane double sums), the deviation x − mean taken in float, then y = (x − mean) · 1/σ,
 * times the scale, plus the bias, each a separate float rounding (no fused multiply-add).
 * Only the order of the double sums differs from the Swift loops: each sum runs in four
 * independent accumulators (16 floats per step), since two chains of double additions wait
 * 4 cycles per 8 floats, which made a ViT's 192-wide rows cost ~1.1 cycles per element.
 */
#include "ckernels.h"

#include <immintrin.h>
#include <math.h>

__attribute__((target("avx2,fma")))
static inline double horizontal_sum(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

__attribute__((target("avx2,fma")))
static void normalize_row(const float *x, float *y, ptrdiff_t size, float epsilon, int centered,
                          const float *scale, const float *bias) {
    const ptrdiff_t whole = size / 8 * 8, pairs = size / 16 * 16;
    float mean = 0;
    if (centered) {
        __m256d a = _mm256_setzero_pd(), b = _mm256_setzero_pd(), c = _mm256_setzero_pd(), d = _mm256_setzero_pd();
        for (ptrdiff_t j = 0; j < pairs; j += 16) {
            __m256 v = _mm256_loadu_ps(x + j), w = _mm256_loadu_ps(x + j + 8);
            a = _mm256_add_pd(a, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
            b = _mm256_add_pd(b, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
            c = _mm256_add_pd(c, _mm256_cvtps_pd(_mm256_castps256_ps128(w)));
            d = _mm256_add_pd(d, _mm256_cvtps_pd(_mm256_extractf128_ps(w, 1)));
        }
        if (pairs < whole) {
            __m256 v = _mm256_loadu_ps(x + pairs);
            a = _mm256_add_pd(a, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
            b = _mm256_add_pd(b, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
        }
        double sum = horizontal_sum(_mm256_add_pd(_mm256_add_pd(a, b), _mm256_add_pd(c, d)));
        for (ptrdiff_t j = whole; j < size; j++) sum += (double)x[j];
        mean = (float)(sum / (double)size);
    }
    const __m256 shift = _mm256_set1_ps(mean);
    __m256d a = _mm256_setzero_pd(), b = _mm256_setzero_pd(), c = _mm256_setzero_pd(), d = _mm256_setzero_pd();
    for (ptrdiff_t j = 0; j < pairs; j += 16) {
        __m256 v = _mm256_sub_ps(_mm256_loadu_ps(x + j), shift), w = _mm256_sub_ps(_mm256_loadu_ps(x + j + 8), shift);
        __m256d vl = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), vh = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        __m256d wl = _mm256_cvtps_pd(_mm256_castps256_ps128(w)), wh = _mm256_cvtps_pd(_mm256_extractf128_ps(w, 1));
        a = _mm256_add_pd(a, _mm256_mul_pd(vl, vl));
        b = _mm256_add_pd(b, _mm256_mul_pd(vh, vh));
        c = _mm256_add_pd(c, _mm256_mul_pd(wl, wl));
        d = _mm256_add_pd(d, _mm256_mul_pd(wh, wh));
    }
    if (pairs < whole) {
        __m256 v = _mm256_sub_ps(_mm256_loadu_ps(x + pairs), shift);
        __m256d vl = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), vh = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        a = _mm256_add_pd(a, _mm256_mul_pd(vl, vl));
        b = _mm256_add_pd(b, _mm256_mul_pd(vh, vh));
    }
    double squares = horizontal_sum(_mm256_add_pd(_mm256_add_pd(a, b), _mm256_add_pd(c, d)));
    for (ptrdiff_t j = whole; j < size; j++) {
        double deviation = (double)(x[j] - mean);
        squares += deviation * deviation;
    }
    const float inverse_deviation = (float)(1.0 / sqrt(squares / (double)size + (double)epsilon));
    const __m256 factor = _mm256_set1_ps(inverse_deviation);
    for (ptrdiff_t j = 0; j < whole; j += 8) {
        __m256 value = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + j), shift), factor);
        if (scale) value = _mm256_mul_ps(value, _mm256_loadu_ps(scale + j));
        if (bias) value = _mm256_add_ps(value, _mm256_loadu_ps(bias + j));
        _mm256_storeu_ps(y + j, value);
    }
    for (ptrdiff_t j = whole; j < size; j++) {
        float value = (x[j] - mean) * inverse_deviation;
        if (scale) value *= scale[j];
        if (bias) value += bias[j];
        y[j] = value;
    }
}

__attribute__((target("avx2,fma")))
void restore_layer_norm_rows_avx2(const float *x, float *y, ptrdiff_t rows, ptrdiff_t size, float epsilon,
                                  int centered, const float *scale, const float *bias) {
    for (ptrdiff_t row = 0; row < rows; row++) {
        normalize_row(x + row * size, y + row * size, size, epsilon, centered, scale, bias);
    }
}
