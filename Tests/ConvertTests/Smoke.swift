import XCTest
@testable import Convert
final class ConvertSmokeTests: XCTestCase { func testBuilds() {} }
