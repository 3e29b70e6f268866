/*
 * The input and output transforms of Winograd F(4×4, 3×3) convolution
 * (Sources/Runtime/Kernels/WinogradConvolution.swift has the maths, the block layout and
 * the measurements), eight tiles at a time in 8-lane vectors.
 *
 * Written once with the compiler's vector extensions and compiled twice: for the x86-64
 * baseline (each 8-lane operation becomes two SSE ones) and, through a wrapper with
 * target("avx2,fma") into which the body is inlined, for AVX2 (one ymm operation). The
 * transforms were Swift SIMD code before; a plain release build compiled them for SSE2
 * only, which made DnCNN ~35% slower than a -target-cpu native build.
 */
#include "ckernels.h"

#include <string.h>

/* The vector helpers are always inlined, so passing 8-lane vectors by value changes no
 * calling convention, whatever the variant is compiled for. */
#pragma clang diagnostic ignored "-Wpsabi"

typedef float v8 __attribute__((vector_size(32)));
/* The same vector at any float alignment, for unaligned loads and stores. */
typedef float v8u __attribute__((vector_size(32), aligned(4)));
typedef int v8i __attribute__((vector_size(32)));

enum { LANES = 8, OUTPUT_TILE = 4, INPUT_TILE = 6 };

#define ALWAYS_INLINE static inline __attribute__((always_inline))

ALWAYS_INLINE v8 load8(const float *p) { return *(const v8u *)p; }
ALWAYS_INLINE void store8(float *p, v8 value) { *(v8u *)p = value; }
ALWAYS_INLINE v8 splat(float value) { return (v8){value, value, value, value, value, value, value, value}; }

/* Bᵀ d on six rows (or columns) of eight tiles: the six points. */
ALWAYS_INLINE void input_transform(v8 d0, v8 d1, v8 d2, v8 d3, v8 d4, v8 d5, v8 r[6]) {
    const v8 two = splat(2), four = splat(4), five = splat(5);
    v8 sum12 = d1 + d2, difference12 = d1 - d2, difference31 = d3 - d1, d4_minus_d2 = d4 - d2;
    r[0] = four * d0 - five * d2 + d4;
    r[1] = d3 + d4 - four * sum12;
    r[2] = d4 - d3 + four * difference12;
    r[3] = d4_minus_d2 + two * difference31;
    r[4] = d4_minus_d2 - two * difference31;
    r[5] = four * d1 - five * d3 + d5;
}

/* The same for one tile (the column transform's remainder). */
ALWAYS_INLINE void input_transform_1(const float *d, ptrdiff_t step, float *r, ptrdiff_t r_step) {
    float d0 = d[0], d1 = d[step], d2 = d[2 * step], d3 = d[3 * step], d4 = d[4 * step], d5 = d[5 * step];
    float sum12 = d1 + d2, difference12 = d1 - d2, difference31 = d3 - d1, d4_minus_d2 = d4 - d2;
    r[0] = 4 * d0 - 5 * d2 + d4;
    r[r_step] = d3 + d4 - 4 * sum12;
    r[2 * r_step] = d4 - d3 + 4 * difference12;
    r[3 * r_step] = d4_minus_d2 + 2 * difference31;
    r[4 * r_step] = d4_minus_d2 - 2 * difference31;
    r[5 * r_step] = 4 * d1 - 5 * d3 + d5;
}

/* max(x, floor) lane by lane, keeping NaN (a NaN compares false, so it is not replaced). */
ALWAYS_INLINE v8 at_least(v8 x, v8 floor) {
    v8i below = x < floor;
    return (v8)(((v8i)x & ~below) | ((v8i)floor & below));
}

/* Aᵀ m: four outputs of eight tiles from their six points. */
ALWAYS_INLINE void output_transform(v8 m0, v8 m1, v8 m2, v8 m3, v8 m4, v8 m5, v8 o[4]) {
    const v8 two = splat(2), four = splat(4), eight = splat(8);
    v8 sum12 = m1 + m2, difference12 = m1 - m2, sum34 = m3 + m4, difference34 = m3 - m4;
    o[0] = m0 + sum12 + sum34;
    o[1] = difference12 + two * difference34;
    o[2] = sum12 + four * sum34;
    o[3] = difference12 + eight * difference34 + m5;
}

ALWAYS_INLINE void winograd_input(const float *plane, ptrdiff_t height, ptrdiff_t width,
                                  ptrdiff_t first_y, ptrdiff_t first_x, ptrdiff_t length, ptrdiff_t lane_tiles,
                                  float *v, ptrdiff_t point_stride, float *work) {
    const ptrdiff_t t = lane_tiles, row_width = OUTPUT_TILE * lane_tiles + OUTPUT_TILE;
    float *rows = work, *row_transformed = work + INPUT_TILE * row_width;
    /* The part of a padded row that lies inside the input. */
    ptrdiff_t lower = -first_x > 0 ? -first_x : 0;
    if (lower > row_width) lower = row_width;
    ptrdiff_t upper = width - first_x < row_width ? width - first_x : row_width;
    if (upper < lower) upper = lower;
    /* Rows wholly inside the input are read where they are; the others are copied with
     * zeros around them. */
    const float *sources[INPUT_TILE];
    for (int i = 0; i < INPUT_TILE; i++) {
        ptrdiff_t y = first_y + i;
        if (y >= 0 && y < height && lower == 0 && upper == row_width) {
            sources[i] = plane + y * width + first_x;
            continue;
        }
        float *row = rows + i * row_width;
        sources[i] = row;
        if (y < 0 || y >= height) {
            memset(row, 0, sizeof(float) * (size_t)row_width);
        } else {
            memset(row, 0, sizeof(float) * (size_t)lower);
            memcpy(row + lower, plane + y * width + first_x + lower, sizeof(float) * (size_t)(upper - lower));
            memset(row + upper, 0, sizeof(float) * (size_t)(row_width - upper));
        }
    }
    /* Along rows: d B for eight tiles at a time. Tile l of a group starts at pixel 4l, so
     * pixels 0..<32 split by index mod 4 into d0...d3, and d4, d5 are d0, d1 moved on by
     * one tile (their last lanes, pixels 32 and 33, are lanes 4 and 5 of pixels 28..<36,
     * which end where the padded row ends). */
    const ptrdiff_t groups = (length + LANES - 1) / LANES;
    for (int i = 0; i < INPUT_TILE; i++) {
        const float *source = sources[i];
        float *destination = row_transformed + i * INPUT_TILE * t;
        for (ptrdiff_t group = 0; group < groups; group++) {
            const float *p = source + group * OUTPUT_TILE * LANES;
            v8 a0 = load8(p), a1 = load8(p + 8), a2 = load8(p + 16), a3 = load8(p + 24), a4 = load8(p + 28);
            v8 low01 = __builtin_shufflevector(a0, a1, 0, 4, 8, 12, 1, 5, 9, 13);
            v8 high01 = __builtin_shufflevector(a0, a1, 2, 6, 10, 14, 3, 7, 11, 15);
            v8 low23 = __builtin_shufflevector(a2, a3, 0, 4, 8, 12, 1, 5, 9, 13);
            v8 high23 = __builtin_shufflevector(a2, a3, 2, 6, 10, 14, 3, 7, 11, 15);
            v8 d0 = __builtin_shufflevector(low01, low23, 0, 1, 2, 3, 8, 9, 10, 11);
            v8 d1 = __builtin_shufflevector(low01, low23, 4, 5, 6, 7, 12, 13, 14, 15);
            v8 d2 = __builtin_shufflevector(high01, high23, 0, 1, 2, 3, 8, 9, 10, 11);
            v8 d3 = __builtin_shufflevector(high01, high23, 4, 5, 6, 7, 12, 13, 14, 15);
            v8 d4 = __builtin_shufflevector(d0, a4, 1, 2, 3, 4, 5, 6, 7, 12);
            v8 d5 = __builtin_shufflevector(d1, a4, 1, 2, 3, 4, 5, 6, 7, 13);
            v8 r[6];
            input_transform(d0, d1, d2, d3, d4, d5, r);
            float *tile = destination + group * LANES;
            for (int j = 0; j < INPUT_TILE; j++) store8(tile + j * t, r[j]);
        }
    }
    /* Along columns: Bᵀ (d B), contiguous over the tiles, eight at a time while whole
     * groups remain (V's rows end at `length`); row j of the result gives points 6j..<6j+6. */
    const ptrdiff_t step = INPUT_TILE * t, point_step = INPUT_TILE * point_stride;
    for (int j = 0; j < INPUT_TILE; j++) {
        const float *column = row_transformed + j * t;
        float *destination = v + j * point_stride;
        ptrdiff_t tile = 0;
        for (; tile + LANES <= length; tile += LANES) {
            const float *s = column + tile;
            v8 r[6];
            input_transform(load8(s), load8(s + step), load8(s + 2 * step), load8(s + 3 * step),
                            load8(s + 4 * step), load8(s + 5 * step), r);
            for (int p = 0; p < INPUT_TILE; p++) store8(destination + tile + p * point_step, r[p]);
        }
        for (; tile < length; tile++) input_transform_1(column + tile, step, destination + tile, point_step);
    }
}

ALWAYS_INLINE void winograd_output(const float *m, ptrdiff_t point_stride, ptrdiff_t length, ptrdiff_t lane_tiles,
                                   float bias, float floor, float *y, ptrdiff_t y_stride, ptrdiff_t rows,
                                   ptrdiff_t columns, float *work) {
    const v8 bias8 = splat(bias), floor8 = splat(floor);
    const ptrdiff_t t = lane_tiles, row_stride = OUTPUT_TILE * lane_tiles;
    float *partial = work, *row_buffer = work + OUTPUT_TILE * INPUT_TILE * t;
    /* Along columns: Aᵀ M over the six point rows, for each of the six point columns. Lanes
     * past `length` compute unused values from floats the caller keeps readable. */
    const ptrdiff_t step = INPUT_TILE * point_stride, partial_step = INPUT_TILE * t;
    for (int j = 0; j < INPUT_TILE; j++) {
        const float *column = m + j * point_stride;
        float *destination = partial + j * t;
        for (ptrdiff_t lane = 0; lane < length; lane += LANES) {
            const float *s = column + lane;
            v8 o[4];
            output_transform(load8(s), load8(s + step), load8(s + 2 * step), load8(s + 3 * step),
                             load8(s + 4 * step), load8(s + 5 * step), o);
            for (int i = 0; i < OUTPUT_TILE; i++) store8(destination + i * partial_step + lane, o[i]);
        }
    }
    /* Along rows: (Aᵀ M) A for eight tiles at a time, interleaved into 32 pixels that go
     * straight to the output while they fit in it, else to the row buffer. */
    const ptrdiff_t groups = (length + LANES - 1) / LANES, pixels_per_group = OUTPUT_TILE * LANES;
    const ptrdiff_t direct_groups = columns / pixels_per_group;
    for (ptrdiff_t i = 0; i < rows; i++) {
        float *output_row = y + i * y_stride, *buffer_row = row_buffer + i * row_stride;
        for (ptrdiff_t group = 0; group < groups; group++) {
            const float *s = partial + i * INPUT_TILE * t + group * LANES;
            v8 o[4];
            output_transform(load8(s), load8(s + t), load8(s + 2 * t), load8(s + 3 * t), load8(s + 4 * t),
                             load8(s + 5 * t), o);
            for (int j = 0; j < OUTPUT_TILE; j++) o[j] = at_least(o[j] + bias8, floor8);
            v8 low01 = __builtin_shufflevector(o[0], o[1], 0, 8, 1, 9, 2, 10, 3, 11);
            v8 high01 = __builtin_shufflevector(o[0], o[1], 4, 12, 5, 13, 6, 14, 7, 15);
            v8 low23 = __builtin_shufflevector(o[2], o[3], 0, 8, 1, 9, 2, 10, 3, 11);
            v8 high23 = __builtin_shufflevector(o[2], o[3], 4, 12, 5, 13, 6, 14, 7, 15);
            float *d = (group < direct_groups ? output_row : buffer_row) + group * pixels_per_group;
            store8(d, __builtin_shufflevector(low01, low23, 0, 1, 8, 9, 2, 3, 10, 11));
            store8(d + 8, __builtin_shufflevector(low01, low23, 4, 5, 12, 13, 6, 7, 14, 15));
            store8(d + 16, __builtin_shufflevector(high01, high23, 0, 1, 8, 9, 2, 3, 10, 11));
            store8(d + 24, __builtin_shufflevector(high01, high23, 4, 5, 12, 13, 6, 7, 14, 15));
        }
        ptrdiff_t copied = direct_groups * pixels_per_group;
        if (columns > copied) memcpy(output_row + copied, buffer_row + copied, sizeof(float) * (size_t)(columns - copied));
    }
}

#define INPUT_PARAMETERS const float *plane, ptrdiff_t height, ptrdiff_t width, ptrdiff_t first_y, \
    ptrdiff_t first_x, ptrdiff_t length, ptrdiff_t lane_tiles, float *v, ptrdiff_t point_stride, float *work
#define INPUT_ARGUMENTS plane, height, width, first_y, first_x, length, lane_tiles, v, point_stride, work
#define OUTPUT_PARAMETERS const float *m, ptrdiff_t point_stride, ptrdiff_t length, ptrdiff_t lane_tiles, \
    float bias, float floor, float *y, ptrdiff_t y_stride, ptrdiff_t rows, ptrdiff_t columns, float *work
#define OUTPUT_ARGUMENTS m, point_stride, length, lane_tiles, bias, floor, y, y_stride, rows, columns, work

static void input_generic(INPUT_PARAMETERS) { winograd_input(INPUT_ARGUMENTS); }
__attribute__((target("avx2,fma"))) static void input_avx2(INPUT_PARAMETERS) { winograd_input(INPUT_ARGUMENTS); }
static void output_generic(OUTPUT_PARAMETERS) { winograd_output(OUTPUT_ARGUMENTS); }
__attribute__((target("avx2,fma"))) static void output_avx2(OUTPUT_PARAMETERS) { winograd_output(OUTPUT_ARGUMENTS); }

/* AVX-512 machines take the AVX2 variant: the transforms are 8 tiles wide. */
void restore_winograd_input(int level, INPUT_PARAMETERS) {
    (level >= RESTORE_CPU_AVX2 ? input_avx2 : input_generic)(INPUT_ARGUMENTS);
}

void restore_winograd_output(int level, OUTPUT_PARAMETERS) {
    (level >= RESTORE_CPU_AVX2 ? output_avx2 : output_generic)(OUTPUT_ARGUMENTS);
}
