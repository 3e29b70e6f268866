import Format
import XCTest
@testable import Runtime

/// The run-time choice of kernel variants: the names RESTORE_CPU takes and the levels tests run.
final class CPUFeaturesTests: XCTestCase {
    func testRestoreCPUNamesTheLevels() {
        XCTAssertEqual(CPULevel(named: "generic"), .portable)
        XCTAssertEqual(CPULevel(named: "portable"), .portable)
        XCTAssertEqual(CPULevel(named: "AVX2"), .avx2)
        XCTAssertEqual(CPULevel(named: "avx512"), .avx512)
        XCTAssertNil(CPULevel(named: "sse4"))
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
