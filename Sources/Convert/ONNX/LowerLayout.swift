import Format

/// Layout and data-movement ops. Where ONNX moved an attribute to an input over the
/// opsets, the older form becomes a constant input (Restore's op takes the input) or the
/// newer constant input becomes an attribute (Restore's op takes the attribute).
enum LowerLayout {
    static func concat(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        guard let axis = try node.int("axis") else { throw LoweringFailure.invalid("attribute 'axis' is required") }
        context.builder.emit(node.name, .concat(ConcatAttributes(axis: axis)), inputs: node.inputs.filter { !$0.isEmpty },
                             outputs: [try node.output()])
    }

    /// Split: sizes from the `split` attribute (opset < 13) or input 1 (13+); without
    /// sizes the input is cut into one part per output (`num_outputs` of opset 18 names
    /// the same count).
    static func split(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        var inputs = [input]
        if context.opset < 13 {
            if let sizes = try node.ints("split") {
                inputs.append(context.builder.addConstant("\(node.name)/split", shape: [sizes.count], ints: sizes))
            }
        } else if let sizes = node.input(1) {
            inputs.append(sizes)
        }
        if let declared = try node.int("num_outputs"), declared != node.outputs.count {
            throw LoweringFailure.invalid("num_outputs \(declared) differs from the \(node.outputs.count) outputs")
        }
        let attributes = SplitAttributes(axis: try node.int("axis", default: 0), numOutputs: node.outputs.count)
        context.builder.emit(node.name, .split(attributes), inputs: inputs, outputs: node.outputs)
    }

    /// Slice: starts/ends/axes are attributes before opset 10, inputs after.
    static func slice(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        var inputs: [String]
        if context.opset < 10 {
            guard let starts = try node.ints("starts"), let ends = try node.ints("ends") else {
                throw LoweringFailure.invalid("attributes 'starts' and 'ends' are required")
            }
            inputs = [input,
                      context.builder.addConstant("\(node.name)/starts", shape: [starts.count], ints: starts),
                      context.builder.addConstant("\(node.name)/ends", shape: [ends.count], ints: ends)]
            if let axes = try node.ints("axes") {
                inputs.append(context.builder.addConstant("\(node.name)/axes", shape: [axes.count], ints: axes))
            }
        } else {
            inputs = [input, try node.requiredInput(1), try node.requiredInput(2)]
            inputs += [node.input(3) ?? "", node.input(4) ?? ""]
            while inputs.last == "" { inputs.removeLast() }
        }
        context.builder.emit(node.name, .slice, inputs: inputs, outputs: [try node.output()])
    }

    static func reshape(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let attributes = ReshapeAttributes(allowZero: try node.flag("allowzero", default: false))
        context.builder.emit(node.name, .reshape(attributes), inputs: [try node.requiredInput(0), try node.requiredInput(1)],
                             outputs: [try node.output()])
    }

    static func transpose(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        context.builder.emit(node.name, .transpose(TransposeAttributes(perm: try node.ints("perm") ?? [])),
                             inputs: [try node.requiredInput(0)], outputs: [try node.output()])
    }

    /// Squeeze: axes attribute before opset 13, optional constant input after; none = all size-1 axes.
    static func squeeze(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let axes = try axesOfSqueeze(context, node) ?? []
        context.builder.emit(node.name, .squeeze(SqueezeAttributes(axes: axes)), inputs: [try node.requiredInput(0)],
                             outputs: [try node.output()])
    }

    static func unsqueeze(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        guard let axes = try axesOfSqueeze(context, node) else { throw LoweringFailure.invalid("axes are required") }
        context.builder.emit(node.name, .unsqueeze(UnsqueezeAttributes(axes: axes)), inputs: [try node.requiredInput(0)],
                             outputs: [try node.output()])
    }

    private static func axesOfSqueeze(_ context: LoweringContext, _ node: ONNXNode) throws -> [Int]? {
        context.opset < 13 ? try node.ints("axes") : try context.constantInts(node, 1, role: "axes")
    }

    static func flatten(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        context.builder.emit(node.name, .flatten(FlattenAttributes(axis: try node.int("axis", default: 1))),
                             inputs: [try node.requiredInput(0)], outputs: [try node.output()])
    }

    /// ONNX's Pad modes that Restore has; "wrap" (opset 19) it has not.
    static let padModes: [String: PadAttributes.Mode] = ["constant": .constant, "reflect": .reflect, "edge": .edge]

    /// Pad: pads and value are attributes before opset 11 (made constant inputs), inputs
    /// from 11 on; `axes` (18) passes through.
    static func pad(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        if try node.string("mode") == "wrap" { throw LoweringFailure.unsupported("mode 'wrap'") }
        let mode = try node.named("mode", default: .constant, padModes)
        let input = try node.requiredInput(0)
        var inputs: [String]
        if context.opset < 11 {
            guard let pads = try node.ints("pads") else { throw LoweringFailure.invalid("attribute 'pads' is required") }
            inputs = [input, context.builder.addConstant("\(node.name)/pads", shape: [pads.count], ints: pads)]
            if let value = try node.float("value"), value != 0 {
                inputs.append(context.builder.addConstant("\(node.name)/value", shape: [], floats: [value]))
            }
        } else {
            inputs = [input, try node.requiredInput(1), node.input(2) ?? "", node.input(3) ?? ""]
            while inputs.last == "" { inputs.removeLast() }
        }
        context.builder.emit(node.name, .pad(PadAttributes(mode: mode)), inputs: inputs, outputs: [try node.output()])
    }

    /// CenterCropPad (18): each listed axis cropped to, or zero-padded to, its size in
    /// `shape`, centred (the odd element goes at the end): a slice, then a pad. The sizes
    /// must be a constant and the axes' input sizes fixed in the file.
    static func centerCropPad(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        guard let sizes = try context.constantInts(node, 1, role: "shape") else { throw LoweringFailure.invalid("needs 'shape'") }
        guard let dims = context.builder.shape(of: input) else { throw LoweringFailure.unsupported("an input of unknown shape") }
        let rank = dims.count
        let axes = try (node.ints("axes") ?? Array(0..<rank)).map { $0 < 0 ? $0 + rank : $0 }
        guard axes.count == sizes.count, axes.allSatisfy({ (0..<rank).contains($0) }), Set(axes).count == axes.count else {
            throw LoweringFailure.invalid("shape \(sizes) and axes \(axes) for rank \(rank)")
        }
        var (starts, ends, cropAxes) = ([Int](), [Int](), [Int]())
        var pads = [Int](repeating: 0, count: 2 * rank)
        for (axis, size) in zip(axes, sizes) {
            guard let dim = dims[axis].fixedValue else {
                throw LoweringFailure.unsupported("axis \(axis) of a size the file does not fix")
            }
            guard size >= 0 else { throw LoweringFailure.invalid("shape \(sizes) has a negative size") }
            if size < dim {
                let start = (dim - size) / 2
                (starts, ends, cropAxes) = (starts + [start], ends + [start + size], cropAxes + [axis])
            } else if size > dim {
                pads[axis] = (size - dim) / 2
                pads[rank + axis] = size - dim - pads[axis]
            }
        }
        var value = input
        if !cropAxes.isEmpty {
            value = context.builder.emitValue(named: "\(node.name)/crop", .slice, inputs: [
                value,
                context.builder.addConstant("\(node.name)/starts", shape: [starts.count], ints: starts),
                context.builder.addConstant("\(node.name)/ends", shape: [ends.count], ints: ends),
                context.builder.addConstant("\(node.name)/axes", shape: [cropAxes.count], ints: cropAxes),
            ])
        }
        if pads.contains(where: { $0 != 0 }) {
            value = context.builder.emitValue(named: "\(node.name)/pad", .pad(PadAttributes(mode: .constant)), inputs: [
                value, context.builder.addConstant("\(node.name)/pads", shape: [pads.count], ints: pads),
            ])
        }
        context.builder.alias(try node.output(), to: value, node: node.name)
    }

    static let depthToSpaceModes: [String: DepthToSpaceAttributes.Mode] = ["DCR": .depthColumnRow, "CRD": .columnRowDepth]

    static func depthToSpace(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        guard let blockSize = try node.int("blocksize") else { throw LoweringFailure.invalid("attribute 'blocksize' is required") }
        let mode = try node.named("mode", default: .depthColumnRow, depthToSpaceModes)
        context.builder.emit(node.name, .depthToSpace(DepthToSpaceAttributes(blockSize: blockSize, mode: mode)),
                             inputs: [try node.requiredInput(0)], outputs: [try node.output()])
    }

    /// SpaceToDepth: versions before 28 order the output channels as mode DCR does;
    /// version 28's `mode` may choose CRD.
    static func spaceToDepth(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        guard let blockSize = try node.int("blocksize") else { throw LoweringFailure.invalid("attribute 'blocksize' is required") }
        let mode = node.version >= 28 ? try node.named("mode", default: .depthColumnRow, depthToSpaceModes) : .depthColumnRow
        context.builder.emit(node.name, .spaceToDepth(SpaceToDepthAttributes(blockSize: blockSize, mode: mode)),
                             inputs: [try node.requiredInput(0)], outputs: [try node.output()])
    }

    static func gather(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        context.builder.emit(node.name, .gather(GatherAttributes(axis: try node.int("axis", default: 0))),
                             inputs: [try node.requiredInput(0), try node.requiredInput(1)], outputs: [try node.output()])
    }

    static let scatterReductions: [String: ScatterNDAttributes.Reduction] = [
        "none": .none, "add": .add, "mul": .mul, "max": .max, "min": .min,
    ]

    /// ScatterND: `reduction` is "none" before opset 16.
    static func scatterND(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let inputs = try (0..<3).map { try node.requiredInput($0) }
        let reduction = try node.named("reduction", default: .none, scatterReductions)
        context.builder.emit(node.name, .scatterND(ScatterNDAttributes(reduction: reduction)), inputs: inputs,
                             outputs: [try node.output()])
    }

    /// GatherElements (11, 13: the same semantics, 13 widens the types).
    static func gatherElements(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        context.builder.emit(node.name, .gatherElements(GatherAttributes(axis: try node.int("axis", default: 0))),
                             inputs: [try node.requiredInput(0), try node.requiredInput(1)], outputs: [try node.output()])
    }

    /// ScatterElements, and Scatter (9, deprecated in 11 for it, the same op without
    /// `reduction`): `reduction` add/mul from version 16, max/min from 18.
    static func scatterElements(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let inputs = try (0..<3).map { try node.requiredInput($0) }
        let reduction = node.opType == "ScatterElements" ? try node.named("reduction", default: .none, scatterReductions) : .none
        let attributes = ScatterElementsAttributes(axis: try node.int("axis", default: 0), reduction: reduction)
        context.builder.emit(node.name, .scatterElements(attributes), inputs: inputs, outputs: [try node.output()])
    }

    /// GatherND: `batch_dims` from version 12 (0 before).
    static func gatherND(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let batchDims = try node.int("batch_dims", default: 0)
        guard batchDims >= 0 else { throw LoweringFailure.invalid("batch_dims must be >= 0, found \(batchDims)") }
        context.builder.emit(node.name, .gatherND(GatherNDAttributes(batchDims: batchDims)),
                             inputs: [try node.requiredInput(0), try node.requiredInput(1)], outputs: [try node.output()])
    }

    static func reverseSequence(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let attributes = ReverseSequenceAttributes(batchAxis: try node.int("batch_axis", default: 1),
                                                   timeAxis: try node.int("time_axis", default: 0))
        guard Set([attributes.batchAxis, attributes.timeAxis]) == [0, 1] else {
            throw LoweringFailure.invalid("batch_axis and time_axis must be 0 and 1, found \(attributes.batchAxis) and \(attributes.timeAxis)")
        }
        context.builder.emit(node.name, .reverseSequence(attributes),
                             inputs: [try node.requiredInput(0), try node.requiredInput(1)], outputs: [try node.output()])
    }

    /// OneHot: Y = where(unsqueeze(indices, axis) = class, on, off) against the constant
    /// classes 0…depth−1 laid along `axis`. Float indices are truncated toward zero, as
    /// ONNX says non-integer indices are cast; a negative index counts from the end, an
    /// index outside −depth…depth−1 gives a row of off_value. (Version 9 leaves negative
    /// indices out of range; onnxruntime counts them from the end there too, and so does
    /// Restore.) `depth` and `values` must be constants; a non-negative `axis` needs the
    /// indices' rank known at import (the classes' trailing unit axes).
    static func oneHot(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let indices = try node.requiredInput(0)
        guard let depthValues = try context.constantFloats(node, 1, role: "depth"), depthValues.count == 1,
              let depth = Int(exactly: depthValues[0].rounded(.towardZero)), depth > 0 else {
            throw LoweringFailure.invalid("input 'depth' must hold one positive number")
        }
        guard let values = try context.constantFloats(node, 2, role: "values"), values.count == 2,
              let valuesType = context.elementType(of: try node.requiredInput(2)), valuesType.isFloatingPoint else {
            throw LoweringFailure.unsupported("'values' must be a constant pair of floats (Restore computes in float32)")
        }
        let attribute = try node.int("axis", default: -1)
        let trailing: Int
        if attribute < 0 {
            trailing = -attribute - 1
        } else {
            guard let rank = context.builder.rank(of: indices) else {
                throw LoweringFailure.unsupported("a non-negative axis with indices of unknown rank")
            }
            guard attribute <= rank else { throw LoweringFailure.invalid("axis \(attribute) is out of range for rank \(rank + 1)") }
            trailing = rank - attribute
        }
        let name = node.name
        var index = indices
        if context.elementType(of: indices)?.isFloatingPoint ?? true {
            let zero = context.builder.addConstant("\(name)/zero", shape: [], floats: [0])
            let negative = context.builder.binary(.less, index, zero, name: "\(name)/negative")
            let up = context.builder.unary(Activation(function: .ceil), index, name: "\(name)/ceil")
            let down = context.builder.unary(Activation(function: .floor), index, name: "\(name)/floor")
            index = context.builder.emitValue(named: "\(name)/truncated", .where, inputs: [negative, up, down])
        } else {
            index = context.builder.emitValue(named: "\(name)/as_float", .cast(CastAttributes(to: .float32)), inputs: [index])
        }
        let origin = context.builder.addConstant("\(name)/origin", shape: [], floats: [0])
        let fromEnd = context.builder.binary(.less, index, origin, name: "\(name)/from_end")
        let depthConstant = context.builder.addConstant("\(name)/depth", shape: [], floats: [Float(depth)])
        let wrapped = context.builder.binary(.add, index, depthConstant, name: "\(name)/wrapped")
        index = context.builder.emitValue(named: "\(name)/counted", .where, inputs: [fromEnd, wrapped, index])
        let axis = -trailing - 1
        let unsqueezed = context.builder.emitValue(named: "\(name)/unsqueezed", .unsqueeze(UnsqueezeAttributes(axes: [axis])), inputs: [index])
        let classes = context.builder.addConstant("\(name)/classes", shape: [depth] + Array(repeating: 1, count: trailing),
                                                  floats: (0..<depth).map(Float.init))
        let hit = context.builder.binary(.equal, unsqueezed, classes, name: "\(name)/hit")
        let off = context.builder.addConstant("\(name)/off", shape: [], floats: [values[0]])
        let on = context.builder.addConstant("\(name)/on", shape: [], floats: [values[1]])
        context.builder.emit(name, .where, inputs: [hit, on, off], outputs: [try node.output()])
    }

    /// Ops whose inputs map one to one and that have no attributes (Expand, Tile, Range, MatMul …).
    static func direct(_ operation: Op, inputCount: Int) -> LoweringRule {
        { context, node in
            let inputs = try (0..<inputCount).map { try node.requiredInput($0) }
            context.builder.emit(node.name, operation, inputs: inputs, outputs: [try node.output()])
        }
    }
}
