import Foundation
import Format
import XCTest
@testable import Runtime

/// A test-only reader of the `.npy` files under `Tests/Fixtures/ops` (little-endian
/// f4, i8 and b1 arrays in C order: what `make_layout_op_cases.py` writes).
enum LayoutFixtureNPY {
    struct ReadError: Error, CustomStringConvertible {
        let file: String
        let problem: String
        var description: String { "\(file): \(problem)" }
    }

    static func read(_ url: URL) throws -> HostTensor {
        let bytes = [UInt8](try Data(contentsOf: url))
        let fail = { (problem: String) in ReadError(file: url.path, problem: problem) }
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1...5]) == Array("NUMPY".utf8) else {
            throw fail("not an .npy file")
        }
        let major = bytes[6]
        let lengthBytes = major == 1 ? 2 : 4
        let headerLength = (0..<lengthBytes).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
        let dataStart = 8 + lengthBytes + headerLength
        guard dataStart <= bytes.count, let header = String(bytes: bytes[(8 + lengthBytes)..<dataStart], encoding: .ascii) else {
            throw fail("truncated header")
        }
        guard !header.contains("'fortran_order': True") else { throw fail("Fortran order") }
        guard let descr = field("descr", in: header, open: "'", close: "'"),
              let shapeText = field("shape", in: header, open: "(", close: ")") else {
            throw fail("header without descr or shape: \(header)")
        }
        let shape = shapeText.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let count = shape.reduce(1, *)
        let payload = bytes[dataStart...]
        func words<T: FixedWidthInteger>(_: T.Type) throws -> [T] {
            let size = MemoryLayout<T>.size
            guard payload.count == count * size else { throw fail("\(payload.count) data bytes for \(count) \(descr)") }
            return (0..<count).map { i in
                (0..<size).reduce(T.zero) { $0 | T(payload[payload.startIndex + i * size + $1]) << (8 * $1) }
            }
        }
        switch descr {
        case "<f4": return HostTensor(shape: shape, floats: try words(UInt32.self).map { Float(bitPattern: $0) })
        case "<i8": return HostTensor(shape: shape, ints: try words(UInt64.self).map { Int64(bitPattern: $0) })
        case "|b1": return HostTensor(shape: shape, ints: try words(UInt8.self).map { Int64($0) }, dtype: .bool)
        default: throw fail("unsupported dtype \(descr)")
        }
    }

    /// The text of `key` in a NumPy header dict, between `open` and `close`.
    private static func field(_ key: String, in header: String, open: Character, close: Character) -> String? {
        guard let keyRange = header.range(of: "'\(key)':"),
              let start = header[keyRange.upperBound...].firstIndex(of: open),
              let end = header[header.index(after: start)...].firstIndex(of: close) else { return nil }
        return String(header[header.index(after: start)..<end])
    }
}

/// One golden case of `Tests/Fixtures/ops`: a Restore node, its inputs, and
/// onnxruntime's outputs for the equivalent ONNX node.
struct LayoutFixtureCase {
    let name: String
    let node: Node
    let inputs: [HostTensor]
    let planTime: Set<Int>
    let expected: [HostTensor]

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/ops")

    private struct Description: Decodable {
        let op: String
        let attributes: [String: [String: AttributeValue]]
        let planTime: [Int]
        let outputs: Int
    }

    private enum AttributeValue: Decodable {
        case number(Double), numbers([Int]), text(String)
        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let list = try? container.decode([Int].self) { self = .numbers(list) }
            else if let number = try? container.decode(Double.self) { self = .number(number) }
            else { self = .text(try container.decode(String.self)) }
        }
    }

    init(_ name: String) throws {
        self.name = name
        let folder = Self.root.appendingPathComponent(name)
        let description = try JSONDecoder().decode(Description.self, from: Data(contentsOf: folder.appendingPathComponent("attributes.json")))
        var attributes: [String: Attribute] = [:]
        for (key, typed) in description.attributes {
            for (kind, value) in typed {
                switch (kind, value) {
                case ("int", .number(let v)): attributes[key] = .int(Int(v))
                case ("float", .number(let v)): attributes[key] = .float(Float(v))
                case ("ints", .numbers(let v)): attributes[key] = .ints(v)
                case ("string", .text(let v)): attributes[key] = .string(v)
                default: XCTFail("\(name): attribute \(key) has unknown form \(kind)")
                }
            }
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        func load(_ prefix: String) throws -> [HostTensor] {
            let count = files.filter { $0.hasPrefix(prefix) }.count
            return try (0..<count).map { try LayoutFixtureNPY.read(folder.appendingPathComponent("\(prefix)\($0).npy")) }
        }
        inputs = try load("input_")
        expected = try load("output_")
        planTime = Set(description.planTime)
        guard let op = OpKind(rawValue: description.op) else { throw LayoutFixtureNPY.ReadError(file: name, problem: "unknown op \(description.op)") }
        node = Node(name: name, op: op, inputs: inputs.indices.map { "x\($0)" },
                    outputs: (0..<description.outputs).map { "y\($0)" }, attributes: attributes)
    }

    /// Asserts the reference kernel reproduces onnxruntime exactly (dtype, shape and
    /// values), and the fast kernel its values: these ops only move or convert
    /// elements, so any difference is a bug.
    static func assertMatchesOnnxruntime(_ names: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        for name in names {
            let fixture = try LayoutFixtureCase(name)
            let reference = try OpKind.makeOperator(fixture.node).reference(fixture.inputs)
            let fast = try KernelHarness.runFast(fixture.node, fixture.inputs, planTime: fixture.planTime)
            XCTAssertEqual(reference.count, fixture.expected.count, name, file: file, line: line)
            for (index, expected) in fixture.expected.enumerated() where index < reference.count {
                let (referenceError, _) = KernelHarness.errors(reference[index].floats, expected.floats)
                let (fastError, _) = KernelHarness.errors(fast[index].floats, expected.floats)
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
        Node(name: name, op: op, inputs: (0..<inputs).map { "x\($0)" }, outputs: (0..<outputs).map { "y\($0)" },
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
