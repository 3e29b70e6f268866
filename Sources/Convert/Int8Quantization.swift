import Format
import Runtime

/// `convert --weights int8`: the weights Restore's int8 kernels compute from
/// (`Graph.int8KernelWeights`: linear and ungrouped convolution weights) are stored int8
/// with one scale per output channel (schemas/rgraph.md §4, `int8-symmetric`, axis 0).
/// Which stay f32, and why, is reported (`convert -v`):
///
/// - the first and last weighted layers of a restoration network carry the image itself:
///   the first reads the pixels (whose fine differences a denoiser must keep) and the last
///   writes the correction or the pixels; their error shows directly in the output, and
///   they are small (3 channels on one side);
/// - weights of at most `ShapeInference.smallConstantLimit` values, which the runtime reads
///   as values while planning and computes from in f32 (they cost little to store);
/// - constants other ops read (depthwise convolutions, attention biases, embeddings);
/// - weights that int8 represents poorly: when rounding to int8 moves them by more than
///   `maximumRelativeError` of their norm (‖W − Ŵ‖ / ‖W‖), a few large values set each
///   channel's scale and the many small ones get few levels. The demo DnCNN's second layer
///   (1.3%, the others 0.6–0.75%) alone cost 0.12 dB of its 0.23 dB int8 loss (docs/int8.md).
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
        var bytesBefore = 0
        var bytesAfter = 0
        var kept: [Kept] = []

        var description: String {
            let mib = { (bytes: Int) in String(format: "%.2f MiB", Double(bytes) / 1048576) }
            var lines = ["int8 weights: \(quantized) quantized per output channel (\(mib(bytesBefore)) f32 → "
                         + "\(mib(bytesAfter)) with scales); \(kept.count) large weight\(kept.count == 1 ? "" : "s") kept f32"]
            lines += kept.map { "  kept f32: \($0)" }
            return lines.joined(separator: "\n")
        }
    }

    /// Quantizes `graph`'s int8-kernel weights in place.
    static func quantize(_ graph: inout Graph) -> Outcome {
        var outcome = Outcome()
        let readers = graph.int8KernelWeights
        let (first, last) = imageLayers(graph)
        for constant in graph.orderedConstants where constant.dtype == .float32 && constant.layout == .elements
            && constant.elementCount >= 1024 {
            let name = constant.name
            guard let consumers = readers[name] else {
                outcome.kept.append(Kept(name: name, reason: "not the weight of a linear or ungrouped convolution"))
                continue
            }
            if let node = consumers.first(where: first.contains) {
                outcome.kept.append(Kept(name: name, reason: "first layer ('\(node)'): reads the image"))
                continue
            }
            if let node = consumers.first(where: last.contains) {
                outcome.kept.append(Kept(name: name, reason: "last layer ('\(node)'): writes the output"))
                continue
            }
            guard constant.elementCount > ShapeInference.smallConstantLimit else {
                outcome.kept.append(Kept(name: name, reason: "\(constant.elementCount) values: small, computed in f32"))
                continue
            }
            let scalesName = name + ".scales"
            guard graph.constants[scalesName] == nil, constant.shape.count >= 2 else {
                outcome.kept.append(Kept(name: name, reason: "no free name for its scales ('\(scalesName)')"))
                continue
            }
            let (weights, scales) = Int8Scales.quantize(name: name, shape: constant.shape, values: constant.float32Elements.map { $0 },
                                                        axis: 0, scalesName: scalesName)
            let error = relativeError(constant.float32Elements, weights, scales: scales.float32Elements)
            guard error <= maximumRelativeError else {
                outcome.kept.append(Kept(name: name, reason: String(format: "int8 would move it by %.2f%% of its norm "
                                                                    + "(more than %.0f%%)", 100 * error, 100 * maximumRelativeError)))
                continue
            }
            graph.setConstant(weights)
            graph.setConstant(scales)
            outcome.quantized += 1
            outcome.bytesBefore += constant.byteCount
            outcome.bytesAfter += weights.byteCount + scales.byteCount
        }
        return outcome
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
