import Format
import XCTest
@testable import Convert
@testable import Runtime

/// The graph builder used directly, as an architecture template uses it: typed ops in,
/// a graph that plans and runs out.
final class GraphBuilderTests: XCTestCase {
    /// y = 2·relu(conv1×1(x, W) + b), with the relu fused into the conv.
    func testHandBuiltGraphPlansAndRuns() throws {
        var builder = GraphBuilder()
        let x = builder.addInput("x", shape: [.fixed(1), .fixed(2), .symbol("H"), .symbol("W")])
        let weight = builder.addConstant("weight", shape: [2, 2, 1, 1], floats: [1, -1, 0.5, 0.5])
        let bias = builder.addConstant("bias", shape: [2], floats: [0, 1])
        var convolution = ConvAttributes()
        convolution.activation = Activation(function: .relu)
        let features = builder.conv(x, weight: weight, bias: bias, convolution)
        let two = builder.addConstant("two", shape: [], floats: [2])
        let y = builder.binary(.mul, features, two, name: "y")
        builder.addOutput(y)
        try builder.checkAttributes()

        let graph = builder.graph
        XCTAssertEqual(graph.nodes.map(\.operation), [.conv(convolution), .binary(.mul)])
        XCTAssertEqual(graph.nodes.map(\.inputs), [["x", "weight", "bias"], ["conv", "two"]])
        XCTAssertEqual(graph.outputs.map(\.name), ["y"])

        let (height, width) = (2, 3)
        let first: [Float] = [1, -2, 3, 0.5, 4, -1]
        let second: [Float] = [2, 1, -3, 0.5, -6, 2]
        let outputs = try Session(model: try Model(graph: graph), threads: 1)
            .run([HostTensor(shape: [1, 2, height, width], floats: first + second)])
        let expected = zip(first, second).map { 2 * max(0, $0 - $1) } + zip(first, second).map { 2 * max(0, 0.5 * $0 + 0.5 * $1 + 1) }
        XCTAssertEqual(outputs[0].shape, [1, 2, height, width])
        XCTAssertEqual(outputs[0].floats, expected)
    }

    func testGeneratedNamesAvoidReservedAndEarlierNames() {
        var builder = GraphBuilder(graph: Graph(inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(4)])]),
                                   reservedNames: ["relu"])
        let first = builder.unary(Activation(function: .relu), "x")
        let second = builder.unary(Activation(function: .relu), first)
        let input = builder.addInput("x", shape: [.fixed(4)])
        XCTAssertEqual([first, second, input], ["relu_2", "relu_3", "x_2"])
    }

    /// An alias is followed by later uses; one that names a graph output becomes an
    /// identity node, since outputs keep the model's names.
    func testAliasesAreFollowedAndGraphOutputsKeepTheirNames() {
        var builder = GraphBuilder(graph: Graph(inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(4)])],
                                                outputs: [ValueInfo(name: "out", dtype: .float32, shape: [])]))
        builder.alias("same", to: "x", node: "identity")
        let doubled = builder.binary(.add, "same", "same")
        builder.alias("out", to: doubled, node: "to_out")
        XCTAssertEqual(builder.resolved("same"), "x")
        XCTAssertEqual(builder.graph.nodes.map(\.inputs), [["x", "x"], [doubled]])
        XCTAssertEqual(builder.graph.nodes.last?.name, "to_out")
        XCTAssertEqual(builder.graph.nodes.last?.operation, .unary(.identity))
        XCTAssertEqual(builder.graph.nodes.last?.outputs, ["out"])
    }

    /// A value the `.rgraph` reader would refuse is refused at import already, naming the node.
    func testCheckAttributesRefusesWhatTheReaderWould() {
        var builder = GraphBuilder()
        let x = builder.addInput("x", shape: [.fixed(1), .fixed(1), .fixed(4), .fixed(4)])
        let weight = builder.addConstant("weight", shape: [1, 1, 1, 1], floats: [1])
        var convolution = ConvAttributes()
        convolution.window.strides = [0, 1]
        _ = builder.conv(x, weight: weight, convolution, name: "strided")
        XCTAssertThrowsError(try builder.checkAttributes()) { error in
            guard case GraphError.badAttribute(let node, let attribute, _, let found)? = error as? GraphError else {
                return XCTFail("not a bad-attribute error: \(error)")
            }
            XCTAssertEqual(node, "strided")
            XCTAssertEqual(attribute, "strides")
            XCTAssertEqual(found, "[0, 1]")
        }
    }
}
