import ArgumentParser
import Foundation
import ImageFiles
import Runtime

extension RRun {
    /// `rrun grad`: gradients of a loss of the model's first output.
    struct Grad: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "grad",
            abstract: "Write ∂L/∂(named inputs or weights) of a loss between the first output and a target.",
            discussion: """
                L = mean((output − T)²) for mse, mean(|output − T|) for l1. Each name in --wrt is a \
                graph input or a float weight of the model; its gradient is written as DIR/NAME.npy \
                (characters other than letters, digits, '-', '_' and '.' become '_').
                """)

        @Argument(help: "The converted model (.rgraph).")
        var model: String

        @Argument(help: "X.npy (the first input), then NAME=FILE.npy for other inputs.")
        var inputs: [String]

        @Option(help: "The target T.npy, shaped as the first output.")
        var target: String

        @Option(help: "mse or l1.")
        var loss: Loss = .mse

        @Option(help: "Comma-separated names of inputs or weights to differentiate with respect to.")
        var wrt: String

        @Option(help: "Directory for the gradients.")
        var outputs: String

        @OptionGroup var threads: KernelThreads

        mutating func validate() throws {
            guard !inputs.isEmpty else { throw ValidationError("give the first input X.npy") }
            guard !names.isEmpty else { throw ValidationError("--wrt needs at least one name") }
        }

        private var names: [String] { wrt.split(separator: ",").map { String($0) }.filter { !$0.isEmpty } }

        func run() throws {
            try reportingErrors {
                let model = try loadModel(self.model)
                let graph = model.graph
                guard let first = graph.inputs.first else { throw ValidationError("the model has no inputs") }
                var feeds: [String: HostTensor] = [first.name: try NumPyFile.read(path: inputs[0])]
                for argument in inputs.dropFirst() {
                    guard let equals = argument.firstIndex(of: "="), equals != argument.startIndex else {
                        throw ValidationError("extra inputs are NAME=FILE.npy, found '\(argument)'")
                    }
                    feeds[String(argument[..<equals])] = try NumPyFile.read(path: String(argument[argument.index(after: equals)...]))
                }
                for name in feeds.keys where !graph.inputs.contains(where: { $0.name == name }) {
                    throw ValidationError("the model has no input named '\(name)'")
                }
                let ordered = try graph.inputs.map { info -> HostTensor in
                    guard let tensor = feeds[info.name] else { throw ValidationError("input '\(info.name)' is missing") }
                    return tensor
                }
                let inputNames = Set(graph.inputs.map(\.name))
                let wantedInputs = names.filter { inputNames.contains($0) }
                let parameters = names.filter { !inputNames.contains($0) }
                let plan = try GradientPlan(model: model, inputShapes: ordered.map(\.shape), parameters: parameters,
                                            wantedInputs: wantedInputs, threads: threads.count)
                let targetTensor = try NumPyFile.read(path: target)
                guard targetTensor.shape == plan.outputShape else {
                    throw ValidationError("--target \(target) has shape \(targetTensor.shape), the output \(plan.outputShape)")
                }
                let weights = try parameters.map { name -> [Float] in
                    guard let constant = graph.constants[name] else { throw GradientError.unknownParameter(name) }
                    return try graph.floatValues(of: constant)
                }
                let targetValues = targetTensor.floats
                let value = withPointers(weights) { pointers in
                    targetValues.withUnsafeBufferPointer { targetBuffer in
                        plan.run(inputs: ordered, parameters: pointers) { output, gradient in
                            loss.evaluate(output: output, target: targetBuffer, gradient: gradient)
                        }
                    }
                }
                try FileManager.default.createDirectory(atPath: outputs, withIntermediateDirectories: true)
                for (index, name) in wantedInputs.enumerated() {
                    try write(Array(plan.inputGradient(index)), shape: ordered[graph.inputs.firstIndex { $0.name == name } ?? 0].shape,
                              name: name)
                }
                for (index, name) in parameters.enumerated() {
                    try write(Array(plan.parameterGradient(index)), shape: plan.parameterShapes[index], name: name)
                }
                print("\(loss.rawValue) loss \(value); \(names.count) gradient\(names.count == 1 ? "" : "s") in \(outputs)")
            }
        }

        private func write(_ values: [Float], shape: [Int], name: String) throws {
            let safeName = name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" }
            try NumPyFile.write(HostTensor(shape: shape, floats: values), path: outputs + "/" + String(safeName) + ".npy")
        }

        /// Calls `body` with stable pointers to each array's elements.
        private func withPointers<Result>(_ arrays: [[Float]], _ body: ([UnsafePointer<Float>]) -> Result) -> Result {
            let copies = arrays.map { values -> UnsafeMutablePointer<Float> in
                let pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(values.count, 1))
                pointer.initialize(from: values, count: values.count)
                return pointer
            }
            defer { copies.forEach { $0.deallocate() } }
            return body(copies.map { UnsafePointer($0) })
        }
    }
}

extension Loss: ExpressibleByArgument {}
