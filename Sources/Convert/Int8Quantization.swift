import Format
import Runtime

/// `convert --weights int8`: the weights Restore's int8 kernels compute from
/// (`Graph.int8KernelWeights`: linear and ungrouped convolution weights) are stored int8
/// with one scale per output channel (schemas/rgraph.md §4, `int8-symmetric`, axis 0), and
/// attention bias tables (`attentionBiasTables`: Swin's relative-position biases) with one
/// scale per tensor, dequantized when a model loads. Which stay f32, and why, is reported
/// (`convert -v`):
///
/// - the first and last weighted layers of a restoration network carry the image itself:
///   the first reads the pixels (whose fine differences a denoiser must keep) and the last
///   writes the correction or the pixels; their error shows directly in the output, and
///   they are small (3 channels on one side);
/// - constants of fewer than 1024 values (biases, norm scales): they cost nothing to store;
/// - constants other ops read (depthwise convolutions, norms, embeddings);
/// - weights that int8 represents poorly: when rounding to int8 moves them by more than
///   `maximumRelativeError` of their norm (‖W − Ŵ‖ / ‖W‖), a few large values set each
///   channel's scale and the many small ones get few levels. The demo DnCNN's second layer
///   (1.3%, the others 0.6–0.75%) alone cost 0.12 dB of its 0.23 dB int8 loss (docs/int8.md).
///
/// Small int8 weights (up to `WeightStore.largestDequantizedInt8Weight` values) shrink the
/// file only: the runtime computes them in f32.
enum Int8Quantization {
    /// The largest relative weight error (‖W − Ŵ‖ / ‖W‖) a quantized weight may have.
    static let maximumRelativeError: Float = 0.01

    /// One weight kept f32, and why.
    struct Kept: CustomStringConvertible {
        let name: String
        let reason: String
        var description: String { "\(name): \(reason)" }
    }

    /// What quantization did.
    struct Outcome: CustomStringConvertible {
        var quantized = 0
        var biasTables = 0
        var bytesBefore = 0
        var bytesAfter = 0
        var kept: [Kept] = []

        var description: String {
            let mib = { (bytes: Int) in String(format: "%.2f MiB", Double(bytes) / 1048576) }
            var lines = ["int8 weights: \(quantized) quantized per output channel, \(biasTables) attention bias "
                         + "table\(biasTables == 1 ? "" : "s") per tensor (\(mib(bytesBefore)) f32 → \(mib(bytesAfter)) "
                         + "with scales); \(kept.count) constant\(kept.count == 1 ? "" : "s") of 1024 values or more kept f32"]
            lines += kept.map { "  kept f32: \($0)" }
            return lines.joined(separator: "\n")
        }
    }

    /// Quantizes `graph`'s int8-kernel weights and attention bias tables in place.
    static func quantize(_ graph: inout Graph) -> Outcome {
        var outcome = Outcome()
        let readers = graph.int8KernelWeights
        let biasTables = attentionBiasTables(graph)
        let (first, last) = imageLayers(graph)
        for constant in graph.orderedConstants where constant.dtype == .float32 && constant.layout == .elements
            && constant.elementCount >= 1024 {
            let name = constant.name
            let axis: Int?
            if let consumers = readers[name] {
                if let node = consumers.first(where: first.contains) {
                    outcome.kept.append(Kept(name: name, reason: "first layer ('\(node)'): reads the image"))
                    continue
                }
                if let node = consumers.first(where: last.contains) {
                    outcome.kept.append(Kept(name: name, reason: "last layer ('\(node)'): writes the output"))
                    continue
                }
                guard constant.shape.count >= 2 else {
                    outcome.kept.append(Kept(name: name, reason: "a weight of shape \(constant.shape) has no output-channel axis"))
                    continue
                }
                axis = 0
            } else if biasTables.contains(name) {
                // The heads axis of a bias table lies wherever the exporter's layout put it;
                // one scale for the table rounds the demo Swin's by 0.6–0.9% of their norm.
                axis = nil
            } else {
                outcome.kept.append(Kept(name: name, reason: "not the weight of a linear or ungrouped convolution, "
                                         + "nor an attention bias table"))
                continue
            }
            let scalesName = name + ".scales"
            guard graph.constants[scalesName] == nil else {
                outcome.kept.append(Kept(name: name, reason: "no free name for its scales ('\(scalesName)')"))
                continue
            }
            let (weights, scales) = Int8Scales.quantize(name: name, shape: constant.shape, values: constant.float32Elements.map { $0 },
                                                        axis: axis, scalesName: scalesName)
            let error = relativeError(constant.float32Elements, weights, scales: scales.float32Elements)
            guard error <= maximumRelativeError else {
                outcome.kept.append(Kept(name: name, reason: String(format: "int8 would move it by %.2f%% of its norm "
                                                                    + "(more than %.0f%%)", 100 * error, 100 * maximumRelativeError)))
                continue
            }
            graph.setConstant(weights)
            graph.setConstant(scales)
            if axis == nil { outcome.biasTables += 1 } else { outcome.quantized += 1 }
            outcome.bytesBefore += constant.byteCount
            outcome.bytesAfter += weights.byteCount + scales.byteCount
        }
        return outcome
    }

    /// Constants whose values reach nothing but the bias input of an attention (`attention`
    /// input 3, `windowAttention` input 1) through layout ops and additions (of a shift
    /// mask, say): relative-position bias tables, which exporters fold into constants of
    /// [window², window², heads] values. Only softmax logits move by their rounding.
    static func attentionBiasTables(_ graph: Graph) -> Set<String> {
        var uses: [String: [(node: Node, slot: Int)]] = [:]
        for node in graph.nodes {
            for (slot, input) in node.inputs.enumerated() where !input.isEmpty { uses[input, default: []].append((node, slot)) }
        }
        let outputs = Set(graph.outputs.map(\.name))
        func reachesOnlyBiases(_ value: String) -> Bool {
            guard !outputs.contains(value), let readers = uses[value], !readers.isEmpty else { return false }
            return readers.allSatisfy { node, slot in
                switch node.operation {
                case .attention: slot == 3
                case .windowAttention: slot == 1
                case .reshape, .transpose, .unsqueeze, .squeeze, .flatten, .expand:
                    slot == 0 && node.outputs.filter { !$0.isEmpty }.allSatisfy(reachesOnlyBiases)
                case .binary(.add): node.outputs.filter { !$0.isEmpty }.allSatisfy(reachesOnlyBiases)
                default: false
                }
            }
        }
        return Set(graph.orderedConstants.filter { $0.dtype.isFloatingPoint && reachesOnlyBiases($0.name) }.map(\.name))
    }

    /// ‖W − Ŵ‖ / ‖W‖ for f32 `values` and their int8 `weights` with per-channel `scales`.
    static func relativeError(_ values: UnsafeBufferPointer<Float>, _ weights: ConstantTensor,
                              scales: UnsafeBufferPointer<Float>) -> Float {
        let q = weights.bytes.bindMemory(to: Int8.self)
        let inner = values.count / Swift.max(scales.count, 1)
        var difference = 0.0, norm = 0.0
        for index in values.indices {
            let value = Double(values[index])
            let rounded = Double(scales[index / Swift.max(inner, 1)]) * Double(q[index])
            difference += (value - rounded) * (value - rounded)
            norm += value * value
        }
        return norm > 0 ? Float((difference / norm).squareRoot()) : 0
    }

    /// The weighted layers (linear, conv, convTranspose) nearest the image input — no other
    /// weighted layer between it and them — and nearest the image output: those named by
    /// `restore.input` and `restore.output`, else the first input and output (a model's
    /// other outputs, such as a backbone's feature maps, would otherwise make every block
    /// whose result joins the residual stream a "last" layer).
    static func imageLayers(_ graph: Graph) -> (first: Set<String>, last: Set<String>) {
        let input = graph.metadata["restore.input"] ?? graph.inputs.first?.name
        let output = graph.metadata["restore.output"] ?? graph.outputs.first?.name
        func weighted(_ node: Node) -> Bool {
            switch node.op {
            case .linear, .conv, .convTranspose: true
            default: false
            }
        }
        // Values computed from an input through a weighted layer.
        var afterWeights = Set<String>()
        var reached = Set([input].compactMap { $0 })
        var first = Set<String>()
        for node in graph.nodes {
            let fromInput = node.inputs.contains(where: reached.contains)
            let pastWeights = node.inputs.contains(where: afterWeights.contains)
            if fromInput { reached.formUnion(node.outputs) }
            if weighted(node) && fromInput && !pastWeights { first.insert(node.name) }
            if weighted(node) || pastWeights { afterWeights.formUnion(node.outputs) }
        }
        // Values that reach an output through no weighted layer.
        var beforeOutput = Set([output].compactMap { $0 })
        var last = Set<String>()
        for node in graph.nodes.reversed() where node.outputs.contains(where: beforeOutput.contains) {
            if weighted(node) { last.insert(node.name) } else { beforeOutput.formUnion(node.inputs) }
        }
        return (first, last)
    }
}
