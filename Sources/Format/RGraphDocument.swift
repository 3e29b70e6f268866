import Foundation

/// The JSON header section of an `.rgraph` file as typed records (schemas/rgraph.md §4).
///
/// Dtypes and ops are kept as strings here so that an unknown one is reported by
/// `RGraphReader` with the node or tensor it belongs to, not as a generic decoding error.
/// Members this version does not know are ignored by decoding, as §7 requires for newer
/// minor versions.
struct RGraphDocument: Codable {
    struct FormatInfo: Codable {
        var major: Int
        var minor: Int
        var generator: String?
    }

    struct Value: Codable {
        var name: String
        var dtype: String
        var shape: [DimRecord]
    }

    struct NodeRecord: Codable {
        var name: String
        var op: String
        var inputs: [String]
        var outputs: [String]
        var attributes: [String: AttributeRecord]
    }

    struct TensorRecord: Codable {
        var name: String
        var dtype: String
        var shape: [Int]
        /// Relative to the data section's start.
        var offset: Int
        var length: Int
        /// How the bytes encode the values when they are not plain elements (§4, since 1.1).
        var quantization: QuantizationRecord?
        /// The CRC-64 of the tensor's bytes, 16 lowercase hex digits (§4, since 1.3).
        var crc64: String?
    }

    var format: FormatInfo
    var metadata: [String: String]
    var inputs: [Value]
    var outputs: [Value]
    var nodes: [NodeRecord]
    var tensors: [TensorRecord]
}

/// A tensor's `quantization` member (schemas/rgraph.md §4): a scheme and its parameters.
/// Every parameter is optional here so that a missing one is reported by
/// `layout(file:tensor:)` with the tensor's name.
struct QuantizationRecord: Codable, Equatable {
    var scheme: String
    /// `int8-symmetric`: the scale tensor and the axis it scales (absent: one scale).
    var scales: String?
    var axis: Int?
    /// `packed`: the arrangement, its parameters, the CPU level, the version and the
    /// constant the values were made from (since 1.2).
    var kernel: String?
    var width: Int?
    var cpu: String?
    var version: Int?
    var source: String?

    static let int8Symmetric = "int8-symmetric"
    static let packed = "packed"
    static let winogradKernel = "winograd-f4x3"
    static let gemmPanelsKernel = "gemm-panels"

    init(scheme: String, scales: String? = nil, axis: Int? = nil, kernel: String? = nil, width: Int? = nil,
         cpu: String? = nil, version: Int? = nil, source: String? = nil) {
        self.scheme = scheme
        self.scales = scales
        self.axis = axis
        self.kernel = kernel
        self.width = width
        self.cpu = cpu
        self.version = version
        self.source = source
    }

    /// The record of `layout`; nil for plain elements, which have none.
    init?(_ layout: WeightLayout) {
        switch layout {
        case .elements:
            return nil
        case .int8Symmetric(let scales):
            self.init(scheme: Self.int8Symmetric, scales: scales.tensor, axis: scales.axis)
        case .packed(let packed):
            switch packed {
            case .winogradF4x3:
                self.init(scheme: Self.packed, kernel: Self.winogradKernel, cpu: packed.cpu.rawValue,
                          version: packed.version)
            case .gemmPanels(let width, let cpu):
                self.init(scheme: Self.packed, kernel: Self.gemmPanelsKernel, width: width, cpu: cpu.rawValue,
                          version: packed.version)
            }
        }
    }

    /// The layout this record of a graph constant describes (not `packed`: see
    /// `packedLayout`), or why it describes none (an unknown scheme, a missing parameter),
    /// naming `file` and `tensor`.
    func layout(file: String, tensor: String) throws(RGraphError) -> WeightLayout {
        func required<Value>(_ value: Value?, _ member: String) throws(RGraphError) -> Value {
            guard let value else {
                throw .invalidQuantization(file: file, tensor: tensor,
                                           detail: "scheme '\(scheme)' needs the member '\(member)'")
            }
            return value
        }
        switch scheme {
        case Self.int8Symmetric:
            return .int8Symmetric(Int8Scales(tensor: try required(scales, "scales"), axis: axis))
        case Self.packed:
            preconditionFailure("packed records are read by packedLayout(file:tensor:), with their source")
        default:
            throw .unknownQuantization(file: file, tensor: tensor, scheme: scheme)
        }
    }

    /// For a `packed` record: its source constant and its layout, the layout nil when this
    /// version has no kernel of that name, CPU level or version (the file was made for
    /// another Restore or CPU: kernels prepare from the source instead); `madeFor` says what
    /// the record names. A missing member or a width below 1 is refused, naming the tensor.
    func packedLayout(file: String, tensor: String) throws(RGraphError)
        -> (source: String, layout: PackedLayout?, madeFor: String) {
        func required<Value>(_ value: Value?, _ member: String) throws(RGraphError) -> Value {
            guard let value else {
                throw .invalidQuantization(file: file, tensor: tensor,
                                           detail: "scheme '\(scheme)' needs the member '\(member)'")
            }
            return value
        }
        let source = try required(self.source, "source")
        let kernelName = try required(kernel, "kernel")
        let cpuName = try required(cpu, "cpu")
        let storedVersion = try required(version, "version")
        var madeFor = "\(kernelName) version \(storedVersion) for \(cpuName)"
        let layout: PackedLayout?
        switch (kernelName, CPULevel(rawValue: cpuName)) {
        case (Self.winogradKernel, let level?):
            layout = level == PackedLayout.winogradF4x3.cpu ? .winogradF4x3 : nil
        case (Self.gemmPanelsKernel, let level?):
            let width = try required(width, "width")
            guard width >= 1 else {
                throw .invalidQuantization(file: file, tensor: tensor, detail: "gemm-panels width \(width) is below 1")
            }
            madeFor = "\(kernelName) width \(width) version \(storedVersion) for \(cpuName)"
            layout = .gemmPanels(width: width, cpu: level)
        default:
            layout = nil
        }
        return (source, layout.flatMap { $0.version == storedVersion ? $0 : nil }, madeFor)
    }
}

/// A dimension in JSON: an integer, or a string naming a symbol.
struct DimRecord: Codable {
    var dim: Dim

    init(_ dim: Dim) { self.dim = dim }

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let size = try? container.decode(Int.self) {
            dim = .fixed(size)
        } else if let symbol = try? container.decode(String.self) {
            dim = .symbol(symbol)
        } else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "a dimension must be an integer or a symbol string")
        }
    }

    func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch dim {
        case .fixed(let size): try container.encode(size)
        case .symbol(let name): try container.encode(name)
        }
    }
}

/// A typed attribute in JSON: `{"type": "ints", "value": [1, 1]}`.
struct AttributeRecord: Codable {
    var attribute: Attribute

    init(_ attribute: Attribute) { self.attribute = attribute }

    private enum Key: String, CodingKey { case type, value }

    init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        let type = try container.decode(String.self, forKey: .type)
        func float(_ text: String) throws -> Float {
            guard let value = FloatText.decode(text) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .value, in: container, debugDescription: "'\(text)' is not a FLOAT string")
            }
            return value
        }
        switch type {
        case "int": attribute = .int(try container.decode(Int.self, forKey: .value))
        case "ints": attribute = .ints(try container.decode([Int].self, forKey: .value))
        case "float": attribute = .float(try float(container.decode(String.self, forKey: .value)))
        case "floats": attribute = .floats(try container.decode([String].self, forKey: .value).map(float))
        case "string": attribute = .string(try container.decode(String.self, forKey: .value))
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .type, in: container, debugDescription: "unknown attribute type '\(type)'")
        }
    }

    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        switch attribute {
        case .int(let value):
            try container.encode("int", forKey: .type)
            try container.encode(value, forKey: .value)
        case .ints(let values):
            try container.encode("ints", forKey: .type)
            try container.encode(values, forKey: .value)
        case .float(let value):
            try container.encode("float", forKey: .type)
            try container.encode(FloatText.encode(value), forKey: .value)
        case .floats(let values):
            try container.encode("floats", forKey: .type)
            try container.encode(values.map(FloatText.encode), forKey: .value)
        case .string(let value):
            try container.encode("string", forKey: .type)
            try container.encode(value, forKey: .value)
        }
    }
}

/// The lossless text form of a binary32 float (schemas/rgraph.md §4, FLOAT).
///
/// Strings rather than JSON numbers because JSON libraries parse numbers to binary64,
/// and rounding a decimal twice (to binary64, then to binary32) can change the value.
enum FloatText {
    static let canonicalNaN: UInt32 = 0x7FC0_0000

    static func encode(_ value: Float) -> String {
        if value.isNaN {
            let bits = value.bitPattern
            if bits == canonicalNaN { return "nan" }
            let digits = String(bits, radix: 16)
            return "nan(0x" + String(repeating: "0", count: 8 - digits.count) + digits + ")"
        }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        // Swift prints the shortest decimal that parses back to the same binary32.
        return value.description
    }

    static func decode(_ text: String) -> Float? {
        switch text {
        case "inf": return .infinity
        case "-inf": return -.infinity
        case "nan": return Float(bitPattern: canonicalNaN)
        default: break
        }
        if text.hasPrefix("nan(0x"), text.hasSuffix(")") {
            let digits = text.dropFirst(6).dropLast()
            guard digits.count == 8, let bits = UInt32(digits, radix: 16) else { return nil }
            let value = Float(bitPattern: bits)
            return value.isNaN ? value : nil
        }
        // Only plain decimals: `Float(String)` would also take hex floats and "infinity".
        let decimalCharacters = Set("0123456789+-.eE")
        guard !text.isEmpty, text.allSatisfy(decimalCharacters.contains),
              let value = Float(text), value.isFinite else { return nil }
        return value
    }
}

extension DecodingError {
    /// Where in the JSON document decoding failed and why, for `RGraphError.malformedHeader`
    /// and the readers of other JSON (safetensors headers, checkpoint configs).
    public var locatedDescription: String {
        func location(_ path: [CodingKey]) -> String {
            guard !path.isEmpty else { return "top level" }
            var text = ""
            for key in path {
                if let index = key.intValue { text += "[\(index)]" } else {
                    text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
                }
            }
            return text
        }
        switch self {
        case .typeMismatch(let type, let context):
            return "at \(location(context.codingPath)): expected \(type)"
        case .valueNotFound(let type, let context):
            return "at \(location(context.codingPath)): expected \(type), found null"
        case .keyNotFound(let key, let context):
            return "at \(location(context.codingPath)): missing member '\(key.stringValue)'"
        case .dataCorrupted(let context):
            var text = "at \(location(context.codingPath)): \(context.debugDescription)"
            if let underlying = context.underlyingError { text += " (\(underlying))" }
            return text
        @unknown default:
            return "\(self)"
        }
    }
}
