import Format

/// Einsum (opsets 12–21) as the ops Restore already runs: one or two operands, each index
/// a single letter at most once per operand. An operand's index that appears nowhere else
/// is summed out first (`reduce` sum); one operand is then a transpose; two operands are a
/// batched matrix product — both transposed to [batch…, rows…, inner…] and
/// [batch…, inner…, columns…], the rows, inner and columns groups each merged into one
/// axis by a reshape whose shape is plan-time shape arithmetic (so H and W may stay
/// symbolic), `matMul`, the groups split again and the result transposed to the output's
/// order. Mask2Former's mask predictor (`bqc,bchw->bqhw`) is one such product.
/// Ellipses, repeated indices within an operand (diagonals) and three or more operands
/// are refused by name.
enum LowerEinsum {
    static func einsum(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        guard let text = try node.string("equation") else { throw LoweringFailure.invalid("attribute 'equation' is required") }
        let equation = try Equation(text)
        let operands = node.inputs.filter { !$0.isEmpty }
        guard operands.count == equation.operands.count else {
            throw LoweringFailure.invalid("equation '\(text)' names \(equation.operands.count) operands, the node has \(operands.count)")
        }
        var lowering = Lowering(node: node.name, builder: context.builder)
        let result = try lowering.emit(equation, operands: operands)
        context.builder = lowering.builder
        context.builder.alias(try node.output(), to: result, node: node.name)
    }

    /// A parsed equation: per operand its indices, and the output's.
    struct Equation: Equatable {
        var operands: [[Character]]
        var output: [Character]

        init(operands: [[Character]], output: [Character]) {
            self.operands = operands
            self.output = output
        }

        /// Parses `a,b->c` (spaces ignored). Without `->` the output is, as ONNX defines
        /// it, every index that appears exactly once, in alphabetical order.
        init(_ text: String) throws {
            let compact = text.filter { !$0.isWhitespace }
            if compact.contains(".") { throw LoweringFailure.unsupported("equation '\(text)': ellipsis") }
            let sides = compact.components(separatedBy: "->")
            guard sides.count <= 2 else { throw LoweringFailure.invalid("equation '\(text)' has more than one '->'") }
            operands = sides[0].split(separator: ",", omittingEmptySubsequences: false).map(Array.init)
            for indices in operands + (sides.count == 2 ? [Array(sides[1])] : []) {
                guard indices.allSatisfy({ $0.isASCII && $0.isLetter }) else {
                    throw LoweringFailure.invalid("equation '\(text)': indices must be letters")
                }
            }
            guard (1...2).contains(operands.count) else {
                throw LoweringFailure.unsupported("equation '\(text)': \(operands.count) operands (one or two are supported)")
            }
            for indices in operands where Set(indices).count != indices.count {
                throw LoweringFailure.unsupported("equation '\(text)': an index repeated within one operand (a diagonal)")
            }
            if sides.count == 2 {
                output = Array(sides[1])
                guard Set(output).count == output.count else {
                    throw LoweringFailure.invalid("equation '\(text)': an output index appears twice")
                }
                let inputIndices = Set(operands.joined())
                guard output.allSatisfy(inputIndices.contains) else {
                    throw LoweringFailure.invalid("equation '\(text)': an output index appears in no operand")
                }
            } else {
                let all = operands.joined()
                output = Set(all).filter { index in all.filter { $0 == index }.count == 1 }.sorted()
            }
        }
    }

    /// Emits the nodes of one equation through a builder of its own, naming them after the node.
    private struct Lowering {
        let node: String
        var builder: GraphBuilder

        mutating func emit(_ equation: Equation, operands: [String]) throws -> String {
            var values = operands
            var indices = equation.operands
            // Sum out what only one operand holds and the output does not keep.
            for (operand, own) in indices.enumerated() {
                let elsewhere = Set(equation.output + indices.enumerated().filter { $0.offset != operand }.flatMap(\.element))
                let summed = own.indices.filter { !elsewhere.contains(own[$0]) }
                guard !summed.isEmpty else { continue }
                values[operand] = value("sum\(operand)", .reduce(ReduceAttributes(function: .sum, axes: summed, keepDims: false)),
                                        [values[operand]])
                indices[operand] = own.enumerated().filter { !summed.contains($0.offset) }.map(\.element)
            }
            if indices.count == 1 { return transpose(values[0], from: indices[0], to: equation.output) }

            let (left, right) = (indices[0], indices[1])
            let batch = equation.output.filter { left.contains($0) && right.contains($0) }
            let rows = equation.output.filter { left.contains($0) && !right.contains($0) }
            let columns = equation.output.filter { right.contains($0) && !left.contains($0) }
            let inner = left.filter { right.contains($0) && !equation.output.contains($0) }

            let leftOrder = batch + rows + inner
            let rightOrder = batch + inner + columns
            let a = transpose(values[0], from: left, to: leftOrder)
            let b = transpose(values[1], from: right, to: rightOrder)
            let aShape = value("shapeA", .shape(ShapeAttributes()), [a])
            let bShape = value("shapeB", .shape(ShapeAttributes()), [b])
            let batchDims = dims(aShape, positions: Array(batch.indices))
            let matrixA = merge(a, into: [batchDims, product(aShape, positions: positions(rows, in: leftOrder)),
                                          product(aShape, positions: positions(inner, in: leftOrder))],
                                unchangedWhen: rows.count == 1 && inner.count == 1, name: "matrixA")
            let matrixB = merge(b, into: [batchDims, product(bShape, positions: positions(inner, in: rightOrder)),
                                          product(bShape, positions: positions(columns, in: rightOrder))],
                                unchangedWhen: inner.count == 1 && columns.count == 1, name: "matrixB")
            let product = value("matMul", .matMul, [matrixA, matrixB])
            let productOrder = batch + rows + columns
            let split = merge(product, into: [batchDims, dims(aShape, positions: positions(rows, in: leftOrder)),
                                              dims(bShape, positions: positions(columns, in: rightOrder))],
                              unchangedWhen: rows.count == 1 && columns.count == 1, name: "split")
            return transpose(split, from: productOrder, to: equation.output)
        }

        private func positions(_ group: [Character], in order: [Character]) -> [Int] {
            group.map { order.firstIndex(of: $0)! }
        }

        private mutating func value(_ hint: String, _ operation: Op, _ inputs: [String]) -> String {
            builder.emitValue(named: "\(node)/\(hint)", operation, inputs: inputs)
        }

        private mutating func transpose(_ input: String, from: [Character], to order: [Character]) -> String {
            let permutation = order.map { from.firstIndex(of: $0)! }
            guard permutation != Array(permutation.indices) else { return input }
            return value("transpose", .transpose(TransposeAttributes(perm: permutation)), [input])
        }

        /// The dims at `positions` of a shape, as a 1-D int64 value (possibly empty).
        private mutating func dims(_ shape: String, positions: [Int]) -> String {
            let indices = builder.addConstant("\(node)/positions", shape: [positions.count], ints: positions)
            return value("dims", .gather(GatherAttributes(axis: 0)), [shape, indices])
        }

        /// The product of the dims at `positions` (1 for none), as a 1-element value.
        private mutating func product(_ shape: String, positions: [Int]) -> String {
            guard let first = positions.first else { return builder.addConstant("\(node)/one", shape: [1], ints: [1]) }
            return positions.dropFirst().reduce(dims(shape, positions: [first])) { partial, position in
                value("product", .binary(.mul), [partial, dims(shape, positions: [position])])
            }
        }

        /// Reshapes `input` to the concatenation of `parts`, unless the shape cannot change.
        private mutating func merge(_ input: String, into parts: [String], unchangedWhen unchanged: Bool, name: String) -> String {
            guard !unchanged else { return input }
            let shape = value("\(name)Shape", .concat(ConcatAttributes(axis: 0)), parts)
            return value(name, .reshape(ReshapeAttributes()), [input, shape])
        }
    }
}
