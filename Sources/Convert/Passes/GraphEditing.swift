import Format

/// Who reads each value of a graph, for rewrites that must know a value has one reader.
struct Consumers {
    private var readers: [String: [Int]] = [:]
    private let graphOutputs: Set<String>

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
