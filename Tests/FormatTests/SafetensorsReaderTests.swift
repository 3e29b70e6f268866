import Foundation
import TestSupport
import XCTest
@testable import Format

/// The safetensors reader on files the `safetensors` package and transformers wrote
/// (Tests/Fixtures/safetensors, scripts/fixtures/make_safetensors_cases.py), and on
/// hand-made hostile files: each is refused with its specific error naming file and tensor.
final class SafetensorsReaderTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/safetensors")
    var directory = ""

    override func setUpWithError() throws { directory = try makeTemporaryDirectory() }
    override func tearDownWithError() throws { try FileManager.default.removeItem(atPath: directory) }

    private struct Expected: Decodable {
        let dtype: String
        let shape: [Int]
        let values: [Double]
    }

    // MARK: Files as published

    func testEveryDTypeReadsAsThePackageWroteIt() throws {
        let path = Self.fixtures.appendingPathComponent("dtypes.safetensors").path
        let file = try SafetensorsFile.read(contentsOf: path)
        let expected = try JSONDecoder().decode([String: Expected].self, from:
            Data(contentsOf: Self.fixtures.appendingPathComponent("dtypes.json")))
        XCTAssertEqual(file.metadata, ["format": "pt", "note": "restore fixture"])
        XCTAssertEqual(Set(file.tensors.map(\.name)), Set(expected.keys))
        let storedTypes: [String: DType] = ["float32": .float32, "float16": .float16, "bfloat16": .bfloat16,
                                            "float64": .float32, "int64": .int64, "int32": .int32, "bool": .bool]
        for (name, reference) in expected {
            let constant = try file.constant(named: name)
            XCTAssertEqual(constant.shape, reference.shape, name)
            XCTAssertEqual(constant.dtype, storedTypes[reference.dtype], name)
            // Every stored type holds its values exactly; F64 is rounded to f32 once.
            XCTAssertEqual(constant.floatValues(), reference.values.map { Float($0) }, name)
        }
    }

    func testAlignedFloatTensorsAreViewedInPlace() throws {
        let file = try SafetensorsFile.read(contentsOf: Self.fixtures.appendingPathComponent("dtypes.safetensors").path)
        let first = try file.constant(named: "weight.f32"), second = try file.constant(named: "weight.f32")
        XCTAssertTrue(first.storage === second.storage, "f32 tensors should view the mapping, not copies")
        XCTAssertTrue(first.storage.isFileMapping)
    }

    func testMisalignedTensorsAreCopiedWithTheirValues() throws {
        // A header of odd length puts the data buffer at an odd address.
        let bytes = assemble(#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} "#, data: floats([1.5, -2]))
        let file = try read(bytes, "odd")
        XCTAssertEqual(try file.constant(named: "w").floatValues(), [1.5, -2])
    }

    func testShardedCheckpointReadsEveryShardThroughItsIndex() throws {
        let folder = Self.fixtures.appendingPathComponent("sharded").path
        let checkpoint = try SafetensorsCheckpoint.open(folder)
        XCTAssertEqual(checkpoint.files.count, 2)
        let expected = try JSONDecoder().decode([String: [Double]].self, from:
            Data(contentsOf: Self.fixtures.appendingPathComponent("sharded/values.json")))
        XCTAssertEqual(checkpoint.tensorNames, expected.keys.sorted())
        for (name, values) in expected {
            XCTAssertEqual(try checkpoint.constant(named: name).floatValues(), values.map { Float($0) }, name)
        }
        XCTAssertTrue(checkpoint.file(holding: "first.weight").hasSuffix("model-00001-of-00002.safetensors"))
    }

    func testF64BeyondFloatRangeIsRefusedNamingTheTensor() throws {
        let file = try read(assemble(#"{"big":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}"#,
                                     data: withUnsafeBytes(of: 1e300) { Array($0) }), "f64")
        XCTAssertThrowsError(try file.constant(named: "big")) { error in
            XCTAssertEqual(error as? SafetensorsError, .unrepresentableValue(file: "f64", tensor: "big", value: 1e300))
        }
    }

    func testUnsignedAndEightBitTypesAreRefusedWithAReason() throws {
        let file = try read(assemble(#"{"q":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"#
                                         + #""f8":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[2,3]}}"#,
                                     data: [1, 2, 3]), "types")
        for name in ["q", "f8"] {
            XCTAssertThrowsError(try file.constant(named: name)) { error in
                guard case .unsupportedDType(_, let tensor, _, let reason)? = error as? SafetensorsError else {
                    return XCTFail("\(error)")
                }
                XCTAssertEqual(tensor, name)
                XCTAssertFalse(reason.isEmpty)
            }
        }
    }

    // MARK: Hostile files

    func testShortFilesAreRefused() {
        expectRefusal([], "empty") { if case .truncated(_, 0, 8) = $0 { true } else { false } }
        expectRefusal([1, 2, 3], "short") { if case .truncated(_, 3, 8) = $0 { true } else { false } }
        expectRefusal(length(64) + Array("{}".utf8), "cut") { if case .truncated(_, 10, 72) = $0 { true } else { false } }
    }

    func testHugeHeaderLengthIsRefusedBeforeAllocating() {
        expectRefusal(length(UInt64.max) + [0], "huge") { if case .headerTooLarge = $0 { true } else { false } }
    }

    func testMalformedHeadersAreRefused() {
        let cases: [(String, String)] = [
            ("notjson", "this is not JSON"),
            ("array", "[1, 2]"),
            ("nodtype", #"{"w":{"shape":[1],"data_offsets":[0,4]}}"#),
            ("shapestring", #"{"w":{"dtype":"F32","shape":"1","data_offsets":[0,4]}}"#),
            ("threeoffsets", #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}"#),
            ("negativeoffset", #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}"#),
            ("metadatanumber", #"{"__metadata__":{"total":3}}"#),
        ]
        for (label, json) in cases {
            expectRefusal(assemble(json, data: [0, 0, 0, 0]), label) {
                if case .malformedHeader = $0 { true } else { false }
            }
        }
    }

    func testUnknownDTypeIsRefusedNamingTheTensor() {
        expectRefusal(assemble(#"{"w":{"dtype":"F128","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
                      "dtype") { $0 == .unknownDType(file: $0.file, tensor: "w", dtype: "F128") }
    }

    func testBadShapesAreRefused() {
        expectRefusal(assemble(#"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}"#, data: []), "negative") {
            $0 == .badShape(file: $0.file, tensor: "w", shape: [-1])
        }
        let overflowing = #"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}"#
        expectRefusal(assemble(overflowing, data: []), "overflow") {
            if case .badShape(_, "w", _) = $0 { true } else { false }
        }
    }

    func testOffsetsOutsideTheBufferOrReversedAreRefused() {
        expectRefusal(assemble(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: [0, 0, 0, 0]),
                      "beyond") { $0 == .badOffsets(file: $0.file, tensor: "w", begin: 4, end: 8, bufferLength: 4) }
        expectRefusal(assemble(#"{"w":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}"#, data: [0, 0, 0, 0]),
                      "reversed") { $0 == .badOffsets(file: $0.file, tensor: "w", begin: 4, end: 0, bufferLength: 4) }
    }

    func testSizeDisagreeingWithShapeTimesDTypeIsRefused() {
        expectRefusal(assemble(#"{"w":{"dtype":"F16","shape":[3],"data_offsets":[0,8]}}"#, data: Array(repeating: 0, count: 8)),
                      "size") { $0 == .sizeMismatch(file: $0.file, tensor: "w", expected: 6, found: 8) }
    }

    func testOverlappingTensorsAreRefused() {
        let json = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        expectRefusal(assemble(json, data: Array(repeating: 0, count: 8)), "overlap") {
            $0 == .overlappingTensors(file: $0.file, tensor: "b", other: "a")
        }
    }

    func testHolesAndTrailingBytesAreRefused() {
        let hole = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#
        expectRefusal(assemble(hole, data: Array(repeating: 0, count: 12)), "hole") {
            $0 == .unusedBytes(file: $0.file, offset: 4, length: 4)
        }
        expectRefusal(assemble(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: Array(repeating: 0, count: 6)),
                      "trailing") { $0 == .unusedBytes(file: $0.file, offset: 4, length: 2) }
    }

    func testIndexDisagreeingWithItsShardsIsRefused() throws {
        let shard = assemble(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: floats([1]))
        try writeBytes(shard, to: directory + "/s1.safetensors")
        let cases: [(String, String)] = [
            ("missing", #"{"weight_map":{"a":"s1.safetensors","b":"s1.safetensors"}}"#),
            ("unlisted", #"{"weight_map":{"c":"s1.safetensors"}}"#),
            ("outside", #"{"weight_map":{"a":"../s1.safetensors"}}"#),
            ("malformed", #"{"weight_map":[]}"#),
        ]
        for (label, json) in cases {
            let index = directory + "/\(label).index.json"
            try Data(json.utf8).write(to: URL(fileURLWithPath: index))
            XCTAssertThrowsError(try SafetensorsCheckpoint.open(index), label) { error in
                guard case .badIndex(let file, _)? = error as? SafetensorsError else { return XCTFail("\(label): \(error)") }
                XCTAssertEqual(file, index)
            }
        }
    }

    func testEveryTruncationOfARealFileIsRefusedWithoutCrashing() throws {
        let bytes = try fileBytes(Self.fixtures.appendingPathComponent("dtypes.safetensors").path)
        for count in 0..<bytes.count {
            XCTAssertThrowsError(try bytes[..<count].withUnsafeBytes { try SafetensorsFile.read(bytes: $0, name: "cut") },
                                 "\(count) bytes")
        }
    }

    // MARK: Helpers

    private func length(_ value: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }

    private func assemble(_ json: String, data: [UInt8]) -> [UInt8] {
        length(UInt64(json.utf8.count)) + Array(json.utf8) + data
    }

    private func floats(_ values: [Float]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

    private func read(_ bytes: [UInt8], _ name: String) throws -> SafetensorsFile {
        try bytes.withUnsafeBytes { try SafetensorsFile.read(bytes: $0, name: name) }
    }

    /// Reads `bytes` from a file named after `label` and from memory; both must throw an
    /// error that `matches` accepts and whose message names the file.
    private func expectRefusal(_ bytes: [UInt8], _ label: String, file: StaticString = #filePath, line: UInt = #line,
                               _ matches: (SafetensorsError) -> Bool) {
        let path = directory + "/" + label + ".safetensors"
        do {
            try writeBytes(bytes, to: path)
        } catch {
            return XCTFail("cannot write test file: \(error)", file: file, line: line)
        }
        let readers: [(String, () throws -> SafetensorsFile)] = [
            (path, { try SafetensorsFile.read(contentsOf: path) }),
            ("memory:" + label, { try self.read(bytes, "memory:" + label) }),
        ]
        for (name, read) in readers {
            do {
                _ = try read()
                XCTFail("\(label): \(name) was accepted", file: file, line: line)
            } catch let error as SafetensorsError {
                XCTAssertTrue(matches(error), "\(label): unexpected error \(error)", file: file, line: line)
                XCTAssertEqual(error.file, name, file: file, line: line)
                XCTAssertTrue(error.description.contains(name), "\(label): message does not name \(name): \(error)",
                              file: file, line: line)
            } catch {
                XCTFail("\(label): error of another type \(error)", file: file, line: line)
            }
        }
    }
}
