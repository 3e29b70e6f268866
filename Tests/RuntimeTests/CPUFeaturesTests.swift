import Format
import XCTest
@testable import Runtime

/// The run-time choice of kernel variants: the names RESTORE_CPU takes and the levels tests run.
final class CPUFeaturesTests: XCTestCase {
    func testRestoreCPUNamesTheLevels() {
        XCTAssertEqual(CPUFeatures.level(named: "generic"), .portable)
        XCTAssertEqual(CPUFeatures.level(named: "portable"), .portable)
        XCTAssertEqual(CPUFeatures.level(named: "AVX2"), .avx2)
        XCTAssertEqual(CPUFeatures.level(named: "avx512"), .avx512)
        XCTAssertNil(CPUFeatures.level(named: "sse4"))
        XCTAssertEqual(CPULevel.allCases.map(CPUFeatures.name(of:)), ["generic", "avx2", "avx512"])
    }

    func testLevelsAreOrderedAndTheChosenOneIsSupported() {
        XCTAssertLessThan(CPULevel.portable, .avx2)
        XCTAssertLessThan(CPULevel.avx2, .avx512)
        XCTAssertEqual(CPUFeatures.supportedLevels.first, .portable)
        XCTAssertEqual(CPUFeatures.supportedLevels.last, CPUFeatures.detected)
        XCTAssertTrue(CPUFeatures.supports(CPUFeatures.level))
        XCTAssertTrue(CPUFeatures.summary.hasPrefix("CPU path \(CPUFeatures.name(of: CPUFeatures.level)) ("), CPUFeatures.summary)
    }
}
