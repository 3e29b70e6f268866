import Format

/// Resize (opsets 11–21), its predecessor Upsample (opsets 7–9) and GridSample (16–21).
/// Restore's resize takes [X, scales?, sizes?]; the region of interest only serves
/// tf_crop_and_resize, which Restore does not support, so it is dropped.
enum LowerResize {
    /// ONNX's interpolation modes (Upsample has only nearest and linear).
    static let modes: [String: ResizeAttributes.Mode] = ["nearest": .nearest, "linear": .linear, "cubic": .cubic]

    /// ONNX's coordinate_transformation_mode values but tf_crop_and_resize, which is
    /// refused as unsupported before this table is read.
    static let coordinateTransformations: [String: ResizeAttributes.CoordinateTransformation] = [
        "half_pixel": .halfPixel, "half_pixel_symmetric": .halfPixelSymmetric, "pytorch_half_pixel": .pytorchHalfPixel,
        "align_corners": .alignCorners, "asymmetric": .asymmetric, "tf_half_pixel_for_nearest": .tfHalfPixelForNearest,
    ]

    static let nearestModes: [String: ResizeAttributes.NearestMode] = [
        "round_prefer_floor": .roundPreferFloor, "round_prefer_ceil": .roundPreferCeil, "floor": .floor, "ceil": .ceil,
    ]

    /// Resize from version 11 (version 10 is refused by its `Lowering`).
    static func resize(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        if try node.string("coordinate_transformation_mode") == "tf_crop_and_resize" {
            throw LoweringFailure.unsupported("coordinate_transformation_mode tf_crop_and_resize")
        }
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
            let rank = context.builder.rank(of: input)
            if let scalesName = scales {
                scales = try resizedAxesInput(&context, node, scalesName, axes: axes, rank: rank, role: "scales")
            } else if let sizesName = sizes {
                sizes = try resizedAxesInput(&context, node, sizesName, axes: axes, rank: rank, role: "sizes")
            }
        }
        context.builder.emit(node.name, .resize(attributes), inputs: [input, scales ?? ""] + optional(sizes),
                             outputs: [try node.output()])
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
                                         axes: [Int], rank: Int?, role: String) throws -> String {
        guard let rank else { throw LoweringFailure.unsupported("axes \(axes) for an input of unknown rank") }
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
        let given = constant.intValues()
        guard given.count == axes.count else { throw LoweringFailure.invalid("\(given.count) sizes for axes \(axes)") }
        guard Set(normalized) == Set(lastTwo) else {
            throw LoweringFailure.unsupported("sizes for axes \(axes): with sizes, only the last two axes can be listed")
        }
        let ordered = lastTwo.map { axis in given[normalized.firstIndex(of: axis)!] }
        return context.builder.addConstant("\(node.name)/sizes", shape: [2], ints: ordered.map { Int($0) })
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
