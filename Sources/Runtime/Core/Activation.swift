import Foundation
import CKernels
import Format

extension Activation {
    /// Applies the function in place to `count` floats: the fast kernels' form of
    /// `apply(_:)`, with vector paths where the scalar loop is the bottleneck. `cpu` picks
    /// the path (tests run every one the CPU supports).
    @inlinable
    public func apply(_ values: UnsafeMutablePointer<Float>, count: Int, cpu: CPULevel = CPUFeatures.level) {
        switch function {
        case .identity: return
        // Branch-free so that it vectorises; NaN stays NaN (max keeps its first argument then).
        case .relu: for i in 0..<count { values[i] = Swift.max(values[i], 0) }
        // A select per element, which vectorises (the generic path below switches per element).
        case .leakyRelu:
            let alpha = alpha
            for i in 0..<count { values[i] = values[i] >= 0 ? values[i] : alpha * values[i] }
        // 16 or 8 lanes at a time with a rational erf (Sources/CKernels/activation_vector.h:
        // ≤ 3.4e-7 absolute error, 5 ulp), which the GEMM epilogue shares.
        case .gelu where cpu == .avx512: restore_gelu_avx512(values, count)
        case .gelu where cpu == .avx2: restore_gelu_avx2(values, count)
        default: for i in 0..<count { values[i] = apply(values[i]) }
        }
    }
}

extension Activation {
    /// The derivative at `x` (the function's input): the backward rule of `unary` and of
    /// the activation fused into conv and linear. Where the function is not differentiable
    /// (relu at 0, clip at its bounds) it takes PyTorch's one-sided choice, so gradients
    /// match autograd; step functions (floor, ceil, round, not) have derivative 0.
    @inlinable
    public func derivative(_ x: Float) -> Float {
        switch function {
        case .identity: return 1
        case .relu: return x > 0 ? 1 : 0
        case .leakyRelu: return x > 0 ? 1 : alpha
        case .sigmoid:
            let s = 1 / (1 + Foundation.exp(-x))
            return s * (1 - s)
        case .tanh:
            let t = Foundation.tanh(x)
            return 1 - t * t
        case .clip: return x >= min && x <= max ? 1 : 0
        case .exp: return Foundation.exp(x)
        case .log: return 1 / x
        case .sqrt: return 0.5 / x.squareRoot()
        case .abs: return x > 0 ? 1 : (x < 0 ? -1 : 0)
        case .neg: return -1
        case .reciprocal: return -1 / (x * x)
        case .floor, .ceil, .round, .not: return 0
        case .erf: return 1.1283791670955126 * Foundation.exp(-x * x)
        case .sin: return Foundation.cos(x)
        case .cos: return -Foundation.sin(x)
        case .tan:
            let t = Foundation.tan(x)
            return 1 + t * t
        case .asin: return 1 / (1 - x * x).squareRoot()
        case .acos: return -1 / (1 - x * x).squareRoot()
        case .atan: return 1 / (1 + x * x)
        case .sinh: return Foundation.cosh(x)
        case .cosh: return Foundation.sinh(x)
        case .asinh: return 1 / (x * x + 1).squareRoot()
        case .acosh: return 1 / (x * x - 1).squareRoot()
        case .atanh: return 1 / (1 - x * x)
        case .gelu:
            // Φ(x) + x·φ(x)
            let cdf = 0.5 * (1 + Foundation.erf(x * 0.70710678118654752))
            return cdf + x * 0.3989422804014327 * Foundation.exp(-0.5 * x * x)
        case .geluTanh:
            let inner = 0.79788456080286536 * (x + 0.044715 * x * x * x)
            let t = Foundation.tanh(inner)
            return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * 0.79788456080286536 * (1 + 3 * 0.044715 * x * x)
        case .silu:
            let s = 1 / (1 + Foundation.exp(-x))
            return s * (1 + x * (1 - s))
        case .elu: return x > 0 ? 1 : alpha * Foundation.exp(x)
        case .hardSigmoid:
            let v = alpha * x + beta
            return v > 0 && v < 1 ? alpha : 0
        case .softplus: return x > 20 ? 1 : 1 / (1 + Foundation.exp(-x))
        }
    }

    /// Whether `derivative(fromOutput:)` gives the derivative from the function's result,
    /// so that a backward rule can keep the output instead of recomputing the input.
    public var isDifferentiableFromOutput: Bool {
        switch function {
        case .identity, .relu, .sigmoid, .tanh, .exp: true
        case .leakyRelu, .elu: alpha > 0
        default: false
        }
    }

    /// The derivative given the result y = f(x), for the functions
    /// `isDifferentiableFromOutput` accepts.
    @inlinable
    public func derivative(fromOutput y: Float) -> Float {
        switch function {
        case .identity: return 1
        case .relu: return y > 0 ? 1 : 0
        case .leakyRelu: return y > 0 ? 1 : alpha
        case .sigmoid: return y * (1 - y)
        case .tanh: return 1 - y * y
        case .exp: return y
        case .elu: return y > 0 ? 1 : y + alpha
        default: preconditionFailure("\(function) is not differentiable from its output")
        }
    }

    /// Whether `addBackward` handles the function (reading outputs when `fromOutputs`):
    /// those whose derivative is a select or a product on the saved values.
    @inlinable
    public func addsBackwardInOnePass(fromOutputs: Bool) -> Bool {
        switch function {
        case .identity, .relu, .leakyRelu: true
        case .sigmoid: fromOutputs
        default: false
        }
    }

    /// target += ∂L/∂y · f′ in one vectorisable pass, for the functions
    /// `addsBackwardInOnePass` accepts; `values` are the outputs when `valuesAreOutputs`,
    /// else the inputs (leakyRelu's sign is the same in both when it is differentiable from
    /// its output, alpha > 0).
    @inlinable
    public func addBackward(_ gradient: UnsafePointer<Float>, values: UnsafePointer<Float>, count: Int,
                            valuesAreOutputs: Bool, into target: UnsafeMutablePointer<Float>) {
        switch function {
        case .identity: for i in 0..<count { target[i] += gradient[i] }
        case .relu: for i in 0..<count { target[i] += values[i] > 0 ? gradient[i] : 0 }
        case .leakyRelu:
            let alpha = alpha
            for i in 0..<count { target[i] += values[i] > 0 ? gradient[i] : alpha * gradient[i] }
        case .sigmoid where valuesAreOutputs: for i in 0..<count { target[i] += gradient[i] * values[i] * (1 - values[i]) }
        default: preconditionFailure("\(function) has no one-pass backward")
        }
    }

    /// Turns ∂L/∂y into ∂L/∂x in place for `count` elements, reading the function's
    /// output when `isDifferentiableFromOutput`, else its input.
    @inlinable
    public func backward(_ gradient: UnsafeMutablePointer<Float>, values: UnsafePointer<Float>, count: Int,
                         valuesAreOutputs: Bool) {
        switch function {
        case .identity: return
        case .relu: for i in 0..<count where values[i] <= 0 { gradient[i] = 0 }
        // leakyRelu's sign is the same before and after it when alpha > 0 (the only case
        // differentiable from the output), so both read the same test.
        case .leakyRelu:
            let alpha = alpha
            for i in 0..<count { gradient[i] *= values[i] > 0 ? 1 : alpha }
        default:
            if valuesAreOutputs {
                for i in 0..<count { gradient[i] *= derivative(fromOutput: values[i]) }
            } else {
                for i in 0..<count { gradient[i] *= derivative(values[i]) }
            }
        }
    }
}
