import Format

/// Resize (opsets 11–21) and its predecessor Upsample (opsets 7–9). Restore's resize
/// takes [X, scales?, sizes?]; the region of interest only serves tf_crop_and_resize,
/// which Restore does not support, so it is dropped.
enum LowerResize {
    static func resize(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        guard context.opset >= 11 else {
            throw LoweringFailure.unsupported("Resize before opset 11; re-export with opset 11 or newer")
        }
        let input = try node.requiredInput(0)
        let coordinates = try node.string("coordinate_transformation_mode", default: "half_pixel")
        if coordinates == "tf_crop_and_resize" { throw LoweringFailure.unsupported("coordinate_transformation_mode tf_crop_and_resize") }
        if try node.int("antialias", default: 0) != 0 { throw LoweringFailure.unsupported("antialias=1") }
        let mode = try node.string("mode", default: "nearest")
        guard ["nearest", "linear", "cubic"].contains(mode) else {
            throw LoweringFailure.invalid("mode '\(mode)' is not an ONNX value")
        }

        // An empty constant stands for an absent input (opset 11 requires scales even when sizes are given).
        func present(_ index: Int) -> String? {
            guard let name = node.input(index) else { return nil }
            return context.constant(name)?.elementCount == 0 ? nil : name
        }
        let scales = present(2)
        let sizes = present(3)
        guard scales != nil || sizes != nil else { throw LoweringFailure.invalid("needs scales or sizes") }
        if sizes != nil, try node.string("keep_aspect_ratio_policy", default: "stretch") != "stretch" {
            throw LoweringFailure.unsupported("keep_aspect_ratio_policy other than stretch")
        }
        if let axes = try node.ints("axes") {
            let rank = context.rank(of: input)
            let normalized = axes.map { $0 < 0 ? $0 + (rank ?? 0) : $0 }
            guard let rank, normalized == Array(0..<rank) else {
                throw LoweringFailure.unsupported("axes \(axes) other than all axes in order")
            }
        }

        var attributes: [String: Attribute] = [
            "mode": .string(mode),
            "coordinateTransformationMode": .string(coordinates),
            "nearestMode": .string(try node.string("nearest_mode", default: "round_prefer_floor")),
        ]
        attributes.set("cubicCoeffA", try node.float("cubic_coeff_a"))
        attributes.set("excludeOutside", try node.int("exclude_outside"))
        try context.emit(node.name, .resize, inputs: [input, scales ?? ""] + optional(sizes),
                     outputs: [try node.output()], attributes: attributes)
    }

    /// Upsample (deprecated in opset 10) samples at output/scale without half-pixel
    /// offsets: resize with "asymmetric" coordinates and, for nearest, rounding down.
    /// Scales are an attribute before opset 9 and an input from 9 on.
    static func upsample(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        guard context.opset <= 9 else { throw LoweringFailure.unsupported("Upsample is deprecated from opset 10; use Resize") }
        let input = try node.requiredInput(0)
        let mode = try node.string("mode", default: "nearest")
        guard mode == "nearest" || mode == "linear" else { throw LoweringFailure.invalid("mode '\(mode)' is not an ONNX value") }
        let scales: String
        if context.opset < 9 {
            guard let values = try node.floats("scales") else { throw LoweringFailure.invalid("attribute 'scales' is required") }
            scales = context.addConstant("\(node.name)/scales", shape: [values.count], floats: values)
        } else {
            scales = try node.requiredInput(1)
        }
        try context.emit(node.name, .resize, inputs: [input, scales], outputs: [try node.output()], attributes: [
            "mode": .string(mode), "coordinateTransformationMode": .string("asymmetric"), "nearestMode": .string("floor"),
        ])
    }
}
