import Format
import XCTest
@testable import Runtime

final class LinearTests: XCTestCase {
    private func node(_ activation: UnaryFunction = .identity, bias: Bool = true) -> Node {
        let attributes = LinearAttributes(activation: Activation(function: activation, alpha: activation == .leakyRelu ? 0.2 : nil,
                                                                 min: activation == .clip ? -0.3 : -.infinity,
                                                                 max: activation == .clip ? 0.4 : .infinity)).encoded
        return .mathTest(.linear, "linear_\(activation)", inputs: 3, absent: bias ? [] : [2], attributes)
    }

    private func inputs(_ x: [Int], n: Int, seed: UInt64) -> [HostTensor?] {
        [KernelHarness.random(x, seed: seed), KernelHarness.random([n, x.last ?? 1], seed: seed + 10), KernelHarness.random([n], seed: seed + 20)]
    }

    func testFastMatchesReferenceOnOddShapes() throws {
        let cases: [([Int], Int)] = [([7], 1), ([1, 7], 5), ([63], 65), ([65, 63], 7), ([2, 3, 33], 17), ([2, 1, 3, 5, 9], 4)]
        for (index, (x, n)) in cases.enumerated() {
            let values = inputs(x, n: n, seed: UInt64(index + 1))
            try KernelHarness.assertFastMatchesReference(node(), values)
            try KernelHarness.assertFastMatchesReference(node(bias: false), [values[0], values[1], nil])
        }
    }

    func testFastAppliesEveryActivationAfterTheBias() throws {
        // Undefined on negative sums, outside (−1, 1) or below 1, or on floats.
        let domainRestricted: Set<UnaryFunction> = [.log, .sqrt, .not, .asin, .acos, .atanh, .acosh]
        for activation in UnaryFunction.allCases where !domainRestricted.contains(activation) {
            try KernelHarness.assertFastMatchesReference(node(activation), inputs([5, 13], n: 7, seed: 3))
        }
    }

    func testFastSplitsRowsAcrossThreadsInBlocks() throws {
        // 300 rows of N = 1024: 64-row blocks, several per thread, the last one partial.
        try KernelHarness.assertFastMatchesReference(node(.gelu), inputs([3, 100, 32], n: 1024, seed: 7))
        try KernelHarness.assertFastMatchesReference(node(.relu), inputs([700, 64], n: 96, seed: 8))
    }

    /// A constant W is packed once per model for the AVX2 or AVX-512 GEMM.
    func testFastWithConstantWeightMatchesReference() throws {
        let cases: [([Int], Int)] = [([7], 1), ([65, 63], 7), ([2, 3, 33], 17), ([300, 96], 384), ([5, 13], 49)]
        for (index, (x, n)) in cases.enumerated() {
            let values = inputs(x, n: n, seed: UInt64(index + 40))
            try KernelHarness.assertFastMatchesReference(node(.gelu), values, constants: [1])
            try KernelHarness.assertFastMatchesReference(node(bias: false), [values[0], values[1], nil], constants: [1])
        }
    }

    /// With a constant W, the bias and the activations the packed product computes
    /// (identity, ReLU, GELU) are its epilogue; K = 300 takes two blocks of depth (the
    /// epilogue only after the last), N = 49 and 17 edge panels of every width.
    func testFusedEpilogueMatchesReference() throws {
        let cases: [([Int], Int)] = [([13, 300], 49), ([2, 9, 40], 17), ([256, 192], 96)]
        for (index, (x, n)) in cases.enumerated() {
            let values = inputs(x, n: n, seed: UInt64(index + 70))
            for activation: UnaryFunction in [.identity, .relu, .gelu] {
                try KernelHarness.assertFastMatchesReference(node(activation), values, constants: [1])
            }
        }
    }

    /// With a packed W and fewer rows than columns, threads split the columns in whole
    /// panels: ViT-S/16's shapes, and N = 200 whose last panel is partial on both paths
    /// (48 and 16 columns wide).
    func testThreadsSplitColumnsWhenRowsAreFewerThanColumns() throws {
        let cases: [([Int], Int, UnaryFunction)] = [([1, 197, 384], 1536, .gelu), ([197, 384], 384, .identity),
                                                    ([40, 300], 200, .relu)]
        for (index, (x, n, activation)) in cases.enumerated() {
            let values = inputs(x, n: n, seed: UInt64(index + 90))
            try KernelHarness.assertFastMatchesReference(node(activation), values, constants: [1])
            try KernelHarness.assertFastMatchesReference(node(activation, bias: false), [values[0], values[1], nil],
                                                         constants: [1])
            let kernel = LinearKernel(rows: x.dropLast().reduce(1, *), n: n, k: x.last!, hasBias: true,
                                      activation: Activation(function: activation))
            XCTAssertEqual(kernel.columnSplitPanelWidth(threads: 2) != nil, GEMM.packs(), "\(x) · [\(n)]")
            XCTAssertNil(kernel.columnSplitPanelWidth(threads: 1))
        }
        // More rows than columns: the rows are split.
        XCTAssertNil(LinearKernel(rows: 700, n: 96, k: 64, hasBias: true, activation: .identity)
            .columnSplitPanelWidth(threads: 2))
    }

    /// A weight of one output column would take 48 floats per float packed: it is read
    /// in place instead, with the same result.
    func testNarrowConstantWeightIsNotPacked() throws {
        let values = inputs([9, 300], n: 1, seed: 60)
        try KernelHarness.assertFastMatchesReference(node(), values, constants: [1])
        let op = try OpKind.makeOperator(node())
        let facts = values.map { $0.map { ValueFact(dtype: $0.dtype, shape: $0.shape) } }
        let store = PreparedWeightStore()
        _ = try values[1]!.floats.withUnsafeBufferPointer { weight in
            try op.kernel(inputs: facts, outputs: try op.outputs(for: facts),
                          constants: ConstantInputs(weights: [nil, ConstantWeight(name: "W", shape: values[1]!.shape, floats: weight.baseAddress!), nil],
                                                    store: store))
        }
        XCTAssertEqual(store.bytes, 0)
    }

    func testWeightOfWrongWidthThrowsNamingTheNode() throws {
        let op = try OpKind.makeOperator(node())
        XCTAssertThrowsError(try op.outputs(for: [ValueFact(dtype: .float32, shape: [2, 8]), ValueFact(dtype: .float32, shape: [4, 7]),
                                                  ValueFact(dtype: .float32, shape: [4])])) { error in
            XCTAssertTrue("\(error)".contains("linear_identity"), "\(error)")
        }
    }
}
