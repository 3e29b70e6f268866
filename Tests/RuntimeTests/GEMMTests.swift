import Format
import TestSupport
import XCTest
@testable import Runtime

/// GEMM's plain products on every path this CPU runs (AVX-512: 8×16/32/48 tiles, blocks
/// of 256 deep and 384 wide; AVX2: 6×16 tiles, blocks of 256 × 256; generic: OpenBLAS)
/// against a double-precision loop: edge tiles in every direction, leading dimensions wider
/// than the matrices, and C outside the product left alone.
///
/// Tolerance 1e-5 of the largest magnitude: float32 sums of up to 600 products of values
/// in [-1, 1) round to ~1e-7 relative per step; measured ≤ 1e-6.
final class GEMMTests: XCTestCase {
    /// C = alpha · A · op(B) + beta · C against the loop; with beta 0, C starts as NaN so
    /// a read of it shows.
    private func check(m: Int, n: Int, k: Int, padding: Int = 0, transposeB: Bool = false,
                       alpha: Float = 1, beta: Float = 0, seed: UInt64,
                       file: StaticString = #filePath, line: UInt = #line) {
        let (lda, ldb, ldc) = (k + padding, (transposeB ? k : n) + padding, n + 2 * padding)
        let a = xorshiftFloats(count: max(m * lda, 1), seed: seed)
        let b = xorshiftFloats(count: max((transposeB ? n : k) * ldb, 1), seed: seed + 1)
        let start = xorshiftFloats(count: max(m * ldc, 1), seed: seed + 2)
        for cpu in CPUFeatures.supportedLevels {
            var c = beta == 0 ? [Float](repeating: .nan, count: max(m * ldc, 1)) : start
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    c.withUnsafeMutableBufferPointer { c in
                        GEMM.multiply(m: m, n: n, k: k, a: a.baseAddress!, lda: lda, b: b.baseAddress!, ldb: ldb,
                                      transposeB: transposeB, c: c.baseAddress!, ldc: ldc, alpha: alpha, beta: beta, cpu: cpu)
                    }
                }
            }
            compare(c, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc, a: a, b: b, start: start, transposeB: transposeB,
                    alpha: alpha, beta: beta, label: "GEMM (\(CPUFeatures.name(of: cpu))) \(m)×\(n)×\(k) (padding \(padding), "
                        + "B\(transposeB ? "ᵀ" : ""), alpha \(alpha), beta \(beta))", file: file, line: line)
        }
    }

    /// C (row stride ldc) against the product in double precision; columns past n of each
    /// row must be as they started (`start`, or NaN for beta 0).
    private func compare(_ c: [Float], m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int, a: [Float], b: [Float],
                         start: [Float], transposeB: Bool, alpha: Float, beta: Float, label: String,
                         file: StaticString, line: UInt) {
        var expected: [Float] = [], actual: [Float] = []
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0
                for p in 0..<k { sum += Double(a[i * lda + p]) * Double(transposeB ? b[j * ldb + p] : b[p * ldb + j]) }
                expected.append(Float(Double(alpha) * sum + (beta == 0 ? 0 : Double(beta) * Double(start[i * ldc + j]))))
                actual.append(c[i * ldc + j])
            }
            for j in n..<ldc where i * ldc + j < c.count {
                let untouched = beta == 0 ? c[i * ldc + j].isNaN : c[i * ldc + j] == start[i * ldc + j]
                XCTAssertTrue(untouched, "GEMM wrote past column \(n) of row \(i)", file: file, line: line)
            }
        }
        let (maxAbs, relative) = maxAbsAndRelativeError(actual, expected)
        print("\(label): max abs error \(maxAbs), relative \(relative)")
        XCTAssertLessThanOrEqual(relative, 1e-5, label, file: file, line: line)
    }

    /// Linear layers' products: Wᵀ [k×n] packed once (from W stored [n×k]) in the panels of
    /// each path that packs, then C = A · B without packing per call; edge panels and blocks.
    func testPackedProductsOnEveryPathThatPacks() {
        let sizes: [(Int, Int, Int)] = [(1, 1, 1), (7, 47, 3), (6, 16, 256), (13, 49, 257), (256, 768, 192), (5, 385, 9)]
        for cpu in CPUFeatures.supportedLevels where GEMM.packs(cpu: cpu) {
            for (index, (m, n, k)) in sizes.enumerated() {
                let a = xorshiftFloats(count: m * k, seed: UInt64(300 + index))
                let w = xorshiftFloats(count: n * k, seed: UInt64(400 + index))
                // 64-byte aligned, as the model's prepared weights are (the kernels load panels aligned).
                let count = GEMM.packedCount(k: k, n: n, cpu: cpu)
                let packed = UnsafeMutableRawPointer.allocate(byteCount: count * 4, alignment: 64).bindMemory(to: Float.self, capacity: count)
                defer { packed.deallocate() }
                var c = [Float](repeating: .nan, count: m * n)
                w.withUnsafeBufferPointer { w in
                    GEMM.pack(k: k, n: n, b: w.baseAddress!, ldb: k, transposed: true, into: packed, cpu: cpu)
                }
                a.withUnsafeBufferPointer { a in
                    c.withUnsafeMutableBufferPointer { c in
                        GEMM.multiply(m: m, n: n, k: k, a: a.baseAddress!, lda: k, packedB: packed, c: c.baseAddress!, ldc: n, cpu: cpu)
                    }
                }
                compare(c, m: m, n: n, k: k, lda: k, ldb: k, ldc: n, a: a, b: w, start: [], transposeB: true, alpha: 1, beta: 0,
                        label: "packed GEMM (\(GEMM.packedLayout(cpu: cpu))) \(m)×\(n)×\(k)", file: #filePath, line: #line)
            }
        }
    }

    /// The packed product's epilogue (bias, then identity, ReLU or GELU, in registers) gives
    /// the very floats of the product followed by the separate bias and activation passes
    /// it replaces in `linear`, on every path that packs: edge tiles in both directions,
    /// two blocks of depth (the epilogue only after the last), and NaN through ReLU.
    func testPackedEpilogueEqualsTheSeparatePasses() {
        let sizes: [(Int, Int, Int)] = [(1, 1, 1), (7, 47, 3), (13, 49, 300), (9, 97, 64), (256, 192, 192)]
        for cpu in CPUFeatures.supportedLevels where GEMM.packs(cpu: cpu) {
            for (index, (m, n, k)) in sizes.enumerated() {
                var a = xorshiftFloats(count: m * k, seed: UInt64(500 + index)).map { 3 * $0 }
                a[0] = .nan
                let w = xorshiftFloats(count: n * k, seed: UInt64(600 + index))
                let bias = xorshiftFloats(count: n, seed: UInt64(700 + index))
                let count = GEMM.packedCount(k: k, n: n, cpu: cpu)
                let packed = UnsafeMutableRawPointer.allocate(byteCount: count * 4, alignment: 64).bindMemory(to: Float.self, capacity: count)
                defer { packed.deallocate() }
                w.withUnsafeBufferPointer { GEMM.pack(k: k, n: n, b: $0.baseAddress!, ldb: k, transposed: true, into: packed, cpu: cpu) }
                for function: UnaryFunction in [.identity, .relu, .gelu] {
                    let activation = Activation(function: function)
                    var fused = [Float](repeating: .nan, count: m * n), separate = fused
                    a.withUnsafeBufferPointer { a in
                        bias.withUnsafeBufferPointer { bias in
                            GEMM.multiply(m: m, n: n, k: k, a: a.baseAddress!, lda: k, packedB: packed, bias: bias.baseAddress!,
                                          activation: activation, c: &fused, ldc: n, cpu: cpu)
                            GEMM.multiply(m: m, n: n, k: k, a: a.baseAddress!, lda: k, packedB: packed, c: &separate, ldc: n, cpu: cpu)
                        }
                    }
                    separate.withUnsafeMutableBufferPointer { values in
                        for row in 0..<m {
                            let start = values.baseAddress! + row * n
                            for j in 0..<n { start[j] += bias[j] }
                            activation.apply(start, count: n, cpu: cpu)
                        }
                    }
                    let label = "packed GEMM with epilogue \(function) (\(GEMM.packedLayout(cpu: cpu))) \(m)×\(n)×\(k)"
                    let differing = zip(fused, separate).filter { $0.bitPattern != $1.bitPattern && !($0.isNaN && $1.isNaN) }.count
                    print("\(label): \(differing) of \(m * n) floats differ from the separate passes")
                    XCTAssertEqual(differing, 0, label)
                    XCTAssertTrue(fused[0].isNaN, "\(label): NaN in the first row of A must reach C")
                }
            }
        }
    }

    func testUsesTheAVX512KernelWhereTheCPUHasIt() throws {
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        guard flags.contains(" avx512f") else {
            throw XCTSkip("this CPU has no AVX-512F: GEMM runs on OpenBLAS alone")
        }
        XCTAssertTrue(CPUFeatures.supports(.avx512))
    }

    func testEdgeTilesInEveryDirection() {
        // Column remainders of 1–16, 17–32 and 33–48 take tiles of one, two and three zmm.
        let sizes: [(Int, Int, Int)] = [(1, 1, 1), (7, 47, 3), (8, 48, 256), (9, 49, 257), (17, 97, 5),
                                        (3, 385, 2), (16, 400, 600), (65, 63, 33), (5, 80, 7), (11, 20, 9),
                                        (64, 12, 64), (64, 64, 12)]
        for (index, (m, n, k)) in sizes.enumerated() {
            check(m: m, n: n, k: k, seed: UInt64(10 * index + 1))
            check(m: m, n: n, k: k, padding: 5, seed: UInt64(10 * index + 2))
        }
    }

    /// Attention's products: scores = scale · Q · Kᵀ (K stored as rows), on top of a bias
    /// already in C (beta 1).
    func testTransposedBScaleAndAccumulate() {
        let sizes: [(Int, Int, Int)] = [(64, 64, 12), (49, 49, 32), (7, 300, 9), (65, 7, 260), (1, 1, 1)]
        for (index, (m, n, k)) in sizes.enumerated() {
            check(m: m, n: n, k: k, transposeB: true, alpha: 0.35, seed: UInt64(10 * index + 101))
            check(m: m, n: n, k: k, padding: 3, transposeB: true, alpha: 0.35, beta: 1, seed: UInt64(10 * index + 102))
            check(m: m, n: n, k: k, padding: 2, alpha: 2, beta: 1, seed: UInt64(10 * index + 103))
        }
    }

    func testEmptyDepthWritesZeros() {
        for cpu in CPUFeatures.supportedLevels {
            var c = [Float](repeating: .nan, count: 6)
            let one: [Float] = [1]
            one.withUnsafeBufferPointer { operand in
                c.withUnsafeMutableBufferPointer { c in
                    GEMM.multiply(m: 2, n: 3, k: 0, a: operand.baseAddress!, lda: 1, b: operand.baseAddress!, ldb: 3,
                                  c: c.baseAddress!, ldc: 3, cpu: cpu)
                }
            }
            XCTAssertEqual(c, [0, 0, 0, 0, 0, 0], "\(cpu)")
        }
    }

    /// The AVX2 path runs where the CPU has AVX2 and FMA.
    func testUsesTheAVX2KernelWhereTheCPUHasIt() throws {
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        guard flags.contains(" avx2"), flags.contains(" fma") else {
            throw XCTSkip("this CPU has no AVX2 and FMA: GEMM runs on OpenBLAS alone")
        }
        XCTAssertTrue(CPUFeatures.supports(.avx2))
    }
}
