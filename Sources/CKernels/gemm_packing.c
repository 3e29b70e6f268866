/* The GEMM kernels' packing of B and their per-thread buffer (gemm_blocked.h). */
#include "gemm_blocked.h"

#include <pthread.h>
#include <stdlib.h>

/* Floats of every thread's buffer: the largest KC × NC block of the kernels (AVX-512's 256 × 384). */
enum { BUFFER_FLOATS = 256 * 384 };

static pthread_key_t buffer_key;
static pthread_once_t buffer_once = PTHREAD_ONCE_INIT;

static void make_buffer_key(void) { pthread_key_create(&buffer_key, free); }

float *restore_gemm_packing_buffer(size_t floats) {
    if (floats > BUFFER_FLOATS) return NULL;
    pthread_once(&buffer_once, make_buffer_key);
    float *buffer = pthread_getspecific(buffer_key);
    if (buffer == NULL) {
        buffer = aligned_alloc(64, sizeof(float) * BUFFER_FLOATS);
        if (buffer != NULL) pthread_setspecific(buffer_key, buffer);
    }
    return buffer;
}

void restore_gemm_pack_panels(ptrdiff_t depth, ptrdiff_t columns, const float *b, ptrdiff_t ldb, int transposed,
                              ptrdiff_t width, float *packed) {
    for (ptrdiff_t j0 = 0; j0 < columns; j0 += width) {
        ptrdiff_t used = columns - j0 < width ? columns - j0 : width;
        float *panel = packed + j0 * depth;
        for (ptrdiff_t p = 0; p < depth; p++) {
            float *destination = panel + p * width;
            if (transposed) {
                for (ptrdiff_t j = 0; j < used; j++) destination[j] = b[(j0 + j) * ldb + p];
            } else {
                memcpy(destination, b + p * ldb + j0, sizeof(float) * (size_t)used);
            }
            if (used < width) memset(destination + used, 0, sizeof(float) * (size_t)(width - used));
        }
    }
}
