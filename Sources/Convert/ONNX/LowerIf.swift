import Format
import Runtime

/// If (versions 1–25) whose condition is known when converting: a constant, or arithmetic
/// on constants and on the shapes of a model whose input sizes are fixed. AffineGrid's
/// expanded function body picks its 2-D or 3-D form so, and PyTorch's exporter writes
/// such an If around squeeze() of an axis it cannot prove has size 1.
///
/// The taken branch is inlined: its nodes are lowered in the If's place (by the importer,
/// from `LoweringContext.inlinedNodes`), reading the scopes around it by name — ONNX keeps
/// every name of a subgraph distinct from those outside it — with the branch's outputs
/// renamed to the If's. The other branch is never lowered. An If whose condition depends
/// on the input's data or on a symbolic input size is refused: Restore's graphs are
/// static dataflow.
enum LowerIf {
    static func inlineTakenBranch(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let condition = try node.requiredInput(0)
        guard let thenBranch = try node.graph("then_branch"), let elseBranch = try node.graph("else_branch") else {
            throw LoweringFailure.invalid("attributes then_branch and else_branch are required")
        }
        let taken = try conditionHolds(context, condition) ? thenBranch : elseBranch
        guard taken.outputs.count == node.outputs.count else {
            throw LoweringFailure.invalid("the taken branch has \(taken.outputs.count) outputs, the If \(node.outputs.count)")
        }

        // A branch output its own nodes produce takes the If's output name; one that is a
        // branch initializer or a value of an outer scope (or is listed twice) becomes an
        // alias of it.
        let produced = Set(taken.nodes.flatMap(\.outputs))
        var renamed: [String: String] = [:]
        var aliases: [(output: String, value: String)] = []
        for (inner, outer) in zip(taken.outputs, node.outputs) where !outer.isEmpty {
            if produced.contains(inner) && renamed[inner] == nil {
                renamed[inner] = outer
            } else {
                aliases.append((outer, inner))
            }
        }
        for initializer in taken.initializers { context.builder.addConstant(initializer) }
        for (output, value) in aliases {
            context.builder.alias(output, to: renamed[value] ?? value, node: "\(node.name)/\(output)")
        }
        context.inlinedNodes = taken.nodes.map { inner in
            var inlined = inner.renamingValues(renamed)
            inlined.name = context.builder.freshName("\(node.name)/\(inner.name)")
            return inlined
        }
    }

    /// The value of the condition, a single boolean, as folded from what is lowered so
    /// far; unsupported when it is known only when running.
    private static func conditionHolds(_ context: LoweringContext, _ condition: String) throws -> Bool {
        var builder = context.builder
        builder.resolveAllAliases()
        let value = builder.resolved(condition)
        var graph = builder.graph
        graph.outputs = [ValueInfo(name: value, dtype: .bool, shape: [])]
        _ = graph.removeDeadNodes()
        var known: HostTensor?
        do {
            known = try graph.constantValue(value)
            if known == nil {
                _ = try ConstantFolding.run(&graph)
                known = try graph.constantValue(value)
                let fixedShapes = graph.inputs.map { $0.shape.compactMap(\.fixedValue) }
                if known == nil, zip(graph.inputs, fixedShapes).allSatisfy({ $0.shape.count == $1.count }) {
                    known = try ShapeInference(graph: graph).infer(fixedShapes).knownValues[value]
                }
            }
        } catch {
            throw LoweringFailure.unsupported("its condition could not be evaluated when converting (\(error))")
        }
        guard let known else {
            throw LoweringFailure.unsupported("its condition depends on the input's data or symbolic size, which control "
                + "flow would need; PyTorch's exporter writes such an If for squeeze() of an axis whose size is symbolic "
                + "(index it with [..., 0] instead); see docs/exporting.md")
        }
        guard known.shape.reduce(1, *) == 1 else {
            throw LoweringFailure.invalid("the condition has shape \(known.shape); it must hold one element")
        }
        switch known.elements {
        case .int(let values): return values[0] != 0
        case .float(let values): return values[0] != 0
        }
    }
}

extension ONNXNode {
    /// The node with the values `names` maps renamed, in its inputs and outputs and in
    /// those of the subgraphs it holds (a nested If may read a renamed value).
    func renamingValues(_ names: [String: String]) -> ONNXNode {
        guard !names.isEmpty else { return self }
        var node = self
        node.inputs = inputs.map { names[$0] ?? $0 }
        node.outputs = outputs.map { names[$0] ?? $0 }
        for (key, attribute) in attributes {
            guard case .graph(var subgraph) = attribute else { continue }
            subgraph.nodes = subgraph.nodes.map { $0.renamingValues(names) }
            subgraph.outputs = subgraph.outputs.map { names[$0] ?? $0 }
            node.attributes[key] = .graph(subgraph)
        }
        return node
    }
}
