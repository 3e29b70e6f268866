import Format
import XCTest
@testable import Runtime

final class ConstantOfShapeTests: XCTestCase {
    func testFillsTheShapeWithTheValue() throws {
        let floats = LayoutTesting.node(.constantOfShape, "c", ["value": .float(1.5)])
        XCTAssertEqual(try LayoutTesting.reference(floats, [LayoutTesting.ints([2, 3])]),
                       [HostTensor(shape: [2, 3], floats: Array(repeating: 1.5, count: 6))])
        let integers = LayoutTesting.node(.constantOfShape, "c", ["value": .float(7), "dtype": .string("i64")])
        XCTAssertEqual(try LayoutTesting.reference(integers, [LayoutTesting.ints([4])]), [LayoutTesting.ints([7, 7, 7, 7])])
        XCTAssertEqual(try LayoutTesting.reference(LayoutTesting.node(.constantOfShape, "c"), [LayoutTesting.ints([])]),
                       [HostTensor(shape: [], floats: [0])])
    }

    func testFastMatchesReference() throws {
        for dtype in ["f32", "i64", "bool"] {
            let node = LayoutTesting.node(.constantOfShape, "c_\(dtype)", ["value": .float(3), "dtype": .string(dtype)])
            try KernelHarness.assertFastMatchesReference(node, [LayoutTesting.ints([7, 63, 65])], planTime: [0])
        }
    }

    func testNegativeSizeAndFractionalIntegerNameTheNode() throws {
        let op = try OpKind.makeOperator(LayoutTesting.node(.constantOfShape, "bad_constant"))
        LayoutTesting.assertError(naming: "bad_constant") { _ = try op.outputs(for: [ValueFact(LayoutTesting.ints([2, -1]))]) }
        LayoutTesting.assertError(naming: "bad_constant") {
            _ = try OpKind.makeOperator(LayoutTesting.node(.constantOfShape, "bad_constant", ["value": .float(0.5), "dtype": .string("i64")]))
        }
    }
}
