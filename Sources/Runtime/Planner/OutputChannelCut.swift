import Format

/// An op whose output channels are computed independently, each from one row of its
/// weight (input 1, rows along axis 0, contiguous) and one bias element (input 2): a
/// convolution (OIHW) or a linear layer ([N, K]). Computing a contiguous range of its
/// channels is the same op with those weight rows and bias elements.
protocol ComputesOutputChannelsApart: Operator {
    /// The output's channel axis for an output of `rank` axes.
    func outputChannelAxis(rank: Int) -> Int
    /// Whether these inputs keep the channels apart (no grouping, no residual input whose
    /// channels would have to be cut too).
    func channelsAreApart(_ inputs: [ValueFact?]) -> Bool
}

extension Convolution: ComputesOutputChannelsApart {
    func outputChannelAxis(rank: Int) -> Int { 1 }
    func channelsAreApart(_ inputs: [ValueFact?]) -> Bool { group == 1 && !(inputs.count > 3 && inputs[3] != nil) }
}

extension Linear: ComputesOutputChannelsApart {
    func outputChannelAxis(rank: Int) -> Int { rank - 1 }
    func channelsAreApart(_ inputs: [ValueFact?]) -> Bool { true }
}

/// A plan-time rewrite of the inference plan (not of the file, nor of gradient plans, which
/// read every named weight whole): a convolution or linear layer whose only consumer is a
/// Slice keeping a contiguous range of its output channels computes only those channels,
/// from a view of its weight's rows and a slice of its bias, and the Slice becomes an
/// alias of its output. BigGAN's `conv_to_rgb` computes 128 channels and keeps 3: 9.6 % of
/// its run. Each kept channel is computed by the same arithmetic as before (its weight row,
/// bias and the same kernel strategy), so the floats are the same.
struct OutputChannelCut {
    /// The convolution or linear node.
    let producer: Int
    /// The Slice node that becomes an alias of the producer's output.
    let slice: Int
    /// The output channels kept.
    let channels: Range<Int>
    /// The producer's output channel axis.
    let axis: Int

    /// Every cut the graph allows at these shapes. `isFixed(name)` says whether a value is
    /// a constant or known before running (a weight or bias the planner can cut).
    static func find(in graph: Graph, inferred: InferredShapes, operators: [any Operator],
                     isFixed: (String) -> Bool) -> [OutputChannelCut] {
        var uses: [String: Int] = [:]
        for node in graph.nodes { for input in node.inputs where !input.isEmpty { uses[input, default: 0] += 1 } }
        for output in graph.outputs { uses[output.name, default: 0] += 1 }
        var consumer: [String: Int] = [:]
        for (index, node) in graph.nodes.enumerated() where !node.inputs.isEmpty { consumer[node.inputs[0]] = index }

        var cuts: [OutputChannelCut] = []
        for (index, node) in graph.nodes.enumerated() {
            guard let op = operators[index] as? any ComputesOutputChannelsApart,
                  inferred.nodes[index].evaluation == .kernel, node.outputs.count == 1,
                  let output = node.outputs.first, uses[output] == 1, let sliceIndex = consumer[output],
                  let slice = operators[sliceIndex] as? Slice, inferred.nodes[sliceIndex].evaluation == .kernel
            else { continue }
            let facts = inferred.nodes[index]
            guard op.channelsAreApart(facts.inputs), node.inputs.count > 1, isFixed(node.inputs[1]),
                  node.inputs.count < 3 || node.inputs[2].isEmpty || isFixed(node.inputs[2]),
                  let shape = facts.outputs.first?.shape, !shape.isEmpty,
                  let parameters = try? slice.planTimeParameters(inferred.nodes[sliceIndex].inputs),
                  let window = try? slice.window(shape: shape, parameters: parameters) else { continue }
            let axis = op.outputChannelAxis(rank: shape.count)
            // Only the channel axis may be cut, contiguously; every other axis is kept whole.
            let othersWhole = shape.indices.allSatisfy { $0 == axis || (window.starts[$0] == 0 && window.shape[$0] == shape[$0]) }
            let kept = window.starts[axis]..<(window.starts[axis] + window.shape[axis])
            guard othersWhole, window.steps[axis] == 1 || kept.count == 1, !kept.isEmpty, kept.count < shape[axis]
            else { continue }
            cuts.append(OutputChannelCut(producer: index, slice: sliceIndex, channels: kept, axis: axis))
        }
        return cuts
    }

    /// The producer's input facts for the kept channels: weight rows and bias elements.
    func inputs(_ facts: [ValueFact?]) -> [ValueFact?] {
        facts.enumerated().map { slot, fact in
            guard let fact, slot == 1 || slot == 2 else { return fact }
            return ValueFact(dtype: fact.dtype, shape: [channels.count] + fact.shape.dropFirst(),
                             value: fact.value.map(rows))
        }
    }

    /// The producer's output facts for the kept channels.
    func outputs(_ facts: [ValueFact]) -> [ValueFact] {
        facts.map { fact in
            var shape = fact.shape
            shape[axis] = channels.count
            return ValueFact(dtype: fact.dtype, shape: shape)
        }
    }

    /// The kept rows (along axis 0) of a weight or bias.
    func rows(_ value: HostTensor) -> HostTensor {
        let rowSize = value.shape.dropFirst().reduce(1, *)
        return HostTensor(shape: [channels.count] + value.shape.dropFirst(),
                          floats: Array(value.floats[(channels.lowerBound * rowSize)..<(channels.upperBound * rowSize)]))
    }

    /// Elements before the first kept row of a row-major weight or bias of `shape`.
    func rowOffset(_ shape: [Int]) -> Int { channels.lowerBound * shape.dropFirst().reduce(1, *) }
}
