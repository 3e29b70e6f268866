/// Element types a tensor can have in a `.rgraph` file or at plan time.
///
/// Kernels compute in `float32`; `float16`, `bfloat16` and `int8` exist for stored weights
/// (dequantized on load or per block). `int64` and `bool` carry shape arithmetic, indices
/// and masks, which the planner evaluates per input size.
public enum DType: String, Sendable, CaseIterable, Codable {
    case float32 = "f32"
    case float16 = "f16"
    case bfloat16 = "bf16"
    case int8 = "i8"
    case int32 = "i32"
    case int64 = "i64"
    case bool = "bool"

    /// Bytes one element takes in storage.
    public var byteSize: Int {
        switch self {
        case .float32, .int32: 4
        case .float16, .bfloat16: 2
        case .int8, .bool: 1
        case .int64: 8
        }
    }

    /// Whether values of this type are carried as floats (true) or integers at plan time.
    public var isFloatingPoint: Bool {
        switch self {
        case .float32, .float16, .bfloat16, .int8: true
        case .int32, .int64, .bool: false
        }
    }

    /// NumPy's name for the type, for messages that say how to convert an array.
    public var numPyName: String {
        switch self {
        case .float32: "float32"
        case .float16: "float16"
        case .bfloat16: "bfloat16"
        case .int8: "int8"
        case .int32: "int32"
        case .int64: "int64"
        case .bool: "bool_"
        }
    }
}
