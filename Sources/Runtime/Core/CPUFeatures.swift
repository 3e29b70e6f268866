import CKernels

/// What the CPU running this process can do, for kernels that pick a SIMD variant at run
/// time (the binary itself may be built for any x86-64).
public enum CPUFeatures {
    /// AVX-512F: the GEMM and activation kernels of Sources/CKernels.
    public static let avx512 = restore_cpu_has_avx512() != 0
}
