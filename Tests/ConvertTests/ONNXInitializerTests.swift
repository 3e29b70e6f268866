import Format
import Foundation
import Runtime
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

    /// Before IR version 4 every initializer was also a graph input (the model zoo's
    /// ResNet-50): they are constants, recorded as such, and feeding one is refused.
    func testInitializersListedAsInputsAreConstantWeightsThatCannotBeFed() throws {
        let graph = try ImporterFixtures.load("weights_listed_as_inputs_ir3.onnx")
        XCTAssertEqual(graph.inputs.map(\.name), ["x"])
        XCTAssertEqual(graph.weightInputNames, ["scale", "bias", "mean", "var"])

        let session = Session(model: try Model(graph: graph), threads: 1)
        let x = HostTensor(shape: [1, 3, 1, 2], floats: [1, 2, 3, 4, 5, 6])
        let y = try XCTUnwrap(try session.run(["x": x])["y"])
        // (x − mean) / sqrt(var) · scale + bias per channel, epsilon 0, with the fixture's values.
        let expected: [Float] = [(1 - 0.1) * 1.5 + 0.25, (2 - 0.1) * 1.5 + 0.25,
                                 (3 + 0.2) / 2 * 0.5 - 1, (4 + 0.2) / 2 * 0.5 - 1,
                                 (5 - 0.3) / 0.5 * -2 + 3, (6 - 0.3) / 0.5 * -2 + 3]
        for (actual, wanted) in zip(y.floats, expected) { XCTAssertEqual(actual, wanted, accuracy: 1e-5) }

        XCTAssertThrowsError(try session.run(["x": x, "scale": HostTensor(shape: [3], floats: [1, 1, 1])])) { error in
            XCTAssertEqual(error as? ModelError, .weightFed("scale"))
            XCTAssertTrue("\(error)".contains("cannot be fed at run time"), "\(error)")
        }
    }
}
