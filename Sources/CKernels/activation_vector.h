/*
 * GELU (and, below, softmax's exp) on one vector of lanes, shared by the activation passes (activation_avx512.c,
 * activation_avx2.c) and the GEMM epilogues (gemm_avx512.c, gemm_avx2.c), so that a GELU
 * fused into a product rounds exactly as the separate pass does: x/2 · (1 + erf(x/√2)).
 *
 * erf is a rational function, erf(x) ≈ x · P(x²) / Q(x²) with P of degree 5 and Q of
 * degree 6, on x clamped to ±4 and the result clamped to [−1, 1] (at ±4 the function gives
 * 1.0000001, so erf is exactly ±1 from there on, as it is in float from ±3.92). The
 * coefficients were fitted for this file (iteratively reweighted least squares on 40 000
 * points of [0, 3.92] against double-precision erf, then rounded to float): evaluated in
 * float with FMAs the error is at most 3.4e-7 absolute, 5 ulp, and 2.6e-7 relative for
 * |x| < 0.5 (checked at 2·10⁶ points of [−6, 6]); GELU's error is at most 6.9e-7 absolute. glibc's vector erff (libmvec, ≤ 4 ulp), which this replaced,
 * took ~40 cycles per 16 lanes, 4.3 % of the ViT restorer's time; this is 11 FMAs and a
 * division. NaN stays NaN (min and max return their second operand, x, for NaN).
 */
#ifndef RESTORE_ACTIVATION_VECTOR_H
#define RESTORE_ACTIVATION_VECTOR_H

#include <immintrin.h>

#define RESTORE_ERF_LIMIT 4.0f
#define RESTORE_ERF_P0 1.1283791840570923f
#define RESTORE_ERF_P1 0.19226267277580553f
#define RESTORE_ERF_P2 0.055679447040294816f
#define RESTORE_ERF_P3 0.004202392146337843f
#define RESTORE_ERF_P4 0.0004112288111318142f
#define RESTORE_ERF_P5 6.8077866520344765e-06f
#define RESTORE_ERF_Q1 0.5037219301156802f
#define RESTORE_ERF_Q2 0.11725083361861258f
#define RESTORE_ERF_Q3 0.016247548898959487f
#define RESTORE_ERF_Q4 0.0014161558096290878f
#define RESTORE_ERF_Q5 7.269782297655383e-05f
#define RESTORE_ERF_Q6 2.608932478811426e-07f

/*
 * One definition of erf and GELU for a vector of LANES floats, instantiated below for each
 * width (W is the intrinsics' width prefix, 512 or 256): the two widths run the same
 * operations in the same order and so give the same floats.
 */
#define RESTORE_DEFINE_GELU(LANES, W, TARGET)                                                   \
    __attribute__((target(TARGET), always_inline))                                              \
    static inline __m##W restore_erf##LANES(__m##W x) {                                          \
        x = _mm##W##_max_ps(_mm##W##_set1_ps(-RESTORE_ERF_LIMIT),                               \
                            _mm##W##_min_ps(_mm##W##_set1_ps(RESTORE_ERF_LIMIT), x));            \
        const __m##W t = _mm##W##_mul_ps(x, x);                                                  \
        __m##W p = _mm##W##_fmadd_ps(_mm##W##_set1_ps(RESTORE_ERF_P5), t, _mm##W##_set1_ps(RESTORE_ERF_P4)); \
        p = _mm##W##_fmadd_ps(p, t, _mm##W##_set1_ps(RESTORE_ERF_P3));                          \
        p = _mm##W##_fmadd_ps(p, t, _mm##W##_set1_ps(RESTORE_ERF_P2));                          \
        p = _mm##W##_fmadd_ps(p, t, _mm##W##_set1_ps(RESTORE_ERF_P1));                          \
        p = _mm##W##_fmadd_ps(p, t, _mm##W##_set1_ps(RESTORE_ERF_P0));                          \
        __m##W q = _mm##W##_fmadd_ps(_mm##W##_set1_ps(RESTORE_ERF_Q6), t, _mm##W##_set1_ps(RESTORE_ERF_Q5)); \
        q = _mm##W##_fmadd_ps(q, t, _mm##W##_set1_ps(RESTORE_ERF_Q4));                          \
        q = _mm##W##_fmadd_ps(q, t, _mm##W##_set1_ps(RESTORE_ERF_Q3));                          \
        q = _mm##W##_fmadd_ps(q, t, _mm##W##_set1_ps(RESTORE_ERF_Q2));                          \
        q = _mm##W##_fmadd_ps(q, t, _mm##W##_set1_ps(RESTORE_ERF_Q1));                          \
        q = _mm##W##_fmadd_ps(q, t, _mm##W##_set1_ps(1.0f));                                    \
        const __m##W erf = _mm##W##_div_ps(_mm##W##_mul_ps(x, p), q);                            \
        return _mm##W##_max_ps(_mm##W##_set1_ps(-1.0f), _mm##W##_min_ps(_mm##W##_set1_ps(1.0f), erf)); \
    }                                                                                           \
    __attribute__((target(TARGET), always_inline))                                              \
    static inline __m##W restore_gelu##LANES(__m##W x) {                                         \
        __m##W erf = restore_erf##LANES(_mm##W##_mul_ps(x, _mm##W##_set1_ps(0.70710678118654752f))); \
        return _mm##W##_mul_ps(_mm##W##_mul_ps(_mm##W##_set1_ps(0.5f), x),                       \
                               _mm##W##_add_ps(_mm##W##_set1_ps(1.0f), erf));                    \
    }

RESTORE_DEFINE_GELU(16, 512, "avx512f")
RESTORE_DEFINE_GELU(8, 256, "avx2,fma")

/*
 * exp for softmax (arguments ≤ 0: a row minus its maximum), inline, so that a softmax row
 * is one loop of FMAs instead of a call of libmvec's expf per vector (that call was 2.3 %
 * of the ViT restorer's time and its softmax rows another 1.9 %).
 *
 * exp(x) = 2ⁿ · e^r with n = round(x·log₂e) and r = x − n·ln2 in [−ln2/2, ln2/2], ln2 split
 * in two (0.693359375 has few enough bits that n·ln2_hi is exact for |n| < 2¹⁴), and
 * e^r ≈ 1 + r + r²·P(r) with P of degree 4, fitted for this file (iteratively reweighted
 * least squares on 20 001 Chebyshev points of the interval against double exp, relative
 * error 3.1e-9, coefficients then rounded to float). 2ⁿ is built in the exponent field.
 * Evaluated in float (4·10⁶ points of [−87, 0]) the result is within 9.7e-8 relative
 * (1.6 ulp) of exp. x is clamped to [−88, 88]: from −88 on n = −127, whose exponent field
 * is 0, so the result is exactly 0 (exp(−88) is 6e-39; the absolute error below −87 is at
 * most 8.3e-39), and −∞ (a masked score) gives 0. NaN stays NaN: max and min return their
 * second operand, x, for NaN, and NaN times the scale is NaN. Both widths run the same
 * operations and give the same floats.
 */
#define RESTORE_EXP_LOG2E 1.4426950408889634f
#define RESTORE_EXP_LN2_HI 0.693359375f
#define RESTORE_EXP_LN2_LO (-2.12194440054690583e-4f)
#define RESTORE_EXP_P2 0.4999999403953552f
#define RESTORE_EXP_P3 0.1666652113199234f
#define RESTORE_EXP_P4 0.04166828468441963f
#define RESTORE_EXP_P5 0.008368710055947304f
#define RESTORE_EXP_P6 0.0013820341555401683f

#define RESTORE_DEFINE_EXP(LANES, W, TARGET, ROUND, INT)                                        \
    __attribute__((target(TARGET), always_inline))                                              \
    static inline __m##W restore_exp##LANES(__m##W x) {                                          \
        x = _mm##W##_max_ps(_mm##W##_set1_ps(-88.0f), _mm##W##_min_ps(_mm##W##_set1_ps(88.0f), x)); \
        const __m##W n = ROUND(_mm##W##_mul_ps(x, _mm##W##_set1_ps(RESTORE_EXP_LOG2E)));          \
        __m##W r = _mm##W##_fnmadd_ps(n, _mm##W##_set1_ps(RESTORE_EXP_LN2_HI), x);              \
        r = _mm##W##_fnmadd_ps(n, _mm##W##_set1_ps(RESTORE_EXP_LN2_LO), r);                     \
        __m##W p = _mm##W##_fmadd_ps(_mm##W##_set1_ps(RESTORE_EXP_P6), r, _mm##W##_set1_ps(RESTORE_EXP_P5)); \
        p = _mm##W##_fmadd_ps(p, r, _mm##W##_set1_ps(RESTORE_EXP_P4));                          \
        p = _mm##W##_fmadd_ps(p, r, _mm##W##_set1_ps(RESTORE_EXP_P3));                          \
        p = _mm##W##_fmadd_ps(p, r, _mm##W##_set1_ps(RESTORE_EXP_P2));                          \
        p = _mm##W##_fmadd_ps(p, r, _mm##W##_set1_ps(1.0f));                                    \
        p = _mm##W##_fmadd_ps(p, r, _mm##W##_set1_ps(1.0f));                                    \
        const __m##W##i biased = INT##_add_epi32(_mm##W##_cvtps_epi32(n), INT##_set1_epi32(127)); \
        return _mm##W##_mul_ps(p, _mm##W##_castsi##W##_ps(INT##_slli_epi32(biased, 23)));         \
    }

#define RESTORE_ROUND16(v) _mm512_roundscale_ps((v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define RESTORE_ROUND8(v) _mm256_round_ps((v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
RESTORE_DEFINE_EXP(16, 512, "avx512f", RESTORE_ROUND16, _mm512)
RESTORE_DEFINE_EXP(8, 256, "avx2,fma", RESTORE_ROUND8, _mm256)

#endif
