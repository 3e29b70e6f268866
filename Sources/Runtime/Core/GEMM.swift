import COpenBLAS

/// Single-precision matrix multiply through OpenBLAS, row-major:
/// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C.
///
/// OpenBLAS runs single-threaded: Restore's kernels split work across `ThreadPool`
/// themselves, and two thread pools on two cores would oversubscribe them.
public enum GEMM {
    private static let singleThreaded: Void = { openblas_set_num_threads(1) }()

    @inlinable
    public static func multiply(m: Int, n: Int, k: Int,
                                a: UnsafePointer<Float>, lda: Int, transposeA: Bool = false,
                                b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false,
                                c: UnsafeMutablePointer<Float>, ldc: Int,
                                alpha: Float = 1, beta: Float = 0) {
        ensureSingleThreaded()
        cblas_sgemm(CblasRowMajor,
                    transposeA ? CblasTrans : CblasNoTrans,
                    transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    @usableFromInline
    static func ensureSingleThreaded() { _ = singleThreaded }
}
