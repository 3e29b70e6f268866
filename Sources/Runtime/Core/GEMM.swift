import CKernels
import COpenBLAS
import Format

/// Single-precision matrix multiply, row-major:
/// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C.
///
/// Products with A as stored and beta 0 or 1 (any alpha, B as stored or transposed) run on
/// Restore's AVX-512 kernel (Sources/CKernels/gemm_avx512.c) when the CPU has AVX-512:
/// about twice the rate of OpenBLAS's Haswell kernels, which the environment pins, no
/// repacking of A per call, and little overhead for attention's many small products.
/// Transposed A, other betas, and every product on CPUs without AVX-512 go to OpenBLAS.
///
/// Both run single-threaded: Restore's kernels split work across `ThreadPool`
/// themselves, and two thread pools on two cores would oversubscribe them.
public enum GEMM {
    private static let singleThreaded: Void = { openblas_set_num_threads(1) }()

    @inlinable
    public static func multiply(m: Int, n: Int, k: Int,
                                a: UnsafePointer<Float>, lda: Int, transposeA: Bool = false,
                                b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false,
                                c: UnsafeMutablePointer<Float>, ldc: Int,
                                alpha: Float = 1, beta: Float = 0) {
        if !transposeA && (beta == 0 || beta == 1) && CPUFeatures.avx512
            && restore_sgemm_avx512(m, n, k, alpha, a, lda, b, ldb, transposeB ? 1 : 0, beta == 1 ? 1 : 0, c, ldc) == 0 {
            return
        }
        ensureSingleThreaded()
        cblas_sgemm(CblasRowMajor,
                    transposeA ? CblasTrans : CblasNoTrans,
                    transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// How `pack` arranges B: panels of 48 columns (the kernel's tile width, 3 zmm) for
    /// the AVX-512 kernel.
    public static let packedLayout = PackedLayout.gemmPanels(width: 48, cpu: .avx512)

    /// Floats of B [k×n] packed for `multiply(m:n:k:a:lda:packedB:c:ldc:)`.
    public static func packedCount(k: Int, n: Int) -> Int {
        restore_sgemm_avx512_packed_count(k, n)
    }

    /// Packs B [k×n] (row stride ldb), or Bᵀ stored [n×k] when `transposed`, into
    /// `packedCount(k:n:)` floats. Only for the AVX-512 kernel (`CPUFeatures.avx512`).
    public static func pack(k: Int, n: Int, b: UnsafePointer<Float>, ldb: Int, transposed: Bool,
                            into packed: UnsafeMutablePointer<Float>) {
        restore_sgemm_avx512_pack(k, n, b, ldb, transposed ? 1 : 0, packed)
    }

    /// C[m×n] = A[m×k] · B with B packed by `pack`: no packing per call, for constant
    /// weights multiplied by few rows at a time. Only when `CPUFeatures.avx512`.
    public static func multiply(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                                packedB: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int) {
        precondition(CPUFeatures.avx512, "packed products need the AVX-512 kernel")
        restore_sgemm_avx512_packed(m, n, k, a, lda, packedB, c, ldc)
    }

    @usableFromInline
    static func ensureSingleThreaded() { _ = singleThreaded }
}
