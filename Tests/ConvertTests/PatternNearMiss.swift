import Format

extension Graph {
    /// This graph with node `name` computing `operation` instead: a near miss of a pass's
    /// pattern when `operation` differs from the pattern's only in its function.
    func replacingOperation(of name: String, with operation: Op) -> Graph {
        var graph = self
        guard let index = graph.nodes.firstIndex(where: { $0.name == name }) else {
            preconditionFailure("no node named \(name) to replace")
        }
        graph.nodes[index].operation = operation
        return graph
    }
}
