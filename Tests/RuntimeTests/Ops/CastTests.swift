import Format
import XCTest
@testable import Runtime

final class CastTests: XCTestCase {
    private func cast(_ input: HostTensor, to target: DType) throws -> HostTensor {
        try LayoutTesting.reference(LayoutTesting.node(.cast, "c", ["to": .string(target.rawValue)]), [input])[0]
    }

    func testFloatToIntegerTruncatesTowardZero() throws {
        let input = HostTensor(shape: [5], floats: [2.7, -2.7, 0.5, -0.5, 3])
        XCTAssertEqual(try cast(input, to: .int64), HostTensor(shape: [5], ints: [2, -2, 0, 0, 3]))
        XCTAssertEqual(try cast(input, to: .int32), HostTensor(shape: [5], ints: [2, -2, 0, 0, 3], dtype: .int32))
    }

    func testToBoolMeansNonzero() throws {
        XCTAssertEqual(try cast(HostTensor(shape: [3], floats: [0, -0.25, 4]), to: .bool),
                       HostTensor(shape: [3], ints: [0, 1, 1], dtype: .bool))
        XCTAssertEqual(try cast(LayoutTesting.ints([0, -3, 7]), to: .bool), HostTensor(shape: [3], ints: [0, 1, 1], dtype: .bool))
    }

    func testIntegersToFloat() throws {
        XCTAssertEqual(try cast(LayoutTesting.ints([-3, 64]), to: .float32), HostTensor(shape: [2], floats: [-3, 64]))
        XCTAssertEqual(try cast(HostTensor(shape: [2], ints: [1, 0], dtype: .bool), to: .float32), HostTensor(shape: [2], floats: [1, 0]))
    }

    func testFastMatchesReference() throws {
        for target in [DType.float32, .int64, .int32, .bool] {
            var input = KernelHarness.random([7, 63, 65], seed: 5)
            input.elements = .float(input.floats.enumerated().map { $0 % 5 == 0 ? 0 : $1 * 10 })
            try KernelHarness.assertFastMatchesReference(LayoutTesting.node(.cast, "cast_to_\(target)", ["to": .string(target.rawValue)]), [input])
        }
    }

    /// A cast whose kernel would copy the floats unchanged is aliased by the planner; the
    /// others run their kernel. Either way the result is the reference's.
    func testCastThatKeepsTheFloatsIsAView() throws {
        let cases: [(from: DType, to: DType, view: Bool)] = [
            (.float32, .float32, true), (.int64, .float32, true), (.bool, .float32, true), (.bool, .bool, true),
            (.bool, .int64, true), (.int32, .int64, true), (.int64, .int64, true), (.bool, .int32, true),
            (.float32, .bool, false), (.int64, .bool, false), (.float32, .int64, false), (.int64, .int32, false),
        ]
        let values: [Float] = [0, 1, -3, 7, 1, 0, 250, -1.5]
        for (from, target, view) in cases {
            let input = from == .float32 ? HostTensor(shape: [2, 4], floats: values)
                : HostTensor(shape: [2, 4], ints: values.map { from == .bool ? ($0 != 0 ? 1 : 0) : Int64($0.rounded(.towardZero)) },
                             dtype: from)
            let node = LayoutTesting.node(.cast, "cast", ["to": .string(target.rawValue)])
            let graph = Graph(inputs: [ValueInfo(name: "x0", dtype: from, shape: [.fixed(2), .fixed(4)])],
                              outputs: [ValueInfo(name: "y0", dtype: target, shape: [])], nodes: [node])
            let session = Session(model: try Model(graph: graph), threads: 1)
            let plan = try session.plan(for: [[2, 4]])
            XCTAssertEqual(plan.viewNodes, view ? 1 : 0, "\(from) to \(target)")
            XCTAssertEqual(plan.kernelCount, view ? 0 : 1, "\(from) to \(target)")
            let expected = try LayoutTesting.reference(node, [input])[0]
            let output = try session.run([input])[0]
            XCTAssertEqual(output.floats, expected.floats, "\(from) to \(target)")
        }
    }

    func testUnsupportedTargetAndUnrepresentableValueNameTheNode() throws {
        LayoutTesting.assertError(naming: "bad_cast") {
            _ = try OpKind.makeOperator(LayoutTesting.node(.cast, "bad_cast", ["to": .string("f16")]))
        }
        LayoutTesting.assertError(naming: "bad_cast") {
            _ = try LayoutTesting.reference(LayoutTesting.node(.cast, "bad_cast", ["to": .string("i64")]),
                                            [HostTensor(shape: [1], floats: [.nan])])
        }
    }
}
