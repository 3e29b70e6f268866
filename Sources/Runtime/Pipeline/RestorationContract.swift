import Foundation
import Format

/// How pixels become the model's input and its output becomes pixels again: the
/// `restore.*` metadata of docs/design.md §4, parsed and checked.
public struct RestorationContract: Sendable, Equatable {
    public enum PixelRange: String, Sendable, CaseIterable {
        case unit = "0,1"
        case signed = "-1,1"
        case byte = "0,255"

        /// The model values that pixel values 0 and 1 map to.
        public var bounds: (low: Float, high: Float) {
            switch self {
            case .unit: (0, 1)
            case .signed: (-1, 1)
            case .byte: (0, 255)
            }
        }
    }

    public var task: String
    public var input: String
    public var output: String
    public var range: PixelRange
    public var mean: [Float]
    public var std: [Float]
    public var residual: Bool
    public var scale: Int
    public var multiple: Int
    /// Default tile size (0 = whole image unless the model has a fixed size) and overlap.
    public var tile: Int
    public var overlap: Int

    public static let keys = ["restore.task", "restore.input", "restore.output", "restore.range", "restore.mean",
                              "restore.std", "restore.residual", "restore.scale", "restore.multiple",
                              "restore.tile", "restore.overlap"]

    /// Reads the contract from a graph's metadata; image input/output default to the
    /// graph's first input and output.
    public init(graph: Graph) throws {
        let metadata = graph.metadata
        func value(_ key: String) -> String? { metadata["restore." + key] }
        func integer(_ key: String, default defaultValue: Int, minimum: Int) throws -> Int {
            guard let text = value(key) else { return defaultValue }
            guard let number = Int(text.trimmingCharacters(in: .whitespaces)), number >= minimum else {
                throw ContractError.badValue(key: "restore." + key, value: text, expected: "an integer ≥ \(minimum)")
            }
            return number
        }
        func triple(_ key: String, default defaultValue: Float) throws -> [Float] {
            guard let text = value(key) else { return [defaultValue, defaultValue, defaultValue] }
            let parts = text.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
            guard parts.count == 3 || parts.count == 1, parts.allSatisfy({ $0 != nil && $0!.isFinite }) else {
                throw ContractError.badValue(key: "restore." + key, value: text, expected: "three numbers R,G,B")
            }
            let numbers = parts.compactMap { $0 }
            return numbers.count == 1 ? Array(repeating: numbers[0], count: 3) : numbers
        }
        guard let firstInput = graph.inputs.first, let firstOutput = graph.outputs.first else {
            throw ContractError.notAnImageModel("the model has no inputs or no outputs")
        }
        task = value("task") ?? "restore"
        input = value("input") ?? firstInput.name
        output = value("output") ?? firstOutput.name
        let rangeText = value("range") ?? "0,1"
        guard let range = PixelRange(rawValue: rangeText.replacingOccurrences(of: " ", with: "")) else {
            throw ContractError.badValue(key: "restore.range", value: rangeText, expected: "0,1 or -1,1 or 0,255")
        }
        self.range = range
        mean = try triple("mean", default: 0)
        std = try triple("std", default: 1)
        guard std.allSatisfy({ $0 != 0 }) else {
            throw ContractError.badValue(key: "restore.std", value: value("std") ?? "", expected: "non-zero numbers")
        }
        switch value("residual")?.lowercased() {
        case nil, "false", "0", "no": residual = false
        case "true", "1", "yes": residual = true
        case let other?: throw ContractError.badValue(key: "restore.residual", value: other, expected: "true or false")
        }
        scale = try integer("scale", default: 1, minimum: 1)
        multiple = try integer("multiple", default: 1, minimum: 1)
        tile = try integer("tile", default: 0, minimum: 0)
        overlap = try integer("overlap", default: 0, minimum: 0)
        guard !(residual && scale != 1) else {
            throw ContractError.badValue(key: "restore.residual", value: "true",
                                         expected: "false when restore.scale is not 1 (the input cannot be added to a larger output)")
        }
        guard let inputInfo = graph.inputs.first(where: { $0.name == input }) else {
            throw ContractError.notAnImageModel("restore.input names '\(input)', which is not a graph input")
        }
        guard graph.outputs.contains(where: { $0.name == output }) else {
            throw ContractError.notAnImageModel("restore.output names '\(output)', which is not a graph output")
        }
        guard inputInfo.shape.count == 4, inputInfo.shape[1] == .fixed(3) else {
            throw ContractError.notAnImageModel("input '\(input)' has shape \(inputInfo.shape), not [N, 3, H, W]")
        }
    }

    /// The fixed spatial size of the image input, when the model was exported for one size.
    public static func fixedSize(of info: ValueInfo) -> (height: Int, width: Int)? {
        guard info.shape.count == 4, case .fixed(let h) = info.shape[2], case .fixed(let w) = info.shape[3] else { return nil }
        return (h, w)
    }
}

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
