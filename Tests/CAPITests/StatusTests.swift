import CRestore
import Format
import Runtime
import XCTest
@testable import CAPI

/// The C status of each kind of model error, chosen by the error's type and case.
final class StatusTests: XCTestCase {
    private let image = ValueInfo(name: "x", dtype: .float32, shape: [.symbol("N"), .fixed(3), .symbol("H"), .symbol("W")])

    private func graph(_ node: Node, constants: [ConstantTensor] = []) -> Graph {
        Graph(inputs: [image], outputs: [ValueInfo(name: "y", dtype: .float32, shape: image.shape)], nodes: [node],
              constants: constants)
    }

    /// The error loading `graph` throws.
    private func loadError(_ graph: Graph) -> (any Error)? {
        do {
            _ = try Model(graph: graph)
            return nil
        } catch {
            return error
        }
    }

    /// The error planning `graph` for one 8×8 image throws.
    private func planError(_ graph: Graph) throws -> (any Error)? {
        do {
            _ = try Session(model: try Model(graph: graph), threads: 1).plan(for: [[1, 3, 8, 8]])
            return nil
        } catch let error as ModelError {
            return error
        }
    }

    func testAnOpConfigurationNotImplementedIsUnsupported() throws {
        let cast = Node(name: "cast", .cast(CastAttributes(to: .float16)), inputs: ["x"], outputs: ["y"])
        let error = try XCTUnwrap(loadError(graph(cast)))
        guard case ModelError.invalidNodes(let problems)? = error as? ModelError, problems.count == 1,
              case .op(.unsupported(node: "cast", _)) = problems[0] else { return XCTFail("\(error)") }
        XCTAssertEqual(status(of: error), RESTORE_ERROR_UNSUPPORTED)
    }

    /// A bad attribute cannot reach a Model: the node does not decode (the .rgraph reader
    /// reports it as `RGraphError.invalidAttributes`).
    func testABadAttributeIsAFormatError() throws {
        XCTAssertThrowsError(try Node(name: "unary", op: .unary, inputs: ["x"], outputs: ["y"],
                                      attributes: ["function": .string("bogus")])) { error in
            guard case .badAttribute(node: "unary", attribute: "function", _, _)? = error as? GraphError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(status(of: error), RESTORE_ERROR_FORMAT)
            XCTAssertEqual(status(of: RGraphError.invalidAttributes(file: "m.rgraph", error as! GraphError)), RESTORE_ERROR_FORMAT)
        }
    }

    func testAnInputNothingProducesIsAFormatError() throws {
        let unary = Node(name: "unary", .unary(Activation(function: .relu)), inputs: ["missing"], outputs: ["y"])
        let error = try XCTUnwrap(loadError(graph(unary)))
        guard case ModelError.invalidNodes(let problems)? = error as? ModelError,
              problems == [.graph(.unknownValue(node: "unary", value: "missing"))] else { return XCTFail("\(error)") }
        XCTAssertEqual(status(of: error), RESTORE_ERROR_FORMAT)
    }

    func testAnInvalidNodeBesideAnUnsupportedOneStillReportsUnsupported() throws {
        let graph = Graph(
            inputs: [image], outputs: [ValueInfo(name: "y", dtype: .float32, shape: image.shape)],
            nodes: [Node(name: "unary", .unary(Activation(function: .relu)), inputs: ["missing"], outputs: ["a"]),
                    Node(name: "cast", .cast(CastAttributes(to: .float16)), inputs: ["a"], outputs: ["y"])])
        let error = try XCTUnwrap(loadError(graph))
        guard case ModelError.invalidNodes(let problems)? = error as? ModelError, problems.count == 2 else {
            return XCTFail("\(error)")
        }
        XCTAssertEqual(status(of: error), RESTORE_ERROR_UNSUPPORTED)
    }

    func testInputsWhoseShapesDoNotFitAnOpAreAShapeError() throws {
        let add = Node(name: "add", .binary(.add), inputs: ["x", "bias"], outputs: ["y"])
        let error = try XCTUnwrap(try planError(graph(add, constants: [ConstantTensor(name: "bias", shape: [5], floats: [1, 2, 3, 4, 5])])))
        guard case ModelError.node(.op(.shape(node: "add", _)))? = error as? ModelError else { return XCTFail("\(error)") }
        XCTAssertEqual(status(of: error), RESTORE_ERROR_SHAPE)
    }

    func testAPlanNotImplementedForTheseShapesIsUnsupported() throws {
        // Resizing the channel axis is valid ONNX that Restore does not implement.
        let resize = Node(name: "resize", .resize(ResizeAttributes()), inputs: ["x", "scales"], outputs: ["y"])
        let error = try XCTUnwrap(try planError(graph(resize, constants: [ConstantTensor(name: "scales", shape: [4],
                                                                                         floats: [1, 2, 1, 1])])))
        guard case ModelError.node(.op(.unsupported(node: "resize", _)))? = error as? ModelError else {
            return XCTFail("\(error)")
        }
        XCTAssertEqual(status(of: error), RESTORE_ERROR_UNSUPPORTED)
    }
}
