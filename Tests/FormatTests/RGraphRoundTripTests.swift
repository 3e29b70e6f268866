import Foundation
import TestSupport
import XCTest
import CKernels
@testable import Format

/// What the writer stores, the reader gives back bit for bit, in place and aligned.
final class RGraphRoundTripTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws { directory = try makeTemporaryDirectory() }
    override func tearDownWithError() throws { try FileManager.default.removeItem(atPath: directory) }

    private func roundTrip(_ graph: Graph, name: String = "model.rgraph") throws -> RGraphFile {
        let path = directory + "/" + name
        try RGraphWriter.write(graph, to: path)
        return try RGraphReader.read(contentsOf: path)
    }

    func testChecksumMatchesPublishedCheckValue() {
        let check = Array("123456789".utf8).withUnsafeBytes { RGraphChecksum.of($0) }
        XCTAssertEqual(check, 0x995D_C9BB_DF19_39FA)
        XCTAssertEqual([UInt8]().withUnsafeBytes { RGraphChecksum.of($0) }, 0)
    }

    /// The slicing-by-8 checksum against the bit-at-a-time definition of schemas/rgraph.md §3,
    /// on lengths around the 8-byte step and split into two `update` calls.
    func testSlicedChecksumMatchesBitwiseDefinition() {
        func bitwise(_ bytes: [UInt8]) -> UInt64 {
            var crc: UInt64 = ~0
            for byte in bytes {
                crc ^= UInt64(byte)
                for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xC96C_5795_D787_0F42 : crc >> 1 }
            }
            return ~crc
        }
        var generator = SplitMix64(seed: 7)
        for length in [1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0 ... .max, using: &generator) }
            let split = length / 3
            var checksum = RGraphChecksum()
            bytes[..<split].withUnsafeBytes { checksum.update($0) }
            bytes[split...].withUnsafeBytes { checksum.update($0) }
            XCTAssertEqual(checksum.value, bitwise(bytes), "length \(length)")
        }
    }

    /// The carry-less-multiply checksums this CPU runs (128-, 256- and 512-bit) against the
    /// tables: random lengths around and far past their strides (128, 256 and 256 bytes,
    /// folding from 2 strides on), every start alignment in a 64-byte line, random initial
    /// registers (a checksum continued over several `update` calls), and the check value.
    func testFoldedChecksumsMatchTablesOnRandomLengthsAndAlignments() {
        let folded = RGraphChecksum.supportedVariants.filter { $0 != RGraphChecksum.Variant(RESTORE_CRC64_TABLE) }
        guard !folded.isEmpty else {
            print("no carry-less multiply on this CPU: only the tables run")
            return
        }
        var generator = SplitMix64(seed: 64)
        let buffer = (0..<300_000).map { _ in UInt8.random(in: 0 ... .max, using: &generator) }
        let lengths = [0, 1, 15, 16, 255, 256, 257, 511, 512, 513, 767, 1024, 4096 + 13, 299_000]
            + (0..<200).map { _ in Int.random(in: 0 ... 5000, using: &generator) }
            + (0..<20).map { _ in Int.random(in: 0 ... 299_000, using: &generator) }
        buffer.withUnsafeBytes { bytes in
            for length in lengths {
                let start = Int.random(in: 0 ..< 64, using: &generator)
                let prefix = Int.random(in: 0 ... min(length, 40), using: &generator)
                let slice = UnsafeRawBufferPointer(rebasing: bytes[start ..< start + length])
                var reference = RGraphChecksum(variant: RGraphChecksum.Variant(RESTORE_CRC64_TABLE))
                reference.update(UnsafeRawBufferPointer(rebasing: slice[..<prefix]))
                reference.update(UnsafeRawBufferPointer(rebasing: slice[prefix...]))
                for variant in folded {
                    var checksum = RGraphChecksum(variant: variant)
                    checksum.update(UnsafeRawBufferPointer(rebasing: slice[..<prefix]))
                    checksum.update(UnsafeRawBufferPointer(rebasing: slice[prefix...]))
                    XCTAssertEqual(checksum.value, reference.value,
                                   "variant \(variant), length \(length), start \(start), split at \(prefix)")
                }
            }
        }
        for variant in folded {
            var check = RGraphChecksum(variant: variant)
            Array("123456789".utf8).withUnsafeBytes { check.update($0) }
            XCTAssertEqual(check.value, 0x995D_C9BB_DF19_39FA, "variant \(variant)")
        }
        print("folded checksum variants \(folded) match the tables on \(lengths.count) lengths")
    }

    /// `RESTORE_CPU=avx2` keeps VPCLMULQDQ on 256-bit registers, which AVX2 CPUs may have
    /// (Zen 3, Alder Lake), and never the 512-bit kernel, which needs AVX-512; AVX2 CPUs
    /// without VPCLMULQDQ keep their 128-bit multiplies; `generic` sums with the tables.
    func testCPULevelCapsTheChecksumVariant() {
        typealias Variant = RGraphChecksum.Variant
        let (table, clmul128, clmul256, clmul512) = (Variant(RESTORE_CRC64_TABLE), Variant(RESTORE_CRC64_CLMUL128),
                                                     Variant(RESTORE_CRC64_CLMUL256), Variant(RESTORE_CRC64_CLMUL512))
        for detected in [table, clmul128, clmul256, clmul512] {
            XCTAssertEqual(RGraphChecksum.variant(detected: detected, cappedAt: nil), detected)
            XCTAssertEqual(RGraphChecksum.variant(detected: detected, cappedAt: .avx512), detected)
            XCTAssertEqual(RGraphChecksum.variant(detected: detected, cappedAt: .portable), table)
        }
        XCTAssertEqual(RGraphChecksum.variant(detected: clmul512, cappedAt: .avx2), clmul256)
        XCTAssertEqual(RGraphChecksum.variant(detected: clmul256, cappedAt: .avx2), clmul256)
        XCTAssertEqual(RGraphChecksum.variant(detected: clmul128, cappedAt: .avx2), clmul128)
        XCTAssertEqual(RGraphChecksum.variant(detected: table, cappedAt: .avx2), table)
    }

    /// A checksum continued by one of the bytes that follow, summed apart from register 0
    /// (`append`), equals the checksum of both in one pass, wherever the split falls; the
    /// reader's data checksum on 1 to 5 threads equals the one-pass checksum.
    func testChecksumsOfPartsCombineToTheWhole() {
        var generator = SplitMix64(seed: 11)
        let bytes = (0..<70_000).map { _ in UInt8.random(in: 0 ... .max, using: &generator) }
        bytes.withUnsafeBytes { all in
            for _ in 0..<40 {
                let length = Int.random(in: 0 ... all.count, using: &generator)
                let split = Int.random(in: 0 ... length, using: &generator)
                var first = RGraphChecksum()
                first.update(UnsafeRawBufferPointer(rebasing: all[..<split]))
                var second = RGraphChecksum.ofFollowingPart()
                second.update(UnsafeRawBufferPointer(rebasing: all[split..<length]))
                first.append(second, count: length - split)
                XCTAssertEqual(first.value, RGraphChecksum.of(UnsafeRawBufferPointer(rebasing: all[..<length])),
                               "length \(length), split at \(split)")
            }
            let storage = ByteStorage(copying: all)
            let data = UnsafeRawBufferPointer(start: storage.base, count: storage.count)
            for threads in 1...5 {
                XCTAssertEqual(RGraphReader.dataChecksum(data, storage: storage, dataOffset: 0, threads: threads,
                                                         partBytes: 4096, chunkBytes: 3000),
                               RGraphChecksum.of(all), "\(threads) threads")
            }
        }
    }

    func testRoundTripKeepsEveryPartOfTheGraph() throws {
        let graph = sampleGraph()
        let file = try roundTrip(graph)
        assertSameGraph(file.graph, graph)
        XCTAssertEqual(file.version, RGraphVersion.current)
        XCTAssertEqual(file.generator, "Restore")
    }

    /// Weights read only to be checked or to prepare others let their pages go
    /// (`ByteStorage.releasePages`); read again, they come back unchanged from the file.
    /// Heap storage has no file to read back from, so it is left alone.
    func testReleasedPagesReadBackUnchanged() throws {
        let values = (0..<50_000).map { Float($0) * 0.25 - 7 }
        let file = try roundTrip(Graph(constants: [ConstantTensor(name: "w", shape: [values.count], floats: values)]))
        let constant = try XCTUnwrap(file.graph.constants["w"])
        XCTAssertTrue(constant.storage.isFileMapping)
        constant.storage.releasePages(offset: constant.byteOffset, count: values.count * 4)
        XCTAssertEqual(Array(constant.float32Elements), values)

        let heap = values.withUnsafeBytes { ByteStorage(copying: $0) }
        XCTAssertFalse(heap.isFileMapping)
        heap.releasePages(offset: 0, count: heap.count)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: heap.base.assumingMemoryBound(to: Float.self), count: values.count)), values)
    }

    func testFloatSpecialsRoundTripBitExactly() throws {
        // One float attribute per special value (constantOfShape's fill value), and the
        // same values as a tensor.
        let nodes = specialFloats.enumerated().map { index, value in
            Node(name: "fill\(index)", .constantOfShape(ConstantOfShapeAttributes(value: value, dtype: .float32)),
                 inputs: ["shape"], outputs: ["y\(index)"])
        }
        let graph = Graph(nodes: nodes, constants: [ConstantTensor(name: "t", shape: [specialFloats.count], floats: specialFloats)])
        let read = try roundTrip(graph).graph
        let values = read.nodes.compactMap { node -> Float? in
            guard case .constantOfShape(let attributes) = node.operation else { return nil }
            return attributes.value
        }
        XCTAssertEqual(values.map(\.bitPattern), specialFloats.map(\.bitPattern))
        XCTAssertEqual(read.constants["t"]?.float32Elements.map(\.bitPattern), specialFloats.map(\.bitPattern))
    }

    /// Every binary32 text form parses back to the same bits, and only the forms of §4 parse.
    func testFloatTextIsLosslessAndStrict() {
        var generator = SplitMix64(seed: 11)
        let randomFloats = (0..<10_000).map { _ in Float(bitPattern: UInt32.random(in: 0 ... .max, using: &generator)) }
        for value in randomFloats + specialFloats {
            let text = FloatText.encode(value)
            XCTAssertEqual(FloatText.decode(text)?.bitPattern, value.bitPattern, "\(text)")
        }
        XCTAssertEqual(FloatText.encode(.nan), "nan")
        XCTAssertEqual(FloatText.encode(Float(bitPattern: 0x7FA0_0001)), "nan(0x7fa00001)")
        for bad in ["", "0x1p3", "infinity", "NaN", "1e39", "nan(0x3f800000)", "nan(0x7fc0)", "1.0f", " 1"] {
            XCTAssertNil(FloatText.decode(bad), "'\(bad)' should not parse")
        }
    }

    func testEmptyGraphRoundTrips() throws {
        let file = try roundTrip(Graph())
        assertSameGraph(file.graph, Graph())
        XCTAssertTrue(file.graph.nodes.isEmpty && file.graph.constants.isEmpty)
    }

    func testZeroSizeTensorRoundTrips() throws {
        var generator = SplitMix64(seed: 3)
        let graph = Graph(constants: [
            randomConstant("before", .float32, [3], using: &generator),
            randomConstant("empty", .int64, [2, 0, 5], using: &generator),
            randomConstant("after", .int8, [5], using: &generator),
        ])
        let read = try roundTrip(graph).graph
        assertSameGraph(read, graph)
        XCTAssertEqual(read.constants["empty"]?.byteCount, 0)
    }

    /// Constants point into the page-aligned mapping itself, each at a multiple of 64 bytes.
    func testConstantsViewTheMappedFileInPlaceAligned() throws {
        let path = directory + "/aligned.rgraph"
        try RGraphWriter.write(sampleGraph(), to: path)
        let file = try RGraphReader.read(contentsOf: path)
        let onDisk = try fileBytes(path)
        for constant in file.graph.orderedConstants {
            let address = Int(bitPattern: constant.bytes.baseAddress)
            XCTAssertEqual(address % 64, 0, "\(constant.name) at \(address)")
            XCTAssertEqual(Int(bitPattern: constant.storage.base) % 4096, 0, "storage is not the page-aligned mapping")
            XCTAssertEqual(constant.byteOffset % 64, 0)
            XCTAssertEqual(constant.storage.count, onDisk.count, "\(constant.name) does not view the whole file")
            XCTAssertTrue(constant.bytes.elementsEqual(onDisk[constant.byteOffset ..< constant.byteOffset + constant.byteCount]))
        }
    }

    func testReadingFromMemoryGivesTheSameGraphAligned() throws {
        let path = directory + "/memory.rgraph"
        let graph = sampleGraph()
        try RGraphWriter.write(graph, to: path)
        let bytes = try fileBytes(path)
        let file = try bytes.withUnsafeBytes { try RGraphReader.read(bytes: $0, name: "buffer") }
        assertSameGraph(file.graph, graph)
        XCTAssertEqual(file.file, "buffer")
        for constant in file.graph.orderedConstants {
            XCTAssertEqual(Int(bitPattern: constant.bytes.baseAddress) % 64, 0, constant.name)
        }
    }

    func testWriterIsDeterministic() throws {
        try RGraphWriter.write(sampleGraph(), to: directory + "/a.rgraph")
        try RGraphWriter.write(sampleGraph(), to: directory + "/b.rgraph")
        XCTAssertEqual(try fileBytes(directory + "/a.rgraph"), try fileBytes(directory + "/b.rgraph"))
    }

    func testDescribeListsVersionMetadataShapesOpsAndBytes() throws {
        let file = try roundTrip(sampleGraph(), name: "described.rgraph")
        let text = file.describe()
        print(text)
        for expected in ["described.rgraph: .rgraph 1.3", "written by Restore", "restore.task = denoise",
                         "image: f32 [1, 3, H, W]", "ids: i64 []", "nodes: 4", "conv: 2", "unary: 1", "where: 1",
                         "tensors: 11", "f32: 5 tensors", "bf16: 1 tensor, 14 bytes", "bool: 1 tensor, 9 bytes"] {
            XCTAssertTrue(text.contains(expected), "describe() lacks '\(expected)'")
        }
    }
}
