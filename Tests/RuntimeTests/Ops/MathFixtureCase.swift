import Foundation
import Format
import TestSupport
import XCTest
@testable import Runtime

/// The math-op golden cases made by scripts/fixtures/make_math_op_cases.py (folders
/// `math_*` of Tests/Fixtures/ops), checked against onnxruntime.
enum MathFixtureCase {
    /// Relative error allowed against onnxruntime (max abs error over the largest
    /// expected magnitude). The reference accumulates in Double and onnxruntime in Float
    /// with its own vectorised exp/tanh/erf; they differ by a few float ulps per element
    /// (about 1e-7 relative), and a float32 dot product of K ≤ 65 terms can differ by up
    /// to K·2⁻²⁴ ≈ 4e-6. The largest seen is layerNorm of values around 100, where a
    /// float32 x − mean is only good to ulp(100) ≈ 8e-6, an error onnxruntime makes and the
    /// Double reference does not: 2.5e-6; every other case is below 4e-7. 1e-5 covers
    /// these while a wrong formula shows up as errors of 1e-3 or more.
    static let tolerance: Float = 1e-5

    /// Checks the reference and the fast kernel of every case of `op` against onnxruntime.
    static func assertKernelsMatchOnnxRuntime(_ op: OpKind, file: StaticString = #filePath, line: UInt = #line) throws {
        let cases = try OpFixture.names(prefix: "math_").map(OpFixture.init).filter { $0.node.op == op }
        XCTAssertFalse(cases.isEmpty, "no fixtures for \(op) in \(OpFixture.directory.path)", file: file, line: line)
        for fixture in cases {
            let expected = fixture.expected[0]
            let reference = try OpKind.makeOperator(fixture.node).reference(fixture.inputs)[0]
            XCTAssertEqual(reference.dtype, expected.dtype, "\(fixture.name): reference output type", file: file, line: line)
            XCTAssertEqual(reference.shape, expected.shape, "\(fixture.name): reference output shape", file: file, line: line)
            let fast = try KernelHarness.runFast(fixture.node, fixture.inputs)[0]
            XCTAssertEqual(fast.shape, expected.shape, "\(fixture.name): fast output shape", file: file, line: line)
            guard reference.count == expected.count, fast.count == expected.count else { continue }
            let referenceError = maxAbsAndRelativeError(reference.floats, expected.floats)
            let fastError = maxAbsAndRelativeError(fast.floats, expected.floats)
            print("\(fixture.name) \(expected.shape) vs onnxruntime: reference max abs \(referenceError.maxAbs), relative \(referenceError.relative); fast max abs \(fastError.maxAbs), relative \(fastError.relative)")
            XCTAssertLessThanOrEqual(referenceError.relative, tolerance, "\(fixture.name): reference differs from onnxruntime", file: file, line: line)
            XCTAssertLessThanOrEqual(fastError.relative, tolerance, "\(fixture.name): fast kernel differs from onnxruntime", file: file, line: line)
        }
    }
}

extension Node {
    /// A node of `op` reading `inputs` values (x0, x1, …; nil marks an absent optional
    /// input) and writing y, for the math-op tests.
    static func mathTest(_ op: OpKind, _ name: String, inputs: Int, absent: Set<Int> = [],
                         _ attributes: [String: Attribute] = [:]) -> Node {
        try! Node(name: name, op: op, inputs: (0..<inputs).map { absent.contains($0) ? "" : "x\($0)" },
             outputs: ["y"], attributes: attributes)
    }
}

extension HostTensor {
    /// Random integers in -range...range from the harness's float generator (0 becomes
    /// 1 when `nonzero`, for divisors).
    static func mathRandomInts(_ shape: [Int], seed: UInt64, range: Float = 20, nonzero: Bool = false) -> HostTensor {
        let values = KernelHarness.random(shape, seed: seed).floats.map { value -> Int64 in
            let integer = Int64((value * range).rounded())
            return nonzero && integer == 0 ? 1 : integer
        }
        return HostTensor(shape: shape, ints: values)
    }

    /// A random bool mask, about half true.
    static func mathRandomMask(_ shape: [Int], seed: UInt64) -> HostTensor {
        HostTensor(shape: shape, ints: KernelHarness.random(shape, seed: seed).floats.map { $0 > 0 ? 1 : 0 }, dtype: .bool)
    }

    /// The same shape with `transform` applied to each float.
    func mathMapped(_ transform: (Float) -> Float) -> HostTensor {
        HostTensor(shape: shape, floats: floats.map(transform))
    }
}
