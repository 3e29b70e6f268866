import Format

/// How far from an output pixel the model's result depends on the input image, derived
/// from the graph where every op between image and output is local: convolutions, pooling,
/// element-wise ops, channel concatenation and splitting, padding and pixel (un)shuffles.
/// Anything that mixes all positions (attention, normalisation over the image, resize, a
/// reshape) makes it underivable (nil): such a model gets `Restorer.defaultOverlap`.
///
/// Each value that depends on the image carries its reach (input pixels from the centre
/// to the edge of its window, rounded up) and its stride (input pixels per element).
/// A k×k convolution with dilation d adds ⌈(k − 1)·d / 2⌉ elements of the reach at its
/// input's stride; stride s multiplies the stride; a transposed convolution and
/// depth-to-space divide it.
public enum ReceptiveField {
    /// The reach of `output` from `input` in input pixels, or nil when not derivable.
    public static func radius(of graph: Graph, from input: String, to output: String) -> Int? {
        var reach: [String: (radius: Double, stride: Double)] = [input: (0, 1)]
        for node in graph.nodes {
            // The image's size, not its pixels: shape arithmetic reaches no pixel.
            if case .shape = node.operation { continue }
            let reached = node.inputs.compactMap { reach[$0] }
            guard !reached.isEmpty else { continue }
            let radius = reached.map(\.radius).max() ?? 0
            let stride = reached[0].stride
            guard reached.allSatisfy({ $0.stride == stride }) else { return nil }
            guard let result = step(node, graph: graph, radius: radius, stride: stride,
                                    imageData: reach[node.inputs.first ?? ""] != nil) else { return nil }
            for name in node.outputs { reach[name] = result }
        }
        return reach[output].map { Int($0.radius.rounded(.up)) }
    }

    /// The reach of a node's outputs from its inputs' `radius` and `stride`, nil when the
    /// op is not local or its window cannot be read.
    private static func step(_ node: Node, graph: Graph, radius: Double, stride: Double,
                             imageData: Bool) -> (radius: Double, stride: Double)? {
        func window(_ kernel: [Int], _ attributes: SlidingWindow) -> Double? {
            guard kernel.count == 2 else { return nil }
            let extent = zip(kernel, attributes.dilations).map { Double(($0 - 1) * $1) / 2 }.max() ?? 0
            return extent.rounded(.up)
        }
        func weightKernel() -> [Int]? {
            guard node.inputs.count > 1, let weight = graph.constants[node.inputs[1]], weight.shape.count == 4 else { return nil }
            return Array(weight.shape[2...])
        }
        switch node.operation {
        case .conv(let attributes):
            // The image must come in as data (input 0) or the residual, never as the weight.
            guard node.inputs.count < 2 || graph.constants[node.inputs[1]] != nil,
                  let kernel = weightKernel(), let extent = window(kernel, attributes.window),
                  attributes.window.strides.count == 2, attributes.window.strides[0] == attributes.window.strides[1] else { return nil }
            return (radius + extent * stride, stride * Double(attributes.window.strides[0]))
        case .convTranspose(let attributes):
            guard let kernel = weightKernel(), let extent = window(kernel, attributes.window),
                  attributes.window.strides.count == 2, attributes.window.strides[0] == attributes.window.strides[1] else { return nil }
            let finer = stride / Double(attributes.window.strides[0])
            return (radius + extent * finer, finer)
        case .averagePool(let attributes), .maxPool(let attributes):
            guard let extent = window(attributes.kernelShape, attributes.window),
                  attributes.window.strides[0] == attributes.window.strides[1] else { return nil }
            return (radius + extent * stride, stride * Double(attributes.window.strides[0]))
        case .depthToSpace(let attributes):
            return (radius, stride / Double(attributes.blockSize))
        case .spaceToDepth(let attributes):
            return (radius + Double(attributes.blockSize - 1) * stride, stride * Double(attributes.blockSize))
        case .concat(let attributes):
            return attributes.axis == 1 ? (radius, stride) : nil
        case .split(let attributes):
            return attributes.axis == 1 ? (radius, stride) : nil
        case .slice:
            // Crops keep positions' reach; steps (input 4) other than 1 would change the stride.
            guard node.inputs.count < 5 || graph.constants[node.inputs[4]]?.intValues().allSatisfy({ $0 == 1 }) == true
            else { return nil }
            return imageData ? (radius, stride) : nil
        case .unary, .binary, .where, .cast, .pad:
            // Element-wise, or (pad) the same positions shifted: no wider reach. A binary op
            // with a constant or a broadcast [C] or [1, C, 1, 1] operand stays local.
            return imageData || node.inputs.count > 1 ? (radius, stride) : nil
        default:
            return nil
        }
    }
}
