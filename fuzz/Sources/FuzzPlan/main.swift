import Format
import Foundation
import FuzzSupport
import Runtime

/// Every symbolic dimension of a graph input is bound to this size: small enough that
/// planning (which folds constants with the reference kernels) stays fast.
let symbolSize = 8
/// Inputs whose fixed dimensions ask for more elements than this are skipped: a large
/// input is the caller's choice, and the planner is not meant to refuse it.
let inputElementLimit = 1 << 20

/// The input shapes to plan for, or nil if one is larger than `inputElementLimit`.
func smallInputShapes(_ graph: Graph) -> [[Int]]? {
    var shapes: [[Int]] = []
    for input in graph.inputs {
        var shape: [Int] = []
        var elements = 1
        for dim in input.shape {
            let size = switch dim {
            case .fixed(let size): size
            case .symbol: symbolSize
            }
            let (product, overflow) = elements.multipliedReportingOverflow(by: size)
            guard !overflow, product <= inputElementLimit else { return nil }
            elements = product
            shape.append(size)
        }
        shapes.append(shape)
    }
    return shapes
}

// One `.rgraph` image (checksums repaired) loaded into a `Model` and planned for small
// inputs: a graph that reads fine can still be hostile to the op parsers, shape rules and
// constant folding.
exit(runLibFuzzer { bytes in
    let file = try RGraphChecksumRepair.repaired(bytes).withUnsafeBytes { buffer throws(RGraphError) in
        try RGraphReader.read(bytes: buffer, name: "fuzz.rgraph")
    }
    let model = try Model(graph: file.graph)
    guard let shapes = smallInputShapes(file.graph) else { return }
    _ = try Session(model: model, threads: 1).plan(for: shapes)
})
