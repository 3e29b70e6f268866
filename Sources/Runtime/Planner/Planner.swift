import Format

/// Builds a `Plan` for concrete input shapes: binds symbolic dims, propagates shapes
/// with each op's shape rule, evaluates what is known before running (constants,
/// shape arithmetic) with the reference kernels, and places every runtime value in
/// one arena by liveness so that values whose lifetimes do not overlap share bytes.
enum Planner {
    /// Float constants up to this many elements are read as values while planning (a
    /// resize's scales, a pad value); larger ones (weights) stay in place and are only
    /// read if a node is entirely constant.
    static let smallConstantLimit = 4096
    static let alignment = 64
    /// No value may take more bytes than this. It is far above what a restoration model
    /// needs for a tile (1×64×4096×4096 f32 is 4 GiB), so a bigger value comes from a
    /// hostile or broken graph; refusing it before any kernel is built keeps the kernels'
    /// tables, the byte counts and the arena offsets far from overflow.
    static let maximumValueBytes = 1 << 34

    /// A runtime buffer: its size and the steps between which it must live.
    private struct Buffer {
        var bytes: Int
        var first: Int
        var last: Int
        var offset = 0
    }

    /// How the planner knows a value.
    private enum Source {
        case buffer(Int)
        case constant(String)
        case known(HostTensor)
    }

    static func plan(_ model: Model, inputShapes: [[Int]]) throws -> Plan {
        let graph = model.graph
        guard inputShapes.count == graph.inputs.count else {
            throw ModelError.missingInput(graph.inputs.dropFirst(inputShapes.count).first?.name ?? "?")
        }
        var facts: [String: ValueFact] = [:]
        var sources: [String: Source] = [:]
        var buffers: [Buffer] = []
        var symbols: [String: Int] = [:]
        var inputOffsets: [Int] = []

        for (info, shape) in zip(graph.inputs, inputShapes) {
            try bind(info, shape: shape, symbols: &symbols)
            guard fitsLimit(shape) else {
                throw ModelError.valueTooLarge(value: "input '\(info.name)'", shape: shape, limit: maximumValueBytes)
            }
            facts[info.name] = ValueFact(dtype: info.dtype, shape: shape)
            sources[info.name] = .buffer(buffers.count)
            inputOffsets.append(buffers.count)
            buffers.append(Buffer(bytes: byteCount(shape), first: 0, last: 0))
        }
        for constant in graph.orderedConstants where sources[constant.name] == nil {
            guard fitsLimit(constant.shape) else {
                throw ModelError.valueTooLarge(value: "constant '\(constant.name)'", shape: constant.shape, limit: maximumValueBytes)
            }
            let small = !constant.dtype.isFloatingPoint || constant.elementCount <= smallConstantLimit
            let value = small ? HostTensor(constant) : nil
            facts[constant.name] = ValueFact(dtype: value?.dtype ?? .float32, shape: constant.shape, value: value)
            sources[constant.name] = value.map { .known($0) } ?? .constant(constant.name)
        }

        var steps: [(node: Int, kernel: any Kernel, inputs: [Source?], outputs: [Int], scratch: Int?)] = []
        var folded = 0
        var views = 0
        var knownNodeOutputs: [String: HostTensor] = [:]
        for (index, node) in graph.nodes.enumerated() {
            let op = model.operators[index]
            let inputFacts = node.inputs.map { $0.isEmpty ? nil : facts[$0] }
            let inputSources = node.inputs.map { $0.isEmpty ? nil : sources[$0] }
            do {
                var outputFacts = try op.outputs(for: inputFacts)
                for fact in outputFacts where !fitsLimit(fact.shape) {
                    throw ModelError.valueTooLarge(value: "node '\(node.name)' output", shape: fact.shape, limit: maximumValueBytes)
                }
                guard outputFacts.count >= node.outputs.filter({ !$0.isEmpty }).count else {
                    throw OpError.shape(node: node.name, "produces \(outputFacts.count) outputs, the graph uses \(node.outputs.count)")
                }
                let allInputsKnown = inputSources.allSatisfy { source in
                    switch source {
                    case .buffer?: false
                    case .constant?, .known?, nil: true
                    }
                }
                if outputFacts.allSatisfy({ $0.value != nil }) {
                    folded += 1
                } else if allInputsKnown {
                    let values = try op.reference(inputSources.map { source in
                        switch source {
                        case .known(let value)?: value
                        case .constant(let name)?: graph.constants[name].map(HostTensor.init)
                        case .buffer?, nil: nil
                        }
                    })
                    for (slot, value) in values.enumerated() where slot < outputFacts.count {
                        outputFacts[slot] = ValueFact(value)
                    }
                    folded += 1
                } else if op.isView, case .buffer(let root)? = inputSources[0] {
                    sources[node.outputs[0]] = .buffer(root)
                    facts[node.outputs[0]] = outputFacts[0]
                    views += 1
                    continue
                } else {
                    let constants = ConstantInputs(
                        weights: inputSources.map { source in
                            guard case .constant(let name)? = source else { return nil }
                            return model.weights.weight(name)
                        },
                        store: model.preparedWeights,
                        sourceRead: model.releaseConstantPages)
                    let kernel = try op.kernel(inputs: inputFacts, outputs: outputFacts, constants: constants)
                    let stepIndex = steps.count
                    for source in inputSources {
                        if case .buffer(let id)? = source { buffers[id].last = stepIndex }
                    }
                    var outputIDs: [Int] = []
                    for fact in outputFacts {
                        outputIDs.append(buffers.count)
                        buffers.append(Buffer(bytes: byteCount(fact.shape), first: stepIndex, last: stepIndex))
                    }
                    var scratch: Int?
                    if kernel.scratchBytes > 0 {
                        scratch = buffers.count
                        buffers.append(Buffer(bytes: kernel.scratchBytes, first: stepIndex, last: stepIndex))
                    }
                    for (slot, name) in node.outputs.enumerated() where !name.isEmpty {
                        sources[name] = .buffer(outputIDs[slot])
                    }
                    steps.append((index, kernel, inputSources, outputIDs, scratch))
                }
                for (slot, name) in node.outputs.enumerated() where !name.isEmpty {
                    facts[name] = outputFacts[slot]
                    if let value = outputFacts[slot].value {
                        sources[name] = .known(value)
                        knownNodeOutputs[name] = value
                    }
                }
            } catch let error as ModelError {
                throw error
            } catch {
                throw ModelError.node(name: node.name, message: "\(error)".replacingOccurrences(of: "node '\(node.name)': ", with: ""))
            }
        }

        // Graph outputs live to the end of the run.
        var outputSources: [(name: String, source: Source, fact: ValueFact)] = []
        for output in graph.outputs {
            guard let source = sources[output.name], let fact = facts[output.name] else {
                throw ModelError.node(name: output.name, message: "graph output is never computed")
            }
            if case .buffer(let id) = source { buffers[id].last = steps.count }
            outputSources.append((output.name, source, fact))
        }

        let arenaBytes = assignOffsets(&buffers)
        var knownStorage: [UnsafeMutableBufferPointer<Float>] = []
        func location(_ source: Source) -> Plan.Location {
            switch source {
            case .buffer(let id): return .arena(offset: buffers[id].offset)
            case .constant(let name):
                // Model keeps every float constant as f32 (dequantized once on load).
                return .constant(model.floatConstant(name))
            case .known(let value):
                let storage = UnsafeMutablePointer<Float>.allocate(capacity: max(value.count, 1))
                storage.initialize(from: value.floats, count: value.count)
                knownStorage.append(UnsafeMutableBufferPointer(start: storage, count: max(value.count, 1)))
                return .known(UnsafePointer(storage))
            }
        }
        let planSteps = steps.map { step in
            Plan.Step(node: step.node, kernel: step.kernel,
                      inputs: step.inputs.map { $0.map(location) },
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
                    foldedNodes: folded, viewNodes: views, valueShapes: facts.mapValues(\.shape),
                    knownValues: knownNodeOutputs, knownStorage: knownStorage)
    }

    /// Checks a concrete shape against an input's declared dims, binding symbols.
    private static func bind(_ info: ValueInfo, shape: [Int], symbols: inout [String: Int]) throws {
        let declared = "[" + info.shape.map(\.description).joined(separator: ", ") + "]"
        guard shape.count == info.shape.count, shape.allSatisfy({ $0 >= 0 }) else {
            throw ModelError.inputShape(input: info.name, expected: declared, found: shape)
        }
        for (dim, size) in zip(info.shape, shape) {
            switch dim {
            case .fixed(let expected):
                guard expected == size else { throw ModelError.inputShape(input: info.name, expected: declared, found: shape) }
            case .symbol(let name):
                if let bound = symbols[name], bound != size { throw ModelError.inconsistentSymbol(name, bound, size) }
                symbols[name] = size
            }
        }
    }

    /// Greedy placement, largest buffer first, at the lowest offset that collides with
    /// no already placed buffer whose lifetime overlaps. Returns the arena size.
    private static func assignOffsets(_ buffers: inout [Buffer]) -> Int {
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

    private static func byteCount(_ shape: [Int]) -> Int { shape.reduce(1, *) * MemoryLayout<Float>.size }

    /// Whether a value of `shape` stays within `maximumValueBytes` (checked without
    /// overflowing, whatever the dimensions). Empty axes count as 1, so that the strides of
    /// an empty value with huge other axes cannot overflow either.
    private static func fitsLimit(_ shape: [Int]) -> Bool {
        guard let elements = ShapeRules.checkedProduct(shape.map { max($0, 1) }) else { return false }
        return elements <= maximumValueBytes / MemoryLayout<Float>.size
    }

    private static func align(_ bytes: Int) -> Int { (bytes + alignment - 1) / alignment * alignment }
}
