import Foundation
import Format
import ImageFiles
@testable import Runtime

/// One golden case of `Tests/Fixtures/ops`, written by scripts/fixtures/make_*_op_cases.py:
/// a Restore node, its inputs, and onnxruntime's outputs for the equivalent ONNX node.
///
/// Each case folder holds `attributes.json` (`op`, typed `attributes`, and optionally
/// `inputs`, `planTime` and `outputs`), `input_<i>.npy` and `output_<i>.npy`. `inputs`,
/// when present, lists every input slot (a file name or `true` when present, `null` or
/// `false` for an absent optional input); without it the input files are counted.
struct OpFixture {
    /// Why a case folder could not be read.
    struct ReadError: Error, CustomStringConvertible {
        var file: String
        var problem: String
        var description: String { "\(file): \(problem)" }
    }

    let name: String
    /// Reads inputs x0… ("" for an absent input) and writes outputs y0….
    let node: Node
    /// nil marks an absent optional input.
    let inputs: [HostTensor?]
    /// Inputs whose values are known when planning (shapes, indices …).
    let planTime: Set<Int>
    let expected: [HostTensor]

    /// Tests/Fixtures/ops, found from this file's path so no package resources are needed.
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/ops")

    /// The names of the cases starting with `prefix`, sorted.
    static func names(prefix: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix(prefix) }.sorted()
    }

    private struct Description: Decodable {
        var op: String
        var inputs: [InputSlot]?
        var attributes: [String: [String: AttributeValue]]
        var planTime: [Int]?
        var outputs: Int?
    }

    /// One entry of `inputs`: a file name, `true`/`false`, or `null`.
    private struct InputSlot: Decodable {
        var isPresent: Bool
        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() { isPresent = false }
            else if let flag = try? container.decode(Bool.self) { isPresent = flag }
            else { _ = try container.decode(String.self); isPresent = true }
        }
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

    init(_ name: String) throws {
        self.name = name
        let folder = Self.directory.appendingPathComponent(name)
        let descriptionFile = folder.appendingPathComponent("attributes.json")
        let description = try JSONDecoder().decode(Description.self, from: Data(contentsOf: descriptionFile))
        guard let op = OpKind(rawValue: description.op) else {
            throw ReadError(file: descriptionFile.path, problem: "unknown op \(description.op)")
        }
        var attributes: [String: Attribute] = [:]
        for (key, typed) in description.attributes {
            switch (typed.count == 1 ? typed.first?.key : nil, typed.first?.value) {
            case ("int", .number(let v)?): attributes[key] = .int(Int(v))
            case ("float", .number(let v)?): attributes[key] = .float(Float(v))
            case ("ints", .numbers(let v)?): attributes[key] = .ints(v.map { Int($0) })
            case ("floats", .numbers(let v)?): attributes[key] = .floats(v.map { Float($0) })
            case ("string", .text(let v)?): attributes[key] = .string(v)
            default: throw ReadError(file: descriptionFile.path, problem: "attribute \(key) has no known type: \(typed)")
            }
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        func count(_ prefix: String) -> Int { files.filter { $0.hasPrefix(prefix) }.count }
        func read(_ file: String) throws -> HostTensor { try NumPyFile.read(path: folder.appendingPathComponent(file).path) }
        let present = description.inputs?.map(\.isPresent) ?? Array(repeating: true, count: count("input_"))
        inputs = try present.enumerated().map { index, isPresent in isPresent ? try read("input_\(index).npy") : nil }
        expected = try (0..<count("output_")).map { try read("output_\($0).npy") }
        planTime = Set(description.planTime ?? [])
        node = Node(name: name, op: op, inputs: present.enumerated().map { $1 ? "x\($0)" : "" },
                    outputs: (0..<(description.outputs ?? expected.count)).map { "y\($0)" }, attributes: attributes)
    }
}
