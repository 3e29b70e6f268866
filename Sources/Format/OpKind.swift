/// Restore's own op set. Importers lower ONNX nodes and checkpoint templates to these;
/// rewrite passes fuse them. Every `switch` over this enum has no `default`, so the
/// compiler lists each place a new op must be handled.
///
/// Conventions for every op:
/// - Images are NCHW float32. Axes may be negative (counted from the end).
/// - Inputs documented as *plan-time* (a target shape, pads, scales, indices …) must be
///   computable when the runtime plans for concrete input sizes: constants, or integer
///   arithmetic on shapes. The planner evaluates them and rejects data-dependent ones.
/// - `activation` attributes (on `conv`, `convTranspose`, `linear`) name a `UnaryFunction`
///   applied to the op's result, with its parameters `alpha`, `beta`, `min`, `max`.
public enum OpKind: String, Sendable, CaseIterable, Codable {
    // MARK: Convolutions and dense layers
    /// inputs: X [N,C,H,W], W [M,C/group,kH,kW], B [M]?, R (residual, shape of Y)?
    /// attrs: strides [2] =1, pads [top,left,bottom,right] =0, dilations [2] =1, group =1,
    ///        autoPad "notset"|"same_upper"|"same_lower"|"valid" ="notset",
    ///        activation (UnaryFunction, default "identity") + its parameters,
    ///        residualBeforeActivation 0|1 =0.
    /// Y = act(conv(X,W)+B) + R, or act(conv(X,W)+B+R) when residualBeforeActivation is 1.
    case conv
    /// inputs: X [N,C,H,W], W [C,M/group,kH,kW], B [M]?
    /// attrs: strides, pads [top,left,bottom,right], dilations, group, outputPadding [2] =0,
    ///        autoPad, activation. Output size per ONNX ConvTranspose:
    ///        stride*(in-1) + outputPadding + (k-1)*dilation + 1 - padBegin - padEnd.
    case convTranspose
    /// inputs: X [..., K], W [N,K], B [N]?; Y [..., N] = act(X·Wᵀ + B). attrs: activation.
    case linear
    /// inputs: A, B; NumPy matmul semantics (batched, broadcasting, 1-D promotion).
    case matMul
    /// inputs: Q [..., Lq, D], K [..., Lk, D], V [..., Lk, Dv] (same leading dims),
    ///        bias (broadcast to [..., Lq, Lk] without enlarging it)?; attrs: scale =1,
    ///        headsInterleaved =false (then Q [..., Lq, H, D], K [..., Lk, H, D],
    ///        V [..., Lk, H, Dv], Y [..., Lq, H, Dv]: the last leading axis, the heads,
    ///        stored inside each token; the bias still indexes [..., H, Lq, Lk]).
    /// Y [..., Lq, Dv] = softmax(scale·Q·Kᵀ + bias, last axis) · V.
    case attention
    /// inputs: QKV [B, H, W, 3·C] (per token q | k | v, each heads × C/heads; H, W multiples
    ///        of windowSize), bias (broadcast to [B·nW, heads, N, N] without enlarging it)?
    ///        with N = windowSize², nW = (H/windowSize)·(W/windowSize).
    /// attrs: windowSize, shift =0, heads, scale =1.
    /// Swin's shifted-window attention: roll the grid by −shift on H and W, cut it into
    /// windows (row-major, window b·nW + wy·(W/windowSize) + wx, tokens row-major), per
    /// window and head softmax(scale·q·kᵀ + bias)·v, then window reverse and roll back.
    /// Y [B, H, W, C]. The kernel gathers each window's tokens by index arithmetic.
    case windowAttention
    /// inputs: value [B, S, heads·D] (any shape with that element order, e.g. [B, S, heads, D];
    /// S = Σ hₗ·wₗ, the levels' maps row-major one after another), grid [B, Q, heads, L, P, 2]
    /// (x, y of each query's points per head and level, −1…1 as gridSample's grid), weights
    /// [B, Q, heads, L, P] (or [B, Q, heads, L·P]), levelShapes? (plan-time i64 [L, 2], when
    /// the attribute is empty); attrs: heads, levelShapes, and gridSample's mode, paddingMode, alignCorners. Y [B, Q, heads·D]: per query and head
    /// Σₗ,ₚ weight · (level l of the head's D channels sampled at the point) — multi-scale
    /// deformable attention (Deformable DETR) without the per-level maps, grids and samples.
    case deformableAttention

    // MARK: Normalisation
    /// inputs: X [N,C,...], scale [C], bias [C]; attrs: epsilon =1e-5.
    case instanceNorm
    /// inputs: X, scale?, bias?; normalises over axes [axis, rank); attrs: axis =-1, epsilon =1e-5,
    ///        centered =1 (0: RMS normalisation, no mean subtracted).
    case layerNorm
    /// inputs: X; attrs: axis =-1.
    case softmax

    // MARK: Element-wise
    /// inputs: X; attrs: function (UnaryFunction), alpha, beta, min, max.
    case unary
    /// inputs: A, B with NumPy broadcasting; attrs: function (BinaryFunction).
    case binary
    /// inputs: condition (bool), X, Y with broadcasting.
    case `where`

    // MARK: Reductions and pooling
    /// inputs: X, axes? (plan-time i64, instead of the attribute); attrs: function
    ///        "mean"|"sum"|"max"|"min"|"prod", axes (empty = all), keepDims =1.
    case reduce
    /// inputs: X [N,C,…,H,W] (axes between C and H are more planes); attrs: kernelShape [2],
    ///        strides, pads, dilations, ceilMode =0, countIncludePad =0, autoPad.
    case averagePool
    /// inputs: X [N,C,…,H,W]; attrs as averagePool (countIncludePad unused).
    case maxPool
    /// inputs: X [N,C,H,W], indices (plan-time, i64, shape of X: each element's flat position
    ///        in Y, as maxPool's ONNX indices output gives it), outputShape (plan-time, i64 [4])?;
    ///        attrs: kernelShape [2], strides, pads. Per ONNX MaxUnpool: Y is zero except
    ///        Y[indices[i]] = X[i]; without outputShape Y is [N, C, (in−1)·stride + k − pads].
    case maxUnpool
    /// inputs: X [..., M, M]; Y [...] the determinant of each square matrix (ONNX Det).
    case det

    // MARK: Layout and data movement
    /// inputs: X...; attrs: axis.
    case concat
    /// inputs: X, split sizes (plan-time, i64)?; attrs: axis, numOutputs (when no sizes: equal parts).
    case split
    /// inputs: X, starts, ends, axes?, steps? (plan-time, i64), per ONNX Slice.
    case slice
    /// inputs: X; attrs: perm (empty = reverse).
    case transpose
    /// inputs: X, shape (plan-time, i64); 0 copies the input dim unless allowZero =1, -1 is inferred.
    case reshape
    /// inputs: X; attrs: axes (empty = all size-1 dims).
    case squeeze
    /// inputs: X; attrs: axes (positions in the output).
    case unsqueeze
    /// inputs: X; attrs: axis =1. Output 2-D.
    case flatten
    /// inputs: X, pads (plan-time, i64, ONNX order: all begins then all ends), value?,
    ///        axes? (plan-time); attrs: mode "constant"|"reflect"|"edge".
    case pad
    /// inputs: X, scales? (plan-time f32), sizes? (plan-time i64), one of them present.
    /// attrs: mode "nearest"|"linear"|"cubic", coordinateTransformationMode (ONNX names,
    ///        default "half_pixel"), nearestMode ="round_prefer_floor", cubicCoeffA =-0.75,
    ///        excludeOutside =0, keepAspectRatioPolicy, antialias; with tf_crop_and_resize
    ///        regionOfInterest [startH, startW, endH, endW] and extrapolationValue =0.
    case resize
    /// inputs: X [N,C,H_in,W_in], grid [N,H_out,W_out,2] (x, y per output pixel, −1…1 spanning
    /// the input; data, not plan-time), or volumetric X [N,C,D_in,H_in,W_in] and grid
    /// [N,D_out,H_out,W_out,3] (x, y, z). Y [N,C,(D_out,)H_out,W_out] samples X at each grid
    /// point, per ONNX GridSample (`GridSampleAttributes`: linear, nearest or cubic (4-D),
    /// zeros / border / reflection padding, alignCorners). Deformable attention's sampling.
    case gridSample
    /// inputs: X [N,C,H,W]; attrs: blockSize, mode "DCR"|"CRD".
    case depthToSpace
    /// inputs: X [N,C,H,W]; attrs: blockSize, mode "DCR"|"CRD" (the inverse of depthToSpace's).
    case spaceToDepth
    /// inputs: X, shape (plan-time, i64); broadcasts X to the shape.
    case expand
    /// inputs: X, repeats (plan-time, i64).
    case tile
    /// inputs: data, indices (plan-time, i64); attrs: axis =0. Per ONNX Gather.
    case gather
    /// inputs: data, indices (plan-time, i64, [..., k]), updates (shape indices[..<last] +
    /// data[k...]); attrs: reduction "none"|"add"|"mul"|"max"|"min" ="none". Per ONNX
    /// ScatterND: data with the slice at each index tuple replaced by (or, with a
    /// reduction, combined with) its update, applied in index order.
    case scatterND
    /// inputs: data, indices (plan-time, i64, same rank as data); attrs: axis =0. Per ONNX
    /// GatherElements: Y has the indices' shape, Y[i] = data[i with i[axis] = indices[i]].
    case gatherElements
    /// inputs: data, indices (plan-time, i64, same rank as data), updates (shape of indices);
    /// attrs: axis =0, reduction as scatterND. Per ONNX ScatterElements (and Scatter): data
    /// with data[i with i[axis] = indices[i]] replaced by (or combined with) updates[i],
    /// applied in index order.
    case scatterElements
    /// inputs: data, indices (plan-time, i64, [..., k]); attrs: batchDims =0. Per ONNX
    /// GatherND: one slice of data (its axes after batchDims + k) per index tuple.
    case gatherND
    /// inputs: X, sequenceLengths (plan-time, i64 [batch]); attrs: batchAxis =1, timeAxis =0.
    /// Per ONNX ReverseSequence: per batch entry b the first sequenceLengths[b] steps along
    /// timeAxis in reverse order, the rest as they are.
    case reverseSequence

    // MARK: Shape arithmetic (evaluated at plan time)
    /// inputs: X; output: its shape as i64; attrs: start =0, end (absent = rank).
    case shape
    /// inputs: X, like? (only its dtype is read: then the target); attrs: to (DType raw value).
    case cast
    /// inputs: start, limit, delta (scalars); per ONNX Range.
    case range
    /// inputs: shape (i64); attrs: value (float), dtype (DType raw value) ="f32".
    case constantOfShape
}

/// Element-wise functions of one input, used by `unary` and as fused activations.
public enum UnaryFunction: String, Sendable, CaseIterable, Codable {
    case identity, relu, sigmoid, tanh, exp, log, sqrt, abs, neg, reciprocal, floor, ceil, round, erf, sin, cos, not
    /// The remaining trigonometric, inverse trigonometric and hyperbolic functions (ONNX Tan … Atanh).
    case tan, asin, acos, atan, sinh, cosh, asinh, acosh, atanh
    /// max(x, alpha·x) for x < 0; alpha default 0.01.
    case leakyRelu
    /// clamp(x, min, max); defaults ±infinity.
    case clip
    /// x·Φ(x) with the exact (erf) normal CDF.
    case gelu
    /// x·Φ(x) with the tanh approximation.
    case geluTanh
    /// x·sigmoid(x).
    case silu
    /// alpha·(exp(x)-1) for x < 0; alpha default 1.
    case elu
    /// max(0, min(1, alpha·x + beta)); defaults 0.2, 0.5.
    case hardSigmoid
    /// log(1 + exp(x)).
    case softplus
}

/// Element-wise functions of two broadcast inputs, used by `binary`.
public enum BinaryFunction: String, Sendable, CaseIterable, Codable {
    case add, sub, mul, div, pow, max, min
    /// Integer modulo with the sign of the divisor (ONNX Mod, fmod = 0); fmod for floats.
    case mod
    /// A where A >= 0, else A·B (ONNX PRelu with slope B).
    case prelu
    /// Comparisons and logic produce bool.
    case equal, less, greater, lessOrEqual, greaterOrEqual, and, or, xor
}
