import Format
import Runtime

/// Who reads each value of a graph, for rewrites that must know a value has one reader.
struct Consumers {
    fileprivate var readers: [String: [Int]] = [:]
    fileprivate let graphOutputs: Set<String>

    init(_ graph: Graph) {
        graphOutputs = Set(graph.outputs.map(\.name))
        for (index, node) in graph.nodes.enumerated() {
            for input in node.inputs where !input.isEmpty { readers[input, default: []].append(index) }
        }
    }

    /// The only node reading `value`, when exactly one node does and it is no graph output.
    func soleReader(of value: String) -> Int? {
        guard !graphOutputs.contains(value), let nodes = readers[value], nodes.count == 1 else { return nil }
        return nodes[0]
    }
}

extension Graph {
    /// Replaces `node` and its sole reader `absorbed` by `node`, which takes over the
    /// reader's outputs: the fused value keeps the name later nodes read.
    mutating func absorb(_ absorbed: Int, into fused: Int) {
        nodes[fused].outputs = nodes[absorbed].outputs
        nodes[absorbed].outputs = []
        nodes[absorbed].inputs = []
    }

    /// Drops nodes that produce nothing anyone reads, and constants no one reads.
    mutating func removeDeadNodes() -> Int {
        var live = Set(outputs.map(\.name))
        var keep = Array(repeating: false, count: nodes.count)
        for index in nodes.indices.reversed() where nodes[index].outputs.contains(where: live.contains) {
            keep[index] = true
            live.formUnion(nodes[index].inputs.filter { !$0.isEmpty })
        }
        let before = nodes.count
        nodes = nodes.indices.filter { keep[$0] }.map { nodes[$0] }
        removeUnusedConstants()
        return before - nodes.count
    }
}

extension Consumers {
    /// The distinct nodes reading `value`, in graph order (empty for a graph output's
    /// readers too: a value the caller sees must not be fused away).
    func distinctReaders(of value: String) -> [Int] {
        guard !graphOutputs.contains(value), let nodes = readers[value] else { return [] }
        return Array(Set(nodes)).sorted()
    }
}

/// What fusion passes ask of a graph while matching a decomposed pattern: who produces
/// and who reads a value, which function a node applies, and what scalar a constant holds.
struct PatternView {
    let graph: Graph
    let consumers: Consumers
    private let producers: [String: Int]

    init(_ graph: Graph) {
        self.graph = graph
        consumers = Consumers(graph)
        producers = Dictionary(graph.nodes.enumerated().flatMap { index, node in node.outputs.map { ($0, index) } },
                               uniquingKeysWith: { first, _ in first })
    }

    /// True when node `index` matches `pattern` and has one output.
    func isNode(_ index: Int, _ pattern: OpPattern) -> Bool {
        let node = graph.nodes[index]
        return node.outputs.count == 1 && pattern.matches(node.operation)
    }

    /// The node producing `value` when it matches `pattern`.
    func producer(of value: String, _ pattern: OpPattern) -> Int? {
        producers[value].flatMap { isNode($0, pattern) ? $0 : nil }
    }

    /// The only node reading `value` when it matches `pattern`.
    func soleReader(of value: String, _ pattern: OpPattern) -> Int? {
        consumers.soleReader(of: value).flatMap { isNode($0, pattern) ? $0 : nil }
    }

    /// The single value of a float constant with one element, of any shape.
    func scalar(_ value: String) -> Float? {
        guard let constant = graph.constants[value], constant.dtype.isFloatingPoint,
              constant.shape.reduce(1, *) == 1 else { return nil }
        return constant.floatValues().first
    }

    /// True when `value` is a scalar constant within float32 rounding of `expected`
    /// (exporters write 1/√2 and √(2/π) with different numbers of digits).
    func isScalar(_ value: String, _ expected: Float) -> Bool {
        scalar(value).map { abs($0 - expected) <= 1e-6 * max(1, abs(expected)) } ?? false
    }

    /// The input of a two-input node that is not `value`, when the node reads `value`.
    func operand(of index: Int, besides value: String) -> String? {
        let inputs = graph.nodes[index].inputs
        guard inputs.count == 2 else { return nil }
        if inputs[0] == value { return inputs[1] }
        if inputs[1] == value { return inputs[0] }
        return nil
    }

    /// The only output of node `index`.
    func output(_ index: Int) -> String { graph.nodes[index].outputs[0] }
}

/// One match of a fusion pass: the matched nodes, and what replaces them at the position
/// of the last one (all the replacement's inputs exist by then), with the new constants
/// the replacement reads.
struct Rewrite {
    var matched: [Int]
    var replacement: [Node]
    var constants: [ConstantTensor] = []
}

extension Graph {
    /// Applies rewrites whose matches do not overlap (later overlapping ones are skipped);
    /// returns how many were applied.
    mutating func apply(_ rewrites: [Rewrite]) -> Int {
        var claimed = Set<Int>()
        var placed: [Int: [Node]] = [:]
        for rewrite in rewrites where claimed.isDisjoint(with: rewrite.matched) {
            guard let last = rewrite.matched.max() else { continue }
            claimed.formUnion(rewrite.matched)
            placed[last] = rewrite.replacement
            for constant in rewrite.constants { setConstant(constant) }
        }
        nodes = nodes.indices.flatMap { index in placed[index] ?? (claimed.contains(index) ? [] : [nodes[index]]) }
        removeUnusedConstants()
        return placed.count
    }

    /// `base`, or `base.1`, `base.2` … : a name no constant or node output uses yet.
    func unusedName(_ base: String) -> String {
        let taken = Set(nodes.flatMap(\.outputs)).union(constants.keys).union(inputs.map(\.name))
        var name = base
        var counter = 1
        while taken.contains(name) {
            name = "\(base).\(counter)"
            counter += 1
        }
        return name
    }
}

/// Value shapes of a graph at each sampled input size (see `Simplifier.sampleShapes`);
/// passes ask them only for what holds at every sample.
struct SampledShapes {
    var samples: [[String: [Int]]]
    /// The values the planner knew at each sample (constants folded per size, shape
    /// arithmetic, masks built from shapes); empty when the caller sampled only shapes.
    var knownValues: [[String: HostTensor]] = []

    /// The rank of `value` when it is known and the same at every sample.
    func rank(_ value: String) -> Int? {
        let ranks = Set(samples.compactMap { $0[value]?.count })
        guard ranks.count == 1, samples.allSatisfy({ $0[value] != nil }) else { return nil }
        return ranks.first
    }

    /// `value`'s shape at each sample, when it is known at all of them.
    func shapes(_ value: String) -> [[Int]]? {
        let shapes = samples.compactMap { $0[value] }
        return shapes.count == samples.count && !shapes.isEmpty ? shapes : nil
    }
}
