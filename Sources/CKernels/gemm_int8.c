/*
 * int8 GEMM for weights stored as int8 (convert --weights int8): C[m×n] = dequantised
 * (A_q[m×k] · B_q[k×n]), A the activations quantised per row when the kernel runs, B the
 * weights (a linear weight's Wᵀ, a convolution's filters as columns) packed once per model.
 *
 * Arithmetic (the same integers on every path, so the paths agree bit for bit):
 *   a row i of A:  s_i = max_k |a_ik| / 127,  q_ik = round_half_even(a_ik · (127 / max_k |a_ik|)),
 *                  clamped to [−127, 127] (0 for an all-zero row; a row holding a NaN or an
 *                  infinity gets s_i = NaN, so its outputs are NaN as in f32);
 *   a column j of B: t_j its per-output-channel scale, w_kj int8 in [−127, 127];
 *   acc_ij = Σ_k q_ik · w_kj, exact in int32 (|acc| ≤ 255 · 127 · k < 2³¹ for the VNNI
 *            path's biased operand while k ≤ RESTORE_QGEMM_MAX_DEPTH);
 *   c_ij = (float)acc_ij · (s_i · t_j), two roundings of binary32 (the conversion is exact
 *            while |acc| < 2²⁴), so the paths' results are identical.
 * Against the f32 product the error is at most k · max|a_i| · max|w_j| · (1/127 + 1/4·127²)
 * in the worst case (half a step of each operand per term); random-sign errors add up to
 * about √k times one term's, which is what the end-to-end tests see.
 *
 * B is packed into panels of 16 columns: per quad of k (k rounded up to a multiple of 4,
 * zeros past k), 16 columns × 4 bytes, column-major within the quad — the operand layout
 * of AVX-512 VNNI's vpdpbusd, which the AVX2 and portable paths read the same way — and
 * after all panels one int32 per (padded) column: Σ_k w_kj.
 *
 * AVX-512 VNNI: vpdpbusd multiplies unsigned by signed bytes, so A's bytes are biased to
 * q + 128 (a xor with 0x80) and 128 · Σ_k w_kj is subtracted at the end. 8 rows × 32
 * columns: 16 zmm accumulators, per quad 2 loads of B and 8 broadcasts of A.
 * AVX2: no vpdpbusd, and vpmaddubsw would saturate its int16 pair sums (2 · 255 · 127 >
 * 32767), so both operands are sign-extended to int16 and multiplied with vpmaddwd (exact:
 * |pair sum| ≤ 2 · 127²), 4 rows × 8 columns at a time. Portable: plain loops.
 */
#include "ckernels.h"

#include <immintrin.h>
#include <math.h>
#include <stdint.h>

_Static_assert(sizeof(signed char) == sizeof(int8_t), "int8_t is signed char");
#include <string.h>

enum { PANEL = 16 };

static ptrdiff_t padded_depth(ptrdiff_t k) { return (k + 3) / 4 * 4; }
static ptrdiff_t panel_count(ptrdiff_t n) { return (n + PANEL - 1) / PANEL; }

size_t restore_qgemm_packed_bytes(ptrdiff_t k, ptrdiff_t n) {
    return (size_t)panel_count(n) * PANEL * ((size_t)padded_depth(k) + sizeof(int32_t));
}

void restore_qgemm_pack(ptrdiff_t k, ptrdiff_t n, const int8_t *w, void *packed) {
    ptrdiff_t depth = padded_depth(k), panels = panel_count(n);
    int8_t *out = packed;
    int32_t *sums = (int32_t *)(out + panels * PANEL * depth);
    for (ptrdiff_t p = 0; p < panels; p++) {
        int8_t *panel = out + p * PANEL * depth;
        for (ptrdiff_t j = 0; j < PANEL; j++) {
            ptrdiff_t column = p * PANEL + j;
            int32_t sum = 0;
            for (ptrdiff_t q = 0; q < depth; q++) {
                int8_t value = column < n && q < k ? w[column * k + q] : 0;
                panel[(q / 4) * PANEL * 4 + j * 4 + q % 4] = value;
                sum += value;
            }
            sums[column] = sum;
        }
    }
}

/* Round half to even for |v| < 2²²: adding and subtracting 1.5 · 2²³ leaves the nearest
 * integer, as the SIMD paths' round instructions do, with no libm call per value. */
static inline float round_even(float v) { return (v + 12582912.0f) - 12582912.0f; }

static inline int8_t quantize_one(float v, float inverse) {
    float r = round_even(v * inverse);
    return (int8_t)(r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r);
}

/* The row's scale from its largest magnitude and whether it holds a NaN or an infinity;
 * writes the inverse to use (0 for a zero or non-finite row, whose values become 0). */
static inline float row_scale(float largest, int finite, float *inverse) {
    if (!finite || !(largest < INFINITY)) { *inverse = 0; return NAN; }
    if (largest == 0) { *inverse = 0; return 0; }
    *inverse = 127.0f / largest;
    return largest / 127.0f;
}

__attribute__((target("avx2,fma")))
static void quantize_row_avx2(ptrdiff_t k, const float *row, int8_t *out, float *scale) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 largest = _mm256_setzero_ps(), unordered = _mm256_setzero_ps();
    ptrdiff_t p = 0;
    for (; p + 8 <= k; p += 8) {
        __m256 v = _mm256_loadu_ps(row + p);
        largest = _mm256_max_ps(largest, _mm256_andnot_ps(sign, v));
        unordered = _mm256_or_ps(unordered, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, largest);
    float top = 0;
    int finite = _mm256_movemask_ps(unordered) == 0;
    for (int i = 0; i < 8; i++) top = lanes[i] > top ? lanes[i] : top;
    for (ptrdiff_t t = p; t < k; t++) {
        float a = fabsf(row[t]);
        finite &= !isnan(row[t]);
        top = a > top ? a : top;
    }
    float inverse;
    *scale = row_scale(top, finite, &inverse);
    const __m256 factor = _mm256_set1_ps(inverse), high = _mm256_set1_ps(127.0f), low = _mm256_set1_ps(-127.0f);
    for (p = 0; p + 8 <= k; p += 8) {
        __m256 r = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(row + p), factor), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256i i = _mm256_cvtps_epi32(_mm256_min_ps(high, _mm256_max_ps(low, r)));
        __m128i words = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
        _mm_storel_epi64((__m128i *)(out + p), _mm_packs_epi16(words, words));
    }
    for (; p < k; p++) out[p] = quantize_one(row[p], inverse);
}

void restore_quantize_rows(int level, ptrdiff_t m, ptrdiff_t k, const float *x, ptrdiff_t ldx,
                           int8_t *q, ptrdiff_t ldq, float *scales) {
    ptrdiff_t depth = padded_depth(k);
    for (ptrdiff_t i = 0; i < m; i++) {
        const float *row = x + i * ldx;
        int8_t *out = q + i * ldq;
        if (level >= RESTORE_CPU_AVX2) {
            quantize_row_avx2(k, row, out, scales + i);
        } else {
            float largest = 0;
            int finite = 1;
            for (ptrdiff_t p = 0; p < k; p++) {
                float a = fabsf(row[p]);
                finite &= !isnan(row[p]);
                largest = a > largest ? a : largest;
            }
            float inverse;
            scales[i] = row_scale(largest, finite, &inverse);
            for (ptrdiff_t p = 0; p < k; p++) out[p] = quantize_one(row[p], inverse);
        }
        for (ptrdiff_t p = k; p < depth; p++) out[p] = 0;
    }
}

void restore_quantize_columns(ptrdiff_t k, ptrdiff_t n, const float *x, ptrdiff_t ldx,
                              int8_t *q, ptrdiff_t ldq, float *scales, float *work) {
    /* work: 2n floats, each column's largest magnitude and then its inverse scale; rows of
     * x are read in order, so the loops run along contiguous pixels (and vectorise). */
    float *largest = work, *unordered = work + n;
    for (ptrdiff_t j = 0; j < n; j++) largest[j] = unordered[j] = 0;
    for (ptrdiff_t p = 0; p < k; p++) {
        const float *row = x + p * ldx;
        for (ptrdiff_t j = 0; j < n; j++) {
            float a = fabsf(row[j]);
            largest[j] = a > largest[j] ? a : largest[j];
            unordered[j] += row[j] != row[j] ? 1.0f : 0.0f;
        }
    }
    for (ptrdiff_t j = 0; j < n; j++) {
        float inverse;
        scales[j] = row_scale(largest[j], unordered[j] == 0, &inverse);
        largest[j] = inverse;
    }
    for (ptrdiff_t p = 0; p < k; p++) {
        const float *row = x + p * ldx;
        for (ptrdiff_t j = 0; j < n; j++) q[j * ldq + p] = quantize_one(row[j], largest[j]);
    }
    ptrdiff_t depth = padded_depth(k);
    for (ptrdiff_t j = 0; j < n; j++) for (ptrdiff_t p = k; p < depth; p++) q[j * ldq + p] = 0;
}

/* The portable path: the definition the others must match. */
static void qgemm_portable(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const int8_t *a, ptrdiff_t lda,
                           const float *a_scales, const int8_t *packed, const float *b_scales, float *c, ptrdiff_t ldc) {
    ptrdiff_t depth = padded_depth(k);
    for (ptrdiff_t i = 0; i < m; i++) {
        for (ptrdiff_t j = 0; j < n; j++) {
            const int8_t *panel = packed + (j / PANEL) * PANEL * depth;
            int32_t acc = 0;
            for (ptrdiff_t q = 0; q < depth; q++) {
                acc += (int32_t)a[i * lda + q] * panel[(q / 4) * PANEL * 4 + (j % PANEL) * 4 + q % 4];
            }
            c[i * ldc + j] = (float)acc * (a_scales[i] * b_scales[j]);
        }
    }
}

/* Rows of A per block: 8 × 32-column tiles sweep the block's rows against one pair of
 * panels, which stays in L1 while the block (up to 256 rows × k bytes) stays in L2. */
enum { BLOCK_ROWS = 256 };

__attribute__((target("avx512f,avx512bw,avx512vnni")))
static inline __attribute__((always_inline)) void tile_vnni(int rows, ptrdiff_t depth, const int8_t *a, ptrdiff_t lda,
                                                            const int8_t *panel0, const int8_t *panel1, __m512i acc[8][2]) {
    const __m512i bias = _mm512_set1_epi32((int)0x80808080u);
    for (int i = 0; i < rows; i++) acc[i][0] = acc[i][1] = _mm512_setzero_si512();
    for (ptrdiff_t q = 0; q < depth; q += 4) {
        __m512i b0 = _mm512_load_si512(panel0 + q * PANEL);
        __m512i b1 = _mm512_load_si512(panel1 + q * PANEL);
        for (int i = 0; i < rows; i++) {
            int32_t quad;
            memcpy(&quad, a + i * lda + q, sizeof quad);
            __m512i value = _mm512_xor_si512(_mm512_set1_epi32(quad), bias);
            acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], value, b0);
            acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], value, b1);
        }
    }
}

__attribute__((target("avx512f,avx512bw,avx512vnni")))
static void store_vnni(int rows, ptrdiff_t columns, __m512i acc[8][2], const int32_t *sums, const float *a_scales,
                       const float *b_scales, float *c, ptrdiff_t ldc) {
    for (int half = 0; half < 2; half++) {
        ptrdiff_t left = columns - half * PANEL;
        if (left <= 0) break;
        __mmask16 mask = left >= PANEL ? 0xFFFF : (__mmask16)((1u << left) - 1);
        __m512i correction = _mm512_slli_epi32(_mm512_loadu_si512(sums + half * PANEL), 7);
        __m512 t = _mm512_maskz_loadu_ps(mask, b_scales + half * PANEL);
        for (int i = 0; i < rows; i++) {
            __m512 value = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][half], correction));
            __m512 scale = _mm512_mul_ps(_mm512_set1_ps(a_scales[i]), t);
            _mm512_mask_storeu_ps(c + i * ldc + half * PANEL, mask, _mm512_mul_ps(value, scale));
        }
    }
}

#define VNNI_ROWS(r) case r: tile_vnni(r, depth, a + i * lda, lda, panel0, panel1, acc); break;

__attribute__((target("avx512f,avx512bw,avx512vnni")))
static void qgemm_vnni(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const int8_t *a, ptrdiff_t lda,
                       const float *a_scales, const int8_t *packed, const float *b_scales, float *c, ptrdiff_t ldc) {
    ptrdiff_t depth = padded_depth(k), panels = panel_count(n);
    const int32_t *sums = (const int32_t *)(packed + panels * PANEL * depth);
    __m512i acc[8][2];
    for (ptrdiff_t first = 0; first < m; first += BLOCK_ROWS) {
        ptrdiff_t last = first + BLOCK_ROWS < m ? first + BLOCK_ROWS : m;
        for (ptrdiff_t p = 0; p < panels; p += 2) {
            const int8_t *panel0 = packed + p * PANEL * depth;
            // An odd last panel pairs with itself; its second half is not stored.
            const int8_t *panel1 = p + 1 < panels ? panel0 + PANEL * depth : panel0;
            ptrdiff_t columns = n - p * PANEL < 2 * PANEL ? n - p * PANEL : 2 * PANEL;
            for (ptrdiff_t i = first; i < last; i += 8) {
                int rows = last - i < 8 ? (int)(last - i) : 8;
                switch (rows) {
                    VNNI_ROWS(1) VNNI_ROWS(2) VNNI_ROWS(3) VNNI_ROWS(4)
                    VNNI_ROWS(5) VNNI_ROWS(6) VNNI_ROWS(7) VNNI_ROWS(8)
                }
                store_vnni(rows, columns, acc, sums + p * PANEL, a_scales + i, b_scales + p * PANEL,
                           c + i * ldc + p * PANEL, ldc);
            }
        }
    }
}

/* One half of a panel, 8 columns, for up to 4 rows: 8 accumulators, 2 of B, A's value and
 * a product take 12 of AVX2's 16 ymm registers. A whole panel at once (16 accumulators)
 * spilled accumulators to the stack and shuffled registers in the inner loop. */
__attribute__((target("avx2,fma")))
static inline __attribute__((always_inline)) void tile_avx2(int rows, ptrdiff_t depth, const int8_t *a, ptrdiff_t lda,
                                                            const int8_t *panel, int half, __m256i acc[4][4]) {
    __m256i sum[4][2];
    for (int i = 0; i < rows; i++) sum[i][0] = sum[i][1] = _mm256_setzero_si256();
    for (ptrdiff_t q = 0; q < depth; q += 4) {
        const int8_t *quad = panel + q * PANEL + half * 32;
        // Each ymm: 4 columns × 4 k as int16.
        __m256i b0 = _mm256_cvtepi8_epi16(_mm_load_si128((const __m128i *)quad));
        __m256i b1 = _mm256_cvtepi8_epi16(_mm_load_si128((const __m128i *)(quad + 16)));
        for (int i = 0; i < rows; i++) {
            int32_t bytes;
            memcpy(&bytes, a + i * lda + q, sizeof bytes);
            // The 4 values of the quad as int16, in every 64-bit lane: the 4 bytes broadcast
            // (one load) and the low 16 widened.
            __m256i value = _mm256_cvtepi8_epi16(_mm_set1_epi32(bytes));
            sum[i][0] = _mm256_add_epi32(sum[i][0], _mm256_madd_epi16(b0, value));
            sum[i][1] = _mm256_add_epi32(sum[i][1], _mm256_madd_epi16(b1, value));
        }
    }
    for (int i = 0; i < rows; i++) {
        acc[i][2 * half] = sum[i][0];
        acc[i][2 * half + 1] = sum[i][1];
    }
}

__attribute__((target("avx2,fma")))
static void store_avx2(int rows, ptrdiff_t columns, __m256i acc[4][4], const float *a_scales, const float *b_scales,
                       float *c, ptrdiff_t ldc) {
    float t[PANEL];
    for (ptrdiff_t j = 0; j < PANEL; j++) t[j] = j < columns ? b_scales[j] : 0;
    for (int i = 0; i < rows; i++) {
        // Lanes hold column j's two pair sums side by side: add neighbours.
        __m256i sums01 = _mm256_hadd_epi32(acc[i][0], acc[i][1]);  // columns 0 1 4 5 | 2 3 6 7 per 128-bit half
        __m256i sums23 = _mm256_hadd_epi32(acc[i][2], acc[i][3]);
        // hadd works per 128-bit half: acc[0] holds columns 0–1 (low) and 2–3 (high).
        __m256i lo = _mm256_permute4x64_epi64(sums01, 0xD8);      // columns 0 1 2 3 4 5 6 7
        __m256i hi = _mm256_permute4x64_epi64(sums23, 0xD8);      // columns 8 … 15
        float out[PANEL];
        __m256 scale = _mm256_set1_ps(a_scales[i]);
        _mm256_storeu_ps(out, _mm256_mul_ps(_mm256_cvtepi32_ps(lo), _mm256_mul_ps(scale, _mm256_loadu_ps(t))));
        _mm256_storeu_ps(out + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(hi), _mm256_mul_ps(scale, _mm256_loadu_ps(t + 8))));
        memcpy(c + i * ldc, out, (size_t)(columns < PANEL ? columns : PANEL) * sizeof(float));
    }
}

#define AVX2_ROWS(r) case r: tile_avx2(r, depth, a + i * lda, lda, panel, 0, acc); \
                             tile_avx2(r, depth, a + i * lda, lda, panel, 1, acc); break;

__attribute__((target("avx2,fma")))
static void qgemm_avx2(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const int8_t *a, ptrdiff_t lda,
                       const float *a_scales, const int8_t *packed, const float *b_scales, float *c, ptrdiff_t ldc) {
    ptrdiff_t depth = padded_depth(k), panels = panel_count(n);
    __m256i acc[4][4];
    for (ptrdiff_t first = 0; first < m; first += BLOCK_ROWS) {
        ptrdiff_t last = first + BLOCK_ROWS < m ? first + BLOCK_ROWS : m;
        for (ptrdiff_t p = 0; p < panels; p++) {
            const int8_t *panel = packed + p * PANEL * depth;
            ptrdiff_t columns = n - p * PANEL < PANEL ? n - p * PANEL : PANEL;
            for (ptrdiff_t i = first; i < last; i += 4) {
                int rows = last - i < 4 ? (int)(last - i) : 4;
                switch (rows) { AVX2_ROWS(1) AVX2_ROWS(2) AVX2_ROWS(3) AVX2_ROWS(4) }
                store_avx2(rows, columns, acc, a_scales + i, b_scales + p * PANEL, c + i * ldc + p * PANEL, ldc);
            }
        }
    }
}

int restore_cpu_has_avx512_vnni(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512vnni");
}

void restore_qgemm(int level, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const int8_t *a, ptrdiff_t lda,
                   const float *a_scales, const void *packed_b, const float *b_scales, float *c, ptrdiff_t ldc) {
    if (level >= RESTORE_CPU_AVX512 && restore_cpu_has_avx512_vnni()) {
        qgemm_vnni(m, n, k, a, lda, a_scales, packed_b, b_scales, c, ldc);
    } else if (level >= RESTORE_CPU_AVX2) {
        qgemm_avx2(m, n, k, a, lda, a_scales, packed_b, b_scales, c, ldc);
    } else {
        qgemm_portable(m, n, k, a, lda, a_scales, packed_b, b_scales, c, ldc);
    }
}
