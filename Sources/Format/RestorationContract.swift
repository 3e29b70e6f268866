import Foundation

/// How pixels become a model's input and its output becomes pixels again: the
/// `restore.*` metadata keys (docs/architecture.md, "Restoration contract"), decoded,
/// given their defaults and checked against the graph. `convert` writes it, rrun,
/// libRestore and the Python binding read it; this file is its only codec.
public struct RestorationContract: Sendable, Equatable {
    /// What the model restores; recorded for users and tools, it changes no computation.
    public enum Task: String, Sendable, CaseIterable {
        case denoise, deblur, inpaint, colorize
        case superResolve = "super-resolve"
        case generate, restore

        /// The task a `restore.task` value (or `convert --task`) names.
        public init(decoding text: String) throws(ContractError) {
            guard let task = Task(rawValue: text) else {
                throw .badValue(key: Settings.Key.task.rawValue, value: text,
                                expected: "one of " + Task.allCases.map(\.rawValue).joined(separator: ", "))
            }
            self = task
        }
    }

    public enum PixelRange: String, Sendable, CaseIterable {
        case unit = "0,1"
        case signed = "-1,1"
        case byte = "0,255"

        /// The range a `restore.range` value (or `convert --range`) names; spaces are ignored.
        public init(decoding text: String) throws(ContractError) {
            guard let range = PixelRange(rawValue: text.replacingOccurrences(of: " ", with: "")) else {
                throw .badValue(key: Settings.Key.range.rawValue, value: text, expected: "0,1 or -1,1 or 0,255")
            }
            self = range
        }

        /// The model values that pixel values 0 and 1 map to.
        public var bounds: (low: Float, high: Float) {
            switch self {
            case .unit: (0, 1)
            case .signed: (-1, 1)
            case .byte: (0, 255)
            }
        }
    }

    public var task: Task
    /// Names of the image input and output (NCHW, RGB).
    public var input: String
    public var output: String
    public var range: PixelRange
    /// Per-channel normalisation after the range mapping, R, G, B.
    public var mean: [Float]
    public var std: [Float]
    /// Output = input + network output.
    public var residual: Bool
    public var scale: Int
    /// H and W are padded (reflect) to a multiple of this, cropped after.
    public var multiple: Int
    /// Default tile size (0 = whole image unless the model has a fixed size) and overlap.
    public var tile: Int
    public var overlap: Int

    /// Every metadata key of the contract.
    public static let keys = Settings.Key.allCases.map(\.rawValue)
    /// Where `convert` records the file a model was converted from; not part of the contract.
    public static let convertedFromKey = "restore.converted-from"

    /// The contract `settings` state for `graph`: fields left unset take their defaults (the
    /// image input and output default to the graph's first ones), and the result is checked
    /// against the graph.
    public init(_ settings: Settings, graph: Graph) throws(ContractError) {
        guard let firstInput = graph.inputs.first, let firstOutput = graph.outputs.first else {
            throw .notAnImageModel("the model has no inputs or no outputs")
        }
        task = settings.task ?? .restore
        input = settings.input ?? firstInput.name
        output = settings.output ?? firstOutput.name
        range = settings.range ?? .unit
        mean = settings.mean ?? [0, 0, 0]
        std = settings.std ?? [1, 1, 1]
        residual = settings.residual ?? false
        scale = settings.resolvedScale
        multiple = settings.resolvedMultiple
        tile = settings.tile ?? 0
        overlap = settings.overlap ?? 0
        guard !(residual && scale != 1) else {
            throw .badValue(key: Settings.Key.residual.rawValue, value: "true",
                            expected: "false when restore.scale is not 1 (the input cannot be added to a larger output)")
        }
        guard let inputInfo = graph.inputs.first(where: { $0.name == input }) else {
            throw .notAnImageModel("restore.input names '\(input)', which is not a graph input")
        }
        guard graph.outputs.contains(where: { $0.name == output }) else {
            throw .notAnImageModel("restore.output names '\(output)', which is not a graph output")
        }
        guard inputInfo.shape.count == 4, inputInfo.shape[1] == .fixed(3) else {
            throw .notAnImageModel("input '\(input)' has shape \(inputInfo.shape), not [N, 3, H, W]")
        }
    }

    /// The contract a graph's metadata states.
    public init(graph: Graph) throws(ContractError) {
        try self.init(try Settings(metadata: graph.metadata), graph: graph)
    }

    /// The fixed spatial size of the image input, when the model was exported for one size.
    public static func fixedSize(of info: ValueInfo) -> (height: Int, width: Int)? {
        guard info.shape.count == 4, case .fixed(let h) = info.shape[2], case .fixed(let w) = info.shape[3] else { return nil }
        return (h, w)
    }
}

extension RestorationContract {
    /// The fields of a contract that a model's metadata or `convert`'s options set, each
    /// nil where the default applies: what is encoded is exactly what was set, so a model's
    /// metadata keeps the keys it was given and no others.
    public struct Settings: Sendable, Equatable {
        public var task: Task?
        public var input: String?
        public var output: String?
        public var range: PixelRange?
        public var mean: [Float]?
        public var std: [Float]?
        public var residual: Bool?
        public var scale: Int?
        public var multiple: Int?
        public var tile: Int?
        public var overlap: Int?

        /// The metadata keys, one per field.
        public enum Key: String, CaseIterable, Sendable {
            case task = "restore.task"
            case input = "restore.input"
            case output = "restore.output"
            case range = "restore.range"
            case mean = "restore.mean"
            case std = "restore.std"
            case residual = "restore.residual"
            case scale = "restore.scale"
            case multiple = "restore.multiple"
            case tile = "restore.tile"
            case overlap = "restore.overlap"
        }

        public init() {}

        /// Decodes the `restore.*` keys of `metadata` (other keys are ignored), checking each
        /// value on its own; `RestorationContract.init(_:graph:)` checks them together.
        public init(metadata: [String: String]) throws(ContractError) {
            func value(_ key: Key) -> String? { metadata[key.rawValue] }
            func integer(_ key: Key, minimum: Int) throws(ContractError) -> Int? {
                guard let text = value(key) else { return nil }
                guard let number = Int(text.trimmingCharacters(in: .whitespaces)), number >= minimum else {
                    throw .badValue(key: key.rawValue, value: text, expected: "an integer ≥ \(minimum)")
                }
                return number
            }
            func triple(_ key: Key) throws(ContractError) -> [Float]? {
                guard let text = value(key) else { return nil }
                let numbers = text.split(separator: ",").compactMap { Float($0.trimmingCharacters(in: .whitespaces)) }
                guard numbers.count == text.split(separator: ",").count, numbers.count == 3 || numbers.count == 1,
                      numbers.allSatisfy(\.isFinite) else {
                    throw .badValue(key: key.rawValue, value: text, expected: "three numbers R,G,B")
                }
                return numbers.count == 1 ? Array(repeating: numbers[0], count: 3) : numbers
            }
            if let text = value(.task) { task = try Task(decoding: text) }
            input = value(.input)
            output = value(.output)
            if let text = value(.range) { range = try PixelRange(decoding: text) }
            mean = try triple(.mean)
            std = try triple(.std)
            if let std, !std.allSatisfy({ $0 != 0 }) {
                throw .badValue(key: Key.std.rawValue, value: value(.std) ?? "", expected: "non-zero numbers")
            }
            switch value(.residual) {
            case nil: residual = nil
            case let text?:
                switch text.lowercased() {
                case "false", "0", "no": residual = false
                case "true", "1", "yes": residual = true
                default: throw .badValue(key: Key.residual.rawValue, value: text, expected: "true or false")
                }
            }
            scale = try integer(.scale, minimum: 1)
            multiple = try integer(.multiple, minimum: 1)
            tile = try integer(.tile, minimum: 0)
            overlap = try integer(.overlap, minimum: 0)
        }

        /// The `restore.*` metadata of the fields that are set.
        public var metadata: [String: String] {
            func list(_ values: [Float]) -> String { values.map { String($0) }.joined(separator: ",") }
            var result: [String: String] = [:]
            for key in Key.allCases {
                result[key.rawValue] = switch key {
                case .task: task?.rawValue
                case .input: input
                case .output: output
                case .range: range?.rawValue
                case .mean: mean.map(list)
                case .std: std.map(list)
                case .residual: residual.map { $0 ? "true" : "false" }
                case .scale: scale.map(String.init)
                case .multiple: multiple.map(String.init)
                case .tile: tile.map(String.init)
                case .overlap: overlap.map(String.init)
                }
            }
            return result
        }

        /// Whether no field is set: the model states no contract.
        public var isEmpty: Bool { metadata.isEmpty }

        /// These settings with every field `overrides` sets taken from it.
        public func merging(_ overrides: Settings) -> Settings {
            Settings(task: overrides.task ?? task, input: overrides.input ?? input, output: overrides.output ?? output,
                     range: overrides.range ?? range, mean: overrides.mean ?? mean, std: overrides.std ?? std,
                     residual: overrides.residual ?? residual, scale: overrides.scale ?? scale,
                     multiple: overrides.multiple ?? multiple, tile: overrides.tile ?? tile,
                     overlap: overrides.overlap ?? overlap)
        }

        /// `scale`, or its default: the contract's and `convert`'s (which needs it before the
        /// graph is an image model) are the same.
        public var resolvedScale: Int { scale ?? 1 }
        /// `multiple`, or its default.
        public var resolvedMultiple: Int { multiple ?? 1 }

        private init(task: Task?, input: String?, output: String?, range: PixelRange?, mean: [Float]?, std: [Float]?,
                     residual: Bool?, scale: Int?, multiple: Int?, tile: Int?, overlap: Int?) {
            (self.task, self.input, self.output, self.range, self.mean, self.std) = (task, input, output, range, mean, std)
            (self.residual, self.scale, self.multiple, self.tile, self.overlap) = (residual, scale, multiple, tile, overlap)
        }
    }
}

/// Why a model's restoration contract cannot be used, naming the metadata key and value.
public enum ContractError: Error, CustomStringConvertible, Equatable {
    case badValue(key: String, value: String, expected: String)
    case notAnImageModel(String)

    public var description: String {
        switch self {
        case .badValue(let key, let value, let expected): "metadata \(key) = '\(value)': expected \(expected)"
        case .notAnImageModel(let message): "not an image restoration model: \(message)"
        }
    }
}
