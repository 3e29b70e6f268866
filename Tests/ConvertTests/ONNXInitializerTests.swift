import Format
import Foundation
import XCTest
@testable import Convert

/// How tensors are stored in an ONNX file does not change what the importer reads.
final class ONNXInitializerTests: XCTestCase {
    // The values make_importer_cases.py writes.
    let floats: [Float] = [0.5, -1.25, 3.0, 0.125]
    let doubles: [Float] = [1.5, -2.0, 0.25, 8.0]
    let halves: [Float] = [1.0, -0.5, 2.0, 0.0625]

    func testRawDataAndTypedFieldsDecodeToTheSameTensors() throws {
        for name in ["initializers_raw.onnx", "initializers_typed.onnx"] {
            let graph = try ImporterFixtures.load(name)
            let expectations: [(String, DType, [Float])] = [
                ("w_f32", .float32, floats), ("w_f64", .float32, doubles), ("w_f16", .float16, halves),
                ("w_bf16", .bfloat16, halves), ("shape_i64", .int64, [1, 4]), ("index_i32", .int32, [2, 0]),
            ]
            for (constant, dtype, values) in expectations {
                let tensor = try XCTUnwrap(graph.constants[constant], "\(name): \(constant)")
                XCTAssertEqual(tensor.dtype, dtype, "\(name): \(constant)")
                XCTAssertEqual(tensor.shape, [values.count], "\(name): \(constant)")
                XCTAssertEqual(tensor.floatValues(), values, "\(name): \(constant)")
            }
            XCTAssertEqual(graph.inputs.map(\.name), ["x"])
            XCTAssertTrue(graph.isTopologicallySorted)
        }
    }

    func testExternalDataIsReadAtItsOffsetNextToTheModel() throws {
        let graph = try ImporterFixtures.load("external_data.onnx")
        let weight = try XCTUnwrap(graph.constants["w"])
        XCTAssertEqual(weight.shape, [2, 3, 3, 3])
        XCTAssertEqual(weight.floatValues(), (1...54).map { Float($0) / 16 })
        XCTAssertEqual(try graph.floats("b"), [0.5, -0.5])
        XCTAssertEqual(try graph.producer(of: "y").inputs, ["x", "w", "b"])
    }

    func testExternalDataIsRefusedWhenMissingShortOrOutsideTheFolder() {
        let cases: [(String, [String])] = [
            ("external_missing.onnx", ["tensor 'w'", "no_such_weights.bin", "cannot be opened"]),
            ("external_short.onnx", ["tensor 'w'", "external_weights.bin", "too short"]),
            ("external_escape.onnx", ["tensor 'w'", "../external_weights.bin", "outside the model's folder"]),
            ("external_absolute.onnx", ["tensor 'w'", "/etc/hostname", "absolute path"]),
        ]
        for (file, fragments) in cases {
            assertImportError(file, contains: fragments) { try ImporterFixtures.load(file) }
        }
    }

    func testExternalDataNeedsAFolderWhenImportingBytes() throws {
        let bytes = try Data(contentsOf: ImporterFixtures.url("external_data.onnx"))
        assertImportError("in-memory.onnx", contains: ["tensor 'w'", "not read from a file"]) {
            try ONNXImporter().importGraph(bytes: bytes, fileName: "in-memory.onnx")
        }
    }

    func testRawDataOfTheWrongSizeIsRefused() {
        assertImportError("bad_raw_size.onnx", contains: ["tensor 'w_short'", "holds 12 bytes", "needs 16"]) {
            try ImporterFixtures.load("bad_raw_size.onnx")
        }
    }

    func testConstantNodesBecomeConstantsOrAttributes() throws {
        let graph = try ImporterFixtures.load("constant_nodes.onnx")
        XCTAssertEqual(graph.constants["c_tensor"]?.shape, [2, 1])
        XCTAssertEqual(try graph.floats("c_tensor"), [2, -3])
        XCTAssertEqual(graph.constants["c_float"]?.shape, [])
        XCTAssertEqual(try graph.floats("c_float"), [0.75])
        XCTAssertEqual(try graph.floats("c_floats"), [1, 2, 4])
        XCTAssertEqual(graph.constants["c_ints"]?.dtype, .int64)
        XCTAssertEqual(try graph.ints("c_ints"), [3, 2])
        // value_int fed Unsqueeze's axes, which Restore takes as an attribute.
        XCTAssertNil(graph.constants["c_int"])
        XCTAssertEqual(try graph.producer(of: "y").operation, .unsqueeze(UnsqueezeAttributes(axes: [1])))
        XCTAssertEqual(graph.nodes.map(\.op), [.binary, .binary, .binary, .reshape, .unsqueeze])
    }

    func testSymbolicFixedAndUnnamedInputDims() throws {
        let graph = try ImporterFixtures.load("dynamic_dims.onnx")
        XCTAssertEqual(graph.inputs, [ValueInfo(name: "x", dtype: .float32,
                                                shape: [.symbol("x_dim0"), .fixed(3), .symbol("height"), .symbol("width")])])
        XCTAssertEqual(graph.outputs.first?.shape, [.symbol("batch"), .fixed(3), .symbol("height"), .symbol("width")])
        XCTAssertEqual(graph.metadata["onnx.opset"], "17")
        XCTAssertEqual(graph.metadata["onnx.producer"], "make_importer_cases")
    }
}
