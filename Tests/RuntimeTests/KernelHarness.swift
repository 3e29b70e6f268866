import Format
import TestSupport
import XCTest
@testable import Runtime

/// Runs an operator's fast kernel on host tensors and compares it with its reference
/// kernel; the shared check of every op test ("fast vs reference on odd shapes").
enum KernelHarness {
    /// Deterministic random floats in [-1, 1) (xorshift; a fixed seed per test).
    static func random(_ shape: [Int], seed: UInt64) -> HostTensor {
        HostTensor(shape: shape, floats: xorshiftFloats(count: shape.reduce(1, *), seed: seed))
    }

    /// Runs `node`'s fast kernel on `inputs` (nil = absent). Inputs listed in
    /// `planTime` are given to the kernel as known values, and those in `constants` as
    /// model constants the kernel may prepare weights from, as the planner does.
    static func runFast(_ node: Node, _ inputs: [HostTensor?], planTime: Set<Int> = [], constants: Set<Int> = [],
                        threads: Int = 2) throws -> [HostTensor] {
        let op = try OpKind.makeOperator(node)
        let facts: [ValueFact?] = inputs.enumerated().map { index, tensor in
            tensor.map { ValueFact(dtype: $0.dtype, shape: $0.shape, value: planTime.contains(index) || !$0.isFloat ? $0 : nil) }
        }
        let outputFacts = try op.outputs(for: facts)
        if op.isView {
            return [HostTensor(shape: outputFacts[0].shape, floats: inputs[0]!.floats)]
        }
        let constantCopies: [UnsafeMutablePointer<Float>?] = inputs.enumerated().map { index, tensor in
            guard constants.contains(index), let tensor else { return nil }
            let copy = UnsafeMutablePointer<Float>.allocate(capacity: max(tensor.count, 1))
            copy.initialize(from: tensor.floats, count: tensor.count)
            return copy
        }
        defer { constantCopies.forEach { $0?.deallocate() } }
        let store = PreparedWeightStore()
        let constantInputs = ConstantInputs(
            weights: constantCopies.enumerated().map { index, copy in
                copy.map { ConstantWeight(name: "input\(index)", shape: inputs[index]?.shape ?? [], floats: UnsafePointer($0)) }
            },
            store: store)
        let kernel = try op.kernel(inputs: facts, outputs: outputFacts, constants: constantInputs)
        return withExtendedLifetime(store) { run(kernel, inputs, outputFacts: outputFacts, threads: threads) }
    }

    /// Runs `kernel` on `inputs` (nil = absent) into fresh outputs of `outputFacts`' shapes.
    static func run(_ kernel: any Kernel, _ inputs: [HostTensor?], outputFacts: [ValueFact],
                    threads: Int = 2) -> [HostTensor] {
        let floatInputs = inputs.map { $0?.floats }
        var outputs = outputFacts.map { [Float](repeating: .nan, count: $0.count) }
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: max(kernel.scratchBytes, 64), alignment: 64)
        defer { scratch.deallocate() }
        let pool = ThreadPool(threads: threads)
        let inputPointers = floatInputs.map { $0.map { array -> UnsafeMutablePointer<Float> in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(array.count, 1))
            p.initialize(from: array, count: array.count)
            return p
        } }
        defer { inputPointers.forEach { $0?.deallocate() } }
        let outputPointers = outputs.map { array -> UnsafeMutablePointer<Float> in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(array.count, 1))
            p.initialize(from: array, count: array.count)
            return p
        }
        defer { outputPointers.forEach { $0.deallocate() } }
        kernel.run(KernelIO(inputs: inputPointers.map { $0.map { UnsafePointer($0) } },
                            outputs: outputPointers,
                            scratch: kernel.scratchBytes > 0 ? scratch : nil, pool: pool))
        for i in outputs.indices {
            outputs[i] = Array(UnsafeBufferPointer(start: outputPointers[i], count: outputs[i].count))
        }
        return zip(outputFacts, outputs).map { HostTensor(shape: $0.shape, floats: $1) }
    }

    /// Asserts fast == reference within `tolerance` (max abs error relative to the
    /// reference's largest magnitude), printing both errors.
    static func assertFastMatchesReference(_ node: Node, _ inputs: [HostTensor?], planTime: Set<Int> = [], constants: Set<Int> = [],
                                           tolerance: Float = 1e-5, file: StaticString = #filePath, line: UInt = #line) throws {
        let op = try OpKind.makeOperator(node)
        let expected = try op.reference(inputs)
        let actual = try runFast(node, inputs, planTime: planTime, constants: constants)
        XCTAssertEqual(expected.count, actual.count, file: file, line: line)
        for (e, a) in zip(expected, actual) {
            XCTAssertEqual(e.shape, a.shape, file: file, line: line)
            let (maxAbs, relative) = maxAbsAndRelativeError(a.floats, e.floats)
            print("\(node.name) \(e.shape): max abs error \(maxAbs), relative \(relative)")
            XCTAssertLessThanOrEqual(relative, tolerance, "\(node.name): fast kernel differs from reference", file: file, line: line)
        }
    }
}

/// Small builders and checks shared by the layout op tests.
enum LayoutTesting {
    /// A node named `name` of `op` with inputs x0… and outputs y0….
    static func node(_ op: OpKind, _ name: String, inputs: Int = 1, outputs: Int = 1,
                     _ attributes: [String: Attribute] = [:]) -> Node {
        // Attributes as stored, decoded as the reader does; a test's fixed attributes
        // that do not decode are a mistake in the test.
        try! Node(name: name, op: op, inputs: (0..<inputs).map { "x\($0)" }, outputs: (0..<outputs).map { "y\($0)" },
             attributes: attributes)
    }

    /// A 1-D i64 tensor (a shape, indices, repeats …).
    static func ints(_ values: [Int64]) -> HostTensor {
        HostTensor(shape: [values.count], ints: values)
    }

    /// Runs the reference kernel of `node` on `inputs`.
    static func reference(_ node: Node, _ inputs: [HostTensor?]) throws -> [HostTensor] {
        try OpKind.makeOperator(node).reference(inputs)
    }

    /// Asserts `body` throws a typed error (`OpError` or `GraphError`) whose message
    /// names node `name`.
    static func assertError(naming name: String, file: StaticString = #filePath, line: UInt = #line,
                            _ body: () throws -> Void) {
        do {
            try body()
            XCTFail("expected an error naming node '\(name)'", file: file, line: line)
        } catch {
            XCTAssertTrue(error is OpError || error is GraphError, "untyped error \(error)", file: file, line: line)
            XCTAssertTrue("\(error)".contains("node '\(name)'"), "error does not name the node: \(error)", file: file, line: line)
        }
    }
}

extension Node {
    /// A node of `op` reading `inputs` values (x0, x1, …; nil marks an absent optional
    /// input) and writing y, for the math-op tests.
    static func mathTest(_ op: OpKind, _ name: String, inputs: Int, absent: Set<Int> = [],
                         _ attributes: [String: Attribute] = [:]) -> Node {
        try! Node(name: name, op: op, inputs: (0..<inputs).map { absent.contains($0) ? "" : "x\($0)" },
             outputs: ["y"], attributes: attributes)
    }
}

extension HostTensor {
    /// Random integers in -range...range from the harness's float generator (0 becomes
    /// 1 when `nonzero`, for divisors).
    static func mathRandomInts(_ shape: [Int], seed: UInt64, range: Float = 20, nonzero: Bool = false) -> HostTensor {
        let values = KernelHarness.random(shape, seed: seed).floats.map { value -> Int64 in
            let integer = Int64((value * range).rounded())
            return nonzero && integer == 0 ? 1 : integer
        }
        return HostTensor(shape: shape, ints: values)
    }

    /// A random bool mask, about half true.
    static func mathRandomMask(_ shape: [Int], seed: UInt64) -> HostTensor {
        HostTensor(shape: shape, ints: KernelHarness.random(shape, seed: seed).floats.map { $0 > 0 ? 1 : 0 }, dtype: .bool)
    }

    /// The same shape with `transform` applied to each float.
    func mathMapped(_ transform: (Float) -> Float) -> HostTensor {
        HostTensor(shape: shape, floats: floats.map(transform))
    }
}
