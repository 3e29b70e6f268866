/*
 * Single-precision GEMM with an AVX2 + FMA micro-kernel: the AVX-512 kernel's scheme
 * (gemm_avx512.c) on 256-bit registers.
 *
 * C is computed in 6×16 tiles held in 12 ymm accumulators; per step of k the tile loads 16
 * values of B (2 ymm) and broadcasts 6 of A, 12 FMAs against 8 loads, which leaves the two
 * FMA pipes the bottleneck (2 loads per cycle). 6 × 2 + 2 + 1 = 15 of the 16 ymm registers.
 * B is packed per KC×NC block into 16-column panels (zeros past n), or once per model for
 * constant weights; A is read in place (gemm_blocked.h has the loop). Edge tiles narrower than 16 columns, or with fewer
 * than 6 rows, go through a small buffer so that the loop stays the same. A linear layer's
 * bias and activation are applied before the store (the epilogue of ckernels.h).
 */
#include "ckernels.h"
#include "activation_vector.h"
#include "gemm_blocked.h"

#include <immintrin.h>
#include <string.h>

enum {
    TILE_ROWS = 6,        /* MR */
    TILE_COLUMNS = 16,    /* NR: 2 ymm */
    BLOCK_DEPTH = 256,    /* KC: 6×256 floats of A = 6 KB, in L1 */
    BLOCK_COLUMNS = 256,  /* NC: 256×256 floats of packed B = 256 KB, half the 512 KB L2 */
};

/* The epilogue on one vector of a finished tile: bias (when `bias`), then the activation. */
__attribute__((target("avx2,fma"), always_inline))
static inline __m256 finish(__m256 value, const float *bias, __m256 bias_values, int activation) {
    if (bias != NULL) value = _mm256_add_ps(value, bias_values);
    /* max(0, x) returns its second operand, x, when x is NaN. */
    if (activation == RESTORE_EPILOGUE_RELU) return _mm256_max_ps(_mm256_setzero_ps(), value);
    if (activation == RESTORE_EPILOGUE_GELU) return restore_gelu8(value);
    return value;
}

/*
 * Stores the `rows` real rows of a finished tile: alpha times the accumulators (plus C when
 * `accumulate`), then the epilogue; a tile narrower than 16 columns goes through a buffer
 * (the bias too, zero-padded). Always inlined with a constant `activation`, so that only
 * GELU's copy, which calls erff, spills the accumulators.
 */
__attribute__((target("avx2,fma"), always_inline))
static inline void store_tile(const int activation, __m256 acc[TILE_ROWS][2], int rows, ptrdiff_t columns,
                              float alpha, float *c, ptrdiff_t ldc, int accumulate, const float *bias) {
    const __m256 scale = _mm256_set1_ps(alpha);
    const int full = columns >= TILE_COLUMNS;
    float edge[TILE_COLUMNS], edge_bias[TILE_COLUMNS] = {0};
    if (!full && bias != NULL) memcpy(edge_bias, bias, sizeof(float) * (size_t)columns);
    const float *tile_bias = full ? bias : edge_bias;
    __m256 bias0 = _mm256_setzero_ps(), bias1 = _mm256_setzero_ps();
    if (bias != NULL) bias0 = _mm256_loadu_ps(tile_bias), bias1 = _mm256_loadu_ps(tile_bias + 8);
    /* Unrolled with a constant i, as gemm_avx512.c does, so that the accumulators stay in
     * registers: a loop to `rows` indexes them, and the compiler kept all twelve in memory. */
#pragma clang loop unroll(full)
    for (int i = 0; i < TILE_ROWS; i++) {
        if (i >= rows) continue;
        float *row = c + i * ldc;
        float *target = full ? row : edge;
        if (!full) {
            for (ptrdiff_t j = 0; j < TILE_COLUMNS; j++) edge[j] = accumulate && j < columns ? row[j] : 0;
        }
        __m256 r0 = alpha == 1.0f ? acc[i][0] : _mm256_mul_ps(acc[i][0], scale);
        __m256 r1 = alpha == 1.0f ? acc[i][1] : _mm256_mul_ps(acc[i][1], scale);
        if (accumulate) {
            r0 = _mm256_add_ps(r0, _mm256_loadu_ps(target));
            r1 = _mm256_add_ps(r1, _mm256_loadu_ps(target + 8));
        }
        _mm256_storeu_ps(target, finish(r0, bias, bias0, activation));
        _mm256_storeu_ps(target + 8, finish(r1, bias, bias1, activation));
        if (!full) memcpy(row, edge, sizeof(float) * (size_t)columns);
    }
}

/* C[6×16] (+)= alpha · A[6×depth] · panel[depth×16], then the epilogue; `rows` ≤ 6 of A are
 * real (the others repeat the last and are not stored). */
__attribute__((target("avx2,fma")))
static void tile_6x16(int rows, ptrdiff_t columns, ptrdiff_t depth, const float *a, ptrdiff_t lda,
                      const float *panel, float alpha, float *c, ptrdiff_t ldc, int accumulate,
                      const float *bias, int activation) {
    const float *a_rows[TILE_ROWS];
    for (int i = 0; i < TILE_ROWS; i++) a_rows[i] = a + (i < rows ? i : rows - 1) * lda;
    __m256 acc[TILE_ROWS][2];
#pragma clang loop unroll(full)
    for (int i = 0; i < TILE_ROWS; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (ptrdiff_t p = 0; p < depth; p++) {
        const float *bp = panel + p * TILE_COLUMNS;
        __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);
#pragma clang loop unroll(full)
        for (int i = 0; i < TILE_ROWS; i++) {
            __m256 value = _mm256_broadcast_ss(a_rows[i] + p);
            acc[i][0] = _mm256_fmadd_ps(value, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(value, b1, acc[i][1]);
        }
    }
    switch (activation) {
    case RESTORE_EPILOGUE_RELU: store_tile(RESTORE_EPILOGUE_RELU, acc, rows, columns, alpha, c, ldc, accumulate, bias); break;
    case RESTORE_EPILOGUE_GELU: store_tile(RESTORE_EPILOGUE_GELU, acc, rows, columns, alpha, c, ldc, accumulate, bias); break;
    default: store_tile(RESTORE_EPILOGUE_IDENTITY, acc, rows, columns, alpha, c, ldc, accumulate, bias);
    }
}

size_t restore_sgemm_avx2_packed_count(ptrdiff_t k, ptrdiff_t n) {
    ptrdiff_t panels = (n + TILE_COLUMNS - 1) / TILE_COLUMNS;
    return (size_t)(panels * TILE_COLUMNS * k);
}

void restore_sgemm_avx2_pack(ptrdiff_t k, ptrdiff_t n, const float *b, ptrdiff_t ldb, int transposed, float *packed) {
    restore_gemm_pack_panels(k, n, b, ldb, transposed, TILE_COLUMNS, packed);
}

__attribute__((target("avx2,fma")))
static int multiply(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *a, ptrdiff_t lda,
                    const float *b, ptrdiff_t ldb, int transposed_b, const float *prepacked,
                    float alpha, int accumulate, const float *bias, int activation, float *c, ptrdiff_t ldc) {
    return restore_gemm_blocked(tile_6x16, TILE_ROWS, TILE_COLUMNS, BLOCK_DEPTH, BLOCK_COLUMNS, m, n, k, a, lda,
                                b, ldb, transposed_b, prepacked, alpha, accumulate, bias, activation, c, ldc);
}

int restore_sgemm_avx2(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha,
                       const float *a, ptrdiff_t lda,
                       const float *b, ptrdiff_t ldb, int transposed_b,
                       int accumulate, float *c, ptrdiff_t ldc) {
    return multiply(m, n, k, a, lda, b, ldb, transposed_b, NULL, alpha, accumulate, NULL, RESTORE_EPILOGUE_IDENTITY,
                    c, ldc);
}

void restore_sgemm_avx2_packed(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *a, ptrdiff_t lda,
                               const float *packed_b, const float *bias, int activation, float *c, ptrdiff_t ldc) {
    multiply(m, n, k, a, lda, NULL, 0, 0, packed_b, 1.0f, 0, bias, activation, c, ldc);
}
