import Foundation
import ImageFiles
import Runtime
import XCTest
@testable import Format

/// `convert --prepare`: a file holding weights already arranged for the kernels gives the
/// same outputs bit for bit and prepares nothing at load; a file whose packed values were
/// made for another kernel version still runs, preparing at load, and `-v` says which.
final class PreparedWeightsTests: CommandLineTestCase {
    /// The demo DnCNN (nine 3×3 convolutions of 64 channels, Winograd at this size).
    private var demoDenoiser: String { Self.repository.appendingPathComponent("examples/models/denoiser.onnx").path }

    private func input() throws -> String {
        let values: [Float] = (0..<(3 * 40 * 44)).map { (index: Int) -> Float in Float((index * 7919) % 1000) / 1000 }
        let path = path("x.npy")
        try NumPyFile.write(HostTensor(shape: [1, 3, 40, 44], floats: values), path: path)
        return path
    }

    private func runModel(_ model: String, _ input: String, _ output: String) throws -> (bits: [UInt32], stdout: String) {
        let outcome = try run("rrun", [model, input, "-o", output, "-v", "--threads", "2"])
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        return (try NumPyFile.read(path: output).floats.map(\.bitPattern), outcome.stdout)
    }

    func testPreparedFileGivesBitIdenticalOutputsAndPreparesNothingAtLoad() throws {
        let plain = path("plain.rgraph"), prepared = path("prepared.rgraph")
        XCTAssertEqual(try run("convert", [demoDenoiser, "-o", plain, "--prepare", "none"]).status, 0)
        let converted = try run("convert", [demoDenoiser, "-o", prepared, "--prepare", "native"])
        XCTAssertEqual(converted.status, 0, converted.stderr)
        XCTAssertTrue(converted.stdout.contains("prepared for kernels (--prepare native, planned at 1×3×512×512): 7 tensors"),
                      converted.stdout)
        let x = try input()
        let reference = try runModel(plain, x, path("plain.npy"))
        let fromFile = try runModel(prepared, x, path("prepared.npy"))
        XCTAssertEqual(fromFile.bits, reference.bits, "a prepared file must give the same bits")
        XCTAssertTrue(reference.stdout.contains("weights prepared by kernels for all plans 7"), reference.stdout)
        XCTAssertTrue(fromFile.stdout.contains("weights prepared by kernels for all plans 0 (0.00 MiB), used in place from the file 7"),
                      fromFile.stdout)

        // Packed values of a kernel version this Restore does not have: read as foreign,
        // prepared at load from the plain weights, same bits.
        let foreign = path("foreign.rgraph")
        try Data(try withPackedVersion(9, of: prepared)).write(to: URL(fileURLWithPath: foreign))
        let fallback = try runModel(foreign, x, path("foreign.npy"))
        XCTAssertEqual(fallback.bits, reference.bits)
        XCTAssertTrue(fallback.stdout.contains("weights prepared by kernels for all plans 7"), fallback.stdout)
        XCTAssertTrue(fallback.stdout.contains("prepared at load instead"), fallback.stdout)
        XCTAssertTrue(fallback.stdout.contains("7 packed in the file for kernels this Restore does not have"), fallback.stdout)
    }

    /// Without `--prepare`, f32 weights are stored prepared for this CPU's kernels (what
    /// loading a large model spent its time on) and f16 ones are left as they are, since the
    /// prepared values are f32.
    func testConvertPreparesF32WeightsByDefault() throws {
        let byDefault = try run("convert", [demoDenoiser, "-o", path("default.rgraph")])
        XCTAssertEqual(byDefault.status, 0, byDefault.stderr)
        XCTAssertTrue(byDefault.stdout.contains("prepared for kernels (--prepare auto: native, planned at 1×3×512×512): 7 tensors"),
                      byDefault.stdout)
        let loaded = try runModel(path("default.rgraph"), try input(), path("default.npy"))
        XCTAssertTrue(loaded.stdout.contains("weights prepared by kernels for all plans 0 (0.00 MiB), used in place from the file 7"),
                      loaded.stdout)
        let half = try run("convert", [demoDenoiser, "-o", path("half.rgraph"), "--weights", "f16"])
        XCTAssertEqual(half.status, 0, half.stderr)
        XCTAssertFalse(half.stdout.contains("prepared for kernels"), half.stdout)
        XCTAssertEqual(try RGraphReader.read(contentsOf: path("half.rgraph")).graph.packedConstants.count, 0)
    }

    /// A run verifies the checksums of the tensors it reads, before writing anything: the
    /// packed values it uses, not the weights they were made from (each weight is stored
    /// twice, and reading both is what loading spent its time on). `rrun info` verifies all.
    /// The DnCNN's packed values are Winograd filters, the Swin's GEMM panels of its linears.
    func testRunVerifiesWhatItReadsAndInfoVerifiesEveryTensor() throws {
        let swin = Self.repository.appendingPathComponent("examples/models/swin_denoiser.onnx").path
        for (label, onnx, layout) in [("dncnn", demoDenoiser, "winograd"), ("swin", swin, "gemm-panels")] {
            let prepared = path("\(label).rgraph")
            XCTAssertEqual(try run("convert", [onnx, "-o", prepared, "--prepare", "native"]).status, 0)
            let graph = try RGraphReader.read(contentsOf: prepared).graph
            let packed = try XCTUnwrap(graph.packedConstants.first { "\($0.layout)".hasPrefix(layout) }, label)
            let source = try XCTUnwrap(graph.constants[packed.source])
            let clean = Array(try Data(contentsOf: URL(fileURLWithPath: prepared)))
            func corrupted(_ tensor: ConstantTensor, _ name: String) throws -> String {
                var bytes = clean
                bytes[tensor.byteOffset + tensor.byteCount / 2] ^= 0x40
                try Data(bytes).write(to: URL(fileURLWithPath: path(name)))
                return path(name)
            }
            let x = try input()
            let reference = try runModel(prepared, x, path("\(label)-clean.npy"))

            let unread = try corrupted(source, "\(label)-unread-source.rgraph")
            XCTAssertEqual(try runModel(unread, x, path("\(label)-unread.npy")).bits, reference.bits, label)
            assertFails(try run("rrun", ["info", unread]),
                        mentioning: "\(label)-unread-source.rgraph: tensor '\(source.name)' is corrupt")

            let used = try corrupted(packed.tensor, "\(label)-used-packed.rgraph")
            assertFails(try run("rrun", [used, x, "-o", path("\(label)-used.npy")]),
                        mentioning: "\(label)-used-packed.rgraph: tensor '\(packed.tensor.name)' is corrupt",
                        noFileAt: path("\(label)-used.npy"))
            let info = try run("rrun", ["info", prepared])
            XCTAssertEqual(info.status, 0, info.stderr)
            let count = graph.constantOrder.count + graph.packedConstants.count
            XCTAssertTrue(info.stdout.contains("checksums: all \(count) tensors match"), info.stdout)
        }
    }

    func testPrepareRefusesUnknownChoicesAndHalfPrecisionWeights() throws {
        assertFails(try run("convert", [demoDenoiser, "-o", path("a.rgraph"), "--prepare", "avx1024"]),
                    mentioning: "--prepare is auto, none, portable or native", noFileAt: path("a.rgraph"))
        assertFails(try run("convert", [demoDenoiser, "-o", path("b.rgraph"), "--prepare", "native", "--weights", "f16"]),
                    mentioning: "would undo --weights f16", noFileAt: path("b.rgraph"))
    }

    /// The file at `path` with every packed record's `"version":1` made `version` (one
    /// digit, so the header keeps its length) and the checksums made valid again.
    private func withPackedVersion(_ version: Int, of path: String) throws -> [UInt8] {
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        var header = bytes.withUnsafeBytes { RGraphFixedHeader(decoding: $0) }
        let start = Int(header.headerOffset), end = start + Int(header.headerLength)
        let json = String(decoding: bytes[start..<end], as: UTF8.self)
        // A packed record's members are written sorted, so "version" ends it.
        let edited = json.replacingOccurrences(of: "\"version\":1}", with: "\"version\":\(version)}")
        XCTAssertNotEqual(edited, json, "no packed record found")
        bytes.replaceSubrange(start..<end, with: Array(edited.utf8))
        header.headerChecksum = bytes[start..<end].withUnsafeBytes { RGraphChecksum.of($0) }
        return header.encoded() + bytes[RGraphFixedHeader.size...]
    }
}
