/*
 * Which kernel variants this CPU runs, from CPUID through the compiler's builtins (they
 * also check that the OS saves the wider registers, XGETBV).
 */
#include "ckernels.h"

int restore_cpu_detected_level(void) {
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (avx2 && __builtin_cpu_supports("avx512f")) return RESTORE_CPU_AVX512;
    return avx2 ? RESTORE_CPU_AVX2 : RESTORE_CPU_GENERIC;
}
