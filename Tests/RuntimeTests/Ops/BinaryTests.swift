import Format
import XCTest
@testable import Runtime

final class BinaryTests: XCTestCase {
    /// Every broadcasting pattern: (A shape, B shape).
    static let patterns: [(String, [Int], [Int])] = [
        ("same shape", [2, 3, 5, 7], [2, 3, 5, 7]),
        ("scalar B", [2, 3, 5, 7], []),
        ("one-element B", [63], [1]),
        ("scalar A", [], [65]),
        ("row", [5, 7], [7]),
        ("column", [5, 7], [5, 1]),
        ("per channel", [2, 3, 5, 7], [3, 1, 1]),
        ("per channel with batch axis", [2, 3, 5, 7], [1, 3, 1, 1]),
        ("both sides", [5, 1], [1, 7]),
        ("both sides, rank 4", [2, 1, 5, 1], [3, 1, 7]),
        ("rank 1", [65], [65]),
        ("rank 5", [2, 3, 1, 5, 7], [3, 4, 1, 7]),
        ("single elements", [1], [1, 1]),
        // Runs of 2, read in blocks (`BroadcastBlocks`): deformable attention's sampling
        // offsets over a per-level normaliser, and over reference points per query.
        ("short runs, per level", [1, 5, 2, 3, 4, 2], [1, 1, 1, 3, 1, 2]),
        ("short runs, per query and level", [1, 5, 2, 3, 4, 2], [1, 5, 1, 3, 1, 2]),
    ]

    private func node(_ function: BinaryFunction) -> Node {
        .mathTest(.binary, "binary_\(function)", inputs: 2, ["function": .string(function.rawValue)])
    }

    /// Random inputs that suit the function: positive bases for pow, divisors away from
    /// zero, halves for comparisons (so ties occur), bool for logic.
    private func inputs(_ function: BinaryFunction, _ a: [Int], _ b: [Int], seed: UInt64) -> [HostTensor] {
        let x = KernelHarness.random(a, seed: seed).mathMapped { $0 * 3 }
        let y = KernelHarness.random(b, seed: seed + 1000).mathMapped { $0 * 3 }
        switch function {
        case .pow: return [x.mathMapped { abs($0) + 0.1 }, y]
        case .div, .mod: return [x, y.mathMapped { $0 < 0 ? $0 - 0.2 : $0 + 0.2 }]
        case .equal, .less, .greater, .lessOrEqual, .greaterOrEqual:
            return [x.mathMapped { ($0 * 2).rounded() / 2 }, y.mathMapped { ($0 * 2).rounded() / 2 }]
        case .and, .or, .xor: return [.mathRandomMask(a, seed: seed), .mathRandomMask(b, seed: seed + 1000)]
        case .add, .sub, .mul, .max, .min, .prelu: return [x, y]
        }
    }

    func testFastMatchesReferenceForEveryFunctionAndBroadcastingPattern() throws {
        for function in BinaryFunction.allCases {
            for (index, (label, a, b)) in Self.patterns.enumerated() {
                print("\(function), \(label):", terminator: " ")
                try KernelHarness.assertFastMatchesReference(node(function), inputs(function, a, b, seed: UInt64(index + 1)))
            }
        }
    }

    func testFastSplitsLargeTensorsAcrossThreadsInEveryLayout() throws {
        for (a, b) in [([2, 16, 65, 63], [2, 16, 65, 63]), ([2, 16, 65, 63], [16, 1, 1]), ([2, 16, 65, 63], []),
                       ([64, 1, 63], [1, 65, 1]), ([65, 1], [1, 1001]),
                       ([2, 700, 8, 3, 4, 2], [1, 1, 1, 3, 1, 2]), ([2, 700, 8, 3, 4, 2], [2, 700, 1, 3, 1, 2]),
                       ([3, 70, 70, 3], [70, 1, 3])] {
            try KernelHarness.assertFastMatchesReference(node(.div), inputs(.div, a, b, seed: 5))
        }
    }

    /// Short innermost runs are read in blocks of whole trailing dimensions, at most 4096
    /// elements; long runs are not.
    func testShortRunsAreReadInBlocks() throws {
        func blocks(_ a: [Int], _ b: [Int]) throws -> BroadcastBlocks? {
            BroadcastBlocks(BroadcastLayout(output: try ShapeRules.broadcast(a, b, node: "blocks"), inputs: [a, b]))
        }
        // Merged to [11200, 3, 4, 2]: the block is the last three, 24 elements.
        XCTAssertEqual(try blocks([2, 700, 8, 3, 4, 2], [1, 1, 1, 3, 1, 2])?.size, 3 * 4 * 2)
        XCTAssertEqual(try blocks([3, 70, 70, 3], [70, 1, 3])?.size, 70 * 3)
        XCTAssertNil(try blocks([2, 16, 65, 63], [16, 1, 1]))
        XCTAssertNil(try blocks([2, 3], [2, 3]))
    }

    func testIntegerDivisionTruncatesTowardZero() throws {
        let a = HostTensor(shape: [4], ints: [7, -7, 7, -7])
        let b = HostTensor(shape: [4], ints: [2, 2, -2, -2])
        XCTAssertEqual(try OpKind.makeOperator(node(.div)).reference([a, b])[0], HostTensor(shape: [4], ints: [3, -3, -3, 3]))
    }

    func testIntegerModTakesTheDivisorsSign() throws {
        let a = HostTensor(shape: [5], ints: [7, -7, 7, -7, 6])
        let b = HostTensor(shape: [5], ints: [3, 3, -3, -3, 3])
        XCTAssertEqual(try OpKind.makeOperator(node(.mod)).reference([a, b])[0], HostTensor(shape: [5], ints: [1, 2, -2, -1, 0]))
    }

    func testFloatModIsFmod() throws {
        let y = try OpKind.makeOperator(node(.mod)).reference([HostTensor(shape: [2], floats: [-7, 7]), HostTensor(shape: [], floats: [3])])[0]
        XCTAssertEqual(y.floats, [-1, 1])
    }

    func testIntegerShapeArithmeticOfEveryFunction() throws {
        let a = HostTensor(shape: [2, 3], ints: [6, -4, 1, 9, 2, -5])
        let b = HostTensor(shape: [3], ints: [2, 3, -2])
        let expected: [BinaryFunction: [Int64]] = [
            .add: [8, -1, -1, 11, 5, -7], .sub: [4, -7, 3, 7, -1, -3], .mul: [12, -12, -2, 18, 6, 10],
            .div: [3, -1, 0, 4, 0, 2], .mod: [0, 2, -1, 1, 2, -1],
            .max: [6, 3, 1, 9, 3, -2], .min: [2, -4, -2, 2, 2, -5], .pow: [36, -64, 1, 81, 8, 0],
            .prelu: [6, -12, 1, 9, 2, 10],
            .equal: [0, 0, 0, 0, 0, 0], .less: [0, 1, 0, 0, 1, 1], .greater: [1, 0, 1, 1, 0, 0],
            .lessOrEqual: [0, 1, 0, 0, 1, 1], .greaterOrEqual: [1, 0, 1, 1, 0, 0],
            .and: [1, 1, 1, 1, 1, 1], .or: [1, 1, 1, 1, 1, 1], .xor: [0, 0, 0, 0, 0, 0],
        ]
        XCTAssertEqual(Set(expected.keys), Set(BinaryFunction.allCases))
        let boolResults: Set<BinaryFunction> = [.equal, .less, .greater, .lessOrEqual, .greaterOrEqual, .and, .or, .xor]
        for (function, values) in expected {
            let y = try OpKind.makeOperator(node(function)).reference([a, b])[0]
            XCTAssertEqual(y.ints, values, "\(function)")
            XCTAssertEqual(y.dtype, boolResults.contains(function) ? .bool : .int64, "\(function)")
        }
    }

    func testXorIsTrueWhereExactlyOneInputIsNonzero() throws {
        let a = HostTensor(shape: [4], ints: [0, 0, 1, 1], dtype: .bool)
        let b = HostTensor(shape: [4], ints: [0, 1, 0, 1], dtype: .bool)
        XCTAssertEqual(try OpKind.makeOperator(node(.xor)).reference([a, b])[0], HostTensor(shape: [4], ints: [0, 1, 1, 0], dtype: .bool))
    }

    func testComparisonsOfFloatsProduceBool() throws {
        let y = try OpKind.makeOperator(node(.less)).reference([HostTensor(shape: [2], floats: [1, 3]), HostTensor(shape: [], floats: [2])])[0]
        XCTAssertEqual(y, HostTensor(shape: [2], ints: [1, 0], dtype: .bool))
    }

    func testMixingFloatAndIntegerInputsThrowsNamingTheNode() throws {
        let op = try OpKind.makeOperator(node(.add))
        XCTAssertThrowsError(try op.reference([HostTensor(shape: [1], floats: [1]), HostTensor(shape: [1], ints: [1])])) { error in
            XCTAssertTrue("\(error)".contains("binary_add"), "\(error)")
        }
        XCTAssertThrowsError(try op.outputs(for: [ValueFact(dtype: .float32, shape: [2]), ValueFact(dtype: .int64, shape: [2])]))
    }

    func testIntegerDivisionByZeroThrows() throws {
        let op = try OpKind.makeOperator(node(.div))
        XCTAssertThrowsError(try op.reference([HostTensor(shape: [1], ints: [1]), HostTensor(shape: [1], ints: [0])]))
    }

    func testFastKernelKeepsIntegerDivisionAndModOnIntegerInputs() throws {
        for function in [BinaryFunction.div, .mod, .add, .less] {
            try KernelHarness.assertFastMatchesReference(node(function), [
                .mathRandomInts([3, 5, 7], seed: 3), .mathRandomInts([5, 1], seed: 4, nonzero: true)])
        }
    }

    func testIncompatibleShapesThrow() throws {
        XCTAssertThrowsError(try OpKind.makeOperator(node(.add)).outputs(for: [ValueFact(dtype: .float32, shape: [3]), ValueFact(dtype: .float32, shape: [4])]))
    }
}
