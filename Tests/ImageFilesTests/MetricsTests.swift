import ImageFiles
import XCTest
@testable import Runtime

/// PSNR and SSIM against scikit-image 0.26 on the pairs in Tests/Fixtures/images/metrics
/// (natural and random, gray and RGB, odd sizes, data ranges 1 and 255).
final class MetricsTests: XCTestCase {
    func testMatchScikitImageOnEveryCase() throws {
        let cases = try XCTUnwrap(IOTestSupport.json("metrics/cases.json") as? [String: [String: Double]])
        XCTAssertEqual(cases.count, 5)
        for (name, reference) in cases.sorted(by: { $0.key < $1.key }) {
            let a = try NumPyFile.read(path: IOTestSupport.fixture("metrics/\(name).a.npy"))
            let b = try NumPyFile.read(path: IOTestSupport.fixture("metrics/\(name).b.npy"))
            let range = try XCTUnwrap(reference["data_range"])
            let psnr = try ImageMetrics.psnr(a, b, dataRange: range)
            let ssim = try ImageMetrics.ssim(a, b, dataRange: range, pool: ThreadPool(threads: 2))
            let psnrError = abs(psnr - (try XCTUnwrap(reference["psnr"])))
            let ssimError = abs(ssim - (try XCTUnwrap(reference["ssim"])))
            print("\(name) \(a.shape): PSNR \(psnr) dB (|diff| \(psnrError)), SSIM \(ssim) (|diff| \(ssimError))")
            XCTAssertLessThanOrEqual(psnrError, 1e-3, name)
            XCTAssertLessThanOrEqual(ssimError, 1e-3, name)
        }
    }

    func testThreadCountDoesNotChangeSSIM() throws {
        let a = IOTestSupport.random([3, 131, 77], seed: 11)
        let b = HostTensor(shape: a.shape, floats: zip(a.floats, IOTestSupport.random(a.shape, seed: 12).floats).map { $0 + 0.1 * $1 })
        let one = try ImageMetrics.ssim(a, b, dataRange: 2, pool: ThreadPool(threads: 1))
        let two = try ImageMetrics.ssim(a, b, dataRange: 2, pool: ThreadPool(threads: 2))
        print("SSIM 1 thread \(one), 2 threads \(two)")
        XCTAssertEqual(one, two)
    }

    func testIdenticalImagesScorePerfectly() throws {
        let a = IOTestSupport.random([1, 3, 20, 17], seed: 5)
        XCTAssertEqual(try ImageMetrics.psnr(a, a, dataRange: 2), .infinity)
        XCTAssertEqual(try ImageMetrics.ssim(a, a, dataRange: 2), 1, accuracy: 1e-12)
    }

    func testRefusesMismatchedAndTooSmallImages() {
        let a = IOTestSupport.random([12, 12], seed: 1)
        XCTAssertThrowsError(try ImageMetrics.psnr(a, IOTestSupport.random([12, 13], seed: 2), dataRange: 1)) {
            XCTAssertEqual($0 as? MetricError, .shapeMismatch([12, 12], [12, 13]))
        }
        let small = IOTestSupport.random([3, 10, 40], seed: 3)
        XCTAssertThrowsError(try ImageMetrics.ssim(small, small, dataRange: 1)) {
            XCTAssertEqual($0 as? MetricError, .imageTooSmall(shape: [3, 10, 40], minimum: 11))
        }
        let batch = IOTestSupport.random([2, 3, 12, 12], seed: 4)
        XCTAssertThrowsError(try ImageMetrics.ssim(batch, batch, dataRange: 1)) {
            XCTAssertEqual($0 as? MetricError, .unsupportedShape([2, 3, 12, 12]))
        }
    }
}
