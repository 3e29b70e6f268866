import Foundation
import Format
import ImageFiles
import TestSupport
import XCTest
@testable import Convert
@testable import Runtime

/// `convert --weights f16|bf16`: large weights are stored at half size, the runtime
/// widens them once on load, and the results move only by the weights' rounding.
final class WeightStorageTests: XCTestCase {
    private static let dncnn = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/models/dncnn")

    private func run(_ graph: Graph, _ input: HostTensor) throws -> HostTensor {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("weights-\(UUID()).rgraph").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try RGraphWriter.write(graph, to: path)
        let model = try Model(graph: try RGraphReader.read(contentsOf: path).graph)
        return try Session(model: model, threads: 2).run([input])[0]
    }

    func testHalfPrecisionWeightsStayWithinTheirRounding() throws {
        let input = try NumPyFile.read(path: Self.dncnn.appendingPathComponent("37x45/input_0.npy").path)
        let expected = try NumPyFile.read(path: Self.dncnn.appendingPathComponent("37x45/output_0.npy").path)
        let model = Self.dncnn.appendingPathComponent("model.onnx").path
        let full = try Conversion.convert(model, options: ConversionOptions()).graph
        // Relative rounding of one weight: f16 keeps 11 significant bits, bf16 8. Summed over
        // a few hundred products per output the error stays within a few times that.
        for (type, dtype, tolerance) in [(ConversionOptions.WeightType.f16, DType.float16, Float(4e-3)),
                                         (.bf16, .bfloat16, 3e-2)] {
            var options = ConversionOptions()
            options.weights = type
            let graph = try Conversion.convert(model, options: options).graph
            let large = graph.orderedConstants.filter { $0.elementCount >= 1024 }
            XCTAssertFalse(large.isEmpty)
            XCTAssertTrue(large.allSatisfy { $0.dtype == dtype }, "\(type): \(large.map(\.dtype))")
            let bytes = graph.orderedConstants.reduce(0) { $0 + $1.byteCount }
            let fullBytes = full.orderedConstants.reduce(0) { $0 + $1.byteCount }
            XCTAssertLessThan(Double(bytes), 0.6 * Double(fullBytes))
            let (maxAbs, relative) = maxAbsAndRelativeError(try run(graph, input).floats, expected.floats)
            print("\(type) weights: \(bytes) bytes vs \(fullBytes), max abs error \(maxAbs), relative \(relative)")
            XCTAssertLessThan(relative, tolerance)
        }
    }

    func testBFloat16RoundsToNearestEven() {
        XCTAssertEqual(Conversion.bfloat16Bits(1), 0x3F80)
        XCTAssertEqual(Conversion.bfloat16Bits(Float(bitPattern: 0x3F80_8000)), 0x3F80)  // tie → even
        XCTAssertEqual(Conversion.bfloat16Bits(Float(bitPattern: 0x3F81_8000)), 0x3F82)  // tie → even
        XCTAssertEqual(Conversion.bfloat16Bits(Float(bitPattern: 0x3F80_8001)), 0x3F81)
        XCTAssertEqual(Conversion.bfloat16Bits(-.infinity), 0xFF80)
        XCTAssertTrue(Float(bitPattern: UInt32(Conversion.bfloat16Bits(.nan)) << 16).isNaN)
    }
}
