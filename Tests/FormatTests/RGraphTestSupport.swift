import Foundation
import TestSupport
import XCTest
@testable import Format

/// Float values whose bits must survive a round trip: NaNs with payloads, infinities, signed zero, extremes.
let specialFloats: [Float] = [
    .nan, Float(bitPattern: 0x7FA0_0001), Float(bitPattern: 0xFFC0_0000), .infinity, -.infinity,
    -0.0, 0, .leastNonzeroMagnitude, .leastNormalMagnitude, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
    0.1, 1e-5, 3.14159274, -123456.789,
]

/// A constant of `dtype` and `shape` filled with non-zero random bytes.
func randomConstant(_ name: String, _ dtype: DType, _ shape: [Int],
                    using generator: inout SplitMix64) -> ConstantTensor {
    let count = shape.reduce(1, *) * dtype.byteSize
    let bytes = (0..<count).map { _ in UInt8.random(in: 1 ... .max, using: &generator) }
    let storage = bytes.withUnsafeBytes { ByteStorage(copying: $0) }
    return ConstantTensor(name: name, dtype: dtype, shape: shape, storage: storage)
}

/// A graph using every attribute kind, every dtype, symbolic dims, metadata and float specials.
func sampleGraph() -> Graph {
    var generator = SplitMix64(seed: 42)
    var constants = [
        randomConstant("conv.weight", .float32, [8, 3, 3, 3], using: &generator),
        randomConstant("conv.bias", .float32, [8], using: &generator),
        randomConstant("half", .float16, [5, 3], using: &generator),
        randomConstant("brain", .bfloat16, [7], using: &generator),
        randomConstant("quantized", .int8, [3, 11], using: &generator),
        randomConstant("indices", .int32, [2, 2], using: &generator),
        randomConstant("target.shape", .int64, [4], using: &generator),
        randomConstant("mask", .bool, [9], using: &generator),
        randomConstant("scalar", .float32, [], using: &generator),
        randomConstant("empty", .float32, [0, 4], using: &generator),
    ]
    constants.append(ConstantTensor(name: "specials", shape: [specialFloats.count], floats: specialFloats))
    var conv = ConvAttributes()
    conv.window.pads = [1, 1, 1, 1]
    conv.group = 2
    conv.activation = Activation(function: .leakyRelu, alpha: 0.2)
    let nodes = [
        Node(name: "conv1", .conv(conv), inputs: ["image", "conv.weight", "conv.bias"], outputs: ["c1"]),
        Node(name: "clip", .unary(Activation(function: .clip, min: -.infinity, max: .nan)), inputs: ["c1"], outputs: ["c2"]),
        Node(name: "select", .where, inputs: ["mask", "c2", ""], outputs: ["out"]),
        Node(name: "conv2", .conv(ConvAttributes()), inputs: ["out", "conv.weight"], outputs: ["unused"]),
    ]
    return Graph(
        inputs: [ValueInfo(name: "image", dtype: .float32, shape: [.fixed(1), .fixed(3), .symbol("H"), .symbol("W")])],
        outputs: [ValueInfo(name: "out", dtype: .float32, shape: [.fixed(1), .fixed(8), .symbol("H"), .symbol("W")]),
                  ValueInfo(name: "ids", dtype: .int64, shape: [])],
        nodes: nodes, constants: constants,
        metadata: ["restore.task": "denoise", "restore.range": "0,1", "restore.tile": "256", "note": "ünïcode \"quoted\""])
}

/// Bit-exact equality of attributes (`==` on Float says NaN != NaN and -0 == 0).
func bitsEqual(_ a: Attribute, _ b: Attribute) -> Bool {
    switch (a, b) {
    case (.float(let x), .float(let y)): x.bitPattern == y.bitPattern
    case (.floats(let x), .floats(let y)): x.map(\.bitPattern) == y.map(\.bitPattern)
    default: a == b
    }
}

/// Asserts that two graphs are equal in every part the file stores, floats bit-exactly.
func assertSameGraph(_ read: Graph, _ written: Graph, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(read.inputs, written.inputs, file: file, line: line)
    XCTAssertEqual(read.outputs, written.outputs, file: file, line: line)
    XCTAssertEqual(read.metadata, written.metadata, file: file, line: line)
    XCTAssertEqual(read.nodes.count, written.nodes.count, file: file, line: line)
    for (r, w) in zip(read.nodes, written.nodes) {
        XCTAssertEqual([r.name, r.op.rawValue], [w.name, w.op.rawValue], file: file, line: line)
        XCTAssertEqual(r.inputs, w.inputs, file: file, line: line)
        XCTAssertEqual(r.outputs, w.outputs, file: file, line: line)
        XCTAssertEqual(Set(r.attributes.keys), Set(w.attributes.keys), file: file, line: line)
        for (key, value) in w.attributes {
            let readValue = r.attributes[key]
            XCTAssertTrue(readValue.map { bitsEqual($0, value) } ?? false,
                          "node \(w.name) attribute \(key): wrote \(value), read \(String(describing: readValue))",
                          file: file, line: line)
        }
    }
    XCTAssertEqual(read.constantOrder, written.constantOrder, file: file, line: line)
    for w in written.orderedConstants {
        guard let r = read.constants[w.name] else { XCTFail("constant \(w.name) missing", file: file, line: line); continue }
        XCTAssertEqual(r.dtype, w.dtype, file: file, line: line)
        XCTAssertEqual(r.shape, w.shape, file: file, line: line)
        XCTAssertEqual(r.layout, w.layout, file: file, line: line)
        XCTAssertTrue(r.bytes.elementsEqual(w.bytes), "constant \(w.name) bytes differ", file: file, line: line)
    }
}

/// A fresh directory for one test's files, removed by `removeTemporaryDirectory`.
func makeTemporaryDirectory() throws -> String {
    let path = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("rgraph-tests-" + UUID().uuidString).path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func fileBytes(_ path: String) throws -> [UInt8] {
    Array(try Data(contentsOf: URL(fileURLWithPath: path)))
}

func writeBytes(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// The parts of a valid `.rgraph` file, to rebuild it with changes and correct checksums.
struct RGraphParts {
    var fixedHeader: RGraphFixedHeader
    var json: String
    var data: [UInt8]

    init(_ bytes: [UInt8]) {
        fixedHeader = bytes.withUnsafeBytes { RGraphFixedHeader(decoding: $0) }
        let headerStart = Int(fixedHeader.headerOffset), dataStart = Int(fixedHeader.dataOffset)
        json = String(decoding: bytes[headerStart ..< headerStart + Int(fixedHeader.headerLength)], as: UTF8.self)
        data = Array(bytes[dataStart ..< dataStart + Int(fixedHeader.dataLength)])
    }

    /// A file laid out as the writer would, from `json` and `data`, with the given version
    /// (by default the original file's).
    func assembled(major: UInt16? = nil, minor: UInt16? = nil) -> [UInt8] {
        let major = major ?? fixedHeader.major, minor = minor ?? fixedHeader.minor
        let jsonBytes = Array(json.utf8)
        let dataOffset = alignedUp(RGraphFixedHeader.size + jsonBytes.count)
        let header = RGraphFixedHeader(
            major: major, minor: minor, headerOffset: UInt64(RGraphFixedHeader.size),
            headerLength: UInt64(jsonBytes.count), dataOffset: UInt64(dataOffset), dataLength: UInt64(data.count),
            headerChecksum: jsonBytes.withUnsafeBytes { RGraphChecksum.of($0) },
            dataChecksum: data.withUnsafeBytes { RGraphChecksum.of($0) })
        var bytes = header.encoded() + jsonBytes
        bytes += [UInt8](repeating: 0, count: dataOffset - bytes.count)
        return bytes + data
    }

    /// `json` with `old` replaced by `new`; fails the test if `old` does not occur.
    func replacing(_ old: String, with new: String, file: StaticString = #filePath, line: UInt = #line) -> RGraphParts {
        XCTAssertTrue(json.contains(old), "header JSON has no \(old)", file: file, line: line)
        var copy = self
        copy.json = json.replacingOccurrences(of: old, with: new)
        return copy
    }
}

/// `bytes` with the fixed header replaced by `header` (its own checksum recomputed).
func withFixedHeader(_ bytes: [UInt8], _ header: RGraphFixedHeader) -> [UInt8] {
    header.encoded() + bytes[RGraphFixedHeader.size...]
}
