/*
 * Weighted sums of rows gathered from anywhere in a tensor: the inner loop of multi-scale
 * deformable attention (DeformableAttention.swift), where each output row of one query and
 * head is the sum over levels, points and the four bilinear corners of a scale times a
 * value token's head channels.
 *
 * The row stays in registers over all taps, a block of up to 64 floats at a time (four
 * independent sums hide the adds' latency), instead of being loaded and stored once per
 * tap. Every variant computes row[c] = (((0 + s₀·x₀[c]) + s₁·x₁[c]) + …) in tap order, a
 * multiply and an add each (no fused multiply-add), so all CPU paths give the same floats.
 *
 * For bilinear sampling with zero padding (Mask2Former's and ViT-Adapter's), the taps are
 * listed here too, from the grid and the weights: the same arithmetic as GridSampler's
 * generic Swift path, without its per-corner optionals and padding switches, which took
 * about twice as long as the sums themselves.
 */
#include "ckernels.h"

#include <math.h>

#pragma clang fp contract(off)

typedef float v16 __attribute__((vector_size(64)));
typedef float v16_unaligned __attribute__((vector_size(64), aligned(4)));

#define SUM_BLOCKS(count)                                                                  \
    for (; c + 16 * (count) <= width; c += 16 * (count)) {                                 \
        v16 sum[count];                                                                    \
        for (int i = 0; i < (count); i++) sum[i] = (v16){0};                               \
        for (ptrdiff_t t = 0; t < taps; t++) {                                             \
            const float *source = base + offsets[t] + c;                                   \
            const v16 scale = (v16){0} + scales[t];                                        \
            for (int i = 0; i < (count); i++)                                              \
                sum[i] = sum[i] + scale * *(const v16_unaligned *)(source + 16 * i);       \
        }                                                                                  \
        for (int i = 0; i < (count); i++) *(v16_unaligned *)(row + c + 16 * i) = sum[i];   \
    }

static inline void weighted_row_sum(float *row, ptrdiff_t width, const float *base, const ptrdiff_t *offsets,
                                    const float *scales, ptrdiff_t taps) {
    ptrdiff_t c = 0;
    SUM_BLOCKS(4)
    SUM_BLOCKS(2)
    SUM_BLOCKS(1)
    for (; c < width; c++) {
        float sum = 0;
        for (ptrdiff_t t = 0; t < taps; t++) sum = sum + scales[t] * base[offsets[t] + c];
        row[c] = sum;
    }
}

#define PARAMETERS float *row, ptrdiff_t width, const float *base, const ptrdiff_t *offsets, \
    const float *scales, ptrdiff_t taps
#define ARGUMENTS row, width, base, offsets, scales, taps

static void sum_generic(PARAMETERS) { weighted_row_sum(ARGUMENTS); }
__attribute__((target("avx2,fma"))) static void sum_avx2(PARAMETERS) { weighted_row_sum(ARGUMENTS); }
__attribute__((target("avx512f"))) static void sum_avx512(PARAMETERS) { weighted_row_sum(ARGUMENTS); }

void restore_weighted_row_sum(int level, PARAMETERS) {
    (level >= RESTORE_CPU_AVX512 ? sum_avx512 : level >= RESTORE_CPU_AVX2 ? sum_avx2 : sum_generic)(ARGUMENTS);
}

/*
 * The pixel coordinate grid value g (−1 … 1) stands for along an axis of `extent` pixels,
 * as GridSampler.Options.sourceCoordinate computes it for bilinear sampling with zero
 * padding, operation for operation (so both give the same floats): outside the sampled
 * range it is clamped to [−2, extent + 1], where every corner reads zero, and NaN or ±∞
 * (a broken grid) becomes −2.
 */
static inline float zero_padded_coordinate(float g, float extent, int align_corners) {
    float v = align_corners ? (g + 1) / 2 * (extent - 1) : ((g + 1) * extent - 1) / 2;
    if (!isfinite(v)) return -2;
    float low = align_corners ? 0 : -0.5f, high = align_corners ? extent - 1 : extent - 0.5f;
    if (v < low || v > high) v = fminf(fmaxf(v, -2), extent + 1);
    return v;
}

/*
 * The taps of one row of deformable attention with bilinear sampling and zero padding, in
 * DeformableAttentionKernel's order (levels, points, corners top-left, top-right,
 * bottom-left, bottom-right) and with its scales (point weight × corner weight; corners
 * outside the level, and zero scales, are left out). Returns the number of taps.
 */
static inline ptrdiff_t bilinear_taps(ptrdiff_t levels, ptrdiff_t points, const ptrdiff_t *level_shapes,
                                      int align_corners, ptrdiff_t token_stride, const float *grid,
                                      const float *weights, ptrdiff_t *offsets, float *scales) {
    ptrdiff_t taps = 0;
    for (ptrdiff_t l = 0; l < levels; l++) {
        const ptrdiff_t height = level_shapes[3 * l], width = level_shapes[3 * l + 1], first = level_shapes[3 * l + 2];
        for (ptrdiff_t p = 0; p < points; p++) {
            const ptrdiff_t sample = l * points + p;
            const float weight = weights[sample];
            const float column = zero_padded_coordinate(grid[2 * sample], (float)width, align_corners);
            const float row = zero_padded_coordinate(grid[2 * sample + 1], (float)height, align_corners);
            const float r0 = floorf(row), q0 = floorf(column);
            const float dy = row - r0, dx = column - q0;
            const ptrdiff_t r = (ptrdiff_t)r0, q = (ptrdiff_t)q0;
            const float corner_weights[4] = {(1 - dy) * (1 - dx), (1 - dy) * dx, dy * (1 - dx), dy * dx};
            for (int corner = 0; corner < 4; corner++) {
                const ptrdiff_t y = r + (corner >> 1), x = q + (corner & 1);
                if (y < 0 || y >= height || x < 0 || x >= width) continue;
                const float scale = weight * corner_weights[corner];
                if (scale == 0) continue;
                offsets[taps] = (first + y * width + x) * token_stride;
                scales[taps] = scale;
                taps++;
            }
        }
    }
    return taps;
}

#define ROW_PARAMETERS float *row, ptrdiff_t width, const float *base, ptrdiff_t token_stride, ptrdiff_t levels, \
    ptrdiff_t points, const ptrdiff_t *level_shapes, int align_corners, const float *grid, const float *weights, \
    ptrdiff_t *offsets, float *scales
#define ROW_BODY                                                                                           \
    ptrdiff_t taps = bilinear_taps(levels, points, level_shapes, align_corners, token_stride, grid, weights, \
                                   offsets, scales);                                                       \
    weighted_row_sum(row, width, base, offsets, scales, taps);

static void row_generic(ROW_PARAMETERS) { ROW_BODY }
__attribute__((target("avx2,fma"))) static void row_avx2(ROW_PARAMETERS) { ROW_BODY }
__attribute__((target("avx512f"))) static void row_avx512(ROW_PARAMETERS) { ROW_BODY }

void restore_deformable_bilinear_row(int level, ROW_PARAMETERS) {
    (level >= RESTORE_CPU_AVX512 ? row_avx512 : level >= RESTORE_CPU_AVX2 ? row_avx2 : row_generic)(
        row, width, base, token_stride, levels, points, level_shapes, align_corners, grid, weights, offsets, scales);
}
