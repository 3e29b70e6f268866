import CKernels
import Format

/// Products with int8 weights (`convert --weights int8`): the activations are quantised
/// per row when the kernel runs, multiplied in integers with the weights packed once per
/// model, and the result scaled back to f32. Sources/CKernels/gemm_int8.c states the
/// arithmetic and its error bound; every CPU path gives the same floats (AVX-512 VNNI,
/// AVX2 with int16 products, portable loops), picked by `CPUFeatures.level`.
public enum Int8GEMM {
    /// The deepest product the kernels take: beyond it an int32 sum could overflow on the
    /// VNNI path (255 · 127 · k < 2³¹), and the kernel reads f32 weights instead.
    public static let maximumDepth = Int(RESTORE_QGEMM_MAX_DEPTH)

    /// Bytes of one quantised row of `k` values: k rounded up to a multiple of 4.
    public static func rowBytes(k: Int) -> Int { (k + 3) / 4 * 4 }

    /// Bytes of B [k×n] packed by `pack`.
    public static func packedBytes(k: Int, n: Int) -> Int { restore_qgemm_packed_bytes(k, n) }

    /// Packs the int8 matrix `w` stored [n×k] (B = wᵀ) for `multiply`, 64-byte aligned.
    public static func pack(k: Int, n: Int, w: UnsafePointer<Int8>, into packed: UnsafeMutableRawPointer) {
        restore_qgemm_pack(k, n, w, packed)
    }

    /// Quantises `m` rows of `k` values (row stride `ldx`) into `q` (rows `rowBytes(k:)`
    /// apart) and their scales; `cpu` picks the variant (all give the same bytes).
    public static func quantizeRows(m: Int, k: Int, x: UnsafePointer<Float>, ldx: Int,
                                    into q: UnsafeMutablePointer<Int8>, scales: UnsafeMutablePointer<Float>,
                                    cpu: CPULevel = CPUFeatures.level) {
        restore_quantize_rows(CPUFeatures.cValue(of: cpu), m, k, x, ldx, q, rowBytes(k: k), scales)
    }

    /// Quantises the `n` columns of the k×n matrix `x` (row stride `ldx`; an im2col tile,
    /// a pixel per column) as rows of `q`, the same way; `work` holds 2n floats.
    public static func quantizeColumns(k: Int, n: Int, x: UnsafePointer<Float>, ldx: Int,
                                       into q: UnsafeMutablePointer<Int8>, scales: UnsafeMutablePointer<Float>,
                                       work: UnsafeMutablePointer<Float>) {
        restore_quantize_columns(k, n, x, ldx, q, rowBytes(k: k), scales, work)
    }

    /// C[m×n] = dequantised A_q[m×k] · B, A_q from `quantizeRows`, B from `pack` with its
    /// n column scales.
    public static func multiply(m: Int, n: Int, k: Int, a: UnsafePointer<Int8>, aScales: UnsafePointer<Float>,
                                packedB: UnsafeRawPointer, bScales: UnsafePointer<Float>,
                                c: UnsafeMutablePointer<Float>, ldc: Int, cpu: CPULevel = CPUFeatures.level) {
        restore_qgemm(CPUFeatures.cValue(of: cpu), m, n, k, a, rowBytes(k: k), aScales, packedB, bScales, c, ldc)
    }

    /// Whether this CPU's AVX-512 path multiplies with VNNI (else it takes the AVX2 kernel).
    public static var hasVNNI: Bool { restore_cpu_has_avx512_vnni() != 0 }
}

/// An int8 weight [n, k…] packed for `Int8GEMM.multiply` once per model, with its n
/// per-output-channel scales; valid while the model lives and the weight is not replaced.
public struct Int8Weights: @unchecked Sendable {
    public let packed: UnsafeRawPointer
    public let scales: UnsafePointer<Float>
    public let n: Int
    public let k: Int
}
