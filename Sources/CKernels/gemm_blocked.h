/*
 * What the GEMM kernels (gemm_avx512.c, gemm_avx2.c) share: B packed into panels of the
 * kernel's tile width, one packing buffer per thread, and the blocked loop over KC×NC
 * blocks of B and tiles of C (GotoBLAS without packing A). Each kernel supplies its tile
 * function and sizes; the loop is inlined into each kernel's target.
 */
#ifndef RESTORE_GEMM_BLOCKED_H
#define RESTORE_GEMM_BLOCKED_H

#include "ckernels.h"

#include <stddef.h>
#include <string.h>

#pragma GCC visibility push(hidden)

/* The calling thread's packing buffer, 64-byte aligned, of `floats` floats at least (the
 * largest block any kernel asks for); made on first use, freed when the thread ends. NULL
 * when it cannot be allocated. */
float *restore_gemm_packing_buffer(size_t floats);

/* Copies B [depth×columns] into panels [depth][width], zeros beyond `columns`. B is stored
 * row by row with stride ldb, or transposed (`transposed`: [columns×depth], stride ldb),
 * as attention's keys are. */
void restore_gemm_pack_panels(ptrdiff_t depth, ptrdiff_t columns, const float *b, ptrdiff_t ldb, int transposed,
                              ptrdiff_t width, float *packed);

#pragma GCC visibility pop

/* C[rows×columns] (+)= alpha · A[rows×depth] · panel[depth×width] for one tile, then the
 * epilogue (ckernels.h: `bias` from the tile's first column, or NULL, and
 * RESTORE_EPILOGUE_*), which the loop asks for only with the last block of depth. */
typedef void (*restore_gemm_tile)(int rows, ptrdiff_t columns, ptrdiff_t depth, const float *a, ptrdiff_t lda,
                                  const float *panel, float alpha, float *c, ptrdiff_t ldc, int accumulate,
                                  const float *bias, int activation);

/*
 * C = act(alpha · A · B (+ C when `accumulate`) + bias); B comes packed whole in panels of
 * `tile_columns` (`prepacked`) or is packed here block by block from B or Bᵀ; `bias` (n
 * floats or NULL) and `activation` are the epilogue of ckernels.h. Returns 0, or -1 when
 * the packing buffer cannot be allocated (C untouched).
 */
static inline __attribute__((always_inline))
int restore_gemm_blocked(restore_gemm_tile tile, int tile_rows, ptrdiff_t tile_columns,
                         ptrdiff_t block_depth, ptrdiff_t block_columns,
                         ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *a, ptrdiff_t lda,
                         const float *b, ptrdiff_t ldb, int transposed_b, const float *prepacked,
                         float alpha, int accumulate, const float *bias, int activation, float *c, ptrdiff_t ldc) {
    if (m <= 0 || n <= 0) return 0;
    /* Callers with an epilogue multiply at least one step deep (Linear fills k = 0 itself). */
    if (k <= 0) {
        if (!accumulate) {
            for (ptrdiff_t i = 0; i < m; i++) memset(c + i * ldc, 0, sizeof(float) * (size_t)n);
        }
        return 0;
    }
    float *packed = NULL;
    if (prepacked == NULL) {
        packed = restore_gemm_packing_buffer((size_t)(block_depth * block_columns));
        if (packed == NULL) return -1;
    }
    for (ptrdiff_t j0 = 0; j0 < n; j0 += block_columns) {
        ptrdiff_t width = n - j0 < block_columns ? n - j0 : block_columns;
        for (ptrdiff_t p0 = 0; p0 < k; p0 += block_depth) {
            ptrdiff_t depth = k - p0 < block_depth ? k - p0 : block_depth;
            const int last = p0 + depth == k;
            if (packed != NULL) {
                const float *block = transposed_b ? b + j0 * ldb + p0 : b + p0 * ldb + j0;
                restore_gemm_pack_panels(depth, width, block, ldb, transposed_b, tile_columns, packed);
            }
            for (ptrdiff_t i0 = 0; i0 < m; i0 += tile_rows) {
                int rows = (int)(m - i0 < tile_rows ? m - i0 : tile_rows);
                for (ptrdiff_t j = 0; j < width; j += tile_columns) {
                    /* A panel of `prepacked` holds all k rows; one of `packed` this block's. */
                    const float *panel = packed != NULL ? packed + j * depth
                                                        : prepacked + (j0 + j) * k + p0 * tile_columns;
                    tile(rows, width - j, depth, a + i0 * lda + p0, lda, panel, alpha,
                         c + i0 * ldc + j0 + j, ldc, accumulate || p0 > 0,
                         last && bias != NULL ? bias + j0 + j : NULL, last ? activation : RESTORE_EPILOGUE_IDENTITY);
                }
            }
        }
    }
    return 0;
}

#endif
