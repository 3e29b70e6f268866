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
