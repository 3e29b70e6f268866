/*
 * ckernels.h — SIMD kernels written in C because Swift cannot compile one function for
 * a CPU feature the build target lacks and pick it at run time (docs/design.md §1: "SIMD
 * kernels in C only where Swift falls short").
 */
#ifndef RESTORE_CKERNELS_H
#define RESTORE_CKERNELS_H

#include <stddef.h>

/* Internal to the libraries and programs that link them: hidden, so a shared library
 * built from Runtime (libRestore) does not export them beside the functions of restore.h,
 * although their names start with restore_. The definitions include this header and
 * take the visibility from these declarations. */
#pragma GCC visibility push(hidden)

/* Non-zero when this CPU runs the AVX-512 kernels (AVX512F). */
int restore_cpu_has_avx512(void);

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

/* C[m×n] = A[m×k] · B, with B packed by restore_sgemm_avx512_pack. AVX-512 only, as above. */
void restore_sgemm_avx512_packed(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                 const float *a, ptrdiff_t lda,
                                 const float *packed_b,
                                 float *c, ptrdiff_t ldc);

/* values[i] = GELU(values[i]) = x/2 · (1 + erf(x/√2)), in place. AVX-512 only. */
void restore_gelu_avx512(float *values, ptrdiff_t count);

/* y = softmax(x) over `length` floats (y may be x): max-shifted, libmvec's expf. AVX-512 only. */
void restore_softmax_row_avx512(const float *x, float *y, ptrdiff_t length);

#pragma GCC visibility pop

#endif
