import Format
import TestSupport
import XCTest
@testable import Convert
@testable import Runtime

/// `WindowAttentionFusion` alone on a hand-built Swin block as exports look after attention
/// and linear fusion: roll (slices + concat), window partition, q, k and v (transformers:
/// three linears split into heads; paper/mmseg: one linear viewed [M, N, 3, h, d], permuted
/// and indexed), attention with a bias, heads merged, output linear, window reverse, roll
/// back, crop. The pass must fire on the exact semantics, leave near-misses alone, and keep
/// the result (both graphs run on random inputs).
final class WindowAttentionFusionTests: XCTestCase {
    // Batch 2, a 14 × 21 grid of 6 channels, 7 × 7 windows (2 × 3 per image), 2 heads.
    private let (batch, height, width, channels, windowSize, heads) = (2, 14, 21, 6, 7, 2)

    /// How the block is written; the defaults are Swin's.
    struct Variant {
        /// The roll before the partition, per axis (Swin: −shift on both).
        var roll = (height: -3, width: -3)
        /// The roll after the reverse (Swin: +shift on both).
        var rollBack = (height: 3, width: 3)
        var partitionPerm = [0, 1, 3, 2, 4, 5]
        var projections = Projections.separate
    }

    /// How q, k and v are computed from the windows.
    enum Projections {
        /// Three linears, as transformers' Swin writes them.
        case separate
        /// One linear to 3C, as the paper's and mmseg's code writes it: viewed as
        /// [M, N, 3, h, d] (or [M, N, h, 3, d] when `headsOutermost`), permuted to
        /// [3, M, h, N, d], and q, k, v taken from parts `order` (Swin: 0, 1, 2) by gathers
        /// or by slices and squeezes.
        case packed(order: [Int] = [0, 1, 2], slices: Bool = false, headsOutermost: Bool = false)
    }

    private var constants: [ConstantTensor] = []
    private var nodes: [Node] = []

    private func ints(_ name: String, _ values: [Int]) -> String {
        constants.append(ConstantTensor(name: name, shape: [values.count], ints: values.map(Int64.init)))
        return name
    }

    private func add(_ name: String, _ operation: Op, _ inputs: [String]) -> String {
        nodes.append(Node(name: name, operation, inputs: inputs, outputs: [name]))
        return name
    }

    private func transpose(_ name: String, _ x: String, _ perm: [Int]) -> String {
        add(name, .transpose(TransposeAttributes(perm: perm)), [x])
    }

    private func reshape(_ name: String, _ x: String, _ shape: [Int]) -> String {
        add(name, .reshape(ReshapeAttributes()), [x, ints("\(name).shape", shape)])
    }

    /// torch.roll(x, shift, axis) as exporters write it: two slices and a concat.
    private func roll(_ name: String, _ x: String, shift: Int, axis: Int, size: Int) -> String {
        guard shift % size != 0 else { return x }
        let cut = ((-shift) % size + size) % size
        let tail = add("\(name).tail", .slice, [x, ints("\(name).t0", [cut]), ints("\(name).t1", [size]), ints("\(name).ta", [axis])])
        let head = add("\(name).head", .slice, [x, ints("\(name).h0", [0]), ints("\(name).h1", [cut]), ints("\(name).ha", [axis])])
        return add(name, .concat(ConcatAttributes(axis: axis)), [tail, head])
    }

    private func dense(_ name: String, _ x: String, outputs: Int? = nil, seed: UInt64) -> String {
        let outputs = outputs ?? channels
        constants.append(ConstantTensor(name: "\(name).w", shape: [outputs, channels],
                                        floats: xorshiftFloats(count: outputs * channels, seed: seed)))
        constants.append(ConstantTensor(name: "\(name).b", shape: [outputs], floats: xorshiftFloats(count: outputs, seed: seed + 1)))
        return add(name, .linear(LinearAttributes()), [x, "\(name).w", "\(name).b"])
    }

    /// q, k and v [M, h, N, d] from the windows X [M, N, C].
    private func projections(_ x: String, _ layout: Projections, tokens: Int, depth: Int) -> [String] {
        switch layout {
        case .separate:
            return ["q", "k", "v"].enumerated().map { index, part in
                let projected = dense("\(part).linear", x, seed: UInt64(10 + 2 * index))
                let split = reshape("\(part).heads", projected, [-1, tokens, heads, depth])
                return transpose("\(part).transpose", split, [0, 2, 1, 3])
            }
        case let .packed(order, slices, headsOutermost):
            let projected = dense("qkv.linear", x, outputs: 3 * channels, seed: 10)
            let split = reshape("qkv.heads", projected, headsOutermost ? [-1, tokens, heads, 3, depth] : [-1, tokens, 3, heads, depth])
            let parts = transpose("qkv.transpose", split, headsOutermost ? [3, 0, 2, 1, 4] : [2, 0, 3, 1, 4])
            return zip(["q", "k", "v"], order).map { name, part in
                guard slices else {
                    constants.append(ConstantTensor(name: "\(name).index", shape: [], ints: [Int64(part)]))
                    return add(name, .gather(GatherAttributes(axis: 0)), [parts, "\(name).index"])
                }
                let slice = add("\(name).slice", .slice, [parts, ints("\(name).s0", [part]), ints("\(name).s1", [part + 1]),
                                                           ints("\(name).sa", [0])])
                return add(name, .squeeze(SqueezeAttributes(axes: [0])), [slice])
            }
        }
    }

    private func block(_ variant: Variant) -> Graph {
        (constants, nodes) = ([], [])
        let (across, down, tokens, depth) = (width / windowSize, height / windowSize, windowSize * windowSize, channels / heads)
        var x = roll("roll.h", "grid", shift: variant.roll.height, axis: 1, size: height)
        x = roll("roll.w", x, shift: variant.roll.width, axis: 2, size: width)
        x = reshape("partition.split", x, [batch, down, windowSize, across, windowSize, channels])
        x = transpose("partition.transpose", x, variant.partitionPerm)
        x = reshape("partition.windows", x, [-1, windowSize, windowSize, channels])
        x = reshape("partition.tokens", x, [-1, tokens, channels])
        let qkv = projections(x, variant.projections, tokens: tokens, depth: depth)
        let windows = batch * down * across
        constants.append(ConstantTensor(name: "bias", shape: [windows, heads, tokens, tokens],
                                        floats: xorshiftFloats(count: windows * heads * tokens * tokens, seed: 30).map { $0 * 3 }))
        var y = add("attention", .attention(AttentionAttributes(scale: 1 / Float(depth).squareRoot())), qkv + ["bias"])
        y = transpose("merge.transpose", y, [0, 2, 1, 3])
        y = reshape("merge.channels", y, [-1, tokens, channels])
        y = dense("output.linear", y, seed: 40)
        y = reshape("reverse.windows", y, [-1, windowSize, windowSize, channels])
        y = reshape("reverse.split", y, [batch, down, across, windowSize, windowSize, channels])
        y = transpose("reverse.transpose", y, [0, 1, 3, 2, 4, 5])
        y = reshape("reverse.grid", y, [batch, height, width, channels])
        y = roll("rollBack.h", y, shift: variant.rollBack.height, axis: 1, size: height)
        y = roll("rollBack.w", y, shift: variant.rollBack.width, axis: 2, size: width)
        // The crop of the padding, which stays.
        _ = add("y", .slice, [y, ints("crop.starts", [0]), ints("crop.ends", [height - 1]), ints("crop.axes", [1])])
        return Graph(inputs: [ValueInfo(name: "grid", dtype: .float32, shape: [batch, height, width, channels].map { .fixed($0) })],
                     outputs: [ValueInfo(name: "y", dtype: .float32, shape: [])], nodes: nodes, constants: constants)
    }

    private func shapes(_ graph: Graph) throws -> SampledShapes {
        let session = Session(model: try Model(graph: graph), threads: 1)
        let plans = try Simplifier.sampleShapes(graph, multiple: 1).map { try session.plan(for: $0) }
        return SampledShapes(samples: plans.map(\.valueShapes), knownValues: plans.map(\.knownValues))
    }

    private func run(_ graph: Graph) throws -> [Float] {
        let input = HostTensor(shape: [batch, height, width, channels],
                               floats: xorshiftFloats(count: batch * height * width * channels, seed: 50).map { $0 * 2 })
        return try Session(model: try Model(graph: graph), threads: 2).run([input])[0].floats
    }

    private func assertFuses(_ variant: Variant, shift: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let before = block(variant)
        var after = before
        XCTAssertEqual(try WindowAttentionFusion.run(&after, shapes: shapes(before)), 1, file: file, line: line)
        XCTAssertEqual(after.nodes.map(\.op), [.linear, .windowAttention, .linear, .slice], file: file, line: line)
        let depth = channels / heads
        XCTAssertEqual(after.nodes[1].operation,
                       .windowAttention(WindowAttentionAttributes(windowSize: windowSize, shift: shift, heads: heads,
                                                                  scale: 1 / Float(depth).squareRoot())),
                       file: file, line: line)
        let (expected, actual) = (try run(before), try run(after))
        let (maxAbs, relative) = maxAbsAndRelativeError(actual, expected)
        print("window attention fused vs decomposed, shift \(shift): max abs error \(maxAbs), relative \(relative)")
        XCTAssertLessThan(relative, 1e-5, file: file, line: line)
    }

    private func assertLeftAlone(_ variant: Variant, file: StaticString = #filePath, line: UInt = #line) throws {
        try assertLeftAlone(block(variant), file: file, line: line)
    }

    private func assertLeftAlone(_ before: Graph, file: StaticString = #filePath, line: UInt = #line) throws {
        var after = before
        XCTAssertEqual(try WindowAttentionFusion.run(&after, shapes: shapes(before)), 0, file: file, line: line)
        XCTAssertEqual(after.nodes, before.nodes, file: file, line: line)
    }

    func testShiftedWindowBlockFuses() throws {
        try assertFuses(Variant(), shift: 3)
    }

    func testUnshiftedWindowBlockFuses() throws {
        try assertFuses(Variant(roll: (0, 0), rollBack: (0, 0)), shift: 0)
    }

    func testDifferentShiftsOnHeightAndWidthAreLeftAlone() throws {
        try assertLeftAlone(Variant(roll: (-3, -2), rollBack: (3, 2)))
    }

    func testRollBackInTheWrongDirectionIsLeftAlone() throws {
        try assertLeftAlone(Variant(rollBack: (-3, -3)))
    }

    func testOtherWindowOrderIsLeftAlone() throws {
        // Windows numbered column-major: a valid graph, but not Swin's partition.
        try assertLeftAlone(Variant(partitionPerm: [0, 3, 1, 2, 4, 5]))
    }

    func testLinearsWithAnActivationAreLeftAlone() throws {
        // A dense layer that applies a function is no longer linear: it does not commute with the roll and partition.
        let relu = Op.linear(LinearAttributes(activation: Activation(function: .relu)))
        for name in ["q.linear", "output.linear"] {
            try assertLeftAlone(block(Variant()).replacingOperation(of: name, with: relu))
        }
    }

    func testOneQKVLinearIndexedByGathersFuses() throws {
        try assertFuses(Variant(projections: .packed()), shift: 3)
    }

    func testOneQKVLinearCutBySlicesFuses() throws {
        try assertFuses(Variant(projections: .packed(slices: true)), shift: 3)
    }

    func testOneQKVLinearUnshiftedFuses() throws {
        try assertFuses(Variant(roll: (0, 0), rollBack: (0, 0), projections: .packed()), shift: 0)
    }

    func testOneQKVLinearWithQueryAndKeySwappedIsLeftAlone() throws {
        // q reads the rows meant for k: a valid graph, but not the stacking q | k | v.
        try assertLeftAlone(Variant(projections: .packed(order: [1, 0, 2])))
    }

    func testOneQKVLinearSplitHeadsFirstIsLeftAlone() throws {
        // 3C read as [h, 3, d]: each head's q, k and v interleaved, not Swin's q | k | v.
        try assertLeftAlone(Variant(projections: .packed(headsOutermost: true)))
    }

    func testOneQKVLinearRollBackInTheWrongDirectionIsLeftAlone() throws {
        try assertLeftAlone(Variant(rollBack: (-3, -3), projections: .packed()))
    }
}
