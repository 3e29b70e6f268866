import Format
import Runtime

/// How `convert --head rgb` makes a classifier that emits N ≠ 3 classes emit 3 channels.
/// There is no default: a head that silently started from random or arbitrary weights
/// would restore nothing, so the choice is the user's and is written on the command line.
public enum HeadInitialisation: String, Sendable, CaseIterable {
    /// Keep the classifier's first three output channels (weight and bias rows 0, 1, 2).
    case first3
    /// A zero classifier: the network outputs 0, so with `restore.residual` the model
    /// starts as the identity, the documented starting point for fine-tuning.
    case zero
}

/// `convert --head rgb` (docs/design.md §4): turns a dense-prediction network into a
/// three-channel restorer. The classifier (the conv producing the image output, possibly
/// through a resize) is made to emit 3 channels when it does not already, and an output
/// smaller than the input (a 1/4-resolution head exported without its upsampling) gets a
/// bilinear resize to the input's size × `restore.scale`.
public enum RGBHead {
    /// What the surgery changed, for `convert --verbose`.
    public struct Outcome: Equatable, CustomStringConvertible {
        /// Channels the image output had before (3 when the checkpoint's head is kept).
        public var channels: Int
        /// The classifier conv whose weights were replaced, when C ≠ 3.
        public var replacedClassifier: String?
        /// The resize node appended to bring the output to full size.
        public var appendedResize: String?
        /// A Mask2Former's mask features the head reads (`channels` is then theirs, or the
        /// number of mask queries when `maskQueries` is set).
        public var maskFeatures: String?
        /// The 3 mask queries whose logits a Mask2Former's head keeps.
        public var maskQueries: [Int]?
        /// Outputs the image output replaced (a Mask2Former's class and mask logits).
        public var droppedOutputs: [String] = []

        public var description: String {
            var head: String
            if let maskQueries {
                head = "mask queries \(maskQueries.map(String.init).joined(separator: ", ")) of \(channels)"
            } else if let maskFeatures {
                head = "zero 1×1 conv '\(replacedClassifier ?? "")' on the mask features '\(maskFeatures)', \(channels) → 3 channels"
            } else {
                head = replacedClassifier.map { "classifier '\($0)' \(channels) → 3 channels" } ?? "the checkpoint's 3-channel head kept"
            }
            head += appendedResize.map { "; bilinear upsampling '\($0)' to full size appended" } ?? ""
            if !droppedOutputs.isEmpty { head += "; outputs \(droppedOutputs.joined(separator: ", ")) dropped" }
            return "rgb head: " + head
        }
    }

    /// Attaches the head to `graph` in place, for the image input and output, `scale` and
    /// `multiple` (which picks the sizes shapes are sampled at) of `contract`. A Mask2Former
    /// gets its head on the mask features (`MaskFeaturesHead`); `queries` picks 3 of its mask
    /// queries instead and is refused for any other model.
    static func attach(to graph: inout Graph, contract: RestorationContract.Settings,
                       initialisation: HeadInitialisation?, queries: [Int]? = nil) throws -> Outcome {
        let scale = contract.resolvedScale, multiple = contract.resolvedMultiple
        guard let inputName = contract.input ?? graph.inputs.first?.name else { throw RGBHeadError.noImageOutput }
        let samples = Simplifier.sampleShapes(graph, multiple: multiple)
        let inference = try ShapeInference(graph: graph)
        let valueShapes = try samples.map { try inference.inferShapes($0, multiple: multiple).valueShapes }
        if let match = try MaskFeaturesHead.find(graph, valueShapes: valueShapes, input: inputName) {
            let outcome = try MaskFeaturesHead.attach(to: &graph, match: match, input: inputName, scale: scale,
                                                      initialisation: initialisation, queries: queries)
            let output = graph.outputs[0].name
            for sizes in try spatialSizes(graph, samples: samples, multiple: multiple, input: inputName, output: output)
            where sizes.output[1] != 3 || sizes.output[2] != sizes.input[2] * scale || sizes.output[3] != sizes.input[3] * scale {
                throw RGBHeadError.outputSize(output: output, input: sizes.input, found: sizes.output, scale: scale)
            }
            graph.outputs[0].shape = outputShape(graph, input: inputName, scale: scale)
            return outcome
        }
        if MaskFeaturesHead.looksLikeMask2Former(graph) { throw RGBHeadError.noMaskFeatures }
        if queries != nil { throw RGBHeadError.queriesWithoutMaskFeatures }
        guard let outputName = contract.output ?? graph.outputs.first?.name,
              let outputIndex = graph.outputs.firstIndex(where: { $0.name == outputName }) else {
            throw RGBHeadError.noImageOutput
        }
        let before = try spatialSizes(graph, samples: samples, multiple: multiple, input: inputName, output: outputName)
        let channels = before[0].output[1]
        var outcome = Outcome(channels: channels)
        if channels != 3 {
            let classifier = try classifierConv(graph, output: outputName)
            guard let initialisation else {
                throw RGBHeadError.classesNeedInitialisation(output: outputName, classifier: graph.nodes[classifier].name,
                                                            channels: channels)
            }
            try replaceClassifier(&graph, node: classifier, with: initialisation)
            outcome.replacedClassifier = graph.nodes[classifier].name
        }
        let fullSize = before.allSatisfy { $0.output[2] == $0.input[2] * scale && $0.output[3] == $0.input[3] * scale }
        if !fullSize {
            for sizes in before where sizes.output[2] > sizes.input[2] * scale || sizes.output[3] > sizes.input[3] * scale {
                throw RGBHeadError.outputSize(output: outputName, input: sizes.input, found: sizes.output, scale: scale)
            }
            let lowResolution = outputName + ".low_resolution"
            for index in graph.nodes.indices {
                graph.nodes[index].outputs = graph.nodes[index].outputs.map { $0 == outputName ? lowResolution : $0 }
                graph.nodes[index].inputs = graph.nodes[index].inputs.map { $0 == outputName ? lowResolution : $0 }
            }
            outcome.appendedResize = appendUpsampling(&graph, from: lowResolution, to: outputName, input: inputName, scale: scale)
        }
        for sizes in try spatialSizes(graph, samples: samples, multiple: multiple, input: inputName, output: outputName)
        where sizes.output[1] != 3 || sizes.output[2] != sizes.input[2] * scale || sizes.output[3] != sizes.input[3] * scale {
            throw RGBHeadError.outputSize(output: outputName, input: sizes.input, found: sizes.output, scale: scale)
        }
        graph.outputs[outputIndex].shape = outputShape(graph, input: inputName, scale: scale)
        return outcome
    }

    /// The image input's and output's inferred shapes at each sample size; the output must be
    /// [N, C, H', W'].
    private static func spatialSizes(_ graph: Graph, samples: [[[Int]]], multiple: Int, input: String,
                                     output: String) throws -> [(input: [Int], output: [Int])] {
        let inference = try ShapeInference(graph: graph)
        return try samples.map { shapes in
            let valueShapes = try inference.inferShapes(shapes, multiple: multiple).valueShapes
            guard let inputShape = valueShapes[input], let outputShape = valueShapes[output] else {
                throw RGBHeadError.noImageOutput
            }
            guard outputShape.count == 4 else { throw RGBHeadError.notAnImage(output: output, shape: outputShape) }
            return (inputShape, outputShape)
        }
    }

    /// The conv producing `output`, directly or through one resize.
    private static func classifierConv(_ graph: Graph, output: String) throws -> Int {
        func producer(of value: String) -> Int? { graph.nodes.lastIndex { $0.outputs.contains(value) } }
        guard var index = producer(of: output) else { throw RGBHeadError.noClassifier(output: output, producer: nil) }
        if graph.nodes[index].op == .resize, let upsampled = graph.nodes[index].input(0), let before = producer(of: upsampled) {
            index = before
        }
        let conv = graph.nodes[index]
        guard conv.op == .conv else {
            throw RGBHeadError.noClassifier(output: output, producer: "\(conv.name) (\(conv.op))")
        }
        // Its class logits must reach nothing but the image output: another reader (an
        // auxiliary output, an argmax) would silently receive 3 channels instead of N.
        let readers = graph.nodes.filter { $0.inputs.contains(conv.outputs[0]) && !$0.outputs.contains(output) }
        let otherOutputs = graph.outputs.filter { $0.name == conv.outputs[0] && $0.name != output }
        if let other = readers.first?.name ?? otherOutputs.first.map({ "graph output \($0.name)" }) {
            throw RGBHeadError.unsupportedClassifier(node: conv.name, "has its logits also read by \(other)")
        }
        return index
    }

    /// Replaces the classifier's weight [M, C, kH, kW] and bias [M] by 3-channel ones.
    private static func replaceClassifier(_ graph: inout Graph, node index: Int, with initialisation: HeadInitialisation) throws {
        let node = graph.nodes[index]
        guard case .conv(let conv) = node.operation, conv.group == 1, node.input(3) == nil,
              let weightName = node.input(1), let weight = graph.constants[weightName], weight.shape.count == 4 else {
            throw RGBHeadError.unsupportedClassifier(node: node.name,
                                                     "needs a constant 4-D weight, group 1 and no residual input")
        }
        let rowLength = weight.elementCount / weight.shape[0]
        let newWeight: [Float] = switch initialisation {
        case .first3: Array(weight.floatValues().prefix(3 * rowLength))
        case .zero: Array(repeating: 0, count: 3 * rowLength)
        }
        // New names: the old constants may be read elsewhere and stay valid for those readers.
        let weightConstant = ConstantTensor(name: node.name + ".rgb.weight", shape: [3] + weight.shape.dropFirst(),
                                            floats: newWeight)
        graph.setConstant(weightConstant)
        graph.nodes[index].inputs[1] = weightConstant.name
        if let biasName = node.input(2) {
            guard let bias = graph.constants[biasName], bias.elementCount == weight.shape[0] else {
                throw RGBHeadError.unsupportedClassifier(node: node.name, "needs a constant bias of \(weight.shape[0]) values")
            }
            let newBias: [Float] = switch initialisation {
            case .first3: Array(bias.floatValues().prefix(3))
            case .zero: [0, 0, 0]
            }
            let biasConstant = ConstantTensor(name: node.name + ".rgb.bias", shape: [3], floats: newBias)
            graph.setConstant(biasConstant)
            graph.nodes[index].inputs[2] = biasConstant.name
        }
        graph.removeUnusedConstants()
    }

    /// Appends `resize` (bilinear, half_pixel, as PyTorch's `interpolate(align_corners=False)`)
    /// of `lowResolution` to the input's H and W × `scale` as `output`, the size computed from
    /// the input's shape so that any image size plans. Returns the resize's name.
    static func appendUpsampling(_ graph: inout Graph, from lowResolution: String, to output: String, input: String,
                                 scale: Int) -> String {
        let prefix = "rgb_head"
        var sizes = prefix + ".input_size"
        graph.nodes.append(Node(name: prefix + ".input_size", .shape(ShapeAttributes(start: 2, end: 4)),
                                inputs: [input], outputs: [sizes]))
        if scale != 1 {
            let factor = ConstantTensor(name: prefix + ".scale", shape: [1], ints: [Int64(scale)])
            graph.setConstant(factor)
            graph.nodes.append(Node(name: prefix + ".output_size", .binary(.mul), inputs: [sizes, factor.name],
                                    outputs: [prefix + ".output_size"]))
            sizes = prefix + ".output_size"
        }
        let resize = prefix + ".upsample"
        var bilinear = ResizeAttributes()
        bilinear.mode = .linear
        bilinear.coordinateTransformationMode = .halfPixel
        graph.nodes.append(Node(name: resize, .resize(bilinear), inputs: [lowResolution, "", sizes], outputs: [output]))
        return resize
    }

    /// [N, 3, H·s, W·s] in the input's dims: symbols stay symbols when s is 1.
    private static func outputShape(_ graph: Graph, input: String, scale: Int) -> [Dim] {
        guard let info = graph.inputs.first(where: { $0.name == input }), info.shape.count == 4 else {
            return [.symbol("N"), .fixed(3), .symbol("H"), .symbol("W")]
        }
        func scaled(_ dim: Dim) -> Dim {
            switch dim {
            case .fixed(let size): .fixed(size * scale)
            case .symbol(let name): scale == 1 ? dim : .symbol("\(name)*\(scale)")
            }
        }
        return [info.shape[0], .fixed(3), scaled(info.shape[2]), scaled(info.shape[3])]
    }
}

/// Why `convert --head rgb` refused a model.
public enum RGBHeadError: Error, CustomStringConvertible, Equatable {
    case noImageOutput
    case notAnImage(output: String, shape: [Int])
    case noClassifier(output: String, producer: String?)
    case classesNeedInitialisation(output: String, classifier: String, channels: Int)
    case unsupportedClassifier(node: String, String)
    case outputSize(output: String, input: [Int], found: [Int], scale: Int)
    case noMaskFeatures
    case ambiguousMaskFeatures([String])
    case maskHeadChoice(features: String, channels: Int, queries: Int, conflicting: Bool)
    case maskQueries([Int], available: Int)
    case queriesWithoutMaskFeatures

    public var description: String {
        switch self {
        case .noImageOutput:
            "--head rgb: the model has no image input and output (restore.input/restore.output or its first ones)"
        case .notAnImage(let output, let shape):
            "--head rgb: output '\(output)' has shape \(shape), not [N, C, H, W]"
        case .noClassifier(let output, let producer):
            "--head rgb: output '\(output)' is not produced by a conv (or a resize of one) but by \(producer ?? "no node"), "
                + "so there is no classifier to give 3 channels"
        case .classesNeedInitialisation(let output, let classifier, let channels):
            "--head rgb: output '\(output)' has \(channels) channels from classifier conv '\(classifier)', not 3. "
                + "Choose how to make it emit RGB: --head-init first3 (keep its first three channels) or "
                + "--head-init zero (a zero classifier; with --residual the model starts as the identity, for fine-tuning)"
        case .unsupportedClassifier(let node, let message):
            "--head rgb: classifier conv '\(node)' \(message)"
        case .outputSize(let output, let input, let found, let scale):
            "--head rgb: output '\(output)' has shape \(found) for input \(input); expected [N, 3, H·\(scale), W·\(scale)] "
                + "(restore.scale \(scale))"
        case .noMaskFeatures:
            "--head rgb: this looks like a Mask2Former (an output masks_queries_logits or a mask_projection node) but its "
                + "mask features were not found: expected a graph output [B, Q, H/4, W/4] computed as "
                + "einsum('bqc,bchw->bqhw') of mask embeddings [B, Q, C] and 1/4-resolution mask features [B, C, H/4, W/4]"
        case .ambiguousMaskFeatures(let values):
            "--head rgb: the mask outputs read different mask features (\(values.joined(separator: ", "))); cannot choose one"
        case .maskHeadChoice(let features, let channels, let queries, let conflicting):
            (conflicting ? "--head rgb: --head-init and --head-queries exclude each other. " : "")
                + "--head rgb on a Mask2Former (mask features '\(features)', \(channels) channels, \(queries) queries): choose "
                + "--head-init zero (a zero 1×1 conv on the mask features; with --residual the model starts as the identity) "
                + "or --head-queries A,B,C (three of the \(queries) mask queries' logits; --head-init first3 is 0,1,2)"
        case .maskQueries(let queries, let available):
            "--head-queries takes three query indices in 0..<\(available), found \(queries.map(String.init).joined(separator: ","))"
        case .queriesWithoutMaskFeatures:
            "--head-queries is for a Mask2Former's mask queries; this model has no mask features"
        }
    }
}
