import Format
import Synchronization

/// Builds a `Plan` for concrete input shapes: infers every value's shape and plan-time
/// value (`ShapeInference`), builds a kernel for each node that must run, and places every
/// runtime value in one arena by liveness so that values whose lifetimes do not overlap
/// share bytes.
enum Planner {
    static let alignment = 64
    /// Kernels built by every planner in this process, so tests can check that a code path
    /// (conversion) builds none.
    static let kernelsBuilt = Atomic<Int>(0)

    /// A runtime buffer: its size and the steps between which it must live.
    struct Buffer {
        var bytes: Int
        var first: Int
        var last: Int
        var offset = 0
    }

    /// How the planner knows a value.
    private enum Source {
        case buffer(Int)
        case constant(String)
        /// A constant's elements from this one on: the kept rows of a cut weight.
        case constantRows(String, offset: Int)
        case known(HostTensor)
    }

    static func plan(_ model: Model, inputShapes: [[Int]]) throws -> Plan {
        let inference = model.shapeInference
        let graph = inference.graph
        let inferred = try inference.infer(inputShapes)
        var buffers: [Buffer] = []
        /// The buffer of every value computed when running.
        var bufferOf: [String: Int] = [:]
        var inputOffsets: [Int] = []
        for (info, shape) in zip(graph.inputs, inputShapes) {
            bufferOf[info.name] = buffers.count
            inputOffsets.append(buffers.count)
            buffers.append(Buffer(bytes: byteCount(shape), first: 0, last: 0))
        }
        func source(_ name: String) -> Source? {
            if let id = bufferOf[name] { return .buffer(id) }
            if let value = inferred.facts[name]?.value { return .known(value) }
            return graph.constants[name] != nil ? .constant(name) : nil
        }

        let cuts = OutputChannelCut.find(in: graph, inferred: inferred, operators: inference.operators) { name in
            if case .buffer? = source(name) { return false }
            return source(name) != nil
        }
        let cutOfProducer = Dictionary(uniqueKeysWithValues: cuts.map { ($0.producer, $0) })
        let cutOfSlice = Dictionary(uniqueKeysWithValues: cuts.map { ($0.slice, $0) })
        var valueShapes = inferred.valueShapes

        var steps: [(node: Int, kernel: any Kernel, inputs: [Source?], outputs: [Int], scratch: Int?)] = []
        var views = 0
        let reads = ConstantReads()
        // Constants kernels read when running, and those they may have read while made.
        var readWhenRunning = Set<String>(), readWhenMade = Set<String>()
        for (index, node) in graph.nodes.enumerated() {
            if let cut = cutOfSlice[index] {
                // The producer computed only the kept channels: they are the slice.
                bufferOf[node.outputs[0]] = bufferOf[graph.nodes[cut.producer].outputs[0]]
                views += 1
                continue
            }
            var facts = inferred.nodes[index]
            let cut = cutOfProducer[index]
            if let cut {
                facts = InferredShapes.Node(inputs: cut.inputs(facts.inputs), outputs: cut.outputs(facts.outputs),
                                            evaluation: facts.evaluation)
                valueShapes[node.outputs[0]] = facts.outputs[0].shape
            }
            switch facts.evaluation {
            case .known:
                continue
            case .view:
                bufferOf[node.outputs[0]] = bufferOf[node.inputs[0]]
                views += 1
                continue
            case .kernel:
                break
            }
            var inputSources = node.inputs.map { $0.isEmpty ? nil : source($0) }
            if let cut {
                for slot in [1, 2] where slot < inputSources.count {
                    switch inputSources[slot] {
                    case .constant(let name)?:
                        inputSources[slot] = .constantRows(name, offset: cut.rowOffset(model.weights.weight(name).shape))
                    case .known(let value)?: inputSources[slot] = .known(cut.rows(value))
                    case .constantRows?, .buffer?, nil: break
                    }
                }
            }
            let constants = ConstantInputs(
                weights: inputSources.enumerated().map { slot, source in
                    switch source {
                    case .constant(let name)?: return model.weights.weight(name)
                    case .constantRows(let name, let offset)?:
                        // Kernels prepare nothing from a cut weight (store nil below): the
                        // prepared store is keyed by whole constants, and `convert --prepare`
                        // stores what it holds under the constant's name.
                        return ConstantWeight(name: name, shape: facts.inputs[slot]?.shape ?? [],
                                              floats: model.floatConstant(name) + offset)
                    case .buffer?, .known?, nil: return nil
                    }
                },
                store: cut == nil ? model.preparedWeights : nil,
                reads: reads)
            let kernel: any Kernel
            do {
                kernel = try inference.operators[index].kernel(inputs: facts.inputs, outputs: facts.outputs,
                                                                          constants: constants)
            } catch {
                guard let problem = NodeProblem(error) else { throw error }
                throw ModelError.node(problem)
            }
            kernelsBuilt.add(1, ordering: .relaxed)
            for (slot, source) in inputSources.enumerated() {
                let name: String
                switch source {
                case .constant(let constant)?, .constantRows(let constant, _)?: name = constant
                case .buffer?, .known?, nil: continue
                }
                if kernel.reads(input: slot) {
                    readWhenRunning.insert(name)
                } else if reads.packedInPlace[name] == nil {
                    readWhenMade.insert(name)
                }
            }
            let stepIndex = steps.count
            for source in inputSources {
                if case .buffer(let id)? = source { buffers[id].last = stepIndex }
            }
            var outputIDs: [Int] = []
            for fact in facts.outputs {
                outputIDs.append(buffers.count)
                buffers.append(Buffer(bytes: byteCount(fact.shape), first: stepIndex, last: stepIndex))
            }
            var scratch: Int?
            if kernel.scratchBytes > 0 {
                scratch = buffers.count
                buffers.append(Buffer(bytes: kernel.scratchBytes, first: stepIndex, last: stepIndex))
            }
            // An output the shape rule already knew is read as that value, not from the buffer.
            for (slot, name) in node.outputs.enumerated() where !name.isEmpty && facts.outputs[slot].value == nil {
                bufferOf[name] = outputIDs[slot]
            }
            steps.append((index, kernel, inputSources, outputIDs, scratch))
        }

        // Graph outputs live to the end of the run.
        var outputSources: [(name: String, source: Source, fact: ValueFact)] = []
        for output in graph.outputs {
            guard let source = source(output.name), let fact = inferred.facts[output.name] else {
                throw ModelError.node(.outputNotProduced(output.name))
            }
            if case .buffer(let id) = source { buffers[id].last = steps.count }
            outputSources.append((output.name, source, fact))
        }

        // Before anything runs: the file's checksums of what the kernels read (one pass over
        // each tensor, the first time a plan reads it). Weights read only to prepare others
        // leave resident memory (read back if used again).
        let preparedOnly = readWhenMade.subtracting(readWhenRunning)
        try model.verifyConstants(readWhenRunning.union(readWhenMade).union(reads.packedInPlace.values),
                                  releasing: preparedOnly)
        preparedOnly.forEach(model.releaseConstantPages)

        let arenaBytes = assignOffsets(&buffers)
        var knownStorage: [UnsafeMutableBufferPointer<Float>] = []
        func location(_ source: Source) -> Plan.Location {
            switch source {
            case .buffer(let id): return .arena(offset: buffers[id].offset)
            case .constant(let name):
                // f32 in place or as widened on load; an int8 weight only if the kernel reads it.
                return .constant(model.floatConstant(name))
            case .constantRows(let name, let offset):
                return .constant(model.floatConstant(name) + offset)
            case .known(let value):
                let storage = UnsafeMutablePointer<Float>.allocate(capacity: max(value.count, 1))
                storage.initialize(from: value.floats, count: value.count)
                knownStorage.append(UnsafeMutableBufferPointer(start: storage, count: max(value.count, 1)))
                return .known(UnsafePointer(storage))
            }
        }
        let planSteps = steps.map { step in
            Plan.Step(node: step.node, kernel: step.kernel,
                      inputs: step.inputs.enumerated().map { index, source in
                          step.kernel.reads(input: index) ? source.map(location) : nil
                      },
                      outputs: step.outputs.map { buffers[$0].offset },
                      scratch: step.scratch.map { buffers[$0].offset })
        }
        let outputs: [Plan.OutputSource] = outputSources.map { entry in
            if case .known(let value) = entry.source { return .known(value) }
            return .location(location(entry.source), dtype: entry.fact.dtype, shape: entry.fact.shape)
        }
        return Plan(steps: planSteps, inputOffsets: inputOffsets.map { buffers[$0].offset },
                    outputSources: outputs, inputShapes: inputShapes, arenaBytes: arenaBytes,
                    intermediateBytes: buffers.reduce(0) { $0 + align($1.bytes) },
                    foldedNodes: inferred.foldedNodes, viewNodes: views, valueShapes: valueShapes,
                    knownValues: inferred.knownValues, knownStorage: knownStorage)
    }

    /// Greedy placement, largest buffer first, at the lowest offset that collides with
    /// no already placed buffer whose lifetime overlaps. Returns the arena size.
    static func assignOffsets(_ buffers: inout [Buffer]) -> Int {
        var placed: [Int] = []
        var arena = 0
        for id in buffers.indices.sorted(by: { buffers[$0].bytes > buffers[$1].bytes }) {
            let size = align(buffers[id].bytes)
            let conflicts = placed
                .filter { buffers[$0].first <= buffers[id].last && buffers[id].first <= buffers[$0].last }
                .map { (start: buffers[$0].offset, end: buffers[$0].offset + align(buffers[$0].bytes)) }
                .sorted { $0.start < $1.start }
            var offset = 0
            for conflict in conflicts where conflict.end > offset {
                if conflict.start >= offset + size { break }
                offset = conflict.end
            }
            buffers[id].offset = offset
            arena = max(arena, offset + size)
            placed.append(id)
        }
        return arena
    }

    static func byteCount(_ shape: [Int]) -> Int { shape.reduce(1, *) * MemoryLayout<Float>.size }

    static func align(_ bytes: Int) -> Int { (bytes + alignment - 1) / alignment * alignment }
}
