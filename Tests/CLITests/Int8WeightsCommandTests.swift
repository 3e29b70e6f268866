import Foundation
import XCTest

/// `convert --weights int8` on the command line: `-v` lists the weights kept f32 with their
/// reasons, `rrun info` shows the i8 tensors, `rrun` restores with the int8 model, and bad
/// combinations are refused before anything is written.
final class Int8WeightsCommandTests: CommandLineTestCase {
    private var demoDenoiser: String { Self.repository.appendingPathComponent("examples/models/denoiser.onnx").path }

    func testConvertListsKeptWeightsAndInfoShowsInt8Tensors() throws {
        let model = path("int8.rgraph")
        let converted = try run("convert", [demoDenoiser, "-o", model, "--weights", "int8", "-v"])
        XCTAssertEqual(converted.status, 0, converted.stderr)
        XCTAssertTrue(converted.stdout.contains("int8 weights: 6 quantized per output channel"), converted.stdout)
        XCTAssertTrue(converted.stdout.contains("kept f32: onnx::Conv_72: int8 would move it by 1.28% of its norm"),
                      converted.stdout)
        let info = try run("rrun", ["info", model])
        XCTAssertEqual(info.status, 0, info.stderr)
        XCTAssertTrue(info.stdout.contains(".rgraph 1.3"), info.stdout)
        XCTAssertTrue(info.stdout.contains("i8: 6 tensors"), info.stdout)
        XCTAssertTrue(info.stdout.contains("quantized (int8 with scales): 6 tensors"), info.stdout)
        let restored = try run("rrun", [model, Self.repository.appendingPathComponent("examples/images/noisy.png").path,
                                        "-o", path("restored.png")])
        XCTAssertEqual(restored.status, 0, restored.stderr)
    }

    func testUnknownWeightTypesAndPreparedInt8AreRefused() throws {
        assertFails(try run("convert", [demoDenoiser, "-o", path("a.rgraph"), "--weights", "int4"]),
                    mentioning: "--weights is f32, f16, bf16 or int8, found 'int4'", noFileAt: path("a.rgraph"))
        assertFails(try run("convert", [demoDenoiser, "-o", path("b.rgraph"), "--prepare", "native", "--weights", "int8"]),
                    mentioning: "would undo --weights int8", noFileAt: path("b.rgraph"))
    }
}
