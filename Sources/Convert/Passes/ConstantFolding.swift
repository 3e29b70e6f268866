import Format
import Runtime

/// Evaluates, with the ops' reference kernels, every node whose inputs are all
/// constants, and replaces it by the constants it produces. With every input dim fixed,
/// also folds what the shapes decide (Shape/Gather/Concat arithmetic, masks).
enum ConstantFolding {
    static func run(_ graph: inout Graph, knownAtPlanTime: [String: HostTensor] = [:]) throws -> Int {
        var folded = 0
        for index in graph.nodes.indices {
            let node = graph.nodes[index]
            let outputs = node.outputs.filter { !$0.isEmpty }
            let known = outputs.compactMap { name in knownAtPlanTime[name].map { $0.asConstant(named: name) } }
            if !outputs.isEmpty, known.count == outputs.count {
                known.forEach { graph.setConstant($0) }
            } else if node.inputs.allSatisfy({ $0.isEmpty || graph.constants[$0] != nil }) {
                let op = try OpKind.makeOperator(node)
                let values = try op.reference(node.inputs.map { $0.isEmpty ? nil : try graph.constantValue($0) })
                for (name, value) in zip(node.outputs, values) where !name.isEmpty {
                    graph.setConstant(value.asConstant(named: name))
                }
            } else {
                continue
            }
            graph.nodes[index].inputs = []
            folded += 1
        }
        graph.nodes.removeAll { $0.inputs.isEmpty && $0.outputs.allSatisfy { graph.constants[$0] != nil || $0.isEmpty } }
        graph.removeUnusedConstants()
        return folded
    }
}
