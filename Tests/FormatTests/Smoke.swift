import XCTest
@testable import Format
final class FormatSmokeTests: XCTestCase { func testBuilds() {} }
