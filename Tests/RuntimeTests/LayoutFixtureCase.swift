import Foundation
import Format
import TestSupport
import XCTest
@testable import Runtime

/// The layout-op golden cases made by scripts/fixtures/make_layout_op_cases.py, checked
/// against onnxruntime.
enum LayoutFixtureCase {
    /// Asserts the reference kernel reproduces onnxruntime exactly (dtype, shape and
    /// values), and the fast kernel its values: these ops only move or convert
    /// elements, so any difference is a bug.
    static func assertMatchesOnnxruntime(_ names: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        for name in names {
            let fixture = try OpFixture(name)
            let reference = try OpKind.makeOperator(fixture.node).reference(fixture.inputs)
            let fast = try KernelHarness.runFast(fixture.node, fixture.inputs, planTime: fixture.planTime)
            XCTAssertEqual(reference.count, fixture.expected.count, name, file: file, line: line)
            for (index, expected) in fixture.expected.enumerated() where index < reference.count {
                let (referenceError, _) = maxAbsAndRelativeError(reference[index].floats, expected.floats)
                let (fastError, _) = maxAbsAndRelativeError(fast[index].floats, expected.floats)
                print("\(name) output \(index) \(expected.dtype)\(expected.shape): max abs error reference \(referenceError), fast \(fastError)")
                XCTAssertEqual(reference[index], expected, "\(name): reference differs from onnxruntime", file: file, line: line)
                XCTAssertEqual(fast[index].shape, expected.shape, name, file: file, line: line)
                XCTAssertEqual(fast[index].floats, expected.floats, "\(name): fast kernel differs from onnxruntime", file: file, line: line)
            }
        }
    }
}

/// Small builders and checks shared by the layout op tests.
enum LayoutTesting {
    /// A node named `name` of `op` with inputs x0… and outputs y0….
    static func node(_ op: OpKind, _ name: String, inputs: Int = 1, outputs: Int = 1,
                     _ attributes: [String: Attribute] = [:]) -> Node {
        try! Node(name: name, op: op, inputs: (0..<inputs).map { "x\($0)" }, outputs: (0..<outputs).map { "y\($0)" },
             attributes: attributes)
    }

    /// A 1-D i64 tensor (a shape, indices, repeats …).
    static func ints(_ values: [Int64]) -> HostTensor {
        HostTensor(shape: [values.count], ints: values)
    }

    /// Runs the reference kernel of `node` on `inputs`.
    static func reference(_ node: Node, _ inputs: [HostTensor?]) throws -> [HostTensor] {
        try OpKind.makeOperator(node).reference(inputs)
    }

    /// Asserts `body` throws a typed error (`OpError` or `GraphError`) whose message
    /// names node `name`.
    static func assertError(naming name: String, file: StaticString = #filePath, line: UInt = #line,
                            _ body: () throws -> Void) {
        do {
            try body()
            XCTFail("expected an error naming node '\(name)'", file: file, line: line)
        } catch {
            XCTAssertTrue(error is OpError || error is GraphError, "untyped error \(error)", file: file, line: line)
            XCTAssertTrue("\(error)".contains("node '\(name)'"), "error does not name the node: \(error)", file: file, line: line)
        }
    }
}
