import Format
import XCTest
@testable import Runtime

final class ShapeTests: XCTestCase {
    private func value(_ shape: [Int], _ attributes: [String: Attribute] = [:]) throws -> HostTensor? {
        let op = try OpKind.makeOperator(LayoutTesting.node(.shape, "s", attributes))
        return try op.outputs(for: [ValueFact(dtype: .float32, shape: shape)])[0].value
    }

    /// The planner needs the value from the shape rule: the input is image data.
    func testShapeRuleFillsTheValue() throws {
        XCTAssertEqual(try value([1, 3, 64, 48]), LayoutTesting.ints([1, 3, 64, 48]))
        XCTAssertEqual(try value([]), LayoutTesting.ints([]))
    }

    func testStartAndEndAreNegativeAndClamped() throws {
        XCTAssertEqual(try value([1, 3, 64, 48], ["start": .int(2)]), LayoutTesting.ints([64, 48]))
        XCTAssertEqual(try value([1, 3, 64, 48], ["start": .int(-3), "end": .int(-1)]), LayoutTesting.ints([3, 64]))
        XCTAssertEqual(try value([1, 3, 64, 48], ["start": .int(-100), "end": .int(100)]), LayoutTesting.ints([1, 3, 64, 48]))
        XCTAssertEqual(try value([1, 3, 64, 48], ["start": .int(3), "end": .int(1)]), LayoutTesting.ints([]))
    }

    func testFastMatchesReference() throws {
        try KernelHarness.assertFastMatchesReference(LayoutTesting.node(.shape, "s", ["start": .int(1)]),
                                                     [KernelHarness.random([1, 7, 63, 65], seed: 1)])
    }
}
