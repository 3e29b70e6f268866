import Format

/// Resize (opsets 11–21), its predecessor Upsample (opsets 7–9) and GridSample (16–21).
/// Restore's resize takes [X, scales?, sizes?]; the region of interest, which only
/// tf_crop_and_resize reads, becomes its `regionOfInterest` attribute.
enum LowerResize {
    /// ONNX's interpolation modes (Upsample has only nearest and linear).
    static let modes: [String: ResizeAttributes.Mode] = ["nearest": .nearest, "linear": .linear, "cubic": .cubic]

    /// ONNX's coordinate_transformation_mode values.
    static let coordinateTransformations: [String: ResizeAttributes.CoordinateTransformation] = [
        "half_pixel": .halfPixel, "half_pixel_symmetric": .halfPixelSymmetric, "pytorch_half_pixel": .pytorchHalfPixel,
        "align_corners": .alignCorners, "asymmetric": .asymmetric, "tf_half_pixel_for_nearest": .tfHalfPixelForNearest,
        "tf_crop_and_resize": .tfCropAndResize,
    ]

    static let nearestModes: [String: ResizeAttributes.NearestMode] = [
        "round_prefer_floor": .roundPreferFloor, "round_prefer_ceil": .roundPreferCeil, "floor": .floor, "ceil": .ceil,
    ]

    /// Resize from version 11 (version 10 is refused by its `Lowering`). Restore's resize
    /// changes the last two axes; one that resizes others (at most two, given as constants)
    /// runs between transposes that move those axes last and back.
    static func resize(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        guard let moved = try resizedAxesOutsideLastTwo(context, node) else {
            return try resizeLastAxes(&context, node, inputShape: context.builder.shape(of: input))
        }
        let rank = moved.rank
        let permutation = (0..<rank).filter { !moved.axes.contains($0) } + moved.axes
        var inverse = [Int](repeating: 0, count: rank)
        for (position, axis) in permutation.enumerated() { inverse[axis] = position }
        var planar = node
        planar.inputs += Array(repeating: "", count: max(0, 4 - node.inputs.count))
        planar.inputs[0] = context.builder.emitValue(named: "\(node.name)/axes_last", .transpose(TransposeAttributes(perm: permutation)),
                                                     inputs: [try node.requiredInput(0)])
        planar.attributes["axes"] = .ints(Array((rank - moved.axes.count)..<rank))
        let count = moved.axes.count
        if let scales = moved.scales {
            planar.inputs[2] = context.builder.addConstant("\(node.name)/moved_scales", shape: [count], floats: scales)
            planar.inputs[3] = ""
        } else if var sizes = moved.sizes {
            // Sizes for one axis name the axis moved before it too (unchanged, so of fixed size).
            if count == 1 {
                guard let size = moved.shape[permutation[rank - 2]].fixedValue else {
                    throw LoweringFailure.unsupported("sizes for axis \(moved.axes[0]) of an input whose other sizes are symbolic")
                }
                sizes.insert(size, at: 0)
                planar.attributes["axes"] = .ints([rank - 2, rank - 1])
            }
            planar.inputs[2] = ""
            planar.inputs[3] = context.builder.addConstant("\(node.name)/moved_sizes", shape: [sizes.count], ints: sizes)
        }
        planar.outputs[0] = context.builder.freshName("\(node.name)/resized_axes_last")
        try resizeLastAxes(&context, planar, inputShape: permutation.map { moved.shape[$0] })
        context.builder.emit("\(node.name)/axes_back", .transpose(TransposeAttributes(perm: inverse)), inputs: [planar.outputs[0]],
                             outputs: [try node.output()])
    }

    /// The axes a Resize changes when some are not among the last two, with their scales
    /// or sizes in the order of those axes; nil when the last two hold every change (or
    /// that is not known when converting: the runtime's shape rule then decides). An axis
    /// listed with scale 1, or a size equal to its fixed input size, is not changed.
    private static func resizedAxesOutsideLastTwo(_ context: LoweringContext, _ node: ONNXNode)
        throws -> (rank: Int, shape: [Dim], axes: [Int], scales: [Float]?, sizes: [Int]?)? {
        let input = try node.requiredInput(0)
        guard let shape = context.builder.shape(of: input), shape.count >= 2 else { return nil }
        let rank = shape.count
        let listed = try node.ints("axes").map { axes in axes.map { $0 < 0 ? $0 + rank : $0 } } ?? Array(0..<rank)
        guard listed.allSatisfy({ (0..<rank).contains($0) }), Set(listed).count == listed.count else { return nil }
        func constant(_ index: Int) -> ConstantTensor? {
            node.input(index).flatMap { context.builder.constant($0) }.flatMap { $0.elementCount == 0 ? nil : $0 }
        }
        var changed: [(axis: Int, scale: Float?, size: Int?)] = []
        if let scales = constant(2)?.floatValues() {
            guard scales.count == listed.count else { return nil }
            changed = zip(listed, scales).filter { $0.1 != 1 }.map { ($0.0, $0.1, nil) }
        } else if let sizes = constant(3)?.intValues().map({ Int($0) }) {
            // A leading axis of symbolic size may be unchanged: the runtime's shape rule checks it.
            guard sizes.count == listed.count, !listed.contains(where: { $0 < rank - 2 && shape[$0].fixedValue == nil }) else {
                return nil
            }
            changed = zip(listed, sizes).filter { shape[$0.0].fixedValue != $0.1 }.map { ($0.0, nil, $0.1) }
        } else {
            return nil
        }
        guard changed.contains(where: { $0.axis < rank - 2 }) else { return nil }
        let mode = try node.string("coordinate_transformation_mode")
        let policy = try node.string("keep_aspect_ratio_policy") ?? "stretch"
        guard changed.count <= 2, mode != "tf_crop_and_resize", policy == "stretch" || constant(3) == nil else {
            throw LoweringFailure.unsupported("resizes axes \(changed.map(\.axis))"
                + (changed.count > 2 ? ": at most two axes at once" : " other than the last two with \(mode ?? policy)"))
        }
        let scales = changed.compactMap(\.scale), sizes = changed.compactMap(\.size)
        return (rank, shape, changed.map(\.axis), scales.isEmpty ? nil : scales, sizes.isEmpty ? nil : sizes)
    }

    /// Resize of at most the last two axes, as Restore's resize runs it, of an input of
    /// `inputShape` when known.
    private static func resizeLastAxes(_ context: inout LoweringContext, _ node: ONNXNode, inputShape: [Dim]?) throws {
        let input = try node.requiredInput(0)
        // ONNX's defaults are those of ResizeAttributes (nearest, half_pixel,
        // round_prefer_floor, A = -0.75, no exclusion).
        var attributes = ResizeAttributes()
        attributes.mode = try node.named("mode", modes) ?? attributes.mode
        attributes.coordinateTransformationMode = try node.named("coordinate_transformation_mode", coordinateTransformations)
            ?? attributes.coordinateTransformationMode
        attributes.nearestMode = try node.named("nearest_mode", nearestModes) ?? attributes.nearestMode
        attributes.cubicCoeffA = try node.float("cubic_coeff_a") ?? attributes.cubicCoeffA
        attributes.excludeOutside = try node.flag("exclude_outside", default: attributes.excludeOutside)
        attributes.antialias = try node.flag("antialias", default: attributes.antialias)
        if attributes.coordinateTransformationMode == .tfCropAndResize {
            guard !attributes.antialias else { throw LoweringFailure.unsupported("antialias with tf_crop_and_resize") }
            attributes.regionOfInterest = try regionOfInterest(node, axes: try node.ints("axes"), context: context,
                                                               rank: inputShape?.count)
            attributes.extrapolationValue = try node.float("extrapolation_value", default: 0)
        }

        // An empty constant stands for an absent input (opset 11 requires scales even when sizes are given).
        func present(_ index: Int) -> String? {
            guard let name = node.input(index) else { return nil }
            return context.builder.constant(name)?.elementCount == 0 ? nil : name
        }
        var scales = present(2)
        var sizes = present(3)
        guard scales != nil || sizes != nil else { throw LoweringFailure.invalid("needs scales or sizes") }
        if sizes != nil {
            attributes.keepAspectRatioPolicy = try node.named("keep_aspect_ratio_policy", keepAspectRatioPolicies)
                ?? attributes.keepAspectRatioPolicy
        }
        if let axes = try node.ints("axes") {
            if let scalesName = scales {
                scales = try resizedAxesInput(&context, node, scalesName, axes: axes, shape: inputShape, role: "scales")
            } else if let sizesName = sizes {
                sizes = try resizedAxesInput(&context, node, sizesName, axes: axes, shape: inputShape, role: "sizes")
            }
        }
        context.builder.emit(node.name, .resize(attributes), inputs: [input, scales ?? ""] + optional(sizes),
                             outputs: [try node.output()])
    }

    /// tf_crop_and_resize's roi (input 1, [starts…, ends…] of every axis or of `axes`) as
    /// [start H, start W, end H, end W] of the last two axes; the other axes must span
    /// the whole input (start 0, end 1), since only the last two are resized.
    private static func regionOfInterest(_ node: ONNXNode, axes: [Int]?, context: LoweringContext, rank: Int?) throws -> [Float] {
        guard let roi = try context.constantFloats(node, 1, role: "roi") else {
            throw LoweringFailure.invalid("tf_crop_and_resize needs input 'roi'")
        }
        let listed = roi.count / 2
        guard roi.count % 2 == 0, listed > 0 else { throw LoweringFailure.invalid("roi has \(roi.count) values; it needs 2 per axis") }
        guard let rank = axes == nil ? listed : rank else {
            throw LoweringFailure.unsupported("roi for axes \(axes ?? []) of an input of unknown rank")
        }
        let positions = (axes ?? Array(0..<rank)).map { $0 < 0 ? $0 + rank : $0 }
        guard rank >= 2, positions.count == listed, positions.allSatisfy({ (0..<rank).contains($0) }),
              Set(positions).count == positions.count else {
            throw LoweringFailure.invalid("roi has \(roi.count) values for axes \(positions) of rank \(rank)")
        }
        var starts = [Float](repeating: 0, count: rank), ends = [Float](repeating: 1, count: rank)
        for (index, axis) in positions.enumerated() {
            (starts[axis], ends[axis]) = (roi[index], roi[listed + index])
        }
        guard starts.dropLast(2).allSatisfy({ $0 == 0 }), ends.dropLast(2).allSatisfy({ $0 == 1 }) else {
            throw LoweringFailure.unsupported("roi \(roi) crops axes other than the last two")
        }
        return Array(starts.suffix(2)) + Array(ends.suffix(2))
    }

    static let keepAspectRatioPolicies: [String: ResizeAttributes.KeepAspectRatioPolicy] = [
        "stretch": .stretch, "not_larger": .notLarger, "not_smaller": .notSmaller,
    ]

    /// Scales or sizes given for `axes` (opset 18) in the form Restore's resize reads: one
    /// value per axis, or values for the last two axes in order. Axes that are all of them
    /// in order, or the last two in order, pass as they are; otherwise the constant is
    /// rewritten — scales with 1 for the unlisted axes, sizes for the last two (reordered),
    /// so keep_aspect_ratio_policy still weighs only the listed axes.
    private static func resizedAxesInput(_ context: inout LoweringContext, _ node: ONNXNode, _ value: String,
                                         axes: [Int], shape: [Dim]?, role: String) throws -> String {
        guard let rank = shape?.count else { throw LoweringFailure.unsupported("axes \(axes) for an input of unknown rank") }
        let normalized = axes.map { $0 < 0 ? $0 + rank : $0 }
        guard normalized.allSatisfy({ (0..<rank).contains($0) }), Set(normalized).count == normalized.count else {
            throw LoweringFailure.invalid("axes \(axes) for rank \(rank)")
        }
        let lastTwo = [rank - 2, rank - 1]
        if normalized == Array(0..<rank) || normalized == lastTwo { return value }
        guard let constant = context.builder.constant(value) else {
            throw LoweringFailure.unsupported("axes \(axes) with \(role) the graph computes (only all axes or the last two in order)")
        }
        if role == "scales" {
            let given = constant.floatValues()
            guard given.count == axes.count else { throw LoweringFailure.invalid("\(given.count) scales for axes \(axes)") }
            var full = [Float](repeating: 1, count: rank)
            for (axis, scale) in zip(normalized, given) { full[axis] = scale }
            return context.builder.addConstant("\(node.name)/scales", shape: [rank], floats: full)
        }
        let given = constant.intValues().map { Int($0) }
        guard given.count == axes.count else { throw LoweringFailure.invalid("\(given.count) sizes for axes \(axes)") }
        // The last two axes in order; one not listed, or a listed leading one, keeps its
        // size, which must then be fixed (a leading one changed moved last, `resize`).
        func fixedSize(_ axis: Int) -> Int? { shape?[axis].fixedValue }
        let keepsRatio = try node.string("keep_aspect_ratio_policy").map { $0 != "stretch" } ?? false
        guard !keepsRatio || Set(normalized) == Set(lastTwo),
              zip(normalized, given).allSatisfy({ $0 >= rank - 2 || fixedSize($0) == $1 }) else {
            throw LoweringFailure.unsupported("sizes for axes \(axes): only the last two axes can be listed with "
                                              + "keep_aspect_ratio_policy, or axes of symbolic size")
        }
        let ordered = try lastTwo.map { axis in
            guard let size = normalized.firstIndex(of: axis).map({ given[$0] }) ?? fixedSize(axis) else {
                throw LoweringFailure.unsupported("sizes for axes \(axes): axis \(axis) is not listed and its size is symbolic")
            }
            return size
        }
        return context.builder.addConstant("\(node.name)/sizes", shape: [2], ints: ordered)
    }

    /// Upsample (deprecated in opset 10) samples at output/scale without half-pixel
    /// offsets: resize with "asymmetric" coordinates and, for nearest, rounding down.
    /// Scales are an attribute before opset 9 and an input from 9 on.
    static func upsample(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        var attributes = ResizeAttributes()
        attributes.mode = try node.named("mode", default: .nearest, ["nearest": .nearest, "linear": .linear])
        attributes.coordinateTransformationMode = .asymmetric
        attributes.nearestMode = .floor
        let scales: String
        if context.opset < 9 {
            guard let values = try node.floats("scales") else { throw LoweringFailure.invalid("attribute 'scales' is required") }
            scales = context.builder.addConstant("\(node.name)/scales", shape: [values.count], floats: values)
        } else {
            scales = try node.requiredInput(1)
        }
        context.builder.emit(node.name, .resize(attributes), inputs: [input, scales], outputs: [try node.output()])
    }

    /// GridSample's interpolation names: opsets 16–19 say bilinear and bicubic, opset 20
    /// renamed them linear and cubic (the semantics did not change).
    static let gridSampleModes16: [String: GridSampleAttributes.Mode] = ["bilinear": .linear, "nearest": .nearest, "bicubic": .cubic]
    static let gridSampleModes20: [String: GridSampleAttributes.Mode] = ["linear": .linear, "nearest": .nearest, "cubic": .cubic]

    static let gridSamplePaddings: [String: GridSampleAttributes.PaddingMode] = [
        "zeros": .zeros, "border": .border, "reflection": .reflection,
    ]

    /// GridSample (opset 16 on): [X, grid] as they are, for 4-D X and (opset 20 on)
    /// volumetric 5-D X; cubic sampling of a volume is refused, as ONNX leaves it undefined.
    static func gridSample(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        guard context.opset >= 16 else { throw LoweringFailure.invalid("GridSample exists from opset 16 on") }
        let input = try node.requiredInput(0)
        let modes = context.opset >= 20 ? gridSampleModes20 : gridSampleModes16
        let mode = try node.named("mode", default: .linear, modes)
        if let rank = context.builder.rank(of: input) {
            guard rank == 4 || (rank == 5 && context.opset >= 20) else {
                throw LoweringFailure.unsupported("X of rank \(rank); GridSample \(context.opset >= 20 ? "20" : "16") "
                                                  + "samples \(context.opset >= 20 ? "4-D and 5-D" : "4-D") X")
            }
            if rank == 5 && mode == .cubic { throw LoweringFailure.invalid("cubic sampling of a 5-D X (ONNX defines it for 4-D)") }
        }
        let attributes = GridSampleAttributes(mode: mode,
                                              paddingMode: try node.named("padding_mode", default: .zeros, gridSamplePaddings),
                                              alignCorners: try node.flag("align_corners", default: false))
        context.builder.emit(node.name, .gridSample(attributes), inputs: [input, try node.requiredInput(1)],
                             outputs: [try node.output()])
    }
}
