/*
 * ckernels.h — SIMD kernels written in C because Swift cannot compile one function for
 * a CPU feature the build target lacks and pick it at run time (docs/design.md §1: "SIMD
 * kernels in C only where Swift falls short").
 */
#ifndef RESTORE_CKERNELS_H
#define RESTORE_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Internal to the libraries and programs that link them: hidden, so a shared library
 * built from Runtime (libRestore) does not export them beside the functions of restore.h,
 * although their names start with restore_. The definitions include this header and
 * take the visibility from these declarations. */
#pragma GCC visibility push(hidden)

/* The kernel variants this CPU runs: RESTORE_CPU_AVX512 when it has AVX512F (and AVX2
 * and FMA), RESTORE_CPU_AVX2 when it has AVX2 and FMA, else RESTORE_CPU_GENERIC (the
 * x86-64 baseline, SSE2). The values order the levels: each runs the ones below it. */
enum { RESTORE_CPU_GENERIC = 0, RESTORE_CPU_AVX2 = 1, RESTORE_CPU_AVX512 = 2 };
int restore_cpu_detected_level(void);

/*
 * CRC-64/XZ by carry-less multiplication (crc64_clmul.c). restore_crc64_clmul_level says
 * which variant this CPU runs: RESTORE_CRC64_CLMUL512 (AVX-512F and VPCLMULQDQ), _CLMUL256
 * (AVX2 and VPCLMULQDQ without AVX-512F), _CLMUL128 (PCLMULQDQ and SSE4.1) or _TABLE
 * (neither); the values order them, each CPU running those below its own. restore_crc64_clmul continues the reflected
 * CRC register `crc` (not the final, inverted value) over `count` bytes with `variant`
 * (at most the CPU's) and returns the new register; `table` is the 256-entry byte table of
 * the reflected polynomial (table[b] = CRC of byte b with register 0), which finishes the
 * bytes past the last whole stride. Any alignment and count.
 */
enum { RESTORE_CRC64_TABLE = 0, RESTORE_CRC64_CLMUL128 = 1, RESTORE_CRC64_CLMUL256 = 2, RESTORE_CRC64_CLMUL512 = 3 };
int restore_crc64_clmul_level(void);
uint64_t restore_crc64_clmul(uint64_t crc, const void *bytes, size_t count, int variant, const uint64_t *table);
/* The register of A followed by B from the register `first` of A, the register
 * `second_from_zero` of B alone started from 0 (not ~0), and B's length: what lets parts of
 * a file be summed on several threads. */
uint64_t restore_crc64_combine(uint64_t first, uint64_t second_from_zero, size_t second_count);

/*
 * C[m×n] = alpha · A[m×k] · B[k×n] (+ C when `accumulate`), all row-major with leading
 * dimensions lda, ldb, ldc; B is given transposed ([n×k], stride ldb) when `transposed_b`
 * is non-zero. AVX-512 FMA: call only when restore_cpu_has_avx512() is non-zero.
 * Single-threaded: callers split the work. m, n or k may be 0 (k = 0 writes zeros unless
 * accumulating). Returns 0, or -1 when the thread's 384 KB packing buffer cannot be
 * allocated (C is then untouched).
 */
int restore_sgemm_avx512(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha,
                         const float *a, ptrdiff_t lda,
                         const float *b, ptrdiff_t ldb, int transposed_b,
                         int accumulate, float *c, ptrdiff_t ldc);

/*
 * B packed once for many products (constant weights): panels of 48 columns, each k rows
 * of 48 floats, zeros past column n. restore_sgemm_avx512_packed_count gives its size in
 * floats; restore_sgemm_avx512_pack writes it from B[k×n] (stride ldb), or from Bᵀ
 * stored as [n×k] when `transposed` is non-zero.
 */
size_t restore_sgemm_avx512_packed_count(ptrdiff_t k, ptrdiff_t n);
void restore_sgemm_avx512_pack(ptrdiff_t k, ptrdiff_t n, const float *b, ptrdiff_t ldb, int transposed, float *packed);

/* What a packed product does to each finished tile of C, in registers, before storing it:
 * add bias[j] to column j when `bias` is not NULL, then apply the activation —
 * max(x, 0) (NaN stays NaN) or GELU as restore_gelu_* computes it, so a fused linear layer
 * rounds exactly as the product followed by the separate passes did. */
enum { RESTORE_EPILOGUE_IDENTITY = 0, RESTORE_EPILOGUE_RELU = 1, RESTORE_EPILOGUE_GELU = 2 };

/* C[m×n] = act(A[m×k] · B + bias), with B packed by restore_sgemm_avx512_pack, 64-byte
 * aligned (the panels are loaded aligned); `bias` (n floats or NULL) and `activation`
 * (RESTORE_EPILOGUE_*) as above. AVX-512 only, as above. */
void restore_sgemm_avx512_packed(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                 const float *a, ptrdiff_t lda,
                                 const float *packed_b, const float *bias, int activation,
                                 float *c, ptrdiff_t ldc);

/*
 * The same four functions for the AVX2 + FMA kernel (gemm_avx2.c): 6×16 tiles, B packed in
 * panels of 16 columns (32-byte aligned for the packed product). Call only when the CPU has
 * AVX2 and FMA.
 */
int restore_sgemm_avx2(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha,
                       const float *a, ptrdiff_t lda,
                       const float *b, ptrdiff_t ldb, int transposed_b,
                       int accumulate, float *c, ptrdiff_t ldc);
size_t restore_sgemm_avx2_packed_count(ptrdiff_t k, ptrdiff_t n);
void restore_sgemm_avx2_pack(ptrdiff_t k, ptrdiff_t n, const float *b, ptrdiff_t ldb, int transposed, float *packed);
void restore_sgemm_avx2_packed(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *a, ptrdiff_t lda,
                               const float *packed_b, const float *bias, int activation, float *c, ptrdiff_t ldc);

/* values[i] = GELU(values[i]) = x/2 · (1 + erf(x/√2)), in place. AVX-512 only. */
void restore_gelu_avx512(float *values, ptrdiff_t count);

/* y = softmax(x) over `length` floats (y may be x): max-shifted, libmvec's expf. AVX-512 only. */
void restore_softmax_row_avx512(const float *x, float *y, ptrdiff_t length);

/* The same two over AVX2 lanes (activation_avx2.c). AVX2 + FMA only. */
void restore_gelu_avx2(float *values, ptrdiff_t count);
void restore_softmax_row_avx2(const float *x, float *y, ptrdiff_t length);
/* Box–Muller over `pairs` pairs: values holds the uniforms (u, v) interleaved, u in (0, 1];
 * each pair becomes base + scale·√(−2 ln u)·(cos 2πv, sin 2πv) in place (base: the
 * same layout). 8 pairs per step with libmvec's AVX2 logf, cosf, sinf; the pairs past the
 * last multiple of 8 are left for the caller. */
void restore_gaussian_pairs_avx2(float *values, const float *base, float scale, ptrdiff_t pairs);

/*
 * Layer normalisation of `rows` contiguous rows of `size` floats (layer_norm_avx2.c), y may
 * be x: mean (when `centered`, else 0) and variance in double, y = (x − mean)/√(var + ε),
 * times scale[j] and plus bias[j] when given (NULL: none; both cover the whole row).
 * AVX2 + FMA only.
 */
void restore_layer_norm_rows_avx2(const float *x, float *y, ptrdiff_t rows, ptrdiff_t size, float epsilon,
                                  int centered, const float *scale, const float *bias);

/*
 * row[c] = Σₜ scales[t] · base[offsets[t] + c] for c < width, summed in tap order with a
 * separate multiply and add (weighted_rows.c: deformable attention's gather), with the
 * variant of `level` (RESTORE_CPU_*); every level gives the same floats.
 */
void restore_weighted_row_sum(int level, float *row, ptrdiff_t width, const float *base, const ptrdiff_t *offsets,
                              const float *scales, ptrdiff_t taps);

/*
 * One (batch, query, head) row of multi-scale deformable attention with bilinear sampling
 * and zero padding (weighted_rows.c): for each of `levels` levels (level_shapes holds its
 * height, width and first token, 3 values per level) and `points` points, the grid point
 * (x, y) in −1 … 1 (`grid`: levels·points pairs) and its weight (`weights`), the four
 * corners' value tokens (`base` + token · token_stride, `width` channels each) weighted by
 * point weight × bilinear weight, summed into `row` as restore_weighted_row_sum sums them.
 * `offsets` and `scales` are scratch of levels·points·4 each. Every level gives the same
 * floats as GridSampler's taps summed by restore_weighted_row_sum.
 */
void restore_deformable_bilinear_row(int level, float *row, ptrdiff_t width, const float *base, ptrdiff_t token_stride,
                                     ptrdiff_t levels, ptrdiff_t points, const ptrdiff_t *level_shapes,
                                     int align_corners, const float *grid, const float *weights, ptrdiff_t *offsets,
                                     float *scales);

/*
 * Winograd F(4×4, 3×3) transforms (winograd.c; the block layout is WinogradConvolution.swift's),
 * run with the variant of `level` (RESTORE_CPU_*; AVX-512 takes the AVX2 one).
 *
 * restore_winograd_input: V = Bᵀ d B of one input channel for the `length` tiles of one
 * tile row whose first input pixel is (first_y, first_x) of the height×width `plane`
 * (pixels outside read as zero). Point ξ of tile i goes to v[ξ · point_stride + i].
 * `lane_tiles` is `length` or more, rounded up to a multiple of 8; `work` holds
 * 6 · (4 · lane_tiles + 4) + 36 · lane_tiles floats.
 *
 * restore_winograd_output: Y = max(Aᵀ M A + bias, floor) of one output channel (floor −∞
 * for none, 0 for ReLU; NaN stays NaN), M's point ξ of tile i at m[ξ · point_stride + i],
 * written as `rows` (≤ 4) rows of `columns` (≤ 4 · length) pixels y_stride apart. Reads M up to the next multiple of 8 tiles (unused values; the floats
 * must be readable); `work` holds 40 · lane_tiles floats.
 */
void restore_winograd_input(int level, const float *plane, ptrdiff_t height, ptrdiff_t width,
                            ptrdiff_t first_y, ptrdiff_t first_x, ptrdiff_t length, ptrdiff_t lane_tiles,
                            float *v, ptrdiff_t point_stride, float *work);
void restore_winograd_output(int level, const float *m, ptrdiff_t point_stride, ptrdiff_t length,
                             ptrdiff_t lane_tiles, float bias, float floor, float *y, ptrdiff_t y_stride, ptrdiff_t rows,
                             ptrdiff_t columns, float *work);

/*
 * int8 GEMM (gemm_int8.c, which states the arithmetic and its error bound): weights packed
 * once as int8 panels, activations quantised per row when the kernel runs.
 *
 * restore_qgemm_packed_bytes: bytes of B [k×n] packed by restore_qgemm_pack.
 * restore_qgemm_pack: packs the int8 matrix w stored as [n×k] (a linear weight W, a
 * convolution's filters [M, C·kH·kW]: B = wᵀ) into `packed`, 64-byte aligned.
 * restore_quantize_rows: quantises the m rows of k values of x (row stride ldx) into
 * q + i·ldq (k rounded up to a multiple of 4, zeros past k) and their scales, with the
 * variant of `level` (all give the same bytes).
 * restore_quantize_columns: the same for the n columns of the k×n matrix x (row stride
 * ldx): column j becomes row j of q; `work` holds 2n floats.
 * restore_qgemm: C[m×n] = dequantised A_q · B with A_q rows from restore_quantize_rows
 * (lda ≥ k rounded up to 4) and b_scales the n per-column scales; picks the kernel of
 * `level` (RESTORE_CPU_*; AVX-512 needs VNNI too, else takes AVX2). Every level gives
 * the same floats. k must not exceed RESTORE_QGEMM_MAX_DEPTH.
 */
enum { RESTORE_QGEMM_MAX_DEPTH = 65536 };
size_t restore_qgemm_packed_bytes(ptrdiff_t k, ptrdiff_t n);
void restore_qgemm_pack(ptrdiff_t k, ptrdiff_t n, const signed char *w, void *packed);
void restore_quantize_rows(int level, ptrdiff_t m, ptrdiff_t k, const float *x, ptrdiff_t ldx,
                           signed char *q, ptrdiff_t ldq, float *scales);
void restore_quantize_columns(ptrdiff_t k, ptrdiff_t n, const float *x, ptrdiff_t ldx,
                              signed char *q, ptrdiff_t ldq, float *scales, float *work);
void restore_qgemm(int level, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const signed char *a, ptrdiff_t lda,
                   const float *a_scales, const void *packed_b, const float *b_scales, float *c, ptrdiff_t ldc);
/* Non-zero when the CPU has AVX-512F, BW and VNNI (restore_qgemm's fastest path). */
int restore_cpu_has_avx512_vnni(void);

#pragma GCC visibility pop

/* SwiftPM takes this header as the module's umbrella: the others are reached through it. */
#include "thread_pool.h"

#endif
