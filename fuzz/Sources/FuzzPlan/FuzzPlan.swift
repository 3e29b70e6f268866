import Format
import FuzzSupport
import Runtime

/// Every symbolic dimension of a graph input is bound to this size: small enough that
/// planning (which folds constants with the reference kernels) stays fast.
private let symbolSize = 8
/// Inputs whose fixed dimensions ask for more elements than this are skipped: a large
/// input is the caller's choice, and the planner is not meant to refuse it.
private let inputElementLimit = 1 << 20

/// One `.rgraph` image (checksums repaired) loaded into a `Model` and planned for small
/// inputs: a graph that reads fine can still be hostile to the op parsers, shape rules
/// and constant folding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPlan(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = RGraphChecksumRepair.repaired(fuzzInput(data, size))
    guard let file = bytes.withUnsafeBytes({ try? RGraphReader.read(bytes: $0, name: "fuzz.rgraph") }),
          let model = try? Model(graph: file.graph) else { return 0 }
    let shapes = file.graph.inputs.map { input in
        input.shape.map { dim -> Int in
            switch dim {
            case .fixed(let size): size
            case .symbol: symbolSize
            }
        }
    }
    for shape in shapes {
        var elements = 1
        for size in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: size)
            guard !overflow, product <= inputElementLimit else { return 0 }
            elements = product
        }
    }
    _ = try? Session(model: model, threads: 1).plan(for: shapes)
    return 0
}
