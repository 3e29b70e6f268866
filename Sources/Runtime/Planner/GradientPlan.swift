import Dispatch
import Format

/// A forward and backward pass over a model for concrete input shapes: the gradient of a
/// scalar loss of graph output 0 with respect to chosen graph inputs and trainable
/// constants (parameters).
///
/// Parameters become runtime values: their values live in memory the caller owns and may
/// change between runs (an optimizer steps them) without replanning, and kernels do not
/// prepare (Winograd-transform, pack) them once per model. Other constants are read in
/// place as in a `Plan`.
///
/// Memory is planned as for inference, over one timeline of forward then backward steps:
/// a forward value lives until the last forward step that reads it, or until the
/// backward step of a rule that saved it (`Differentiable.saved`); a gradient buffer
/// lives from the backward step of its value's last reader (where it is zeroed, then
/// accumulated into) to that of its producer. Gradients of wanted inputs and parameters
/// live to the end. Everything shares one arena, placed by the same greedy packing.
public final class GradientPlan {
    /// Where a step finds a value.
    private enum Location {
        case arena(offset: Int)
        case parameter(Int)
        case fixed(UnsafePointer<Float>)
    }

    private struct ForwardStep {
        let node: Int
        let kernel: any Kernel
        let inputs: [Location?]
        let outputs: [Int]
        let scratch: Int?
    }

    private struct BackwardStep {
        let node: Int
        let kernel: any BackwardKernel
        let inputs: [Location?]
        let outputs: [Location?]
        let outputGradients: [Int?]
        let inputGradients: [Int?]
        /// Gradient buffers whose first contribution is this step: zeroed before it runs.
        let zeroed: [(offset: Int, count: Int)]
        let scratch: Int?
    }

    public let model: Model
    /// Trainable constants, in the order `run` takes their values.
    public let parameters: [String]
    public let parameterShapes: [[Int]]
    /// Graph inputs whose gradients are wanted.
    public let wantedInputs: [String]
    /// Shape of graph output 0, whose loss is differentiated.
    public let outputShape: [Int]
    public let inputShapes: [[Int]]
    /// Bytes of the arena (forward values, saved activations, gradients and scratch).
    public let arenaBytes: Int
    /// Bytes all of them would take without sharing.
    public let intermediateBytes: Int
    /// Number of forward kernels and of backward rules run per pass.
    public var forwardStepCount: Int { forwardSteps.count }
    public var backwardStepCount: Int { backwardSteps.count }

    private let forwardSteps: [ForwardStep]
    private let backwardSteps: [BackwardStep]
    private let inputOffsets: [Int]
    private let outputLocation: Location
    private let outputGradientOffset: Int
    private let inputGradientOffsets: [Int]
    private let parameterGradientOffsets: [Int]
    private var knownStorage: [UnsafeMutableBufferPointer<Float>] = []
    private let pool: ThreadPool
    private let arena: UnsafeMutableRawPointer
    private var parameterPointers: [UnsafePointer<Float>] = []

    /// Plans the passes. Throws `GradientError` when a parameter or wanted input does not
    /// exist, or an op on a path from them to the loss has no backward rule.
    public init(model: Model, inputShapes: [[Int]], parameters: [String], wantedInputs: [String] = [],
                threads: Int) throws {
        self.model = model
        self.parameters = parameters
        self.wantedInputs = wantedInputs
        self.inputShapes = inputShapes
        pool = ThreadPool(threads: threads)
        let original = model.graph
        // Both passes read weights outside `Planner`'s account of reads.
        try model.verifyConstants(original.constantOrder)
        guard let lossOutput = original.outputs.first else { throw GradientError.noOutput }
        for name in wantedInputs where !original.inputs.contains(where: { $0.name == name }) {
            throw GradientError.unknownInput(name)
        }
        var shapes: [[Int]] = []
        for name in parameters {
            guard let constant = original.constants[name], constant.dtype == .float32 else {
                throw GradientError.unknownParameter(name)
            }
            shapes.append(constant.shape)
        }
        parameterShapes = shapes
        // Parameters become graph inputs after the real ones, so that shape inference treats
        // them as runtime values and folds nothing that depends on them.
        let parameterSet = Set(parameters)
        let training = Graph(
            inputs: original.inputs + zip(parameters, shapes).map { ValueInfo(name: $0, dtype: .float32, shape: $1.map { .fixed($0) }) },
            outputs: original.outputs, nodes: original.nodes,
            constants: original.orderedConstants.filter { !parameterSet.contains($0.name) }, metadata: original.metadata)
        let inference = try ShapeInference(graph: training)
        let inferred = try inference.infer(inputShapes + shapes)
        let graph = inference.graph

        // Which values carry a gradient: runtime values that depend on a wanted input or a
        // parameter (forward), and that the loss depends on (backward).
        var dependsOnWanted = Set(wantedInputs).union(parameters)
        for (index, node) in graph.nodes.enumerated() where inferred.nodes[index].evaluation != .known {
            if node.inputs.contains(where: { dependsOnWanted.contains($0) }) {
                for (slot, output) in node.outputs.enumerated()
                where !output.isEmpty && inferred.nodes[index].outputs[slot].value == nil
                    && inferred.nodes[index].outputs[slot].dtype == .float32 {
                    dependsOnWanted.insert(output)
                }
            }
        }
        var onPath: Set<String> = dependsOnWanted.contains(lossOutput.name) ? [lossOutput.name] : []
        var backwardNodes: [Int] = []
        for index in graph.nodes.indices.reversed() {
            let node = graph.nodes[index]
            guard node.outputs.contains(where: { onPath.contains($0) }) else { continue }
            let reached = node.inputs.filter { dependsOnWanted.contains($0) }
            guard !reached.isEmpty else { continue }
            guard inference.operators[index] is any Differentiable else {
                throw GradientError.noRule(node: node.name, op: node.op)
            }
            onPath.formUnion(reached)
            backwardNodes.append(index)
        }

        // Forward steps, as the inference planner makes them.
        var buffers: [Planner.Buffer] = []
        var bufferOf: [String: Int] = [:]
        var inputIDs: [Int] = []
        for (info, shape) in zip(original.inputs, inputShapes) {
            bufferOf[info.name] = buffers.count
            inputIDs.append(buffers.count)
            buffers.append(Planner.Buffer(bytes: Planner.byteCount(shape), first: 0, last: 0))
        }
        let parameterIndex = Dictionary(uniqueKeysWithValues: parameters.enumerated().map { ($1, $0) })
        enum Source { case buffer(Int), parameter(Int), constant(String), known(HostTensor) }
        func source(_ name: String) -> Source? {
            if let id = bufferOf[name] { return .buffer(id) }
            if let index = parameterIndex[name] { return .parameter(index) }
            if let value = inferred.facts[name]?.value { return .known(value) }
            return graph.constants[name] != nil ? .constant(name) : nil
        }
        var forward: [(node: Int, kernel: any Kernel, inputs: [Source?], outputs: [Int], scratch: Int?)] = []
        for (index, node) in graph.nodes.enumerated() {
            let facts = inferred.nodes[index]
            switch facts.evaluation {
            case .known: continue
            case .view:
                bufferOf[node.outputs[0]] = bufferOf[node.inputs[0]]
                continue
            case .kernel: break
            }
            let inputSources = node.inputs.map { $0.isEmpty ? nil : source($0) }
            let constants = ConstantInputs(
                weights: inputSources.map { source in
                    guard case .constant(let name)? = source else { return nil }
                    return model.weights.weight(name)
                },
                store: model.preparedWeights)
            let kernel: any Kernel
            do {
                kernel = try inference.operators[index].kernel(inputs: facts.inputs, outputs: facts.outputs,
                                                               constants: constants)
            } catch {
                guard let problem = NodeProblem(error) else { throw error }
                throw ModelError.node(problem)
            }
            let step = forward.count
            for source in inputSources {
                if case .buffer(let id)? = source { buffers[id].last = step }
            }
            var outputIDs: [Int] = []
            for fact in facts.outputs {
                outputIDs.append(buffers.count)
                buffers.append(Planner.Buffer(bytes: Planner.byteCount(fact.shape), first: step, last: step))
            }
            var scratch: Int?
            if kernel.scratchBytes > 0 {
                scratch = buffers.count
                buffers.append(Planner.Buffer(bytes: kernel.scratchBytes, first: step, last: step))
            }
            for (slot, name) in node.outputs.enumerated() where !name.isEmpty && facts.outputs[slot].value == nil {
                bufferOf[name] = outputIDs[slot]
            }
            forward.append((index, kernel, inputSources, outputIDs, scratch))
        }
        let forwardCount = forward.count
        guard let lossFact = inferred.facts[lossOutput.name], let lossSource = source(lossOutput.name) else {
            throw ModelError.node(.outputNotProduced(lossOutput.name))
        }
        outputShape = lossFact.shape
        if case .buffer(let id) = lossSource { buffers[id].last = forwardCount }

        // Backward steps in reverse graph order; step b runs at time forwardCount + 1 + b.
        var gradientOf: [String: Int] = [:]
        func gradientBuffer(_ name: String, at time: Int, firstUse: inout Bool) -> Int {
            if let id = gradientOf[name] { return id }
            let shape = inferred.facts[name]?.shape ?? []
            gradientOf[name] = buffers.count
            buffers.append(Planner.Buffer(bytes: Planner.byteCount(shape), first: time, last: time))
            firstUse = true
            return buffers.count - 1
        }
        var unused = false
        let outputGradientID = gradientBuffer(lossOutput.name, at: forwardCount, firstUse: &unused)
        var backward: [(node: Int, kernel: any BackwardKernel, inputs: [Source?], outputs: [Source?],
                        outputGradients: [Int?], inputGradients: [Int?], zeroed: [Int], scratch: Int?)] = []
        for index in backwardNodes {
            let node = graph.nodes[index]
            let facts = inferred.nodes[index]
            guard let rule = inference.operators[index] as? any Differentiable else { continue }
            let time = forwardCount + 1 + backward.count
            let wanted = node.inputs.map { !$0.isEmpty && onPath.contains($0) }
            let kernel: any BackwardKernel
            do {
                kernel = try rule.backward(inputs: facts.inputs, outputs: facts.outputs, wanted: wanted)
            } catch {
                guard let problem = NodeProblem(error) else { throw error }
                throw ModelError.node(problem)
            }
            let saved = rule.saved(inputs: facts.inputs, outputs: facts.outputs)
            func savedSource(_ name: String, _ isSaved: Bool) -> Source? {
                guard !name.isEmpty else { return nil }
                let found = source(name)
                switch found {
                case .buffer(let id)?:
                    guard isSaved else { return nil }
                    buffers[id].last = max(buffers[id].last, time)
                    return found
                case .parameter?, .known?, .constant?: return found
                case nil: return nil
                }
            }
            let inputSources = node.inputs.enumerated().map { savedSource($1, saved.inputs.contains($0)) }
            let outputSources = node.outputs.enumerated().map { savedSource($1, saved.outputs.contains($0)) }
            let outputGradients: [Int?] = node.outputs.map { name in
                guard let id = gradientOf[name] else { return nil }
                buffers[id].last = max(buffers[id].last, time)
                return id
            }
            var zeroed: [Int] = []
            let inputGradients: [Int?] = node.inputs.enumerated().map { slot, name in
                guard wanted[slot] else { return nil }
                var first = false
                let id = gradientBuffer(name, at: time, firstUse: &first)
                if first { zeroed.append(id) }
                buffers[id].last = max(buffers[id].last, time)
                return id
            }
            var scratch: Int?
            if kernel.scratchBytes > 0 {
                scratch = buffers.count
                buffers.append(Planner.Buffer(bytes: kernel.scratchBytes, first: time, last: time))
            }
            backward.append((index, kernel, inputSources, outputSources, outputGradients, inputGradients, zeroed, scratch))
        }
        // A gradient lives until its producer's backward step, which extended it above;
        // those of wanted inputs and parameters are results and live to the end.
        let end = forwardCount + 1 + backward.count
        var resultGradients: [String: Int] = [:]
        for name in wantedInputs + parameters {
            var first = false
            let id = gradientBuffer(name, at: forwardCount, firstUse: &first)
            buffers[id].last = end
            if first {
                // No path reaches it: its gradient is zero, written before the backward pass.
                buffers[id].first = forwardCount
            }
            resultGradients[name] = id
        }
        // Gradient buffers first contributed to at a step are zeroed there; results that no
        // rule reaches are zeroed before the backward pass (time forwardCount).
        let unreachedResults = (wantedInputs + parameters).compactMap { name -> Int? in
            let id = resultGradients[name]!
            return backward.contains(where: { $0.zeroed.contains(id) }) ? nil : id
        }

        arenaBytes = Planner.assignOffsets(&buffers)
        intermediateBytes = buffers.reduce(0) { $0 + Planner.align($1.bytes) }
        arena = UnsafeMutableRawPointer.allocate(byteCount: max(arenaBytes, 64), alignment: 64)
        var known: [UnsafeMutableBufferPointer<Float>] = []
        func location(_ source: Source) -> Location {
            switch source {
            case .buffer(let id): return .arena(offset: buffers[id].offset)
            case .parameter(let index): return .parameter(index)
            case .constant(let name): return .fixed(model.floatConstant(name))
            case .known(let value):
                let storage = UnsafeMutablePointer<Float>.allocate(capacity: max(value.count, 1))
                storage.initialize(from: value.floats, count: value.count)
                known.append(UnsafeMutableBufferPointer(start: storage, count: max(value.count, 1)))
                return .fixed(UnsafePointer(storage))
            }
        }
        forwardSteps = forward.map { step in
            ForwardStep(node: step.node, kernel: step.kernel, inputs: step.inputs.map { $0.map(location) },
                        outputs: step.outputs.map { buffers[$0].offset }, scratch: step.scratch.map { buffers[$0].offset })
        }
        backwardSteps = backward.map { step in
            BackwardStep(node: step.node, kernel: step.kernel,
                         inputs: step.inputs.map { $0.map(location) }, outputs: step.outputs.map { $0.map(location) },
                         outputGradients: step.outputGradients.map { $0.map { buffers[$0].offset } },
                         inputGradients: step.inputGradients.map { $0.map { buffers[$0].offset } },
                         zeroed: step.zeroed.map { (buffers[$0].offset, buffers[$0].bytes / MemoryLayout<Float>.size) },
                         scratch: step.scratch.map { buffers[$0].offset })
        }
        inputOffsets = inputIDs.map { buffers[$0].offset }
        outputLocation = location(lossSource)
        outputGradientOffset = buffers[outputGradientID].offset
        inputGradientOffsets = wantedInputs.map { buffers[resultGradients[$0]!].offset }
        parameterGradientOffsets = parameters.map { buffers[resultGradients[$0]!].offset }
        unreachedOffsets = unreachedResults.map { (buffers[$0].offset, buffers[$0].bytes / MemoryLayout<Float>.size) }
        knownStorage = known
    }

    private let unreachedOffsets: [(offset: Int, count: Int)]

    deinit {
        knownStorage.forEach { $0.deallocate() }
        arena.deallocate()
    }

    /// One forward and backward pass. `parameters` holds each parameter's current values
    /// (in `parameters` order, read during this call only); `loss` receives graph output 0
    /// and writes ∂L/∂output into its second argument, returning L. Afterwards
    /// `inputGradient(_:)` and `parameterGradient(_:)` hold the gradients until the next run.
    @discardableResult
    public func run(inputs: [HostTensor], parameters values: [UnsafePointer<Float>],
                    loss: (UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Float>) throws -> Float) rethrows -> Float {
        precondition(values.count == parameters.count, "\(values.count) parameter values for \(parameters.count) parameters")
        precondition(inputs.map(\.shape) == inputShapes, "inputs of shapes \(inputs.map(\.shape)), planned for \(inputShapes)")
        parameterPointers = values
        for (tensor, offset) in zip(inputs, inputOffsets) {
            let destination = (arena + offset).assumingMemoryBound(to: Float.self)
            tensor.floats.withUnsafeBufferPointer { source in
                if let address = source.baseAddress { destination.update(from: address, count: source.count) }
            }
        }
        runForward()
        let count = outputShape.reduce(1, *)
        let outputGradient = (arena + outputGradientOffset).assumingMemoryBound(to: Float.self)
        let value = try loss(UnsafeBufferPointer(start: pointer(outputLocation), count: count),
                             UnsafeMutableBufferPointer(start: outputGradient, count: count))
        runBackward()
        return value
    }

    /// Runs only the forward pass and returns graph output 0 (for evaluation).
    public func forward(inputs: [HostTensor], parameters values: [UnsafePointer<Float>]) -> HostTensor {
        parameterPointers = values
        for (tensor, offset) in zip(inputs, inputOffsets) {
            let destination = (arena + offset).assumingMemoryBound(to: Float.self)
            tensor.floats.withUnsafeBufferPointer { source in
                if let address = source.baseAddress { destination.update(from: address, count: source.count) }
            }
        }
        runForward()
        let count = outputShape.reduce(1, *)
        return HostTensor(shape: outputShape, floats: Array(UnsafeBufferPointer(start: pointer(outputLocation), count: count)))
    }

    /// ∂L/∂(wanted input `index`) after `run`.
    public func inputGradient(_ index: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: (arena + inputGradientOffsets[index]).assumingMemoryBound(to: Float.self),
                            count: inputShapes[inputIndex(wantedInputs[index])].reduce(1, *))
    }

    /// ∂L/∂(parameter `index`) after `run`.
    public func parameterGradient(_ index: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: (arena + parameterGradientOffsets[index]).assumingMemoryBound(to: Float.self),
                            count: parameterShapes[index].reduce(1, *))
    }

    private func inputIndex(_ name: String) -> Int {
        model.graph.inputs.firstIndex { $0.name == name } ?? 0
    }

    private func pointer(_ location: Location) -> UnsafePointer<Float> {
        switch location {
        case .arena(let offset): UnsafePointer((arena + offset).assumingMemoryBound(to: Float.self))
        case .parameter(let index): parameterPointers[index]
        case .fixed(let pointer): pointer
        }
    }

    /// Wall time per forward kernel and backward rule of the last run, when `profiling` is on.
    public private(set) var stepTimes: [(backward: Bool, node: Int, seconds: Double)] = []
    public var profiling = false

    private func timed(_ backward: Bool, _ node: Int, _ body: () -> Void) {
        guard profiling else { return body() }
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        stepTimes.append((backward, node, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9))
    }

    private func runForward() {
        stepTimes.removeAll(keepingCapacity: true)
        for step in forwardSteps {
            timed(false, step.node) { step.kernel.run(KernelIO(inputs: step.inputs.map { $0.map(pointer) },
                                     outputs: step.outputs.map { (arena + $0).assumingMemoryBound(to: Float.self) },
                                     scratch: step.scratch.map { arena + $0 }, pool: pool)) }
        }
    }

    private func runBackward() {
        for (offset, count) in unreachedOffsets {
            (arena + offset).assumingMemoryBound(to: Float.self).update(repeating: 0, count: count)
        }
        for step in backwardSteps {
            for (offset, count) in step.zeroed {
                (arena + offset).assumingMemoryBound(to: Float.self).update(repeating: 0, count: count)
            }
            timed(true, step.node) { step.kernel.run(BackwardIO(
                inputs: step.inputs.map { $0.map(pointer) },
                outputs: step.outputs.map { $0.map(pointer) },
                outputGradients: step.outputGradients.map { $0.map { UnsafePointer((arena + $0).assumingMemoryBound(to: Float.self)) } },
                inputGradients: step.inputGradients.map { $0.map { (arena + $0).assumingMemoryBound(to: Float.self) } },
                scratch: step.scratch.map { arena + $0 }, pool: pool)) }
        }
    }
}

/// Why gradients cannot be planned.
public enum GradientError: Error, CustomStringConvertible, Equatable {
    case noOutput
    case unknownInput(String)
    case unknownParameter(String)
    /// An op between the wanted values and the loss has no backward rule.
    case noRule(node: String, op: OpKind)

    public var description: String {
        switch self {
        case .noOutput: "the model has no output to differentiate"
        case .unknownInput(let name): "the model has no input named '\(name)'"
        case .unknownParameter(let name): "the model has no float constant named '\(name)' to train"
        case .noRule(let node, let op): "node '\(node)': op \(op.rawValue) has no backward rule yet"
        }
    }
}
