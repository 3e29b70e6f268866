import Foundation
import Format
import TestSupport
import XCTest
@testable import Runtime

/// Golden cases made by scripts/fixtures/make_conv_op_cases.py: single ONNX nodes run by
/// onnxruntime, stored under Tests/Fixtures/ops/<case>/ with the Restore node to build.
enum OnnxRuntimeCases {
    /// Tolerance relative to the largest output magnitude. onnxruntime sums products in
    /// another order (blocked GEMM, vectorised pools), so float32 results differ in the
    /// last bits: at most ~1e-6 relative for these sums of ≤ 100 products; 1e-4 leaves room
    /// for the longer sums and transcendental activations without hiding a wrong index,
    /// which moves results by whole input values (relative error ~0.1–1).
    static let tolerance: Float = 1e-4

    /// Runs every case whose name starts with `prefix` through the reference and the fast
    /// kernel and compares both with onnxruntime's output.
    static func check(prefix: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let names = try OpFixture.names(prefix: prefix)
        XCTAssertFalse(names.isEmpty, "no fixtures \(prefix)* in \(OpFixture.directory.path)", file: file, line: line)
        for name in names {
            let fixture = try OpFixture(name)
            let (node, inputs, expected) = (fixture.node, fixture.inputs, fixture.expected[0])
            let reference = try OpKind.makeOperator(node).reference(inputs)[0]
            XCTAssertEqual(reference.shape, expected.shape, "\(name): reference shape", file: file, line: line)
            XCTAssertEqual(reference.dtype, expected.dtype, "\(name): reference dtype", file: file, line: line)
            let (referenceAbs, referenceRelative) = maxAbsAndRelativeError(reference.floats, expected.floats)
            print("\(name) reference vs onnxruntime: max abs error \(referenceAbs), relative \(referenceRelative)")
            XCTAssertLessThanOrEqual(referenceRelative, tolerance, "\(name): reference", file: file, line: line)
            guard expected.isFloat else { continue }  // fast kernels are float32 only
            let fast = try KernelHarness.runFast(node, inputs, planTime: fixture.planTime)[0]
            XCTAssertEqual(fast.shape, expected.shape, "\(name): fast shape", file: file, line: line)
            let (fastAbs, fastRelative) = maxAbsAndRelativeError(fast.floats, expected.floats)
            print("\(name) fast vs onnxruntime: max abs error \(fastAbs), relative \(fastRelative)")
            XCTAssertLessThanOrEqual(fastRelative, tolerance, "\(name): fast kernel", file: file, line: line)
        }
    }
}
