import Format
import TestSupport
import XCTest
@testable import Runtime

final class AttentionTests: XCTestCase {
    private func node(_ name: String, scale: Float, bias: Bool) -> Node {
        try! Node(name: name, op: .attention, inputs: ["q", "k", "v"] + (bias ? ["bias"] : []), outputs: ["y"],
             attributes: ["scale": .float(scale)])
    }

    /// Q, K, V for `heads` heads of `queries` × `keys` with head dim `depth` (batch 2).
    private func inputs(heads: Int, queries: Int, keys: Int, depth: Int, seed: UInt64) -> [HostTensor] {
        [KernelHarness.random([2, heads, queries, depth], seed: seed),
         KernelHarness.random([2, heads, keys, depth], seed: seed + 1),
         KernelHarness.random([2, heads, keys, depth + 3], seed: seed + 2)]
    }

    func testFastMatchesReferenceOnOddShapes() throws {
        var seed: UInt64 = 1
        for heads in [1, 3] {
            for sequence in [1, 7, 49, 65] {
                for depth in [8, 32] {
                    let scale = 1 / Float(depth).squareRoot()
                    // Scores scaled ×4 so softmax rows are far from uniform.
                    try KernelHarness.assertFastMatchesReference(
                        node("attention_h\(heads)_s\(sequence)_d\(depth)", scale: 4 * scale, bias: false),
                        inputs(heads: heads, queries: sequence, keys: sequence, depth: depth, seed: seed))
                    seed += 3
                }
            }
        }
    }

    func testQueriesAndKeysOfDifferentLengths() throws {
        // 65 queries cut into a 64-row block and a 1-row block; 7 keys.
        try KernelHarness.assertFastMatchesReference(node("cross", scale: 0.5, bias: false),
                                                     inputs(heads: 3, queries: 65, keys: 7, depth: 8, seed: 40))
    }

    func testBiasBroadcastOverBatchOrHeads() throws {
        let biasShapes: [String: [Int]] = [
            "per_head_shared_by_batch": [3, 49, 49],   // relative-position bias
            "per_batch_shared_by_heads": [2, 1, 1, 49], // padding mask
            "full": [2, 3, 49, 49],
            "per_key_column": [49],
        ]
        for (label, shape) in biasShapes.sorted(by: { $0.key < $1.key }) {
            let bias = KernelHarness.random(shape, seed: 50).mathMapped { $0 * 3 }
            try KernelHarness.assertFastMatchesReference(node("bias_\(label)", scale: 0.35, bias: true),
                                                         inputs(heads: 3, queries: 49, keys: 49, depth: 32, seed: 51) + [bias])
        }
    }

    func testLongSequenceUsesSeveralBlocksPerProblem() throws {
        // 600 keys: blocks of 54 rows, so 300 queries take six blocks of scores per head.
        try KernelHarness.assertFastMatchesReference(node("long", scale: 0.2, bias: false),
                                                     inputs(heads: 1, queries: 300, keys: 600, depth: 8, seed: 60))
    }

    /// Every CPU path the machine runs (AVX2 and AVX-512 pack each problem's K and V once
    /// per worker, generic reads them in place) on 1–3 threads: problems of three blocks
    /// (64 + 64 + 2 rows) split across workers mid-problem, with a per-head bias.
    func testEveryCPUPathAndThreadCount() throws {
        let attention = try XCTUnwrap(try OpKind.makeOperator(node("paths", scale: 0.3, bias: true)) as? ScaledDotProductAttention)
        let inputs = inputs(heads: 3, queries: 130, keys: 97, depth: 32, seed: 70)
            + [KernelHarness.random([3, 130, 97], seed: 73).mathMapped { $0 * 3 }]
        let expected = try attention.reference(inputs)[0]
        let g = try attention.geometry(query: inputs[0].shape, key: inputs[1].shape, value: inputs[2].shape,
                                       bias: inputs[3].shape)
        for cpu in CPUFeatures.supportedLevels {
            for threads in 1...3 {
                let kernel = AttentionKernel(geometry: g, scale: 0.3, bias: BiasLayout(shape: inputs[3].shape, scores: g.scoreShape),
                                             cpu: cpu)
                XCTAssertEqual(kernel.packsKeysAndValues, cpu >= .avx2)
                let actual = KernelHarness.run(kernel, inputs, outputFacts: [ValueFact(dtype: .float32, shape: g.outputShape)],
                                               threads: threads)[0]
                let (maxAbs, relative) = maxAbsAndRelativeError(actual.floats, expected.floats)
                print("attention (\(CPUFeatures.name(of: cpu)), \(threads) threads) \(g.outputShape): max abs error \(maxAbs), relative \(relative)")
                XCTAssertLessThanOrEqual(relative, 1e-5, "attention (\(cpu), \(threads) threads) differs from reference")
            }
        }
    }

    /// [..., L, H, D] ↔ [..., H, L, D]: swaps the two axes before the last.
    private func swapTokensAndHeads(_ tensor: HostTensor) throws -> HostTensor {
        let rank = tensor.shape.count
        let perm = Array(0..<(rank - 3)) + [rank - 2, rank - 3, rank - 1]
        return try OpKind.makeOperator(Node(name: "swap", .transpose(TransposeAttributes(perm: perm)), inputs: ["x"], outputs: ["y"]))
            .reference([tensor])[0]
    }

    /// Interleaved heads (Q, K, V [2, L, 3, D], as projections write them) give what the
    /// [2, 3, L, D] layout gives, transposed, on every CPU path and 1–3 threads: problems of
    /// 130 queries (three blocks) and 97 keys, with a per-head bias, whose rows are 3·D apart.
    func testInterleavedHeadsMatchTheHeadsFirstLayout() throws {
        let interleaved = try OpKind.makeOperator(Node(name: "interleaved", .attention(AttentionAttributes(scale: 0.3, headsInterleaved: true)),
                                                       inputs: ["q", "k", "v", "bias"], outputs: ["y"]))
        let headsFirst = try OpKind.makeOperator(node("heads_first", scale: 0.3, bias: true))
        let inputs = try self.inputs(heads: 3, queries: 130, keys: 97, depth: 32, seed: 80).map(swapTokensAndHeads)
            + [KernelHarness.random([3, 130, 97], seed: 83).mathMapped { $0 * 3 }]
        let expected = try swapTokensAndHeads(try headsFirst.reference(try inputs[0..<3].map(swapTokensAndHeads) + [inputs[3]])[0])
        let reference = try interleaved.reference(inputs)[0]
        XCTAssertEqual(reference.shape, [2, 130, 3, 35])
        XCTAssertEqual(reference.floats, expected.floats, "the two references compute the same sums")
        let attention = try XCTUnwrap(interleaved as? ScaledDotProductAttention)
        let g = try attention.geometry(query: inputs[0].shape, key: inputs[1].shape, value: inputs[2].shape, bias: inputs[3].shape)
        XCTAssertEqual(g.heads, 3)
        for cpu in CPUFeatures.supportedLevels {
            for threads in 1...3 {
                let kernel = AttentionKernel(geometry: g, scale: 0.3, bias: BiasLayout(shape: inputs[3].shape, scores: g.scoreShape),
                                             cpu: cpu)
                let actual = KernelHarness.run(kernel, inputs, outputFacts: [ValueFact(dtype: .float32, shape: g.outputShape)],
                                               threads: threads)[0]
                let (maxAbs, relative) = maxAbsAndRelativeError(actual.floats, expected.floats)
                print("attention, interleaved heads (\(CPUFeatures.name(of: cpu)), \(threads) threads): max abs error \(maxAbs), relative \(relative)")
                XCTAssertLessThanOrEqual(relative, 1e-5, "\(cpu), \(threads) threads")
            }
        }
    }

    /// The gradients of interleaved-heads attention are those of the heads-first layout,
    /// transposed (the backward rule reads and writes every head with the 3·D row stride).
    func testInterleavedHeadsGradientsMatchTheHeadsFirstLayout() throws {
        func gradients(_ attributes: AttentionAttributes, _ inputs: [HostTensor], upstream: [Float]) throws -> (y: [Float], grads: [HostTensor]) {
            let graph = Graph(
                inputs: inputs.enumerated().map { ValueInfo(name: "x\($0)", dtype: .float32, shape: $1.shape.map { .fixed($0) }) },
                outputs: [ValueInfo(name: "y", dtype: .float32, shape: [])],
                nodes: [Node(name: "attention", .attention(attributes), inputs: ["x0", "x1", "x2"], outputs: ["y"])])
            let plan = try GradientPlan(model: try Model(graph: graph), inputShapes: inputs.map(\.shape), parameters: [],
                                        wantedInputs: ["x0", "x1", "x2"], threads: 2)
            var output: [Float] = []
            plan.run(inputs: inputs, parameters: []) { y, gradient in
                output = Array(y)
                for i in gradient.indices { gradient[i] = upstream[i] }
                return 0
            }
            return (output, inputs.indices.map { HostTensor(shape: inputs[$0].shape, floats: Array(plan.inputGradient($0))) })
        }
        let headsFirstInputs = inputs(heads: 3, queries: 9, keys: 6, depth: 4, seed: 90)
        let upstream = KernelHarness.random([2, 3, 9, 7], seed: 93)
        let headsFirst = try gradients(AttentionAttributes(scale: 0.7), headsFirstInputs, upstream: upstream.floats)
        let interleaved = try gradients(AttentionAttributes(scale: 0.7, headsInterleaved: true),
                                        try headsFirstInputs.map(swapTokensAndHeads), upstream: try swapTokensAndHeads(upstream).floats)
        let forward = maxAbsAndRelativeError(interleaved.y, try swapTokensAndHeads(HostTensor(shape: [2, 3, 9, 7], floats: headsFirst.y)).floats)
        XCTAssertLessThanOrEqual(forward.relative, 1e-6)
        for index in 0..<3 {
            let error = maxAbsAndRelativeError(interleaved.grads[index].floats, try swapTokensAndHeads(headsFirst.grads[index]).floats)
            print("attention gradient of input \(index), interleaved heads vs heads first: max abs \(error.maxAbs), relative \(error.relative)")
            XCTAssertLessThanOrEqual(error.relative, 1e-6, "input \(index)")
        }
    }

    func testBiasThatWouldEnlargeTheScoresIsRejected() throws {
        let op = try OpKind.makeOperator(node("bad", scale: 1, bias: true))
        let facts = [[1, 2, 5, 4], [1, 2, 6, 4], [1, 2, 6, 4], [3, 1, 5, 6]].map { ValueFact(dtype: .float32, shape: $0) }
        XCTAssertThrowsError(try op.outputs(for: facts))
    }
}
