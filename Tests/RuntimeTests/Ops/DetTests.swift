import Format
import XCTest
@testable import Runtime

/// det: fast against reference, the reference against hand values and the Leibniz
/// formula (against onnxruntime: Tests/Fixtures/ops/det_*).
final class DetTests: XCTestCase {
    private let node = LayoutTesting.node(.det, "det")

    func testFastMatchesReference() throws {
        try KernelHarness.assertFastMatchesReference(node, [KernelHarness.random([2, 7, 1, 1], seed: 1)], tolerance: 0)
        try KernelHarness.assertFastMatchesReference(node, [KernelHarness.random([65, 7, 7], seed: 2)], tolerance: 0)
    }

    func testHandValues() throws {
        let matrices = HostTensor(shape: [3, 2, 2], floats: [1, 2, 3, 4, 2, 4, 1, 2, 0, 1, 1, 0])
        XCTAssertEqual(try LayoutTesting.reference(node, [matrices]), [HostTensor(shape: [3], floats: [-2, 0, -1])])
        XCTAssertEqual(try LayoutTesting.reference(node, [HostTensor(shape: [3, 3], floats: [2, 0, 0, 0, 3, 0, 0, 0, 4])]),
                       [HostTensor(shape: [], floats: [24])])
    }

    /// Σ over permutations σ of sign(σ)·Π a[i, σ(i)], in Double, for random 4×4 and 5×5 matrices.
    func testMatchesTheLeibnizFormula() throws {
        for (seed, size) in [(3, 4), (4, 5)] {
            let x = KernelHarness.random([size, size], seed: UInt64(seed))
            let a = x.floats.map(Double.init)
            var expected = 0.0
            func permute(_ prefix: [Int], _ rest: [Int]) {
                guard !rest.isEmpty else {
                    let inversions = prefix.indices.reduce(0) { sum, i in sum + prefix[(i + 1)...].filter { $0 < prefix[i] }.count }
                    expected += (inversions % 2 == 0 ? 1 : -1) * prefix.enumerated().reduce(1.0) { $0 * a[$1.offset * size + $1.element] }
                    return
                }
                for (k, value) in rest.enumerated() { permute(prefix + [value], Array(rest[..<k] + rest[(k + 1)...])) }
            }
            permute([], Array(0..<size))
            let result = try LayoutTesting.reference(node, [x])[0].floats[0]
            XCTAssertEqual(Double(result), expected, accuracy: 1e-6 * max(1, abs(expected)), "\(size)×\(size)")
        }
    }

    func testNonSquareInputNamesTheNode() throws {
        let op = try OpKind.makeOperator(LayoutTesting.node(.det, "bad_det"))
        LayoutTesting.assertError(naming: "bad_det") { _ = try op.outputs(for: [ValueFact(dtype: .float32, shape: [2, 3])]) }
        LayoutTesting.assertError(naming: "bad_det") { _ = try op.outputs(for: [ValueFact(dtype: .float32, shape: [3])]) }
    }
}
