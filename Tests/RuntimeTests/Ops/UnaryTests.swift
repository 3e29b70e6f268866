import Format
import XCTest
@testable import Runtime

final class UnaryTests: XCTestCase {
    /// Parameters away from the defaults, so the tests see them being read.
    private func node(_ function: UnaryFunction) -> Node {
        var attributes: [String: Attribute] = ["function": .string(function.rawValue)]
        switch function {
        case .leakyRelu, .elu: attributes["alpha"] = .float(0.3)
        case .hardSigmoid: attributes["alpha"] = .float(0.3); attributes["beta"] = .float(0.4)
        case .clip: attributes["min"] = .float(-0.25); attributes["max"] = .float(0.5)
        default: break
        }
        return .mathTest(.unary, "unary_\(function)", inputs: 1, attributes)
    }

    /// Random inputs inside the function's domain (positive for log, sqrt, reciprocal;
    /// bool for not), scaled so steep functions see their whole range.
    private func input(_ function: UnaryFunction, _ shape: [Int], seed: UInt64) -> HostTensor {
        let x = KernelHarness.random(shape, seed: seed)
        switch function {
        case .not: return .mathRandomMask(shape, seed: seed)
        case .log, .sqrt, .reciprocal: return x.mathMapped { abs($0) + 0.05 }
        case .asin, .acos, .atanh: return x.mathMapped { $0 * 0.95 }  // the open interval (−1, 1)
        case .acosh: return x.mathMapped { abs($0) * 4 + 1 }
        default: return x.mathMapped { $0 * 4 }
        }
    }

    func testFastMatchesReferenceForEveryFunctionOnOddShapes() throws {
        let shapes = [[1], [7], [63], [65], [5, 13], [2, 3, 5, 7], [1, 2, 3, 5, 7]]
        for function in UnaryFunction.allCases {
            for (index, shape) in shapes.enumerated() {
                try KernelHarness.assertFastMatchesReference(node(function), [input(function, shape, seed: UInt64(index + 1))])
            }
        }
    }

    func testFastSplitsLargeTensorsAcrossThreads() throws {
        for function in [UnaryFunction.relu, .gelu, .clip] {
            try KernelHarness.assertFastMatchesReference(node(function), [input(function, [3, 65, 999], seed: 9)])
        }
    }

    /// In-place GELU over buffers, on every path this CPU runs (AVX-512: 16 lanes with a
    /// masked tail; AVX2: 8 lanes with a padded tail; generic: scalar), against the scalar
    /// definition in double precision: odd counts, values from −10 to 10. Tolerance 2e-6
    /// of max(1, |x|): the vector paths' rational erf is within 3.4e-7 (GELU within 6.9e-7
    /// absolute, Sources/CKernels/activation_vector.h).
    func testBufferGELUMatchesTheDefinition() {
        let gelu = Activation(function: .gelu)
        for cpu in CPUFeatures.supportedLevels {
            for count in [1, 7, 8, 9, 15, 16, 17, 1001] {
                var values = (0..<count).map { Float(-10 + 20 * Double($0) / Double(max(count - 1, 1))) }
                let inputs = values
                values.withUnsafeMutableBufferPointer { gelu.apply($0.baseAddress!, count: count, cpu: cpu) }
                var worst: Double = 0
                for (x, y) in zip(inputs, values) {
                    let exact = 0.5 * Double(x) * (1 + erf(Double(x) / 2.0.squareRoot()))
                    worst = max(worst, abs(Double(y) - exact) / max(1, abs(Double(x))))
                }
                print("GELU (\(CPUFeatures.name(of: cpu))) over \(count) values: max error \(worst) of max(1, |x|)")
                XCTAssertLessThanOrEqual(worst, 2e-6, "\(cpu), \(count) values")
            }
        }
    }

    func testIntegerFunctionsAreExact() throws {
        let x = HostTensor(shape: [5], ints: [-3, 0, 5, -1, 7])
        let expected: [UnaryFunction: [Int64]] = [.identity: [-3, 0, 5, -1, 7], .abs: [3, 0, 5, 1, 7],
                                                  .neg: [3, 0, -5, 1, -7], .floor: [-3, 0, 5, -1, 7], .ceil: [-3, 0, 5, -1, 7]]
        for (function, values) in expected {
            let y = try OpKind.makeOperator(node(function)).reference([x])[0]
            XCTAssertEqual(y, HostTensor(shape: [5], ints: values), "\(function)")
        }
    }

    func testNotNegatesBool() throws {
        let mask = HostTensor(shape: [2, 2], ints: [1, 0, 0, 1], dtype: .bool)
        let y = try OpKind.makeOperator(node(.not)).reference([mask])[0]
        XCTAssertEqual(y, HostTensor(shape: [2, 2], ints: [0, 1, 1, 0], dtype: .bool))
    }

    func testFloatOnlyFunctionRejectsIntegersNamingTheNode() throws {
        let op = try OpKind.makeOperator(node(.sigmoid))
        XCTAssertThrowsError(try op.reference([HostTensor(shape: [1], ints: [2])])) { error in
            XCTAssertTrue("\(error)".contains("unary_sigmoid"), "\(error)")
        }
    }
}
