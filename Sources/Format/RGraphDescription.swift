/// Human-readable summaries of a model, for `rrun info`.
extension Graph {
    /// Metadata, inputs and outputs with symbolic dims, node count per op kind, and
    /// constant count and bytes per dtype, one item per line.
    public func describe() -> String {
        var lines: [String] = []
        lines.append("metadata:" + (metadata.isEmpty ? " none" : ""))
        for key in metadata.keys.sorted() {
            lines.append("  \(key) = \(metadata[key] ?? "")")
        }
        for (title, values) in [("inputs", inputs), ("outputs", outputs)] {
            lines.append("\(title):" + (values.isEmpty ? " none" : ""))
            for value in values {
                let shape = value.shape.map(\.description).joined(separator: ", ")
                lines.append("  \(value.name): \(value.dtype.rawValue) [\(shape)]")
            }
        }
        let imported = metadata[Graph.importedNodesKey].map { " (\($0) as imported, before simplification and fusion)" } ?? ""
        lines.append("nodes: \(nodes.count)" + imported)
        // Nodes whose inputs are all constants would recompute weights at every run (an
        // exported spectral norm W/σ); conversion folds them, so this should say 0.
        let constantOnly = nodes.filter { (node: Node) -> Bool in
            !node.inputs.isEmpty && node.inputs.allSatisfy { (name: String) -> Bool in name.isEmpty || self.constants[name] != nil }
        }.count
        let folded = metadata[Graph.constantFoldedNodesKey].map { "; \($0) folded at convert time" } ?? ""
        lines.append("  computing only on constants (e.g. spectral norm W/σ): \(constantOnly) left\(folded)")
        var nodesPerOp: [OpKind: Int] = [:]
        for node in nodes { nodesPerOp[node.op, default: 0] += 1 }
        for op in OpKind.allCases {
            if let count = nodesPerOp[op] { lines.append("  \(op.rawValue): \(count)") }
        }
        let constants = orderedConstants
        let totalBytes = constants.reduce(0) { $0 + $1.byteCount }
        lines.append("tensors: \(constants.count), \(Self.byteText(totalBytes))")
        for dtype in DType.allCases {
            let ofType = constants.filter { $0.dtype == dtype }
            guard !ofType.isEmpty else { continue }
            let bytes = ofType.reduce(0) { $0 + $1.byteCount }
            lines.append("  \(dtype.rawValue): \(ofType.count) tensor\(ofType.count == 1 ? "" : "s"), \(Self.byteText(bytes))")
        }
        let quantized = constants.filter { $0.layout != .elements }.count
        if quantized > 0 { lines.append("  quantized (int8 with scales): \(quantized) tensor\(quantized == 1 ? "" : "s")") }
        if !packedConstants.isEmpty {
            let bytes = packedConstants.reduce(0) { $0 + $1.tensor.byteCount }
            lines.append("packed for kernels (convert --prepare): \(packedConstants.count), \(Self.byteText(bytes))")
            var perLayout: [String: (count: Int, bytes: Int)] = [:]
            for values in packedConstants {
                perLayout[values.layout.description, default: (0, 0)].count += 1
                perLayout[values.layout.description, default: (0, 0)].bytes += values.tensor.byteCount
            }
            for (layout, entry) in perLayout.sorted(by: { $0.key < $1.key }) {
                lines.append("  \(layout): \(entry.count), \(Self.byteText(entry.bytes))")
            }
        }
        return lines.joined(separator: "\n")
    }

    /// Bytes exactly, with a binary-prefixed size for the large ones (12345678 bytes (11.8 MiB)).
    private static func byteText(_ bytes: Int) -> String {
        let units = ["KiB", "MiB", "GiB"]
        var scaled = Double(bytes)
        var unit: String?
        for candidate in units where scaled >= 1024 {
            scaled /= 1024
            unit = candidate
        }
        guard let unit else { return "\(bytes) bytes" }
        let tenths = (scaled * 10).rounded()
        return "\(bytes) bytes (\(Int(tenths) / 10).\(Int(tenths) % 10) \(unit))"
    }
}

extension RGraphFile {
    /// The file's name, size, format version and generator, then `Graph.describe()`.
    public func describe() -> String {
        var header = "\(file): .rgraph \(version), \(fileSize) bytes"
        if let generator { header += ", written by \(generator)" }
        let foreign = foreignPackedConstants.isEmpty ? "" : "\npacked for kernels this Restore does not have (not read): "
            + foreignPackedConstants.map(\.description).joined(separator: ", ")
        return header + "\n" + graph.describe() + foreign
    }
}
