import Format

/// BatchNormalization, InstanceNormalization, LayerNormalization and Softmax.
enum LowerNormalization {
    /// Inference-mode BatchNormalization becomes a per-channel affine map,
    /// Y = X·s + t with s = scale/√(var+ε) and t = B − mean·s, as `binary mul` then
    /// `binary add` with [C,1,…] constants; a later pass folds both into the convolution.
    static func batchNormalization(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        if try node.int("training_mode", default: 0) != 0 {
            throw LoweringFailure.unsupported("training_mode=1")
        }
        try context.requireUnusedOutputs(node, from: 1, what: "running statistics")
        var parameters: [[Float]] = []
        for (index, role) in ["scale", "B", "input_mean", "input_var"].enumerated() {
            guard let tensor = context.builder.constant(try node.requiredInput(index + 1)) else {
                throw LoweringFailure.unsupported("input '\(role)' must be a constant")
            }
            parameters.append(tensor.floatValues())
        }
        let channels = parameters[0].count
        guard parameters.allSatisfy({ $0.count == channels }) else {
            throw LoweringFailure.invalid("scale, B, mean and var differ in length")
        }
        let epsilon = try node.float("epsilon", default: 1e-5)
        let scale = (0..<channels).map { parameters[0][$0] / (parameters[3][$0] + epsilon).squareRoot() }
        let shift = (0..<channels).map { parameters[1][$0] - parameters[2][$0] * scale[$0] }
        // Channels are axis 1: the constants get one trailing 1 per spatial axis. Without a
        // stated rank the input is taken as an NCHW image.
        let rank = context.builder.rank(of: input) ?? 4
        guard rank >= 2 else { throw LoweringFailure.invalid("input of rank \(rank) has no channel axis") }
        let shape = [channels] + [Int](repeating: 1, count: rank - 2)
        let scaleName = context.builder.addConstant("\(node.name)/scale", shape: shape, floats: scale)
        let shiftName = context.builder.addConstant("\(node.name)/shift", shape: shape, floats: shift)
        let scaled = context.builder.binary(.mul, input, scaleName, name: "\(node.name)/mul")
        context.builder.emit(node.name, .binary(.add), inputs: [scaled, shiftName], outputs: [try node.output()])
    }

    static func instanceNormalization(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let attributes = InstanceNormAttributes(epsilon: try node.float("epsilon", default: 1e-5))
        context.builder.emit(node.name, .instanceNorm(attributes),
                             inputs: [try node.requiredInput(0), try node.requiredInput(1), try node.requiredInput(2)],
                             outputs: [try node.output()])
    }

    static func layerNormalization(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        if node.outputs.dropFirst().contains(where: context.isConsumed) {
            return try layerNormalizationWithStatistics(&context, node)
        }
        let attributes = LayerNormAttributes(axis: try node.int("axis", default: -1), epsilon: try node.float("epsilon", default: 1e-5))
        context.builder.emit(node.name, .layerNorm(attributes),
                             inputs: [try node.requiredInput(0), node.input(1) ?? "", node.input(2) ?? ""],
                             outputs: [try node.output()])
    }

    /// Softmax from opset 13 normalises along `axis` (default -1). Before 13 it flattens
    /// the input to 2-D at `axis` (default 1) and normalises whole rows; that equals
    /// Restore's softmax only when `axis` is the last axis, otherwise it is lowered as
    /// flatten → softmax(-1) → reshape back to the input's shape.
    static func softmax(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        let output = try node.output()
        if context.opset >= 13 {
            context.builder.emit(node.name, .softmax(SoftmaxAttributes(axis: try node.int("axis", default: -1))),
                                 inputs: [input], outputs: [output])
            return
        }
        let axis = try node.int("axis", default: 1)
        let rank = context.builder.rank(of: input)
        let lastAxis = Op.softmax(SoftmaxAttributes(axis: -1))
        if axis == -1 || (rank != nil && axis == (rank ?? 0) - 1) {
            context.builder.emit(node.name, lastAxis, inputs: [input], outputs: [output])
            return
        }
        let flat = context.builder.emitValue(named: "\(node.name)/flatten", .flatten(FlattenAttributes(axis: axis)), inputs: [input])
        let normalized = context.builder.emitValue(named: "\(node.name)/rows", lastAxis, inputs: [flat])
        let shape = context.builder.emitValue(named: "\(node.name)/shape", .shape(ShapeAttributes()), inputs: [input])
        context.builder.emit(node.name, .reshape(ReshapeAttributes()), inputs: [normalized, shape], outputs: [output])
    }
}

extension LowerNormalization {
    /// Hardmax: 1 at the first largest element along `axis`, 0 elsewhere, with Softmax's
    /// axis semantics (before 13: rows of the input flattened at `axis`, default 1). The
    /// first maximum is the smallest index i with X[i] = max: where(X = max, i, n) reduced
    /// by min, then compared with i. Indices are exact in fp32 (n < 2²⁴).
    static func hardmax(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        let output = try node.output()
        guard let shape = context.builder.shape(of: input) else {
            throw LoweringFailure.unsupported("an input of unknown shape (the size along 'axis' makes the index constant)")
        }
        let rank = shape.count
        let attribute = try node.int("axis", default: node.version >= 13 ? -1 : 1)
        guard (-rank..<rank).contains(attribute) else {
            throw LoweringFailure.invalid("axis \(attribute) is out of range for rank \(rank)")
        }
        let axis = attribute < 0 ? attribute + rank : attribute
        let flattens = node.version < 13 && axis != rank - 1
        // The axis the maximum is taken along, its size and the index's trailing unit axes.
        let rowAxes = flattens ? Array(shape[axis...]) : [shape[axis]]
        guard case let sizes = rowAxes.compactMap(\.fixedValue), sizes.count == rowAxes.count else {
            throw LoweringFailure.unsupported("a size along 'axis' that the file does not fix")
        }
        let count = sizes.reduce(1, *)
        let trailing = flattens ? 0 : rank - 1 - axis
        let rows = flattens
            ? context.builder.emitValue(named: "\(node.name)/flatten", .flatten(FlattenAttributes(axis: axis)), inputs: [input])
            : input
        let reduceAxis = flattens ? -1 : axis
        let index = context.builder.addConstant("\(node.name)/index", shape: [count] + Array(repeating: 1, count: trailing),
                                                floats: (0..<count).map(Float.init))
        let past = context.builder.addConstant("\(node.name)/past_end", shape: [], floats: [Float(count)])
        let maximum = context.builder.emitValue(named: "\(node.name)/max",
                                                .reduce(ReduceAttributes(function: .max, axes: [reduceAxis], keepDims: true)), inputs: [rows])
        let isMaximum = context.builder.binary(.equal, rows, maximum, name: "\(node.name)/is_max")
        let indexOfMaximum = context.builder.emitValue(named: "\(node.name)/index_of_max", .where, inputs: [isMaximum, index, past])
        let first = context.builder.emitValue(named: "\(node.name)/first",
                                              .reduce(ReduceAttributes(function: .min, axes: [reduceAxis], keepDims: true)),
                                              inputs: [indexOfMaximum])
        let isFirst = context.builder.binary(.equal, index, first, name: "\(node.name)/is_first")
        guard flattens else {
            context.builder.emit(node.name, .cast(CastAttributes(to: .float32)), inputs: [isFirst], outputs: [output])
            return
        }
        let result = context.builder.emitValue(named: "\(node.name)/rows", .cast(CastAttributes(to: .float32)), inputs: [isFirst])
        let inputShape = context.builder.emitValue(named: "\(node.name)/shape", .shape(ShapeAttributes()), inputs: [input])
        context.builder.emit(node.name, .reshape(ReshapeAttributes()), inputs: [result, inputShape], outputs: [output])
    }
}

/// Normalisations written out as Restore's elementary ops (RMSNormalization is one
/// layerNorm): GroupNormalization (through instanceNorm), LayerNormalization with its statistics,
/// LpNormalization, LRN and LogSoftmax.
extension LowerNormalization {
    /// More axes than any tensor Restore plans has (ONNX sets no limit).
    private static let maximumRank = 64

    /// The normalised axes [axis, rank) as negative axes, which need no rank when `axis` is
    /// negative; a non-negative axis needs the input's rank.
    private static func trailingAxes(from axis: Int, rank: Int?) throws -> [Int] {
        // A hostile axis (found by the ONNX fuzzer: -2^31 asked for 2 GB of axes) is refused
        // against the rank, or against the most axes a tensor has when the rank is unknown.
        guard axis >= -(rank ?? maximumRank) else {
            throw LoweringFailure.invalid("axis \(axis) is out of range for rank \(rank.map(String.init) ?? "≤ \(maximumRank)")")
        }
        if axis < 0 { return Array(axis...(-1)) }
        guard let rank else { throw LoweringFailure.unsupported("axis \(axis) of an input of unknown rank") }
        guard axis < rank else { throw LoweringFailure.invalid("axis \(axis) is out of range for rank \(rank)") }
        return Array((axis - rank)...(-1))
    }

    /// RMSNormalization (23): Y = X / √(mean(X², axes [axis, rank)) + ε) · scale, one
    /// layerNorm that is not centered (the mean of squares in Double, like LayerNorm's
    /// statistics; stash_type 1, the default, asks for at least fp32).
    static func rmsNormalization(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        let axes = try trailingAxes(from: try node.int("axis", default: -1), rank: context.builder.rank(of: input))
        let attributes = LayerNormAttributes(axis: axes[0], epsilon: try node.float("epsilon", default: 1e-5), centered: false)
        context.builder.emit(node.name, .layerNorm(attributes), inputs: [input, try node.requiredInput(1)],
                             outputs: [try node.output()])
    }

    /// GroupNormalization: X [N, C, …] viewed as [N, G, C/G·…] is instance-normalised per
    /// group (unit scale, zero shift), viewed back, then scaled and shifted per channel.
    /// Version 18 gives scale and bias per group (constants, repeated to channels here);
    /// version 21 per channel.
    static func groupNormalization(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        guard let groups = try node.int("num_groups"), groups > 0 else {
            throw LoweringFailure.invalid("attribute 'num_groups' must be positive")
        }
        let epsilon = try node.float("epsilon", default: 1e-5)
        var scale = try node.requiredInput(1)
        var bias = try node.requiredInput(2)
        if node.version < 21 {
            var perChannel: [String] = []
            for (role, name) in [("scale", scale), ("bias", bias)] {
                guard let tensor = context.builder.constant(name), let channels = context.builder.shape(of: input)?[1].fixedValue,
                      channels % groups == 0 else {
                    throw LoweringFailure.unsupported("version 18's per-group \(role) must be a constant and the channel count known")
                }
                let values = tensor.floatValues()
                guard values.count == groups else { throw LoweringFailure.invalid("\(role) must hold num_groups values") }
                let repeated = (0..<channels).map { values[$0 / (channels / groups)] }
                perChannel.append(context.builder.addConstant("\(node.name)/\(role)_per_channel", shape: [channels], floats: repeated))
            }
            scale = perChannel[0]
            bias = perChannel[1]
        }
        let rank = context.builder.rank(of: input) ?? 4
        guard rank >= 3 else { throw LoweringFailure.unsupported("input of rank \(rank); needs [N, C, spatial…]") }
        let groupShape = context.builder.addConstant("\(node.name)/group_shape", shape: [3], ints: [0, groups, -1])
        let grouped = context.builder.emitValue(named: "\(node.name)/grouped", .reshape(ReshapeAttributes()), inputs: [input, groupShape])
        let ones = context.builder.addConstant("\(node.name)/ones", shape: [groups], floats: Array(repeating: 1, count: groups))
        let zeros = context.builder.addConstant("\(node.name)/zeros", shape: [groups], floats: Array(repeating: 0, count: groups))
        let normalized = context.builder.emitValue(named: "\(node.name)/normalized",
                                                   .instanceNorm(InstanceNormAttributes(epsilon: epsilon)), inputs: [grouped, ones, zeros])
        let inputShape = context.builder.emitValue(named: "\(node.name)/shape", .shape(ShapeAttributes()), inputs: [input])
        let restored = context.builder.emitValue(named: "\(node.name)/restored", .reshape(ReshapeAttributes()), inputs: [normalized, inputShape])
        let channelShape = context.builder.addConstant("\(node.name)/channel_shape", shape: [rank - 1],
                                                       ints: [-1] + Array(repeating: 1, count: rank - 2))
        let scaleColumn = context.builder.emitValue(named: "\(node.name)/scale", .reshape(ReshapeAttributes()), inputs: [scale, channelShape])
        let biasColumn = context.builder.emitValue(named: "\(node.name)/bias", .reshape(ReshapeAttributes()), inputs: [bias, channelShape])
        let scaled = context.builder.binary(.mul, restored, scaleColumn, name: "\(node.name)/scaled")
        context.builder.emit(node.name, .binary(.add), inputs: [scaled, biasColumn], outputs: [try node.output()])
    }

    /// LayerNormalization whose Mean or InvStdDev output is read: written out as
    /// mean → X − mean → variance → 1/√(variance + ε) → scale and bias, each statistic
    /// with the normalised axes kept as 1s, as ONNX defines them.
    static func layerNormalizationWithStatistics(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        let axes = try trailingAxes(from: try node.int("axis", default: -1), rank: context.builder.rank(of: input))
        let mean = ReduceAttributes(function: .mean, axes: axes, keepDims: true)
        let outputs = node.outputs + Array(repeating: "", count: max(0, 3 - node.outputs.count))
        let meanName = context.isConsumed(outputs[1]) ? outputs[1] : "\(node.name)/mean"
        context.builder.emit("\(node.name)/mean", .reduce(mean), inputs: [input], outputs: [meanName])
        let centered = context.builder.binary(.sub, input, meanName, name: "\(node.name)/centered")
        let squared = context.builder.binary(.mul, centered, centered, name: "\(node.name)/squared")
        let variance = context.builder.emitValue(named: "\(node.name)/variance", .reduce(mean), inputs: [squared])
        let epsilon = context.builder.addConstant("\(node.name)/epsilon", shape: [], floats: [try node.float("epsilon", default: 1e-5)])
        let shifted = context.builder.binary(.add, variance, epsilon, name: "\(node.name)/plus_epsilon")
        let deviation = context.builder.unary(Activation(function: .sqrt), shifted, name: "\(node.name)/deviation")
        let inverseName = context.isConsumed(outputs[2]) ? outputs[2] : "\(node.name)/inverse_deviation"
        context.builder.emit("\(node.name)/inverse_deviation", .unary(Activation(function: .reciprocal)), inputs: [deviation],
                             outputs: [inverseName])
        var result = context.builder.binary(.mul, centered, inverseName, name: "\(node.name)/normalized")
        if let scale = node.input(1) { result = context.builder.binary(.mul, result, scale, name: "\(node.name)/scaled") }
        if let bias = node.input(2) { result = context.builder.binary(.add, result, bias, name: "\(node.name)/shifted") }
        context.builder.alias(try node.output(), to: result, node: node.name)
    }

    /// LpNormalization: X / ‖X‖ₚ along `axis` (default -1), p 1 or 2 (0 where the norm is 0).
    static func lpNormalization(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        let sum = ReduceAttributes(function: .sum, axes: [try node.int("axis", default: -1)], keepDims: true)
        let norm: String
        switch try node.int("p", default: 2) {
        case 1:
            let magnitude = context.builder.unary(Activation(function: .abs), input, name: "\(node.name)/abs")
            norm = context.builder.emitValue(named: "\(node.name)/norm", .reduce(sum), inputs: [magnitude])
        case 2:
            let squared = context.builder.binary(.mul, input, input, name: "\(node.name)/squared")
            let sumOfSquares = context.builder.emitValue(named: "\(node.name)/sum_of_squares", .reduce(sum), inputs: [squared])
            norm = context.builder.unary(Activation(function: .sqrt), sumOfSquares, name: "\(node.name)/norm")
        case let p:
            throw LoweringFailure.invalid("p must be 1 or 2, found \(p)")
        }
        // An all-zero slice has norm 0 and stays 0, as in onnxruntime and ONNX's reference.
        let zero = context.builder.addConstant("\(node.name)/zero", shape: [], floats: [0])
        let one = context.builder.addConstant("\(node.name)/one", shape: [], floats: [1])
        let isZero = context.builder.binary(.equal, norm, zero, name: "\(node.name)/is_zero")
        let divisor = context.builder.emitValue(named: "\(node.name)/divisor", .where, inputs: [isZero, one, norm])
        context.builder.emit(node.name, .binary(.div), inputs: [input, divisor], outputs: [try node.output()])
    }

    /// LRN: Y = X / (bias + alpha/size · Σ X²)^beta, the sum over `size` neighbouring
    /// channels (floor((size−1)/2) before, ceil((size−1)/2) after, zeros past the ends).
    /// The channel sum is an average pool over [N, 1, C, H·W] counting the padding, times size.
    static func lrn(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        guard let size = try node.int("size"), size > 0 else { throw LoweringFailure.invalid("attribute 'size' must be positive") }
        guard let channels = context.builder.shape(of: input).flatMap({ $0.count >= 3 ? $0[1].fixedValue : nil }) else {
            throw LoweringFailure.unsupported("an input whose channel count is not known at import")
        }
        let alpha = try node.float("alpha", default: 1e-4)
        let beta = try node.float("beta", default: 0.75)
        let bias = try node.float("bias", default: 1)
        let squared = context.builder.binary(.mul, input, input, name: "\(node.name)/squared")
        let columnShape = context.builder.addConstant("\(node.name)/column_shape", shape: [4], ints: [0, 1, channels, -1])
        let columns = context.builder.emitValue(named: "\(node.name)/columns", .reshape(ReshapeAttributes()), inputs: [squared, columnShape])
        var pool = PoolAttributes()
        pool.kernelShape = [size, 1]
        pool.window.pads = [(size - 1) / 2, 0, size / 2, 0]
        pool.countIncludePad = true
        let windowMean = context.builder.emitValue(named: "\(node.name)/window_mean", .averagePool(pool), inputs: [columns])
        let inputShape = context.builder.emitValue(named: "\(node.name)/shape", .shape(ShapeAttributes()), inputs: [input])
        let mean = context.builder.emitValue(named: "\(node.name)/mean", .reshape(ReshapeAttributes()), inputs: [windowMean, inputShape])
        // alpha/size · Σ = alpha · mean over the window.
        let alphaName = context.builder.addConstant("\(node.name)/alpha", shape: [], floats: [alpha])
        let biasName = context.builder.addConstant("\(node.name)/bias", shape: [], floats: [bias])
        let betaName = context.builder.addConstant("\(node.name)/beta", shape: [], floats: [beta])
        let scaled = context.builder.binary(.mul, mean, alphaName, name: "\(node.name)/scaled")
        let base = context.builder.binary(.add, scaled, biasName, name: "\(node.name)/base")
        let denominator = context.builder.binary(.pow, base, betaName, name: "\(node.name)/denominator")
        context.builder.emit(node.name, .binary(.div), inputs: [input, denominator], outputs: [try node.output()])
    }

    /// LogSoftmax: (X − max) − log Σ exp(X − max) along `axis`, with the opset-dependent
    /// axis semantics of Softmax (before 13: rows of the input flattened at `axis`).
    static func logSoftmax(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        let output = try node.output()
        let rank = context.builder.rank(of: input)
        var axis = try node.int("axis", default: node.version >= 13 ? -1 : 1)
        var rows = input
        let flattens = node.version < 13 && axis != -1 && (rank == nil || axis != rank! - 1)
        if flattens {
            rows = context.builder.emitValue(named: "\(node.name)/flatten", .flatten(FlattenAttributes(axis: axis)), inputs: [input])
            axis = -1
        }
        let maximum = context.builder.emitValue(named: "\(node.name)/max",
                                                .reduce(ReduceAttributes(function: .max, axes: [axis], keepDims: true)), inputs: [rows])
        let shifted = context.builder.binary(.sub, rows, maximum, name: "\(node.name)/shifted")
        let exponentials = context.builder.unary(Activation(function: .exp), shifted, name: "\(node.name)/exp")
        let sum = context.builder.emitValue(named: "\(node.name)/sum",
                                            .reduce(ReduceAttributes(function: .sum, axes: [axis], keepDims: true)), inputs: [exponentials])
        let logSum = context.builder.unary(Activation(function: .log), sum, name: "\(node.name)/log_sum")
        guard flattens else {
            context.builder.emit(node.name, .binary(.sub), inputs: [shifted, logSum], outputs: [output])
            return
        }
        let result = context.builder.binary(.sub, shifted, logSum, name: "\(node.name)/rows")
        let shape = context.builder.emitValue(named: "\(node.name)/shape", .shape(ShapeAttributes()), inputs: [input])
        context.builder.emit(node.name, .reshape(ReshapeAttributes()), inputs: [result, shape], outputs: [output])
    }

    /// MeanVarianceNormalization (9, 13): (X − E[X]) / (√Var[X] + 1e-9) over `axes`
    /// (default [0, 2, 3]), ONNX's function with its fixed epsilon outside the root. The
    /// variance is the mean of the centred squares rather than the function's
    /// E[X²] − E[X]², which loses digits when the mean is large against the spread.
    static func meanVarianceNormalization(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        let name = node.name
        let mean = ReduceAttributes(function: .mean, axes: try node.ints("axes") ?? [0, 2, 3], keepDims: true)
        let average = context.builder.emitValue(named: "\(name)/mean", .reduce(mean), inputs: [input])
        let centred = context.builder.binary(.sub, input, average, name: "\(name)/centred")
        let squares = context.builder.binary(.mul, centred, centred, name: "\(name)/squares")
        let variance = context.builder.emitValue(named: "\(name)/variance", .reduce(mean), inputs: [squares])
        let deviation = context.builder.unary(Activation(function: .sqrt), variance, name: "\(name)/deviation")
        let epsilon = context.builder.addConstant("\(name)/epsilon", shape: [], floats: [1e-9])
        let divisor = context.builder.binary(.add, deviation, epsilon, name: "\(name)/divisor")
        context.builder.emit(name, .binary(.div), inputs: [centred, divisor], outputs: [try node.output()])
    }
}
