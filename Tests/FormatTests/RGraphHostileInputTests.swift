import Foundation
import TestSupport
import XCTest
@testable import Format

/// Truncated, corrupted and hand-crafted files: each is refused with its specific error,
/// and the message names the file. Every case is read both from disk and from memory.
final class RGraphHostileInputTests: XCTestCase {
    var directory = ""
    var validFile: [UInt8] = []
    /// One f32 [2,3] tensor "w" and one i8 [4] tensor "v": easy to edit in the JSON.
    var smallFile: [UInt8] = []

    override func setUpWithError() throws {
        directory = try makeTemporaryDirectory()
        try RGraphWriter.write(sampleGraph(), to: directory + "/valid.rgraph")
        validFile = try fileBytes(directory + "/valid.rgraph")
        let small = Graph(constants: [ConstantTensor(name: "w", shape: [2, 3], floats: [1, 2, 3, 4, 5, 6]),
                                      ConstantTensor(name: "v", shape: [4], ints: [1, 2, 3, 4], dtype: .int32)])
        try RGraphWriter.write(small, to: directory + "/small.rgraph")
        smallFile = try fileBytes(directory + "/small.rgraph")
    }

    override func tearDownWithError() throws { try FileManager.default.removeItem(atPath: directory) }

    /// Reads `bytes` from a file named after `label` and from memory; both must throw an
    /// error that `matches` accepts and whose description names the file.
    private func expectRefusal(_ bytes: [UInt8], _ label: String, file: StaticString = #filePath, line: UInt = #line,
                               _ matches: (RGraphError) -> Bool) {
        let path = directory + "/" + label + ".rgraph"
        do {
            try writeBytes(bytes, to: path)
        } catch {
            return XCTFail("cannot write test file: \(error)", file: file, line: line)
        }
        let readers: [(String, () throws -> RGraphFile)] = [
            (path, { try RGraphReader.read(contentsOf: path) }),
            ("memory:" + label, { try bytes.withUnsafeBytes { try RGraphReader.read(bytes: $0, name: "memory:" + label) } }),
        ]
        for (name, read) in readers {
            do {
                _ = try read()
                XCTFail("\(label): \(name) was accepted", file: file, line: line)
            } catch let error as RGraphError {
                XCTAssertTrue(matches(error), "\(label): unexpected error \(error)", file: file, line: line)
                XCTAssertTrue(error.description.contains(name), "\(label): message does not name \(name): \(error)",
                              file: file, line: line)
            } catch {
                XCTFail("\(label): error of another type \(error)", file: file, line: line)
            }
        }
    }

    private var validHeader: RGraphFixedHeader { validFile.withUnsafeBytes { RGraphFixedHeader(decoding: $0) } }

    // MARK: Fixed header and sections

    func testEmptyFileIsRefused() {
        expectRefusal([], "empty") { $0 == .tooSmall(file: $0.file, size: 0) }
    }

    func testFileTruncatedAnywhereIsRefused() {
        let header = validHeader
        let dataOffset = Int(header.dataOffset)
        let cuts = [1, 8, 12, 40, 71, 72, 73, 100, dataOffset - 1, dataOffset, dataOffset + 1,
                    validFile.count - 65, validFile.count - 1]
        XCTAssertGreaterThan(validFile.count - 65, dataOffset, "sample data section too small for the cuts")
        for cut in cuts {
            expectRefusal(Array(validFile[..<cut]), "cut-\(cut)") { error in
                switch error {
                case .tooSmall(_, let size): cut < RGraphFixedHeader.size && size == cut
                case .sectionOutOfRange(_, let section, _, _, let fileSize):
                    cut >= RGraphFixedHeader.size && fileSize == cut
                        && section == (cut < Int(header.headerOffset + header.headerLength) ? .header : .data)
                default: false
                }
            }
        }
    }

    func testWrongMagicIsRefused() {
        var bytes = validFile
        bytes[0] = UInt8(ascii: "X")
        expectRefusal(bytes, "magic") { $0 == .badMagic(file: $0.file) }
        var generator = SplitMix64(seed: 5)
        let noise = (0..<500).map { _ in UInt8.random(in: 0 ... .max, using: &generator) }
        expectRefusal(noise, "noise") { $0 == .badMagic(file: $0.file) }
    }

    func testNewerMajorVersionIsRefusedNamingTheVersion() {
        var header = validHeader
        header.major = 2
        header.minor = 3
        expectRefusal(withFixedHeader(validFile, header), "major2") { error in
            error == .unsupportedVersion(file: error.file, major: 2, minor: 3) && error.description.contains("2.3")
        }
        header.major = 0
        expectRefusal(withFixedHeader(validFile, header), "major0") {
            $0 == .unsupportedVersion(file: $0.file, major: 0, minor: 3)
        }
    }

    /// A newer minor version may add members anywhere; this reader ignores them.
    func testNewerMinorVersionWithUnknownMembersIsAccepted() throws {
        let parts = RGraphParts(smallFile)
            .replacing("\"minor\":0", with: "\"minor\":3")
            .replacing("{\"format\"", with: "{\"extensions\":{\"a\":[1,{\"b\":null}]},\"format\"")
            .replacing("\"name\":\"w\"", with: "\"name\":\"w\",\"hint\":\"mmap\",\"quantization\":null")
        let path = directory + "/minor3.rgraph"
        try writeBytes(parts.assembled(minor: 3), to: path)
        let file = try RGraphReader.read(contentsOf: path)
        XCTAssertEqual(file.version, RGraphVersion(major: 1, minor: 3))
        XCTAssertEqual(file.graph.constants["w"]?.floatValues(), [1, 2, 3, 4, 5, 6])
    }

    func testCorruptFixedHeaderIsRefused() {
        var bytes = validFile
        bytes[12] ^= 0x01  // the reserved field: ignored by readers, but checksummed
        expectRefusal(bytes, "fixed-checksum") { error in
            if case .fixedHeaderChecksumMismatch = error { return true } else { return false }
        }
    }

    func testSectionOffsetsOutOfRangeAreRefused() {
        var header = validHeader
        header.dataLength = UInt64(validFile.count)
        expectRefusal(withFixedHeader(validFile, header), "data-past-end") { error in
            if case .sectionOutOfRange(_, .data, _, _, _) = error { return true } else { return false }
        }
        header = validHeader
        header.headerLength = UInt64.max - 10
        expectRefusal(withFixedHeader(validFile, header), "header-overflow") { error in
            if case .sectionOutOfRange(_, .header, _, UInt64.max - 10, _) = error { return true } else { return false }
        }
    }

    func testMisplacedSectionsAreRefused() {
        var header = validHeader
        header.headerOffset = 0
        expectRefusal(withFixedHeader(validFile, header), "header-at-0") {
            $0 == .misplacedSection(file: $0.file, section: .header, offset: 0)
        }
        header = validHeader
        header.dataOffset -= 1
        expectRefusal(withFixedHeader(validFile, header), "data-unaligned") {
            $0 == .misplacedSection(file: $0.file, section: .data, offset: self.validHeader.dataOffset - 1)
        }
    }

    func testOverlappingSectionsAreRefused() {
        var header = validHeader
        XCTAssertGreaterThan(header.headerLength, 128, "sample header section too small to overlap")
        header.dataOffset = 128
        expectRefusal(withFixedHeader(validFile, header), "overlap") { $0 == .overlappingSections(file: $0.file) }
    }

    func testFlippedHeaderSectionByteIsRefused() {
        var bytes = validFile
        bytes[Int(validHeader.headerOffset) + 10] ^= 0x20
        expectRefusal(bytes, "header-checksum") { error in
            if case .checksumMismatch(_, .header, _, _) = error { return true } else { return false }
        }
    }

    func testFlippedDataByteIsRefused() {
        var bytes = validFile
        bytes[Int(validHeader.dataOffset) + 3] ^= 0x01
        expectRefusal(bytes, "data-checksum") { error in
            if case .checksumMismatch(_, .data, _, _) = error { return true } else { return false }
        }
    }

    // MARK: Header section

    private func expectMalformed(_ parts: RGraphParts, _ label: String, mentioning detail: String,
                                 file: StaticString = #filePath, line: UInt = #line) {
        expectRefusal(parts.assembled(), label, file: file, line: line) { error in
            guard case .malformedHeader(_, let text) = error else { return false }
            return text.contains(detail)
        }
    }

    func testMalformedJSONIsRefused() {
        var parts = RGraphParts(validFile)
        parts.json = "{\"format\": "
        expectMalformed(parts, "truncated-json", mentioning: "JSON")
        parts.json = "\u{FF}not json"
        expectMalformed(parts, "garbage-json", mentioning: "JSON")
        parts.json = "[]"
        expectMalformed(parts, "array-json", mentioning: "top level")
    }

    func testWronglyTypedHeaderIsRefusedSayingWhere() {
        let parts = RGraphParts(validFile)
        expectMalformed(parts.replacing("\"group\":{\"type\":\"int\",\"value\":2}",
                                        with: "\"group\":{\"type\":\"int\",\"value\":\"2\"}"),
                        "string-for-int", mentioning: "nodes[0].attributes.group.value")
        expectMalformed(parts.replacing("\"group\":{\"type\":\"int\"", with: "\"group\":{\"type\":\"complex\""),
                        "unknown-attribute-type", mentioning: "unknown attribute type 'complex'")
        expectMalformed(parts.replacing("\"alpha\":{\"type\":\"float\",\"value\":\"0.2\"}",
                                        with: "\"alpha\":{\"type\":\"float\",\"value\":\"0x1p3\"}"),
                        "hex-float", mentioning: "'0x1p3' is not a FLOAT string")
        expectMalformed(parts.replacing("\"outputs\":", with: "\"outputz\":"),
                        "missing-member", mentioning: "missing member 'outputs'")
        expectMalformed(parts.replacing("\"shape\":[1,3,\"H\",\"W\"]", with: "\"shape\":[1,3.5,\"H\",\"W\"]"),
                        "fractional-dim", mentioning: "inputs[0].shape[1]")
        expectMalformed(parts.replacing("\"minor\":0", with: "\"minor\":1"),
                        "version-disagrees", mentioning: "differs from the fixed header's 1.0")
    }

    /// Attributes are checked against the op's schema when the file is read, so a file
    /// that would make a kernel misread its attributes never reaches the planner.
    func testAttributesThatDoNotFitTheOpAreRefusedNamingNodeAndKey() {
        let parts = RGraphParts(validFile)
        let cases: [(label: String, from: String, to: String, expected: GraphError)] = [
            ("unknown-attribute", "\"group\":{", "\"groups\":{", .unknownAttribute(node: "conv1", attribute: "groups")),
            ("attribute-of-wrong-type", "\"group\":{\"type\":\"int\",\"value\":2}", "\"group\":{\"type\":\"float\",\"value\":\"2.5\"}",
             .badAttribute(node: "conv1", attribute: "group", expected: "an int", found: "2.5")),
            ("invalid-attribute-value", "\"group\":{\"type\":\"int\",\"value\":2}", "\"group\":{\"type\":\"int\",\"value\":0}",
             .badAttribute(node: "conv1", attribute: "group", expected: "an int >= 1", found: "0")),
            ("unknown-function", "\"value\":\"clip\"", "\"value\":\"clamp\"",
             .badAttribute(node: "clip", attribute: "function", expected: UnaryFunction.expectation, found: "\"clamp\"")),
        ]
        for (label, from, to, expected) in cases {
            expectRefusal(parts.replacing(from, with: to).assembled(), label) { error in
                guard case .invalidAttributes(_, let found) = error else { return false }
                return found == expected && error.description.contains(error.file)
            }
        }
    }

    func testUnknownOpIsRefusedNamingTheNode() {
        let parts = RGraphParts(validFile).replacing("\"op\":\"where\"", with: "\"op\":\"frobnicate\"")
        expectRefusal(parts.assembled(), "unknown-op") { error in
            error == .unknownOp(file: error.file, node: "select", op: "frobnicate")
                && error.description.contains("'select'") && error.description.contains("frobnicate")
        }
    }

    func testUnknownDTypeIsRefusedNamingTheTensorOrValue() {
        let small = RGraphParts(smallFile).replacing("{\"dtype\":\"f32\",\"length\":24",
                                                     with: "{\"dtype\":\"f64\",\"length\":24")
        expectRefusal(small.assembled(), "unknown-dtype-tensor") {
            $0 == .unknownDType(file: $0.file, owner: "w", dtype: "f64")
        }
        let sample = RGraphParts(validFile).replacing("{\"dtype\":\"i64\",\"name\":\"ids\"",
                                                      with: "{\"dtype\":\"c64\",\"name\":\"ids\"")
        expectRefusal(sample.assembled(), "unknown-dtype-output") {
            $0 == .unknownDType(file: $0.file, owner: "ids", dtype: "c64")
        }
    }

    // MARK: Tensor table

    func testTensorExtendingPastTheDataSectionIsRefused() {
        let parts = RGraphParts(smallFile).replacing("\"name\":\"w\",\"offset\":0", with: "\"name\":\"w\",\"offset\":128")
        expectRefusal(parts.assembled(), "tensor-past-end") {
            $0 == .tensorOutOfRange(file: $0.file, tensor: "w", offset: 128, length: 24, dataLength: 128)
        }
        let negative = RGraphParts(smallFile).replacing("\"name\":\"w\",\"offset\":0",
                                                        with: "\"name\":\"w\",\"offset\":-64")
        expectRefusal(negative.assembled(), "tensor-negative-offset") {
            $0 == .tensorOutOfRange(file: $0.file, tensor: "w", offset: -64, length: 24, dataLength: 128)
        }
        let overflowing = RGraphParts(smallFile).replacing("\"name\":\"w\",\"offset\":0",
                                                           with: "\"name\":\"w\",\"offset\":\(Int.max - 7)")
        expectRefusal(overflowing.assembled(), "tensor-offset-overflow") { error in
            if case .tensorOutOfRange(_, "w", _, _, _) = error { return true } else { return false }
        }
    }

    func testMisalignedTensorIsRefused() {
        let parts = RGraphParts(smallFile).replacing("\"name\":\"w\",\"offset\":0", with: "\"name\":\"w\",\"offset\":8")
        expectRefusal(parts.assembled(), "tensor-misaligned") {
            $0 == .misalignedTensor(file: $0.file, tensor: "w", offset: 8)
        }
    }

    func testTensorLengthDisagreeingWithShapeIsRefused() {
        let parts = RGraphParts(smallFile).replacing("\"length\":24", with: "\"length\":20")
        expectRefusal(parts.assembled(), "tensor-length") {
            $0 == .tensorLengthMismatch(file: $0.file, tensor: "w", expected: 24, found: 20)
        }
    }

    func testHostileShapesAreRefused() {
        let hostile = [
            ("negative-dims", "[-2,-3]"), ("one-negative-dim", "[-1,-24]"),
            ("overflowing-product", "[4611686018427387904,4]"),
            ("overflowing-bytes", "[2305843009213693952,1]"),
            ("many-dims", "[" + Array(repeating: "65536", count: 8).joined(separator: ",") + "]"),
        ]
        for (label, shape) in hostile {
            let parts = RGraphParts(smallFile).replacing("\"shape\":[2,3]", with: "\"shape\":\(shape)")
            expectRefusal(parts.assembled(), label) { error in
                if case .badShape(_, "w", _) = error { return true } else { return false }
            }
        }
        // Foundation's decoder reports a number beyond Int64 as invalid JSON, without a location.
        let beyondInt64 = RGraphParts(smallFile).replacing("\"shape\":[2,3]", with: "\"shape\":[99999999999999999999]")
        expectMalformed(beyondInt64, "dim-beyond-int64", mentioning: "JSON")
        let sample = RGraphParts(validFile)
        expectRefusal(sample.replacing("\"shape\":[1,3,\"H\",\"W\"]", with: "\"shape\":[-1,3,\"H\",\"W\"]").assembled(),
                      "negative-input-dim") { error in
            if case .badShape(_, "image", _) = error { return true } else { return false }
        }
        expectRefusal(sample.replacing("\"shape\":[1,3,\"H\",\"W\"]", with: "\"shape\":[1,3,\"\",\"W\"]").assembled(),
                      "empty-symbol") { error in
            if case .badShape(_, "image", _) = error { return true } else { return false }
        }
    }

    func testDuplicateTensorNameIsRefused() {
        let parts = RGraphParts(smallFile).replacing("\"name\":\"v\"", with: "\"name\":\"w\"")
        expectRefusal(parts.assembled(), "duplicate-tensor") { $0 == .duplicateTensor(file: $0.file, tensor: "w") }
    }

    // MARK: Quantization records (§4, since 1.1)

    /// An int8 weight "q" [2, 3] with per-row scales "q.scales" [2], next to "w".
    private func quantizedFile() throws -> RGraphParts {
        let (weights, scales) = Int8Scales.quantize(name: "q", shape: [2, 3], values: [1, -2, 3, 0.5, 0.25, -0.125],
                                                    axis: 0, scalesName: "q.scales")
        let graph = Graph(constants: [ConstantTensor(name: "w", shape: [2, 3], floats: [1, 2, 3, 4, 5, 6]),
                                      weights, scales])
        try RGraphWriter.write(graph, to: directory + "/quantized.rgraph")
        return RGraphParts(try fileBytes(directory + "/quantized.rgraph"))
    }

    private static let quantizationRecord = "\"quantization\":{\"axis\":0,\"scales\":\"q.scales\",\"scheme\":\"int8-symmetric\"}"

    func testUnknownQuantizationSchemeIsRefusedNamingTheTensor() {
        let parts = RGraphParts(smallFile).replacing("\"name\":\"w\"",
                                                     with: "\"name\":\"w\",\"quantization\":{\"scheme\":\"q8\"}")
        expectRefusal(parts.assembled(), "quantized") {
            $0 == .unknownQuantization(file: $0.file, tensor: "w", scheme: "q8") && $0.description.contains("q8")
        }
    }

    /// Packed layouts are designed (named, versioned, tagged with their CPU) but not read yet.
    func testPackedWeightsAreRefusedAsNotSupportedByThisVersion() throws {
        let packed = "\"quantization\":{\"cpu\":\"avx512\",\"kernel\":\"gemm-panels\",\"scheme\":\"packed\","
            + "\"version\":1,\"width\":48}"
        let parts = try quantizedFile().replacing(Self.quantizationRecord, with: packed)
        expectRefusal(parts.assembled(minor: 1), "packed") {
            $0 == .unsupportedLayout(file: $0.file, tensor: "q", .packed(.gemmPanels(width: 48, cpu: .avx512)))
                && $0.description.contains("not support")
        }
        let unknownKernel = try quantizedFile().replacing(Self.quantizationRecord, with: packed.replacing("gemm-panels", with: "tiles"))
        expectRefusal(unknownKernel.assembled(minor: 1), "packed-unknown-kernel") {
            $0 == .unknownQuantization(file: $0.file, tensor: "q", scheme: "packed kernel 'tiles'")
        }
        let newerVersion = try quantizedFile().replacing(Self.quantizationRecord, with: packed.replacing("\"version\":1", with: "\"version\":2"))
        expectRefusal(newerVersion.assembled(minor: 1), "packed-newer-version") { error in
            if case .unknownQuantization(_, "q", _) = error { return true } else { return false }
        }
    }

    /// Hostile int8 records: each is refused with `invalidQuantization`, naming the tensor
    /// and what is wrong.
    func testInvalidInt8RecordsAreRefusedNamingTheTensor() throws {
        let cases: [(label: String, old: String, new: String, mentioning: String)] = [
            ("scales-missing", "\"scales\":\"q.scales\"", "\"scales\":\"absent\"", "'absent' does not exist"),
            ("scales-member-missing", "\"scales\":\"q.scales\",", "", "'scales'"),
            ("scales-wrong-length", "\"axis\":0", "\"axis\":1", "needs [3]"),
            ("axis-out-of-range", "\"axis\":0", "\"axis\":2", "axis 2"),
            ("per-tensor-with-two-scales", "\"axis\":0,", "", "per-tensor"),
            ("scales-wrong-dtype", "\"dtype\":\"f32\",\"length\":8,\"name\":\"q.scales\"",
             "\"dtype\":\"i32\",\"length\":8,\"name\":\"q.scales\"", "not plain f32"),
            ("not-int8", "\"dtype\":\"i8\",\"length\":6,\"name\":\"q\"", "\"dtype\":\"bool\",\"length\":6,\"name\":\"q\"",
             "needs dtype i8"),
            ("scales-quantized", "\"name\":\"q.scales\"", "\"name\":\"q.scales\"," + Self.quantizationRecord, "not plain f32"),
        ]
        for (label, old, new, mentioning) in cases {
            let parts = try quantizedFile().replacing(old, with: new)
            expectRefusal(parts.assembled(minor: 1), label) { error in
                guard case .invalidQuantization(_, let tensor, let detail) = error else { return false }
                return ["q", "q.scales"].contains(tensor) && detail.contains(mentioning)
            }
        }
    }

    func testNonFiniteScaleIsRefused() throws {
        var parts = try quantizedFile()
        // The scales follow "w" (24 bytes, padded to 64) and "q" (6 bytes, padded to 64).
        withUnsafeBytes(of: Float.nan) { nan in parts.data.replaceSubrange(128..<132, with: nan) }
        expectRefusal(parts.assembled(minor: 1), "nan-scale") { error in
            guard case .invalidQuantization(_, "q", let detail) = error else { return false }
            return detail.contains("nan")
        }
    }

    /// Random edits of the header JSON, checksums made valid again so that decoding and
    /// validation see them: every result is a graph or an `RGraphError`, never a crash.
    func testRandomHeaderEditsAreReadOrRefusedWithoutCrashing() {
        let original = Array(RGraphParts(smallFile).json.utf8)
        let alphabet = Array("{}[]:,\"-0123456789eE.ntrufalsxyz\\ ".utf8)
        var generator = SplitMix64(seed: 99)
        var accepted = 0, refused = 0
        for _ in 0..<2000 {
            var json = original
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                let position = Int.random(in: 0..<json.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: json[position] = alphabet.randomElement(using: &generator) ?? 0
                case 1: json.remove(at: position)
                default: json.insert(alphabet.randomElement(using: &generator) ?? 0, at: position)
                }
            }
            var parts = RGraphParts(smallFile)
            parts.json = String(decoding: json, as: UTF8.self)
            let bytes = parts.assembled()
            do {
                _ = try bytes.withUnsafeBytes { try RGraphReader.read(bytes: $0, name: "fuzz") }
                accepted += 1
            } catch is RGraphError {
                refused += 1
            } catch {
                XCTFail("error of another type: \(error)")
            }
        }
        print("random header edits: \(accepted) accepted, \(refused) refused")
        XCTAssertGreaterThan(refused, 0)
    }

    // MARK: Opening

    func testMissingFileAndDirectoryAreRefused() {
        for path in [directory + "/absent.rgraph", directory] {
            XCTAssertThrowsError(try RGraphReader.read(contentsOf: path)) { error in
                guard case .cannotOpen(path, _)? = error as? RGraphError else { return XCTFail("\(error)") }
                XCTAssertTrue("\(error)".contains(path))
            }
        }
    }
}

extension RGraphError {
    /// The file every case names, so tests can match a case whatever the path.
    var file: String {
        switch self {
        case .cannotOpen(let file, _), .tooSmall(let file, _), .badMagic(let file), .unsupportedVersion(let file, _, _),
             .fixedHeaderChecksumMismatch(let file, _, _), .sectionOutOfRange(let file, _, _, _, _),
             .misplacedSection(let file, _, _), .overlappingSections(let file), .checksumMismatch(let file, _, _, _),
             .malformedHeader(let file, _), .unknownOp(let file, _, _), .invalidAttributes(let file, _), .unknownDType(let file, _, _),
             .badShape(let file, _, _), .tensorLengthMismatch(let file, _, _, _), .misalignedTensor(let file, _, _),
             .tensorOutOfRange(let file, _, _, _, _), .duplicateTensor(let file, _),
             .unknownQuantization(let file, _, _), .unsupportedLayout(let file, _, _),
             .invalidQuantization(let file, _, _), .cannotWrite(let file, _):
            file
        }
    }
}
