import Format
import TestSupport
import XCTest
@testable import Runtime

/// The int8 GEMM (Sources/CKernels/gemm_int8.c) on every path this CPU runs (AVX-512 VNNI:
/// 8×32 tiles; AVX2: 4×16; portable loops) against a scalar reference of the arithmetic it
/// documents: integer sums are exact and the final scaling is the same two binary32
/// multiplications, so every path must give the reference's floats bit for bit.
final class Int8GEMMTests: XCTestCase {
    /// The documented row quantisation: s = max|x| / 127, q = round-half-even(x · 127/max|x|).
    private func referenceQuantize(_ row: [Float]) -> (q: [Int8], scale: Float) {
        let largest = row.reduce(Float(0)) { max($0, abs($1)) }
        guard largest > 0 else { return ([Int8](repeating: 0, count: row.count), 0) }
        let inverse = 127 / largest
        return (row.map { Int8(min(127, max(-127, ($0 * inverse).rounded(.toNearestOrEven)))) }, largest / 127)
    }

    /// Int8 weights [n, k] in [-127, 127] with their per-row scales.
    private func weights(n: Int, k: Int, seed: UInt64) -> (q: [Int8], scales: [Float]) {
        let values = xorshiftFloats(count: n * k, seed: seed)
        return (values.map { Int8(($0 * 127).rounded()) }, xorshiftFloats(count: n, seed: seed + 1).map { abs($0) / 50 + 1e-3 })
    }

    /// X [m, k] quantised by rows and multiplied by the packed int8 W [n, k] on every path this
    /// CPU runs: each path and its product C [m, n].
    private func productsOnEveryPath(m: Int, n: Int, k: Int, x: [Float], w: [Int8], wScales: [Float]) -> [(CPULevel, [Float])] {
        let packed = UnsafeMutableRawPointer.allocate(byteCount: Int8GEMM.packedBytes(k: k, n: n), alignment: 64)
        defer { packed.deallocate() }
        w.withUnsafeBufferPointer { Int8GEMM.pack(k: k, n: n, w: $0.baseAddress!, into: packed) }
        var q = [Int8](repeating: 0, count: m * Int8GEMM.rowBytes(k: k)), scales = [Float](repeating: 0, count: m)
        Int8GEMM.quantizeRows(m: m, k: k, x: x, ldx: k, into: &q, scales: &scales)
        return CPUFeatures.supportedLevels.map { cpu in
            var c = [Float](repeating: 0, count: m * n)
            Int8GEMM.multiply(m: m, n: n, k: k, a: q, aScales: scales, packedB: packed, bScales: wScales, c: &c, ldc: n, cpu: cpu)
            return (cpu, c)
        }
    }

    private func check(m: Int, n: Int, k: Int, seed: UInt64, file: StaticString = #filePath, line: UInt = #line) {
        // Rows of different magnitudes, one all zero when there are several.
        var x = xorshiftFloats(count: m * k, seed: seed)
        for i in 0..<m { for p in 0..<k { x[i * k + p] *= Float(i % 5 + 1) * (i == 1 ? 0 : 1) } }
        let (w, wScales) = weights(n: n, k: k, seed: seed + 7)
        let rowBytes = Int8GEMM.rowBytes(k: k)
        let packed = UnsafeMutableRawPointer.allocate(byteCount: max(Int8GEMM.packedBytes(k: k, n: n), 1), alignment: 64)
        defer { packed.deallocate() }
        w.withUnsafeBufferPointer { Int8GEMM.pack(k: k, n: n, w: $0.baseAddress!, into: packed) }
        var q = [Int8](repeating: 99, count: m * rowBytes), scales = [Float](repeating: .nan, count: m)
        x.withUnsafeBufferPointer { x in
            Int8GEMM.quantizeRows(m: m, k: k, x: x.baseAddress!, ldx: k, into: &q, scales: &scales, cpu: .portable)
        }
        // Every variant of the row quantiser, and the column quantiser on Xᵀ, give the same bytes.
        for cpu in CPUFeatures.supportedLevels {
            var other = [Int8](repeating: 99, count: m * rowBytes), otherScales = [Float](repeating: .nan, count: m)
            Int8GEMM.quantizeRows(m: m, k: k, x: x, ldx: k, into: &other, scales: &otherScales, cpu: cpu)
            XCTAssertEqual(other, q, "rows quantised on \(CPUFeatures.name(of: cpu))", file: file, line: line)
            XCTAssertEqual(otherScales, scales, file: file, line: line)
        }
        let transposed = (0..<(k * m)).map { x[($0 % m) * k + $0 / m] }
        var columns = [Int8](repeating: 99, count: m * rowBytes), columnScales = [Float](repeating: .nan, count: m)
        var work = [Float](repeating: 0, count: 2 * m)
        Int8GEMM.quantizeColumns(k: k, n: m, x: transposed, ldx: m, into: &columns, scales: &columnScales, work: &work)
        XCTAssertEqual(columns, q, "columns quantised", file: file, line: line)
        XCTAssertEqual(columnScales, scales, file: file, line: line)
        var expected = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            let (rowQ, rowScale) = referenceQuantize(Array(x[(i * k)..<((i + 1) * k)]))
            XCTAssertEqual(Array(q[(i * rowBytes)..<(i * rowBytes + k)]), rowQ, "row \(i) quantised", file: file, line: line)
            XCTAssertTrue(q[(i * rowBytes + k)..<((i + 1) * rowBytes)].allSatisfy { $0 == 0 }, "padding of row \(i)", file: file, line: line)
            XCTAssertEqual(scales[i], rowScale, "scale of row \(i)", file: file, line: line)
            for j in 0..<n {
                var sum: Int32 = 0
                for p in 0..<k { sum += Int32(rowQ[p]) * Int32(w[j * k + p]) }
                expected[i * n + j] = Float(sum) * (rowScale * wScales[j])
            }
        }
        for cpu in CPUFeatures.supportedLevels {
            // Two columns past n stay NaN: nothing is written beyond the product.
            let ldc = n + 2
            var c = [Float](repeating: .nan, count: m * ldc)
            Int8GEMM.multiply(m: m, n: n, k: k, a: q, aScales: scales, packedB: packed, bScales: wScales, c: &c, ldc: ldc, cpu: cpu)
            var mismatches = 0
            for i in 0..<m {
                for j in 0..<n where c[i * ldc + j].bitPattern != expected[i * n + j].bitPattern { mismatches += 1 }
                XCTAssertTrue(c[(i * ldc + n)..<((i + 1) * ldc)].allSatisfy(\.isNaN), "wrote past column \(n)", file: file, line: line)
            }
            let label = "\(CPUFeatures.name(of: cpu))\(cpu == .avx512 && !Int8GEMM.hasVNNI ? " (no VNNI: AVX2 kernel)" : "")"
            print("int8 GEMM \(label) \(m)×\(n)×\(k): \(mismatches) of \(m * n) differ from the scalar reference")
            XCTAssertEqual(mismatches, 0, "\(label) \(m)×\(n)×\(k)", file: file, line: line)
        }
    }

    func testEveryPathMatchesTheScalarReferenceExactlyOnOddShapes() {
        for (index, shape) in [(1, 1, 1), (7, 17, 5), (9, 33, 63), (65, 48, 65), (13, 31, 300), (3, 64, 4), (257, 20, 9),
                               (300, 49, 130)].enumerated() {
            check(m: shape.0, n: shape.1, k: shape.2, seed: UInt64(index * 10 + 1))
        }
    }

    func testTheLargestMagnitudesGiveExactSumsWithoutSaturation() {
        // All values ±127 · scale: AVX2's int16 pair sums reach 2 · 127², VNNI's biased sums
        // 255 · 127 · k; both must stay exact.
        let (m, n, k) = (9, 40, 1000)
        let x = (0..<(m * k)).map { Float($0 % 3 == 0 ? -1 : 1) }
        let w = [Int8]((0..<(n * k)).map { $0 % 7 == 0 ? -127 : 127 })
        for (cpu, c) in productsOnEveryPath(m: m, n: n, k: k, x: x, w: w, wScales: [Float](repeating: 1, count: n)) {
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0
                    for p in 0..<k { sum += Int(x[i * k + p] * 127) * Int(w[j * k + p]) }
                    XCTAssertEqual(c[i * n + j], Float(sum) * (1 / 127), "\(CPUFeatures.name(of: cpu)) [\(i), \(j)]")
                }
            }
        }
    }

    func testARowHoldingNaNOrInfinityGivesNaNAndOtherRowsAreUnaffected() {
        let (m, n, k) = (3, 5, 6)
        var x = xorshiftFloats(count: m * k, seed: 3)
        x[2] = .nan
        x[k + 4] = .infinity
        let (w, wScales) = weights(n: n, k: k, seed: 4)
        for (cpu, c) in productsOnEveryPath(m: m, n: n, k: k, x: x, w: w, wScales: wScales) {
            XCTAssertTrue(c[0..<(2 * n)].allSatisfy(\.isNaN), "\(CPUFeatures.name(of: cpu))")
            XCTAssertTrue(c[(2 * n)...].allSatisfy(\.isFinite), "\(CPUFeatures.name(of: cpu))")
        }
    }
}
