/*
 * Single-precision GEMM with an AVX-512 micro-kernel.
 *
 * Why not OpenBLAS here: the environment pins OpenBLAS to its Haswell (AVX2) kernels,
 * ~105 GFLOP/s per core on this machine against ~200 with 512-bit FMAs, and every
 * cblas_sgemm call packs A and B, which dominates the many thin products of Winograd
 * convolution (36 GEMMs per block of 32–96 tiles).
 *
 * Scheme (GotoBLAS without packing A): C is computed in 8×48 tiles held in 24 zmm
 * accumulators; per step of k the tile broadcasts 8 values of A (one per row, embedded
 * broadcasts from memory) and loads 48 values of B (3 zmm), 24 FMAs against 11 loads, so
 * the two FMA pipes, not the loads, set the pace. B (or Bᵀ) is packed per block of KC×NC into
 * contiguous 48-column panels so that the block stays in L2 without cache-set conflicts
 * from large row strides, and so that edge columns are zeros rather than masked loads;
 * the 8×KC slice of A stays in L1 while the panels of the block pass by. Constant B
 * (weights of linear layers) is packed once per model instead (restore_sgemm_avx512_pack):
 * linear layers with few rows would otherwise pack all of W for each small product.
 * A linear layer's bias and activation are applied to the accumulators before the store
 * (the epilogue of ckernels.h): one pass over C instead of two, and for GELU one call of
 * the vector erff per 16 values while they are still in registers.
 */
#include "ckernels.h"

#include "activation_vector.h"
#include "gemm_blocked.h"

#include <immintrin.h>
#include <string.h>

enum {
    TILE_ROWS = 8,        /* MR: rows of A broadcast per step */
    TILE_COLUMNS = 48,    /* NR: 3 zmm of B per step */
    BLOCK_DEPTH = 256,    /* KC: 8×256 floats of A = 8 KB, in L1 */
    BLOCK_COLUMNS = 384,  /* NC: 256×384 floats of packed B = 384 KB, in the 1 MB L2 */
};

static inline __mmask16 column_mask(ptrdiff_t columns) {
    if (columns <= 0) return 0;
    return columns >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << columns) - 1);
}

/*
 * Stores the `rows` real rows of a finished tile: alpha times the accumulators (plus C when
 * `accumulate`), then the epilogue. Always inlined with a constant `vectors` and
 * `activation`, so that only GELU's copy, which calls erff, spills the accumulators.
 */
__attribute__((target("avx512f"), always_inline))
static inline void store_tile(const int vectors, const int activation, __m512 acc[TILE_ROWS][3], int rows,
                              ptrdiff_t columns, float alpha, float *c, ptrdiff_t ldc, int accumulate,
                              const float *bias) {
    __mmask16 masks[3] = {column_mask(columns), column_mask(columns - 16), column_mask(columns - 32)};
    const __m512 scale = _mm512_set1_ps(alpha);
    __m512 bias_values[3];
#pragma clang loop unroll(full)
    for (int v = 0; v < vectors; v++) {
        bias_values[v] = bias != NULL ? _mm512_maskz_loadu_ps(masks[v], bias + 16 * v) : _mm512_setzero_ps();
    }
#pragma clang loop unroll(full)
    for (int i = 0; i < TILE_ROWS; i++) {
        if (i < rows) {
            float *row = c + i * ldc;
#pragma clang loop unroll(full)
            for (int v = 0; v < vectors; v++) {
                __m512 result = alpha == 1.0f ? acc[i][v] : _mm512_mul_ps(acc[i][v], scale);
                if (accumulate) result = _mm512_add_ps(result, _mm512_maskz_loadu_ps(masks[v], row + 16 * v));
                if (bias != NULL) result = _mm512_add_ps(result, bias_values[v]);
                /* max(0, x) returns its second operand, x, when x is NaN. */
                if (activation == RESTORE_EPILOGUE_RELU) result = _mm512_max_ps(_mm512_setzero_ps(), result);
                if (activation == RESTORE_EPILOGUE_GELU) result = restore_gelu16(result);
                _mm512_mask_storeu_ps(row + 16 * v, masks[v], result);
            }
        }
    }
}

/*
 * C[rows×columns] (+)= alpha · A[rows×depth] · panel[depth×48], then the epilogue, using
 * the first `vectors` (1–3) zmm columns of the panel: an edge tile of at most 16 or 32
 * columns (windowed attention's 64×12 and 64×64 products, say) does not pay for 48. Rows
 * past `rows` repeat the last row of A (their results are not stored), so the loop is the
 * same for edge tiles. Always inlined with a constant `vectors`, so each width compiles to
 * its own loop with only the accumulators it uses.
 */
__attribute__((target("avx512f"), always_inline))
static inline void tile_8xv(const int vectors, int rows, ptrdiff_t columns, ptrdiff_t depth,
                            const float *a, ptrdiff_t lda, const float *panel, float alpha,
                            float *c, ptrdiff_t ldc, int accumulate, const float *bias, int activation) {
    const float *a_rows[TILE_ROWS];
    for (int i = 0; i < TILE_ROWS; i++) a_rows[i] = a + (i < rows ? i : rows - 1) * lda;
    __m512 acc[TILE_ROWS][3];
#pragma clang loop unroll(full)
    for (int i = 0; i < TILE_ROWS; i++) {
#pragma clang loop unroll(full)
        for (int v = 0; v < vectors; v++) acc[i][v] = _mm512_setzero_ps();
    }
    for (ptrdiff_t p = 0; p < depth; p++) {
        const float *bp = panel + p * TILE_COLUMNS;
        __m512 b[3];
#pragma clang loop unroll(full)
        for (int v = 0; v < vectors; v++) b[v] = _mm512_load_ps(bp + 16 * v);
#pragma clang loop unroll(full)
        for (int i = 0; i < TILE_ROWS; i++) {
            __m512 value = _mm512_set1_ps(a_rows[i][p]);
#pragma clang loop unroll(full)
            for (int v = 0; v < vectors; v++) acc[i][v] = _mm512_fmadd_ps(value, b[v], acc[i][v]);
        }
    }
    switch (activation) {
    case RESTORE_EPILOGUE_RELU:
        store_tile(vectors, RESTORE_EPILOGUE_RELU, acc, rows, columns, alpha, c, ldc, accumulate, bias);
        break;
    case RESTORE_EPILOGUE_GELU:
        store_tile(vectors, RESTORE_EPILOGUE_GELU, acc, rows, columns, alpha, c, ldc, accumulate, bias);
        break;
    default:
        store_tile(vectors, RESTORE_EPILOGUE_IDENTITY, acc, rows, columns, alpha, c, ldc, accumulate, bias);
    }
}

/* One tile, as wide as the columns left need (a constant width per call of tile_8xv). */
__attribute__((target("avx512f")))
static void tile(int rows, ptrdiff_t columns, ptrdiff_t depth, const float *a, ptrdiff_t lda,
                 const float *panel, float alpha, float *c, ptrdiff_t ldc, int accumulate,
                 const float *bias, int activation) {
    if (columns > 32) {
        tile_8xv(3, rows, columns, depth, a, lda, panel, alpha, c, ldc, accumulate, bias, activation);
    } else if (columns > 16) {
        tile_8xv(2, rows, columns, depth, a, lda, panel, alpha, c, ldc, accumulate, bias, activation);
    } else {
        tile_8xv(1, rows, columns, depth, a, lda, panel, alpha, c, ldc, accumulate, bias, activation);
    }
}

size_t restore_sgemm_avx512_packed_count(ptrdiff_t k, ptrdiff_t n) {
    ptrdiff_t panels = (n + TILE_COLUMNS - 1) / TILE_COLUMNS;
    return (size_t)(panels * TILE_COLUMNS * k);
}

void restore_sgemm_avx512_pack(ptrdiff_t k, ptrdiff_t n, const float *b, ptrdiff_t ldb, int transposed, float *packed) {
    restore_gemm_pack_panels(k, n, b, ldb, transposed, TILE_COLUMNS, packed);
}

/* The blocked product (gemm_blocked.h) with this file's tiles, compiled for AVX-512. */
__attribute__((target("avx512f")))
static int multiply(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *a, ptrdiff_t lda,
                    const float *b, ptrdiff_t ldb, int transposed_b, const float *prepacked,
                    float alpha, int accumulate, const float *bias, int activation, float *c, ptrdiff_t ldc) {
    return restore_gemm_blocked(tile, TILE_ROWS, TILE_COLUMNS, BLOCK_DEPTH, BLOCK_COLUMNS, m, n, k, a, lda,
                                b, ldb, transposed_b, prepacked, alpha, accumulate, bias, activation, c, ldc);
}

int restore_sgemm_avx512(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha,
                         const float *a, ptrdiff_t lda,
                         const float *b, ptrdiff_t ldb, int transposed_b,
                         int accumulate, float *c, ptrdiff_t ldc) {
    return multiply(m, n, k, a, lda, b, ldb, transposed_b, NULL, alpha, accumulate, NULL, RESTORE_EPILOGUE_IDENTITY,
                    c, ldc);
}

void restore_sgemm_avx512_packed(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                 const float *a, ptrdiff_t lda,
                                 const float *packed_b, const float *bias, int activation,
                                 float *c, ptrdiff_t ldc) {
    multiply(m, n, k, a, lda, NULL, 0, 0, packed_b, 1.0f, 0, bias, activation, c, ldc);
}
