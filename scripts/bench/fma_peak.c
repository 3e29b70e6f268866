/*
 * The machine's single-precision FMA peak, the roofline Restore's GEMM-bound models are
 * measured against (BENCHMARKS.md): each thread runs 12 independent chains of vector FMAs
 * (enough to cover 2 pipes × 4-6 cycles of latency) for a fixed count, on 256-bit (AVX2)
 * and 512-bit (AVX-512) registers. Prints GFLOP/s per width for 1..N threads.
 * Build: cc -O2 -pthread scripts/bench/fma_peak.c -o /tmp/fma_peak   Run: /tmp/fma_peak [threads]
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { CHAINS = 12, STEPS = 20000000 };

static double seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec + now.tv_nsec * 1e-9;
}

/* A thread body: CHAINS independent chains of STEPS fused multiply-adds on `type` registers,
 * their sum stored through `result` so that the compiler keeps the work. */
#define FMA_CHAINS(name, target_features, type, set1, fmadd, first_lane)                  \
    __attribute__((target(target_features))) static void *name(void *result) {            \
        type acc[CHAINS], a = set1(0.999999f), b = set1(1e-7f);                          \
        for (int i = 0; i < CHAINS; i++) acc[i] = set1((float)i);                         \
        for (long s = 0; s < STEPS; s++) {                                                \
            _Pragma("GCC unroll 12") for (int i = 0; i < CHAINS; i++) acc[i] = fmadd(acc[i], a, b); \
        }                                                                                 \
        float sum = 0;                                                                    \
        for (int i = 0; i < CHAINS; i++) sum += first_lane(acc[i]);                       \
        *(float *)result = sum;                                                           \
        return NULL;                                                                      \
    }

FMA_CHAINS(chains256, "avx2,fma", __m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_cvtss_f32)
FMA_CHAINS(chains512, "avx512f", __m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_cvtss_f32)

/* GFLOP/s of `threads` threads each running `body`, `lanes` floats per FMA. */
static double rate(void *(*body)(void *), int lanes, int threads) {
    pthread_t ids[64];
    float results[64];
    double start = seconds();
    for (int t = 0; t < threads; t++) pthread_create(&ids[t], NULL, body, &results[t]);
    for (int t = 0; t < threads; t++) pthread_join(ids[t], NULL);
    return 2.0 * lanes * CHAINS * (double)STEPS * threads / (seconds() - start) / 1e9;
}

int main(int argc, char **argv) {
    int most = argc > 1 ? atoi(argv[1]) : 2;
    if (most < 1 || most > 64) most = 2;
    __builtin_cpu_init();
    for (int threads = 1; threads <= most; threads++) {
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            printf("avx2    %d thread%s %7.1f GFLOP/s\n", threads, threads > 1 ? "s" : " ", rate(chains256, 8, threads));
        if (__builtin_cpu_supports("avx512f"))
            printf("avx512  %d thread%s %7.1f GFLOP/s\n", threads, threads > 1 ? "s" : " ", rate(chains512, 16, threads));
    }
    return 0;
}
