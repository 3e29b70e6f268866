import CKernels
import COpenBLAS
import Format

/// Single-precision matrix multiply, row-major:
/// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C.
///
/// Products with A as stored and beta 0 or 1 (any alpha, B as stored or transposed) run on
/// Restore's own kernels, picked by `CPUFeatures.level`: AVX-512 (Sources/CKernels/
/// gemm_avx512.c, about twice the rate of OpenBLAS's Haswell kernels, which the environment
/// pins) or AVX2 + FMA (gemm_avx2.c: the same scheme on 256-bit registers, at par with
/// OpenBLAS's kernel on large products and ahead on thin ones, without its zeroing pass
/// over C for beta 0). Both skip repacking A per call and cost little for attention's many
/// small products. Transposed A, other betas, and every product on the generic path go to
/// OpenBLAS.
///
/// All run single-threaded: Restore's kernels split work across `ThreadPool` themselves,
/// and two thread pools on two cores would oversubscribe them.
public enum GEMM {
    private static let singleThreaded: Void = { openblas_set_num_threads(1) }()

    /// `cpu` picks the kernel (tests run every one the CPU supports).
    @inlinable
    public static func multiply(m: Int, n: Int, k: Int,
                                a: UnsafePointer<Float>, lda: Int, transposeA: Bool = false,
                                b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false,
                                c: UnsafeMutablePointer<Float>, ldc: Int,
                                alpha: Float = 1, beta: Float = 0, cpu: CPULevel = CPUFeatures.level) {
        if !transposeA && (beta == 0 || beta == 1) {
            let accumulate: Int32 = beta == 1 ? 1 : 0, transposed: Int32 = transposeB ? 1 : 0
            switch cpu {
            case .avx512:
                if restore_sgemm_avx512(m, n, k, alpha, a, lda, b, ldb, transposed, accumulate, c, ldc) == 0 { return }
            case .avx2:
                if restore_sgemm_avx2(m, n, k, alpha, a, lda, b, ldb, transposed, accumulate, c, ldc) == 0 { return }
            case .portable:
                break
            }
        }
        ensureSingleThreaded()
        cblas_sgemm(CblasRowMajor,
                    transposeA ? CblasTrans : CblasNoTrans,
                    transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Whether constant B operands are packed once per model (`pack`) for `cpu`: on the
    /// AVX2 and AVX-512 paths, whose kernels read the panels.
    public static func packs(cpu: CPULevel = CPUFeatures.level) -> Bool { cpu >= .avx2 }

    /// How `pack` arranges B for `cpu`'s kernel: panels of its tile width, 48 columns
    /// (3 zmm) for AVX-512, 16 (2 ymm) for AVX2. Only where `packs(cpu:)`.
    public static func packedLayout(cpu: CPULevel = CPUFeatures.level) -> PackedLayout {
        precondition(packs(cpu: cpu), "the generic path does not pack B")
        return cpu == .avx512 ? .gemmPanels(width: 48, cpu: .avx512) : .gemmPanels(width: 16, cpu: .avx2)
    }

    /// The layout of the path this process runs, as `packedLayout(cpu:)`.
    public static var packedLayout: PackedLayout { packedLayout() }

    /// Floats of B [k×n] packed for `multiply(m:n:k:a:lda:packedB:c:ldc:cpu:)`.
    public static func packedCount(k: Int, n: Int, cpu: CPULevel = CPUFeatures.level) -> Int {
        cpu == .avx512 ? restore_sgemm_avx512_packed_count(k, n) : restore_sgemm_avx2_packed_count(k, n)
    }

    /// Packs B [k×n] (row stride ldb), or Bᵀ stored [n×k] when `transposed`, into
    /// `packedCount(k:n:cpu:)` floats. Only where `packs(cpu:)`.
    public static func pack(k: Int, n: Int, b: UnsafePointer<Float>, ldb: Int, transposed: Bool,
                            into packed: UnsafeMutablePointer<Float>, cpu: CPULevel = CPUFeatures.level) {
        precondition(packs(cpu: cpu), "the generic path does not pack B")
        if cpu == .avx512 {
            restore_sgemm_avx512_pack(k, n, b, ldb, transposed ? 1 : 0, packed)
        } else {
            restore_sgemm_avx2_pack(k, n, b, ldb, transposed ? 1 : 0, packed)
        }
    }

    /// The packed product's epilogue code (ckernels.h) for `activation`, or nil when the
    /// kernels do not compute it in registers: the identity, ReLU and exact GELU, the
    /// activations of linear layers in the transformers Restore runs.
    public static func epilogue(for activation: Activation) -> Int32? {
        switch activation.function {
        case .identity: Int32(RESTORE_EPILOGUE_IDENTITY)
        case .relu: Int32(RESTORE_EPILOGUE_RELU)
        case .gelu: Int32(RESTORE_EPILOGUE_GELU)
        default: nil
        }
    }

    /// C[m×n] = act(A[m×k] · B + bias) with B packed by `pack` for the same `cpu`: no
    /// packing per call, for constant weights multiplied by few rows at a time; the bias
    /// (n floats) and the activation are applied to each tile in registers before it is
    /// stored, rounding as the separate passes would. Only where `packs(cpu:)`, with k > 0
    /// when there is a bias or an activation, and an activation `epilogue(for:)` accepts.
    public static func multiply(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                                packedB: UnsafePointer<Float>, bias: UnsafePointer<Float>? = nil,
                                activation: Activation = .identity,
                                c: UnsafeMutablePointer<Float>, ldc: Int, cpu: CPULevel = CPUFeatures.level) {
        precondition(packs(cpu: cpu), "packed products need the AVX2 or AVX-512 kernel")
        guard let epilogue = epilogue(for: activation) else {
            preconditionFailure("the packed product's epilogue does not compute \(activation.function)")
        }
        precondition(k > 0 || (bias == nil && activation.function == .identity), "an epilogue needs k > 0")
        if cpu == .avx512 {
            restore_sgemm_avx512_packed(m, n, k, a, lda, packedB, bias, epilogue, c, ldc)
        } else {
            restore_sgemm_avx2_packed(m, n, k, a, lda, packedB, bias, epilogue, c, ldc)
        }
    }

    @usableFromInline
    static func ensureSingleThreaded() { _ = singleThreaded }
}
