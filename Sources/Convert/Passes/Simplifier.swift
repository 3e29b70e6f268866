import Format
import Runtime

/// The convert-time rewrite pipeline: fold constants (and, for fixed-size models, all
/// shape arithmetic); recognise layer norms, GELU/SiLU, attention and linear layers
/// written out as elementary ops (moving a shifted-window mask added through a 5-D view
/// into the attention bias first), then Swin's shifted-window attention around the
/// attention and linear nodes, and multi-scale deformable attention from its per-level gridSamples; fold per-channel affines (BatchNorm) into convolutions;
/// then fuse activations and residual adds into convolutions and linear layers (so the
/// recognisers run first: a GELU must be one node before it can fuse). Each pass is a
/// file of its own.
public enum Simplifier {
    public struct Report: Sendable, CustomStringConvertible {
        public var nodesBefore: Int
        public var nodesAfter: Int
        public var passes: [(name: String, rewrites: Int)]
        /// Why shape-dependent fusion was skipped, when it was.
        public var notes: [String]

        public var description: String {
            var lines = ["nodes: \(nodesBefore) → \(nodesAfter)"]
            for pass in passes { lines.append("  \(pass.name): \(pass.rewrites)") }
            lines += notes.map { "  note: \($0)" }
            return lines.joined(separator: "\n")
        }
    }

    /// Fusions a conversion may leave out, so that their effect can be measured.
    public enum Fusion: String, Sendable, CaseIterable {
        case deformableAttention = "deformable-attention"
    }

    /// Simplifies `graph` in place. `multiple` is the size input H and W must be a
    /// multiple of (`restore.multiple`), used to pick the sizes shapes are sampled at;
    /// `skipped` fusions are left out.
    public static func simplify(_ graph: inout Graph, multiple: Int = 1, skipping skipped: Set<Fusion> = []) throws -> Report {
        var report = Report(nodesBefore: graph.nodes.count, nodesAfter: 0, passes: [], notes: [])
        report.passes.append(("constant folding", try ConstantFolding.run(&graph)))
        let samples = sampleShapes(graph, multiple: multiple)
        if graph.inputs.allSatisfy({ $0.shape.allSatisfy { if case .fixed = $0 { true } else { false } } }),
           let inferred = try? ShapeInference(graph: graph).infer(samples[0]) {
            report.passes.append(("static shape folding", try ConstantFolding.run(&graph, knownAtPlanTime: inferred.knownValues)))
        }
        var sampled = sampledShapes(graph, samples)
        if sampled.samples.isEmpty {
            report.notes.append("shape-dependent recognisers limited: the model did not plan at sample sizes \(samples)")
        }
        report.passes.append(("layer norm fusion", try LayerNormFusion.run(&graph, shapes: sampled)))
        report.passes.append(("GELU/SiLU fusion", try GELUFusion.run(&graph)))
        let maskFolds = try WindowMaskFolding.run(&graph, shapes: sampled)
        report.passes.append(("window mask folding", maskFolds))
        // The folded masks and biases are new values, whose shapes attention fusion checks.
        if maskFolds > 0 { sampled = sampledShapes(graph, samples) }
        report.passes.append(("attention fusion", try AttentionFusion.run(&graph, shapes: sampled)))
        report.passes.append(("attention from the right (SAGAN) fusion", try TransposedAttentionFusion.run(&graph, shapes: sampled)))
        report.passes.append(("matMul + bias → linear", try LinearFusion.run(&graph, shapes: sampled)))
        report.passes.append(("Swin window attention fusion", try WindowAttentionFusion.run(&graph, shapes: sampled)))
        if !skipped.contains(.deformableAttention) {
            report.passes.append(("deformable attention fusion", try DeformableAttentionFusion.run(&graph, shapes: sampled)))
        }
        // Attention fusion names new values (the keys' transposes), whose shapes this pass checks.
        report.passes.append(("attention reading interleaved heads",
                              try AttentionHeadLayoutFusion.run(&graph, shapes: sampledShapes(graph, samples))))
        report.passes.append(("per-channel affine (BatchNorm) folding", try ChannelAffineFolding.run(&graph)))
        var activations = try ActivationFusion.run(&graph)
        do {
            let inference = try ShapeInference(graph: graph)
            let shapes = try samples.map { try inference.infer($0).valueShapes }
            report.passes.append(("residual add fusion", try ResidualFusion.run(&graph) { a, b in
                shapes.allSatisfy { $0[a] != nil && $0[a] == $0[b] }
            }))
        } catch {
            report.notes.append("residual fusion skipped: the model did not plan at sample sizes \(samples): \(error)")
        }
        activations += try ActivationFusion.run(&graph)
        report.passes.append(("activation fusion", activations))
        report.passes.append(("dead node removal", graph.removeDeadNodes()))
        report.nodesAfter = graph.nodes.count
        return report
    }

    /// Value shapes and plan-time values at every sample size, or none when the graph does
    /// not plan at one of them.
    private static func sampledShapes(_ graph: Graph, _ samples: [[[Int]]]) -> SampledShapes {
        guard let inference = try? ShapeInference(graph: graph),
              let inferred = try? samples.map({ try inference.infer($0) }) else { return SampledShapes(samples: []) }
        return SampledShapes(samples: inferred.map(\.valueShapes), knownValues: inferred.map(\.knownValues))
    }

    /// Two sets of input shapes that bind every symbol: batch 1, and spatial sizes that
    /// differ between H and W and between samples, rounded up to `multiple`, so shapes
    /// that agree at both are equal by structure, not by coincidence.
    static func sampleShapes(_ graph: Graph, multiple: Int) -> [[[Int]]] {
        let step = max(1, multiple)
        func round(_ size: Int) -> Int { (size + step - 1) / step * step }
        let choices = [[round(64), round(48)], [round(40), round(72)]]
        return choices.map { sizes in
            var symbols: [String: Int] = [:]
            return graph.inputs.map { info in
                info.shape.enumerated().map { axis, dim in
                    switch dim {
                    case .fixed(let size): return size
                    case .symbol(let name):
                        if let bound = symbols[name] { return bound }
                        let value = axis == 0 ? 1 : sizes[(symbols.count) % 2]
                        symbols[name] = value
                        return value
                    }
                }
            }
        }
    }
}
