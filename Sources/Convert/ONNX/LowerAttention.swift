import Format
import Foundation

/// ONNX Attention (opset 23; 24 adds `nonpad_kv_seqlen`, 25 sliding windows), as opset-23
/// exporters write it for the attention of every ViT and Swin: lowered onto Restore's
/// `attention` op, softmax(scale·Q·Kᵀ + bias)·V, whose kernel the fused attention of
/// older exports already uses.
///
/// Lowered: 4-D Q/K/V [B, heads, S, D] and 3-D [B, S, heads·D] (with q_num_heads and
/// kv_num_heads), grouped-query heads (kv_num_heads dividing q_num_heads: the heads that
/// share a key/value head are stacked along the query axis), a float or boolean mask
/// (a constant mask shorter than the keys is padded as ONNX says), and is_causal (key j
/// attends query i iff j ≤ i without a cache). Refused: key/value caches (past_key,
/// present_key, nonpad_kv_seqlen: decoding), softcap, the qk_matmul_output debug output,
/// sliding windows, and a mask the graph computes that could leave a query row with no
/// key (a boolean one, or one combined with is_causal). ONNX and onnxruntime define such
/// a row as zeros, where the softmax alone would give NaN; a constant mask's empty rows
/// are known at import, so they get a zero bias (a finite softmax) and the rows of the
/// result are multiplied by 0.
enum LowerAttention {
    static func attention(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let query = try node.requiredInput(0)
        let key = try node.requiredInput(1)
        let value = try node.requiredInput(2)
        if node.input(4) != nil || node.input(5) != nil || node.input(6) != nil {
            throw LoweringFailure.unsupported("key/value caches (past_key, past_value, nonpad_kv_seqlen)")
        }
        try context.requireUnusedOutputs(node, from: 1, what: "present key/value or qk_matmul")
        if try node.float("softcap", default: 0) != 0 { throw LoweringFailure.unsupported("softcap") }
        if try node.int("left_window_size", default: -1) != -1 || (try node.int("right_window_size", default: -1)) != -1 {
            throw LoweringFailure.unsupported("sliding-window attention")
        }
        let queryShape = context.builder.shape(of: query)
        let keyShape = context.builder.shape(of: key)
        let rank = queryShape?.count
        let threeD = rank == 3
        guard rank == 3 || rank == 4 else { throw LoweringFailure.unsupported("Q of unknown rank (3 or 4 is needed at import)") }

        var queryHeads = try node.int("q_num_heads", default: 0)
        var keyHeads = try node.int("kv_num_heads", default: 0)
        var q = query, k = key, v = value
        if threeD {
            guard queryHeads > 0, keyHeads > 0 else { throw LoweringFailure.invalid("3-D inputs need q_num_heads and kv_num_heads") }
            q = splitHeads(&context, query, heads: queryHeads, name: "\(node.name)/q_heads")
            k = splitHeads(&context, key, heads: keyHeads, name: "\(node.name)/k_heads")
            v = splitHeads(&context, value, heads: keyHeads, name: "\(node.name)/v_heads")
        } else {
            guard let qh = queryShape?[1].fixedValue, let kh = keyShape?[1].fixedValue else {
                throw LoweringFailure.unsupported("head counts not fixed in the model")
            }
            queryHeads = qh
            keyHeads = kh
        }
        guard keyHeads > 0, queryHeads % keyHeads == 0 else {
            throw LoweringFailure.invalid("q heads \(queryHeads) are not a multiple of kv heads \(keyHeads)")
        }
        let group = queryHeads / keyHeads

        let headSize: Int? = threeD ? queryShape?[2].fixedValue.map { $0 / queryHeads } : queryShape?[3].fixedValue
        let scale: Float
        if let given = try node.float("scale"), given != 0 {
            scale = given
        } else {
            guard let headSize else { throw LoweringFailure.unsupported("the default scale needs the head size fixed in the model") }
            scale = 1 / Float(headSize).squareRoot()
        }

        let querySequence = queryShape?[threeD ? 1 : 2].fixedValue
        let keySequence = keyShape?[threeD ? 1 : 2].fixedValue
        let (bias, keptRows) = try attentionBias(&context, node, querySequence: querySequence, keySequence: keySequence,
                                                 queryHeads: queryHeads, group: group)

        if group > 1 {
            // Heads h·group … h·group + group − 1 share key/value head h: stack them along
            // the query axis, [B, kvH, group·Sq, D], then unstack the result.
            let stacked = context.builder.addConstant("\(node.name)/stacked_shape", shape: [4], ints: [0, keyHeads, -1, 0])
            q = context.builder.emitValue(named: "\(node.name)/q_stacked", .reshape(ReshapeAttributes()), inputs: [q, stacked])
        }
        var result = context.builder.emitValue(named: "\(node.name)/attention", .attention(AttentionAttributes(scale: scale)),
                                               inputs: [q, k, v] + optional(bias))
        if group > 1 {
            let unstacked = context.builder.addConstant("\(node.name)/unstacked_shape", shape: [4], ints: [0, queryHeads, -1, 0])
            result = context.builder.emitValue(named: "\(node.name)/unstacked", .reshape(ReshapeAttributes()), inputs: [result, unstacked])
        }
        if let keptRows {
            result = context.builder.binary(.mul, result, keptRows, name: "\(node.name)/empty_rows_zeroed")
        }
        if threeD {
            let merged = context.builder.emitValue(named: "\(node.name)/merge_heads",
                                                   .transpose(TransposeAttributes(perm: [0, 2, 1, 3])), inputs: [result])
            let flat = context.builder.addConstant("\(node.name)/merged_shape", shape: [3], ints: [0, 0, -1])
            result = context.builder.emitValue(named: "\(node.name)/merged", .reshape(ReshapeAttributes()), inputs: [merged, flat])
        }
        context.builder.alias(try node.output(), to: result, node: node.name)
    }

    /// [B, S, heads·D] → [B, heads, S, D].
    private static func splitHeads(_ context: inout LoweringContext, _ input: String, heads: Int, name: String) -> String {
        let shape = context.builder.addConstant("\(name)_shape", shape: [4], ints: [0, 0, heads, -1])
        let split = context.builder.emitValue(named: "\(name)_split", .reshape(ReshapeAttributes()), inputs: [input, shape])
        return context.builder.emitValue(named: name, .transpose(TransposeAttributes(perm: [0, 2, 1, 3])), inputs: [split])
    }

    /// The additive bias of the mask and the causal frontier, or nil when there is neither.
    /// A constant mask (with the causal part) becomes one constant; when it leaves query
    /// rows with no key, those rows' bias is 0 instead and `keptRows` is a constant
    /// [B or 1, heads or 1, Sq, 1] of 1s with 0 at those rows, for the result. A computed
    /// float mask is passed as it is.
    private static func attentionBias(_ context: inout LoweringContext, _ node: ONNXNode, querySequence: Int?,
                                      keySequence: Int?, queryHeads: Int,
                                      group: Int) throws -> (bias: String?, keptRows: String?) {
        let causal = try node.flag("is_causal", default: false)
        let mask = node.input(3)
        guard causal || mask != nil else { return (nil, nil) }
        guard let querySequence, let keySequence else {
            throw LoweringFailure.unsupported("a mask or is_causal with sequence lengths not fixed in the model")
        }
        var biasShape = [1, 1, querySequence, keySequence]
        var bias = [Float](repeating: 0, count: querySequence * keySequence)
        if let mask {
            guard let tensor = context.builder.constant(mask) else {
                guard context.elementType(of: mask)?.isFloatingPoint == true, !causal, group == 1,
                      context.builder.shape(of: mask)?.last?.fixedValue == keySequence else {
                    throw LoweringFailure.unsupported("a mask the graph computes that is boolean, shorter than the keys, "
                                                      + "combined with is_causal or grouped heads (a row with no key would differ)")
                }
                return (mask, nil)
            }
            (biasShape, bias) = try constantMaskBias(tensor, querySequence: querySequence, keySequence: keySequence)
        }
        if causal {
            let rows = biasShape.dropLast().reduce(1, *)
            for row in 0..<rows {
                let i = row % querySequence
                for j in (i + 1)..<max(i + 1, keySequence) { bias[row * keySequence + j] = -.infinity }
            }
        }
        var kept = [Float](repeating: 1, count: bias.count / keySequence)
        for row in kept.indices where bias[(row * keySequence)..<((row + 1) * keySequence)].allSatisfy({ $0 == -.infinity }) {
            kept[row] = 0
            bias.replaceSubrange((row * keySequence)..<((row + 1) * keySequence), with: repeatElement(0, count: keySequence))
        }
        let keptRows = kept.contains(0)
            ? context.builder.addConstant("\(node.name)/kept_rows", shape: Array(biasShape.dropLast()) + [1], floats: kept)
            : nil
        if group > 1 {
            // The bias follows the query heads stacked per key/value head.
            let heads = biasShape[1]
            if heads == 1 {
                let rows = biasShape[2] * keySequence
                var tiled: [Float] = []
                for batch in 0..<biasShape[0] {
                    let block = bias[(batch * rows)..<((batch + 1) * rows)]
                    for _ in 0..<group { tiled.append(contentsOf: block) }
                }
                bias = tiled
                biasShape = [biasShape[0], 1, group * biasShape[2], keySequence]
            } else {
                guard heads == queryHeads else { throw LoweringFailure.invalid("mask heads \(heads) do not broadcast to \(queryHeads)") }
                biasShape = [biasShape[0], queryHeads / group, group * biasShape[2], keySequence]
            }
        }
        return (context.builder.addConstant("\(node.name)/bias", shape: biasShape, floats: bias), keptRows)
    }

    /// A constant mask as a 4-D additive bias [B or 1, heads or 1, Sq, Sk]: booleans become
    /// 0 (attend) or −∞, the query axis is broadcast out, and a last axis shorter than the
    /// keys is padded with −∞ (masked), as ONNX specifies.
    private static func constantMaskBias(_ tensor: ConstantTensor, querySequence: Int, keySequence: Int) throws -> ([Int], [Float]) {
        var shape = tensor.shape
        guard shape.count <= 4, let last = shape.last, last <= keySequence else {
            throw LoweringFailure.unsupported("a mask of shape \(shape) for \(querySequence)×\(keySequence) scores")
        }
        while shape.count < 4 { shape.insert(1, at: 0) }
        guard shape[2] == 1 || shape[2] == querySequence else {
            throw LoweringFailure.invalid("mask rows \(shape[2]) do not broadcast to \(querySequence) queries")
        }
        let values: [Float] = tensor.dtype == .bool
            ? tensor.intValues().map { $0 != 0 ? 0 : -.infinity }
            : tensor.floatValues()
        let outer = shape[0] * shape[1]
        var bias: [Float] = []
        bias.reserveCapacity(outer * querySequence * keySequence)
        for block in 0..<outer {
            for row in 0..<querySequence {
                let sourceRow = shape[2] == 1 ? 0 : row
                let start = (block * shape[2] + sourceRow) * last
                bias.append(contentsOf: values[start..<(start + last)])
                bias.append(contentsOf: repeatElement(-Float.infinity, count: keySequence - last))
            }
        }
        return ([shape[0], shape[1], querySequence, keySequence], bias)
    }
}
