import Format
import Runtime

/// Fuses Swin's shifted-window attention as transformers' Swin exports it (classic and
/// dynamo exporters, fixed or symbolic H and W) and as the paper's and mmsegmentation's
/// code writes it, once `WindowMaskFolding`, `AttentionFusion` and `LinearFusion` have
/// made its attention and dense layers single nodes:
///
///     P [B, Hp, Wp, C]                           the padded token grid
///     → roll by −shift on H and W                slices joined by concat; absent for shift 0
///     → window partition                         reshape, transpose, reshapes: X [B·nW, N, C]
///     → q, k, v [B·nW, h, N, d] from X           transformers: three linears, each split into
///                                                heads (reshape, transpose); paper/mmseg: one
///                                                linear to 3C, viewed [B·nW, N, 3, h, d],
///                                                permuted, indexed by gather or slice
///     → attention(q, k, v, bias)                 [B·nW, h, N, d]
///     → heads merged (transpose, reshape), output linear
///     → window reverse, roll by +shift           E [B, Hp, Wp, C]
///
/// becomes
///
///     qkv = linear(P, [Wq; Wk; Wv], [bq; bk; bv])   [B, Hp, Wp, 3C]
///     E = linear(windowAttention(qkv, bias), Wo, bo)
///
/// Exact because a linear layer acts on each token alone, so it commutes with the roll,
/// the partition and their inverses (zero-padded tokens get the bias values as in PyTorch,
/// which pads before the linears too). The three data-movement stretches are found by
/// their structure (reshapes, transposes, slices joined by a concat), then checked
/// exactly: at every sampled input size they are run on a tensor holding each element's
/// index and must move every element where roll + partition, head merging, and reverse +
/// roll back with one window size and one shift put it (and, in the one-linear layout,
/// where splitting 3C into q, k, v and heads puts it). Otherwise the graph is left alone.
///
/// Exports with symbolic sizes read the shapes of the removed values (`shape` nodes);
/// those read P, or a reshape of P to the same shape (a view, no copy), instead.
enum WindowAttentionFusion {
    static func run(_ graph: inout Graph, shapes: SampledShapes) throws -> Int {
        guard !shapes.samples.isEmpty, shapes.knownValues.count == shapes.samples.count else { return 0 }
        let view = PatternView(graph)
        var rewrites: [[Rewrite]] = []
        for index in graph.nodes.indices where view.isNode(index, .kind(.attention)) {
            if let match = match(attention: index, view, shapes) { rewrites.append(match) }
        }
        let before = graph.nodes.count { $0.op == .windowAttention }
        _ = graph.apply(rewrites.flatMap { $0 })
        return graph.nodes.count { $0.op == .windowAttention } - before
    }

    /// q, k and v [M, h, N, d] as dense layers of the windows X [M, N, C in] compute them,
    /// with the weights stacked q | k | v as `windowAttention` reads its input channels.
    private struct Projections {
        var nodes: [Int]
        var input: String
        /// [3·C, C in], as `linear` stores it.
        var weight: [Float]
        var weightShape: [Int]
        var bias: [Float]?
        var heads: Int
    }

    /// A dense layer feeding q, k or v: linear(X) → reshape [M, N, h, d] → transpose.
    private struct Projection {
        var nodes: [Int]
        var linear: Int
        var input: String
        var weight: [Float]
        /// [C out, C in], as `linear` stores it.
        var weightShape: [Int]
        var bias: [Float]?
        var heads: Int
    }

    /// The rewrites of one match: the fusion itself, then the redirected shape readers.
    private static func match(attention: Int, _ view: PatternView, _ shapes: SampledShapes) -> [Rewrite]? {
        let graph = view.graph
        let node = graph.nodes[attention]
        guard (3...4).contains(node.inputs.count), case .attention(let attentionAttributes) = node.operation,
              let projections = separateProjections(attention, view, shapes) ?? packedProjection(attention, view, shapes)
        else { return nil }
        let bias = node.input(3)
        guard let partition = walkBack(from: projections.input, view, shapes),
              let merge = mergeHeads(from: view.output(attention), view),
              let output = dense(merge.linear, view), let reverse = walkForward(from: view.output(merge.linear), view, shapes)
        else { return nil }
        let grid = partition.grid
        guard let windows = checkPartition(partition.nodes, from: partition.grid, to: projections.input, view, shapes),
              checkMerge(merge.nodes, from: view.output(attention), to: graph.nodes[merge.linear].inputs[0],
                         heads: projections.heads, view, shapes),
              checkReverse(reverse.nodes, from: view.output(merge.linear), to: reverse.grid, windows, view, shapes),
              shapes.shapes(reverse.grid) == shapes.shapes(grid)
        else { return nil }

        let name = node.name
        let packed = graph.unusedName("\(name).qkv"), attended = graph.unusedName("\(name).windows")
        var constants = [ConstantTensor(name: graph.unusedName("\(packed).weight"), shape: projections.weightShape,
                                        floats: projections.weight)]
        if let bias = projections.bias {
            constants.append(ConstantTensor(name: graph.unusedName("\(packed).bias"), shape: [bias.count], floats: bias))
        }
        let replacement = [
            Node(name: packed, .linear(LinearAttributes()), inputs: [grid] + constants.map(\.name), outputs: [packed]),
            Node(name: name, .windowAttention(WindowAttentionAttributes(windowSize: windows.size, shift: windows.shift,
                                                                        heads: projections.heads, scale: attentionAttributes.scale)),
                 inputs: [packed] + (bias.map { [$0] } ?? []), outputs: [attended]),
            Node(name: graph.nodes[merge.linear].name, .linear(LinearAttributes()), inputs: [attended] + output, outputs: [reverse.grid]),
        ]
        let matched = partition.nodes + projections.nodes + [attention] + merge.nodes + [merge.linear] + reverse.nodes
        guard let redirects = redirectShapeReaders(of: matched, keeping: [reverse.grid], to: grid, windows: windows, name: name,
                                                         view, shapes)
        else { return nil }
        return [Rewrite(matched: matched, replacement: replacement, constants: constants)] + redirects
    }

    // MARK: Projections

    /// Three linears of X, one each for q, k and v, as transformers' Swin writes them.
    private static func separateProjections(_ attention: Int, _ view: PatternView, _ shapes: SampledShapes) -> Projections? {
        let inputs = view.graph.nodes[attention].inputs
        guard let query = projection(inputs[0], reader: attention, view, shapes),
              let key = projection(inputs[1], reader: attention, view, shapes),
              let value = projection(inputs[2], reader: attention, view, shapes),
              query.input == key.input, key.input == value.input, query.heads == key.heads, key.heads == value.heads,
              query.weightShape == key.weightShape, key.weightShape == value.weightShape,
              (query.bias == nil) == (key.bias == nil), (key.bias == nil) == (value.bias == nil),
              readers(of: query.input, view).data == [query.linear, key.linear, value.linear].sorted()
        else { return nil }
        let bias = query.bias.flatMap { q in key.bias.flatMap { k in value.bias.map { v in q + k + v } } }
        return Projections(nodes: query.nodes + key.nodes + value.nodes, input: query.input,
                           weight: query.weight + key.weight + value.weight,
                           weightShape: [3 * query.weightShape[0], query.weightShape[1]], bias: bias, heads: query.heads)
    }

    /// One of those linears: linear(X) → reshape [M, N, h, d] → transpose to [M, h, N, d].
    private static func projection(_ value: String, reader: Int, _ view: PatternView, _ shapes: SampledShapes) -> Projection? {
        let graph = view.graph
        guard let transpose = view.producer(of: value, .kind(.transpose)), readers(of: value, view).data == [reader],
              graph.nodes[transpose].operation == .transpose(TransposeAttributes(perm: [0, 2, 1, 3])),
              let split = graph.nodes[transpose].input(0), let reshape = view.producer(of: split, .kind(.reshape)),
              readers(of: split, view).data == [transpose],
              let projected = graph.nodes[reshape].input(0), let linear = view.producer(of: projected, .kind(.linear)),
              readers(of: projected, view).data == [reshape], let parameters = dense(linear, view),
              let weight = graph.constants[parameters[0]], weight.dtype.isFloatingPoint, weight.shape.count == 2,
              let input = graph.nodes[linear].input(0)
        else { return nil }
        let bias = parameters.count > 1 ? graph.constants[parameters[1]]?.floatValues() : nil
        // The reshape only splits channels into heads: [M, N, C] → [M, N, h, C/h].
        guard let before = shapes.shapes(projected), let after = shapes.shapes(split),
              zip(before, after).allSatisfy({ b, a in
                  b.count == 3 && a.count == 4 && a[0] == b[0] && a[1] == b[1] && a[2] * a[3] == b[2] && b[2] == weight.shape[0]
              }),
              let heads = Set(after.map { $0[2] }).first, Set(after.map { $0[2] }).count == 1,
              bias.map({ $0.count == weight.shape[0] }) ?? true
        else { return nil }
        return Projection(nodes: [linear, reshape, transpose], linear: linear, input: input,
                          weight: weight.floatValues(), weightShape: weight.shape, bias: bias, heads: heads)
    }

    /// One linear for all three, as the paper's and mmsegmentation's code write it: its
    /// output Y [M, N, 3·C] viewed as [M, N, 3, h, d], permuted to [3, M, h, N, d] and
    /// indexed (gather, or slice and squeeze) into q, k and v. Found as the data-movement
    /// nodes between one linear and the attention's first three inputs, read by nothing
    /// else; exact when, run on Y holding each element's index at every sample, they put
    /// into q, k and v [M, h, N, d] at (i, head, t, j) what Y holds at
    /// (i, t, s·C + head·d + j) for s = 0, 1, 2: then the linear's rows are already
    /// stacked q | k | v.
    private static func packedProjection(_ attention: Int, _ view: PatternView, _ shapes: SampledShapes) -> Projections? {
        let graph = view.graph
        let targets = Array(graph.nodes[attention].inputs.prefix(3))
        var stretch = Set<Int>()
        var linear: Int?
        var pending = targets
        while let value = pending.popLast() {
            if let index = view.producer(of: value, .kind(.linear)) {
                guard linear == nil || linear == index else { return nil }
                linear = index
            } else if let index = movementProducer(of: value, view) {
                if stretch.insert(index).inserted { pending.append(graph.nodes[index].inputs[0]) }
            } else {
                return nil
            }
        }
        guard let linear, let parameters = dense(linear, view), let weight = graph.constants[parameters[0]],
              weight.dtype.isFloatingPoint, weight.shape.count == 2, let input = graph.nodes[linear].input(0),
              readers(of: input, view).data == [linear]
        else { return nil }
        let projected = view.output(linear)
        // Nothing outside the stretch may read what it removes.
        for value in [projected] + stretch.flatMap({ graph.nodes[$0].outputs }) {
            let data = readers(of: value, view).data
            let expected = targets.contains(value) ? data == [attention] : !data.isEmpty && data.allSatisfy(stretch.contains)
            guard expected else { return nil }
        }
        let nodes = stretch.sorted()
        var heads: Int?
        for sample in shapes.samples.indices {
            guard let y = shapes.samples[sample][projected], let q = shapes.samples[sample][targets[0]],
                  y.count == 3, q.count == 4, targets.allSatisfy({ shapes.samples[sample][$0] == q }),
                  heads == nil || heads == q[1]
            else { return nil }
            let (windows, tokens, depth) = (q[0], q[2], q[3])
            heads = q[1]
            let channels = q[1] * depth
            guard y == [windows, tokens, 3 * channels], weight.shape[0] == 3 * channels else { return nil }
            for (part, target) in targets.enumerated() {
                guard let map = indexMap(nodes, from: projected, to: target, sample: sample, view, shapes),
                      map.count == q.reduce(1, *) else { return nil }
                for i in 0..<windows { for head in 0..<q[1] { for t in 0..<tokens { for j in 0..<depth
                    where map[((i * q[1] + head) * tokens + t) * depth + j]
                        != Float((i * tokens + t) * 3 * channels + part * channels + head * depth + j) {
                    return nil
                } } } }
            }
        }
        let bias = parameters.count > 1 ? graph.constants[parameters[1]]?.floatValues() : nil
        guard let heads, bias.map({ $0.count == weight.shape[0] }) ?? true else { return nil }
        return Projections(nodes: [linear] + nodes, input: input, weight: weight.floatValues(), weightShape: weight.shape,
                           bias: bias, heads: heads)
    }

    /// The node producing `value` when it only moves or selects elements: a view (its
    /// elements under another shape), a transpose, a gather or a slice.
    private static func movementProducer(of value: String, _ view: PatternView) -> Int? {
        view.producer(of: value, .anyOf([.traits(.isView), .kind(.transpose), .kind(.gather), .kind(.slice)]))
    }

    // MARK: Structure

    /// The steps of the partition, head merging and reverse walks (a roll is a concat of slices).
    private static let reshapeOrTranspose = OpPattern.anyOf([.kind(.reshape), .kind(.transpose)])

    /// A value's readers, split into those that read its data and `shape` nodes, which
    /// read only its shape.
    private static func readers(of value: String, _ view: PatternView) -> (data: [Int], shape: [Int]) {
        let all = view.consumers.distinctReaders(of: value)
        return (all.filter { view.graph.nodes[$0].op != .shape }, all.filter { view.graph.nodes[$0].op == .shape })
    }

    /// The weight input (and bias input, when there is one) of a linear node with
    /// constant parameters and no activation.
    private static func dense(_ index: Int, _ view: PatternView) -> [String]? {
        let node = view.graph.nodes[index]
        guard case .linear(let linear) = node.operation, linear.activation == .identity, (2...3).contains(node.inputs.count),
              node.inputs.dropFirst().allSatisfy({ view.graph.constants[$0] != nil })
        else { return nil }
        return Array(node.inputs.dropFirst())
    }

    /// True when the same value has rank 4 at every sample.
    private static func isGrid(_ value: String, _ shapes: SampledShapes) -> Bool {
        shapes.shapes(value)?.allSatisfy { $0.count == 4 } ?? false
    }

    /// When `readers` are two slices of `source` read only by one concat of just them
    /// (a roll along the concat axis), that concat.
    private static func rollConcat(of source: String, readers: [Int], _ view: PatternView) -> Int? {
        guard readers.count == 2, readers.allSatisfy({ view.isNode($0, .kind(.slice)) && view.graph.nodes[$0].inputs.first == source }),
              let concat = view.soleReader(of: view.output(readers[0]), .kind(.concat)),
              view.soleReader(of: view.output(readers[1]), .kind(.concat)) == concat,
              Set(view.graph.nodes[concat].inputs) == Set(readers.map { view.output($0) }),
              view.graph.nodes[concat].inputs.count == 2
        else { return nil }
        return concat
    }

    /// From the windows X back to the grid P: reshapes, transposes and rolls, each value
    /// read only by the next step. P is the furthest rank-4 value reached.
    private static func walkBack(from windows: String, _ view: PatternView, _ shapes: SampledShapes) -> (nodes: [Int], grid: String)? {
        let graph = view.graph
        var current = windows
        var steps: [(nodes: [Int], input: String)] = []
        while true {
            if let index = view.producer(of: current, reshapeOrTranspose),
               let input = graph.nodes[index].input(0), readers(of: input, view).data == [index] {
                steps.append(([index], input))
                current = input
            } else if let concat = view.producer(of: current, .kind(.concat)), graph.nodes[concat].inputs.count == 2,
                      let slice = view.producer(of: graph.nodes[concat].inputs[0], .kind(.slice)),
                      let source = graph.nodes[slice].input(0),
                      rollConcat(of: source, readers: readers(of: source, view).data, view) == concat {
                steps.append(([concat] + readers(of: source, view).data, source))
                current = source
            } else {
                break
            }
        }
        guard let last = steps.lastIndex(where: { isGrid($0.input, shapes) }) else { return nil }
        return (steps[...last].flatMap(\.nodes), steps[last].input)
    }

    /// From the attention output forward to the output linear, through reshapes and
    /// transposes each the only reader of what it reads.
    private static func mergeHeads(from output: String, _ view: PatternView) -> (nodes: [Int], linear: Int)? {
        var current = output
        var nodes: [Int] = []
        while readers(of: current, view).data.count == 1 {
            let index = readers(of: current, view).data[0]
            if view.isNode(index, .kind(.linear)), view.graph.nodes[index].inputs.first == current {
                return (nodes, index)
            }
            guard view.isNode(index, reshapeOrTranspose),
                  view.graph.nodes[index].inputs.first == current else { return nil }
            nodes.append(index)
            current = view.output(index)
        }
        return nil
    }

    /// From the output linear forward to the grid E: reshapes, transposes and rolls.
    /// E is the last rank-4 value reached (a crop or the reshape back to tokens follows).
    private static func walkForward(from start: String, _ view: PatternView, _ shapes: SampledShapes) -> (nodes: [Int], grid: String)? {
        var current = start
        var steps: [(nodes: [Int], output: String)] = []
        while true {
            let data = readers(of: current, view).data
            if data.count == 1, view.isNode(data[0], reshapeOrTranspose),
               view.graph.nodes[data[0]].inputs.first == current {
                steps.append((data, view.output(data[0])))
            } else if let concat = rollConcat(of: current, readers: data, view) {
                steps.append((data + [concat], view.output(concat)))
            } else {
                break
            }
            current = steps[steps.count - 1].output
        }
        guard let last = steps.lastIndex(where: { isGrid($0.output, shapes) }) else { return nil }
        return (steps[...last].flatMap(\.nodes), steps[last].output)
    }

    // MARK: Semantics

    /// Window size and shift, and where a window's token sits in a [B, Hp, Wp] grid.
    private struct Windows: Equatable {
        var size: Int
        var shift: Int

        /// Token offset in the grid of window `window`'s token `token` (both row-major):
        /// the rolled grid's (wy·ws + iy, wx·ws + ix) is the input's (… + shift) mod Hp, Wp.
        func cell(window: Int, token: Int, height: Int, width: Int) -> Int {
            let windowsPerImage = (height / size) * (width / size)
            let (b, w) = window.quotientAndRemainder(dividingBy: windowsPerImage)
            let (wy, wx) = w.quotientAndRemainder(dividingBy: width / size)
            let (iy, ix) = token.quotientAndRemainder(dividingBy: size)
            return (b * height + (wy * size + iy + shift) % height) * width + (wx * size + ix + shift) % width
        }
    }

    /// Runs `nodes` at sample `sample` with `input` holding each element's index (exact
    /// in float32 below 2²⁴), other inputs from constants and plan-time values.
    private static func indexMap(_ nodes: [Int], from input: String, to output: String, sample: Int,
                                 _ view: PatternView, _ shapes: SampledShapes) -> [Float]? {
        guard let shape = shapes.samples[sample][input], shape.reduce(1, *) < 1 << 24 else { return nil }
        var values = [input: HostTensor(shape: shape, floats: (0..<shape.reduce(1, *)).map(Float.init))]
        for index in nodes.sorted() {
            let node = view.graph.nodes[index]
            var inputs: [HostTensor?] = []
            for name in node.inputs {
                if name.isEmpty {
                    inputs.append(nil)
                } else if let value = values[name] ?? (try? view.graph.constantValue(name))
                            ?? shapes.knownValues[sample][name] {
                    inputs.append(value)
                } else {
                    return nil
                }
            }
            guard let results = try? OpKind.makeOperator(node).reference(inputs), results.count >= node.outputs.count else { return nil }
            for (name, result) in zip(node.outputs, results) { values[name] = result }
        }
        return values[output]?.floats
    }

    /// P [B, Hp, Wp, C] → X [B·nW, N, C] is roll by −shift and partition into √N-sized
    /// windows, with the same shift at every sample: that window size and shift.
    private static func checkPartition(_ nodes: [Int], from grid: String, to windows: String,
                                       _ view: PatternView, _ shapes: SampledShapes) -> Windows? {
        var found: Windows?
        for sample in shapes.samples.indices {
            guard let p = shapes.samples[sample][grid], let x = shapes.samples[sample][windows], p.count == 4, x.count == 3,
                  x[2] == p[3], let map = indexMap(nodes, from: grid, to: windows, sample: sample, view, shapes),
                  !map.isEmpty else { return nil }
            let (height, width, channels) = (p[1], p[2], p[3])
            let size = Int(Double(x[1]).squareRoot().rounded())
            guard size * size == x[1], height % size == 0, width % size == 0,
                  x[0] == p[0] * (height / size) * (width / size) else { return nil }
            // The first window's first token is the input's (shift, shift).
            let first = Int(map[0]) / channels
            guard first / width == first % width else { return nil }
            let candidate = Windows(size: size, shift: first % width)
            guard found == nil || found == candidate else { return nil }
            found = candidate
            for window in 0..<x[0] {
                for token in 0..<x[1] {
                    let cell = candidate.cell(window: window, token: token, height: height, width: width)
                    for c in 0..<channels where map[(window * x[1] + token) * channels + c] != Float(cell * channels + c) {
                        return nil
                    }
                }
            }
        }
        return found
    }

    /// A [M, h, N, d] → [M, N, h·d]: the heads' channels side by side per token.
    private static func checkMerge(_ nodes: [Int], from output: String, to merged: String, heads: Int,
                                   _ view: PatternView, _ shapes: SampledShapes) -> Bool {
        shapes.samples.indices.allSatisfy { sample in
            guard let a = shapes.samples[sample][output], a.count == 4, a[1] == heads,
                  shapes.samples[sample][merged] == [a[0], a[2], a[1] * a[3]],
                  let map = indexMap(nodes, from: output, to: merged, sample: sample, view, shapes) else { return false }
            let (m, n, d) = (a[0], a[2], a[3])
            for i in 0..<m { for t in 0..<n { for head in 0..<heads { for j in 0..<d
                where map[((i * n + t) * heads + head) * d + j] != Float(((i * heads + head) * n + t) * d + j) {
                return false
            } } } }
            return true
        }
    }

    /// O [B·nW, N, C] → E [B, Hp, Wp, C] is window reverse and roll by +shift: each
    /// window's token goes back to the grid cell it was taken from.
    private static func checkReverse(_ nodes: [Int], from windowed: String, to grid: String, _ windows: Windows,
                                     _ view: PatternView, _ shapes: SampledShapes) -> Bool {
        shapes.samples.indices.allSatisfy { sample in
            guard let o = shapes.samples[sample][windowed], let e = shapes.samples[sample][grid], o.count == 3, e.count == 4,
                  o[1] == windows.size * windows.size, o[2] == e[3], e[1] % windows.size == 0, e[2] % windows.size == 0,
                  o[0] == e[0] * (e[1] / windows.size) * (e[2] / windows.size),
                  let map = indexMap(nodes, from: windowed, to: grid, sample: sample, view, shapes) else { return false }
            let channels = o[2]
            for window in 0..<o[0] {
                for token in 0..<o[1] {
                    let cell = windows.cell(window: window, token: token, height: e[1], width: e[2])
                    for c in 0..<channels where map[cell * channels + c] != Float((window * o[1] + token) * channels + c) {
                        return false
                    }
                }
            }
            return true
        }
    }

    /// `shape` nodes reading values the fusion removes read the grid P instead when the
    /// shapes agree, or else a reshape of P (a view: the planner aliases it, nothing is
    /// copied) to [-1, dims…]: values laid out per window, [B·nW, …] with the rest fixed
    /// by the window size, heads and channels.
    private static func redirectShapeReaders(of matched: [Int], keeping kept: Set<String>, to grid: String,
                                             windows: Windows, name: String,
                                             _ view: PatternView, _ shapes: SampledShapes) -> [Rewrite]? {
        let graph = view.graph
        guard let gridShapes = shapes.shapes(grid) else { return nil }
        let windowCounts = gridShapes.map { $0[0] * ($0[1] / windows.size) * ($0[2] / windows.size) }
        var rewrites: [Rewrite] = []
        let removed = matched.flatMap { graph.nodes[$0].outputs }.filter { !kept.contains($0) }
        for value in removed {
            let shapeReaders = readers(of: value, view).shape
            guard !shapeReaders.isEmpty else { continue }
            guard let valueShapes = shapes.shapes(value) else { return nil }
            var source = grid
            var added: [Node] = []
            var constants: [ConstantTensor] = []
            if valueShapes != gridShapes {
                let rest = Array(valueShapes[0].dropFirst())
                guard valueShapes.allSatisfy({ !$0.isEmpty && Array($0.dropFirst()) == rest }),
                      valueShapes.map({ $0[0] }) == windowCounts,
                      zip(valueShapes, gridShapes).allSatisfy({ $0.reduce(1, *) == $1.reduce(1, *) }) else { return nil }
                source = graph.unusedName("\(name).shapeOf.\(value)")
                constants.append(ConstantTensor(name: graph.unusedName("\(source).target"), shape: [rest.count + 1],
                                                ints: [-1] + rest.map(Int64.init)))
                added.append(Node(name: source, .reshape(ReshapeAttributes()), inputs: [grid, constants[0].name], outputs: [source]))
            }
            for reader in shapeReaders {
                var node = graph.nodes[reader]
                node.inputs = node.inputs.map { $0 == value ? source : $0 }
                rewrites.append(Rewrite(matched: [reader], replacement: added + [node], constants: constants))
                (added, constants) = ([], [])
            }
        }
        return rewrites
    }
}
