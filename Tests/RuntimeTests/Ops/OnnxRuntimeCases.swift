import Foundation
import Format
import XCTest
@testable import Runtime

/// Golden cases made by scripts/fixtures/make_conv_op_cases.py: single ONNX nodes run by
/// onnxruntime, stored under Tests/Fixtures/ops/<case>/ with the Restore node to build.
enum OnnxRuntimeCases {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/ops")

    /// Tolerance relative to the largest output magnitude. onnxruntime sums products in
    /// another order (blocked GEMM, vectorised pools), so float32 results differ in the
    /// last bits: at most ~1e-6 relative for these sums of ≤ 100 products; 1e-4 leaves room
    /// for the longer sums and transcendental activations without hiding a wrong index,
    /// which moves results by whole input values (relative error ~0.1–1).
    static let tolerance: Float = 1e-4

    private struct Description: Decodable {
        var op: String
        var inputs: [Bool]
        var attributes: [String: [String: AttributeValue]]
        var planTime: [Int]
    }

    private enum AttributeValue: Decodable {
        case number(Double), numbers([Double]), text(String)
        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let v = try? container.decode(Double.self) { self = .number(v) }
            else if let v = try? container.decode([Double].self) { self = .numbers(v) }
            else { self = .text(try container.decode(String.self)) }
        }
    }

    /// Runs every case whose name starts with `prefix` through the reference and the fast
    /// kernel and compares both with onnxruntime's output.
    static func check(prefix: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasPrefix(prefix) }.sorted()
        XCTAssertFalse(names.isEmpty, "no fixtures \(prefix)* in \(directory.path)", file: file, line: line)
        for name in names {
            let caseDirectory = directory.appendingPathComponent(name)
            let description = try JSONDecoder().decode(
                Description.self, from: Data(contentsOf: caseDirectory.appendingPathComponent("attributes.json")))
            let inputs: [HostTensor?] = try description.inputs.enumerated().map { index, present in
                present ? try TestNPY.read(caseDirectory.appendingPathComponent("input_\(index).npy")) : nil
            }
            let expected = try TestNPY.read(caseDirectory.appendingPathComponent("output_0.npy"))
            guard let op = OpKind(rawValue: description.op) else {
                XCTFail("\(name): unknown op \(description.op)", file: file, line: line)
                continue
            }
            let node = Node(name: name, op: op,
                            inputs: description.inputs.enumerated().map { $1 ? "in\($0)" : "" },
                            outputs: ["Y"], attributes: try attributes(description.attributes))
            let reference = try OpKind.makeOperator(node).reference(inputs)[0]
            XCTAssertEqual(reference.shape, expected.shape, "\(name): reference shape", file: file, line: line)
            XCTAssertEqual(reference.dtype, expected.dtype, "\(name): reference dtype", file: file, line: line)
            let (referenceAbs, referenceRelative) = KernelHarness.errors(reference.floats, expected.floats)
            print("\(name) reference vs onnxruntime: max abs error \(referenceAbs), relative \(referenceRelative)")
            XCTAssertLessThanOrEqual(referenceRelative, tolerance, "\(name): reference", file: file, line: line)
            guard expected.isFloat else { continue }  // fast kernels are float32 only
            let fast = try KernelHarness.runFast(node, inputs, planTime: Set(description.planTime))[0]
            XCTAssertEqual(fast.shape, expected.shape, "\(name): fast shape", file: file, line: line)
            let (fastAbs, fastRelative) = KernelHarness.errors(fast.floats, expected.floats)
            print("\(name) fast vs onnxruntime: max abs error \(fastAbs), relative \(fastRelative)")
            XCTAssertLessThanOrEqual(fastRelative, tolerance, "\(name): fast kernel", file: file, line: line)
        }
    }

    private static func attributes(_ typed: [String: [String: AttributeValue]]) throws -> [String: Attribute] {
        try typed.mapValues { entry -> Attribute in
            switch (entry.first?.key, entry.first?.value) {
            case ("int", .number(let v)?): return .int(Int(v))
            case ("float", .number(let v)?): return .float(Float(v))
            case ("ints", .numbers(let v)?): return .ints(v.map { Int($0) })
            case ("floats", .numbers(let v)?): return .floats(v.map { Float($0) })
            case ("string", .text(let v)?): return .string(v)
            default: throw TestNPY.FormatError(file: "attributes.json", message: "bad attribute \(entry)")
            }
        }
    }
}
