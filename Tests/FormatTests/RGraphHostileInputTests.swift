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
            .replacing("\"minor\":3", with: "\"minor\":4")
            .replacing("{\"format\"", with: "{\"extensions\":{\"a\":[1,{\"b\":null}]},\"format\"")
            .replacing("\"name\":\"w\"", with: "\"name\":\"w\",\"hint\":\"mmap\",\"quantization\":null")
        let path = directory + "/minor4.rgraph"
        try writeBytes(parts.assembled(minor: 4), to: path)
        let file = try RGraphReader.read(contentsOf: path)
        XCTAssertEqual(file.version, RGraphVersion(major: 1, minor: 4))
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

    /// A 1.3 file records each tensor's CRC-64: reading it sums no data, and a flipped byte
    /// is found when its tensor is verified (by whoever reads it first), naming the tensor;
    /// the other tensors still verify. Verifying in the background first (what a model
    /// starts as it loads) leaves the corrupt tensor for `verify` to report.
    func testFlippedTensorByteIsFoundWhenItsTensorIsVerified() throws {
        let clean = try RGraphReader.read(contentsOf: directory + "/valid.rgraph")
        let checksums = try XCTUnwrap(clean.checksums)
        XCTAssertEqual(checksums.unverified, Set(clean.graph.constantOrder))
        let target = try XCTUnwrap(clean.graph.orderedConstants.max { $0.byteCount < $1.byteCount })
        var bytes = validFile
        bytes[target.byteOffset + target.byteCount / 2] ^= 0x01
        let path = directory + "/flipped.rgraph"
        try writeBytes(bytes, to: path)
        let files = [try RGraphReader.read(contentsOf: path),
                     try bytes.withUnsafeBytes { try RGraphReader.read(bytes: $0, name: "memory:flipped") }]
        for (index, file) in files.enumerated() {
            let checksums = try XCTUnwrap(file.checksums)
            let others = file.graph.constantOrder.filter { $0 != target.name }
            if index == 0 {
                try checksums.verify(others)
            } else {
                checksums.verifyInBackground(file.graph.constantOrder)
            }
            XCTAssertEqual(checksums.unverified, [target.name])
            for attempt in 1...2 {
                XCTAssertThrowsError(try checksums.verify([target.name]), "attempt \(attempt)") { error in
                    guard case .tensorChecksumMismatch(file.file, target.name, _, _)? = error as? RGraphError else {
                        return XCTFail("unexpected error \(error)")
                    }
                    XCTAssertTrue("\(error)".contains("\(file.file): tensor '\(target.name)' is corrupt"), "\(error)")
                }
                // A corrupt tensor stays unverified: every later use fails too.
                XCTAssertEqual(checksums.unverified, [target.name])
            }
        }
    }

    /// `verify` called while background workers sum the same tensors (what the planner does
    /// when it arrives before they end) sums what they have not claimed and waits for the
    /// rest: every tensor is verified once either way, and a corrupt one is named — the first
    /// in file order, whoever summed it — and stays unverified, on 1 and 3 workers.
    /// `verifyAll` does the same for every tensor.
    func testVerifyingWhileBackgroundWorkersSumSharesTheWorkAndNamesTheFirstCorruptTensor() throws {
        var generator = SplitMix64(seed: 15)
        let sample = sampleGraph()
        let sizes = (0..<24).map { _ in Int.random(in: 1 ... 40_000, using: &generator) }
        let weights = sizes.enumerated().map { index, count in
            randomConstant("weight.\(index)", .float32, [count], using: &generator)
        }
        let graph = Graph(inputs: sample.inputs, outputs: sample.outputs, nodes: sample.nodes,
                          constants: sample.orderedConstants + weights, metadata: sample.metadata)
        let path = directory + "/many.rgraph"
        try RGraphWriter.write(graph, to: path)
        let clean = try RGraphReader.read(contentsOf: path)
        let byOffset = clean.graph.orderedConstants.filter { $0.name.hasPrefix("weight.") }.sorted { $0.byteOffset < $1.byteOffset }
        let corrupt = [byOffset[7], byOffset[20]]
        var bytes = try fileBytes(path)
        for tensor in corrupt { bytes[tensor.byteOffset + tensor.byteCount - 1] ^= 0x80 }
        let flippedPath = directory + "/many-flipped.rgraph"
        try writeBytes(bytes, to: flippedPath)
        let names = clean.graph.constantOrder
        for workers in [1, 3] {
            for attempt in 0..<3 {
                let context = "\(workers) workers, attempt \(attempt)"
                let good = try XCTUnwrap(try RGraphReader.read(contentsOf: path).checksums)
                good.verifyInBackground(names.shuffled(using: &generator), workers: workers)
                if attempt == 0 { try good.verifyAll() } else { try good.verify(names) }
                XCTAssertEqual(good.unverified, [], context)

                let file = try RGraphReader.read(contentsOf: flippedPath)
                let checksums = try XCTUnwrap(file.checksums)
                checksums.verifyInBackground(names.shuffled(using: &generator), workers: workers)
                XCTAssertThrowsError(try checksums.verify(names), context) { error in
                    guard case .tensorChecksumMismatch(flippedPath, corrupt[0].name, _, _)? = error as? RGraphError else {
                        return XCTFail("\(context): unexpected error \(error)")
                    }
                }
                XCTAssertEqual(checksums.unverified, Set(corrupt.map(\.name)), context)
                try checksums.verify(names.filter { name in !corrupt.contains { $0.name == name } })
                XCTAssertThrowsError(try checksums.verify([corrupt[1].name]), context) { error in
                    guard case .tensorChecksumMismatch(_, corrupt[1].name, _, _)? = error as? RGraphError else {
                        return XCTFail("\(context): unexpected error \(error)")
                    }
                }
            }
        }
    }

    /// Files without `crc64` members (written before 1.3) have their data section verified
    /// whole on reading, as before.
    func testFileWithoutTensorChecksumsIsVerifiedWholeOnReading() throws {
        var parts = RGraphParts(validFile)
        parts.json = parts.json.replacingOccurrences(of: #""crc64":"[0-9a-f]{16}","#, with: "", options: .regularExpression)
            .replacingOccurrences(of: "\"minor\":3", with: "\"minor\":2")
        XCTAssertFalse(parts.json.contains("crc64"))
        let old = parts.assembled(minor: 2)
        let file = try old.withUnsafeBytes { try RGraphReader.read(bytes: $0, name: "old") }
        XCTAssertNil(file.checksums)
        assertSameGraph(file.graph, sampleGraph())
        var flipped = old
        flipped[old.count - parts.data.count + 3] ^= 0x01
        expectRefusal(flipped, "data-checksum") { error in
            if case .checksumMismatch(_, .data, _, _) = error { return true } else { return false }
        }
    }

    func testMalformedTensorChecksumIsRefused() {
        let parts = RGraphParts(smallFile)
        guard let range = parts.json.range(of: #""crc64":"[0-9a-f]{16}""#, options: .regularExpression) else {
            return XCTFail("no crc64 in \(parts.json)")
        }
        for bad in ["\"crc64\":\"0123456789abcdeg\"", "\"crc64\":\"123\"", "\"crc64\":\"+123456789abcdef\""] {
            var edited = parts
            edited.json.replaceSubrange(range, with: bad)
            expectRefusal(edited.assembled(), "crc64-\(bad.count)") { error in
                guard case .malformedHeader(_, let detail) = error else { return false }
                return detail.contains("crc64 must be 16 hex digits")
            }
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
        expectMalformed(parts.replacing("\"minor\":3", with: "\"minor\":1"),
                        "version-disagrees", mentioning: "differs from the fixed header's 1.3")
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
        let small = RGraphParts(smallFile).replacing("\"dtype\":\"f32\",\"length\":24",
                                                     with: "\"dtype\":\"f64\",\"length\":24")
        expectRefusal(small.assembled(), "unknown-dtype-tensor") {
            $0 == .unknownDType(file: $0.file, owner: "w", dtype: "f64")
        }
        let sample = RGraphParts(validFile).replacing("\"dtype\":\"i64\",\"name\":\"ids\"",
                                                      with: "\"dtype\":\"c64\",\"name\":\"ids\"")
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

    // MARK: Packed values (§4, since 1.2)

    /// A 3×3 filter bank "k" [2, 3, 3, 3] with Winograd-domain values, a linear weight "m"
    /// [5, 4] with GEMM panels of width 4, and an i32 "n" [2]. The values are arbitrary:
    /// the format checks what they are made from and their size, not what they hold.
    private func packedGraph(duplicating: Bool = false) -> Graph {
        let k = ConstantTensor(name: "k", shape: [2, 3, 3, 3], floats: (0..<54).map(Float.init))
        let m = ConstantTensor(name: "m", shape: [5, 4], floats: (0..<20).map(Float.init))
        let n = ConstantTensor(name: "n", shape: [2], ints: [1, 2], dtype: .int32)
        let winograd = PackedConstant(source: "k", layout: .winogradF4x3,
                                      tensor: ConstantTensor(name: "k.u", shape: [216], floats: (0..<216).map(Float.init)))
        let panels = PackedConstant(source: "m", layout: .gemmPanels(width: 4, cpu: .avx512),
                                    tensor: ConstantTensor(name: "m.p", shape: [32], floats: (0..<32).map(Float.init)))
        var again = winograd
        again.tensor.name = "k.u2"
        return Graph(constants: [k, m, n], packedConstants: [winograd, panels] + (duplicating ? [again] : []))
    }

    private func packedFile() throws -> RGraphParts {
        try RGraphWriter.write(packedGraph(), to: directory + "/packed.rgraph")
        return RGraphParts(try fileBytes(directory + "/packed.rgraph"))
    }

    private static let winogradRecord = "\"quantization\":{\"cpu\":\"portable\",\"kernel\":\"winograd-f4x3\",\"scheme\":\"packed\","
        + "\"source\":\"k\",\"version\":1}"
    private static let panelsRecord = "\"quantization\":{\"cpu\":\"avx512\",\"kernel\":\"gemm-panels\",\"scheme\":\"packed\","
        + "\"source\":\"m\",\"version\":1,\"width\":4}"

    func testPackedValuesAreReadInPlaceBesideTheirSource() throws {
        let parts = try packedFile()
        XCTAssertTrue(parts.json.contains(Self.winogradRecord) && parts.json.contains(Self.panelsRecord), parts.json)
        let file = try RGraphReader.read(contentsOf: directory + "/packed.rgraph")
        XCTAssertEqual(file.version, RGraphVersion.current)
        XCTAssertEqual(file.graph.constantOrder, ["k", "m", "n"])
        XCTAssertEqual(file.graph.packedConstants.map(\.source), ["k", "m"])
        XCTAssertEqual(file.graph.packedConstants.map(\.layout), [.winogradF4x3, .gemmPanels(width: 4, cpu: .avx512)])
        let panels = file.graph.packedConstants[1].tensor
        XCTAssertEqual(Array(panels.float32Elements), (0..<32).map(Float.init))
        XCTAssertEqual(panels.layout, .packed(.gemmPanels(width: 4, cpu: .avx512)))
        XCTAssertTrue(panels.storage.isFileMapping, "packed values are viewed in the mapping, not copied")
        XCTAssertTrue(file.foreignPackedConstants.isEmpty)
        XCTAssertTrue(file.describe().contains("packed for kernels (convert --prepare): 2"), file.describe())
    }

    /// Values made for a kernel, CPU level or kernel version this Restore does not have are
    /// listed, not read: kernels prepare from the source, which is always in the file.
    func testPackedValuesForAnotherKernelOrVersionAreListedNotRead() throws {
        let edits = [("newer-version", "\"version\":1}", "\"version\":7}", "winograd-f4x3 version 7 for portable"),
                     ("other-cpu", "\"cpu\":\"portable\"", "\"cpu\":\"avx10\"", "winograd-f4x3 version 1 for avx10"),
                     ("winograd-for-avx512", "\"cpu\":\"portable\"", "\"cpu\":\"avx512\"", "for avx512"),
                     ("other-kernel", "\"kernel\":\"winograd-f4x3\"", "\"kernel\":\"winograd-f6x3\"", "winograd-f6x3")]
        for (label, old, new, madeFor) in edits {
            let record = Self.winogradRecord.replacing(old, with: new)
            let bytes = try packedFile().replacing(Self.winogradRecord, with: record).assembled()
            let file = try bytes.withUnsafeBytes { try RGraphReader.read(bytes: $0, name: label) }
            XCTAssertEqual(file.graph.packedConstants.map(\.source), ["m"], label)
            XCTAssertEqual(file.foreignPackedConstants.map(\.name), ["k.u"], label)
            XCTAssertTrue(file.foreignPackedConstants[0].madeFor.contains(madeFor), "\(label): \(file.foreignPackedConstants)")
            XCTAssertTrue(file.describe().contains("not read"), label)
        }
    }

    /// Hostile packed records: each is refused with `invalidQuantization`, naming the tensor
    /// and what is wrong.
    func testHostilePackedRecordsAreRefusedNamingTheTensor() throws {
        let cases: [(label: String, old: String, new: String, tensor: String, mentioning: String)] = [
            ("packed-without-source", ",\"source\":\"k\"", "", "k.u", "'source'"),
            ("packed-without-version", ",\"source\":\"k\",\"version\":1", ",\"source\":\"k\"", "k.u", "'version'"),
            ("packed-source-missing", "\"source\":\"k\"", "\"source\":\"absent\"", "k.u", "'absent' does not exist"),
            ("packed-source-not-f32", "\"source\":\"k\"", "\"source\":\"n\"", "k.u", "not plain f32"),
            ("packed-source-of-itself", "\"source\":\"k\"", "\"source\":\"k.u\"", "k.u", "'k.u' does not exist"),
            ("packed-source-not-a-filter-bank", "\"name\":\"k\",\"offset\":0,\"shape\":[2,3,3,3]",
             "\"name\":\"k\",\"offset\":0,\"shape\":[6,9]", "k.u", "cannot be made from"),
            ("packed-wrong-count", "\"shape\":[216]", "\"shape\":[108,2]", "k.u", "shape [216]"),
            ("packed-not-f32", "\"dtype\":\"f32\",\"length\":864,\"name\":\"k.u\"",
             "\"dtype\":\"i32\",\"length\":864,\"name\":\"k.u\"", "k.u", "found i32"),
            ("panels-width-zero", "\"width\":4", "\"width\":0", "m.p", "below 1"),
            ("panels-other-width", "\"width\":4", "\"width\":3", "m.p", "shape [24]"),
            ("panels-overflowing-width", "\"width\":4", "\"width\":4611686018427387904", "m.p", "cannot be made"),
            ("panels-without-width", ",\"width\":4", "", "m.p", "'width'"),
        ]
        for (label, old, new, tensor, mentioning) in cases {
            let parts = try packedFile().replacing(old, with: new)
            expectRefusal(parts.assembled(), label) { error in
                guard case .invalidQuantization(_, let named, let detail) = error else { return false }
                return named == tensor && detail.contains(mentioning)
            }
        }
        let foreignWithoutSource = try packedFile()
            .replacing("\"version\":1}", with: "\"version\":9}").replacing("\"source\":\"k\"", with: "\"source\":\"gone\"")
        expectRefusal(foreignWithoutSource.assembled(), "foreign-packed-source-missing") { error in
            guard case .invalidQuantization(_, "k.u", let detail) = error else { return false }
            return detail.contains("'gone' does not exist")
        }
        try RGraphWriter.write(packedGraph(duplicating: true), to: directory + "/duplicated.rgraph")
        expectRefusal(try fileBytes(directory + "/duplicated.rgraph"), "packed-twice") { error in
            guard case .invalidQuantization(_, "k.u2", let detail) = error else { return false }
            return detail.contains("already has packed values")
        }
    }

    func testWriterRefusesPackedValuesThatDoNotFitTheirSource() {
        var graph = packedGraph()
        graph.packedConstants[0].tensor = ConstantTensor(name: "k.u", shape: [215], floats: Array(repeating: 1, count: 215))
        XCTAssertThrowsError(try RGraphWriter.write(graph, to: directory + "/unfit.rgraph")) { error in
            guard case .invalidQuantization(_, "k.u", let detail)? = error as? RGraphError else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("shape [216]"), detail)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/unfit.rgraph"))
    }

    /// Replacing a constant drops the packed values made from it, which would be stale.
    func testReplacingASourceDropsItsPackedValues() {
        var graph = packedGraph()
        graph.setConstant(ConstantTensor(name: "m", shape: [5, 4], floats: Array(repeating: 0, count: 20)))
        XCTAssertEqual(graph.packedConstants.map(\.source), ["k"])
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
            expectRefusal(parts.assembled(), label) { error in
                guard case .invalidQuantization(_, let tensor, let detail) = error else { return false }
                return ["q", "q.scales"].contains(tensor) && detail.contains(mentioning)
            }
        }
    }

    func testNonFiniteScaleIsRefused() throws {
        var parts = try quantizedFile()
        // The scales follow "w" (24 bytes, padded to 64) and "q" (6 bytes, padded to 64).
        withUnsafeBytes(of: Float.nan) { nan in parts.data.replaceSubrange(128..<132, with: nan) }
        expectRefusal(parts.assembled(), "nan-scale") { error in
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
             .tensorChecksumMismatch(let file, _, _, _), .malformedHeader(let file, _), .unknownOp(let file, _, _), .invalidAttributes(let file, _), .unknownDType(let file, _, _),
             .badShape(let file, _, _), .tensorLengthMismatch(let file, _, _, _), .misalignedTensor(let file, _, _),
             .tensorOutOfRange(let file, _, _, _, _), .duplicateTensor(let file, _),
             .unknownQuantization(let file, _, _),
             .invalidQuantization(let file, _, _), .cannotWrite(let file, _):
            file
        }
    }
}
