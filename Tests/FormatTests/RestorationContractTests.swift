import XCTest
@testable import Format

final class RestorationContractTests: XCTestCase {
    private let image = ValueInfo(name: "image", dtype: .float32, shape: [.symbol("N"), .fixed(3), .symbol("H"), .symbol("W")])
    private let restored = ValueInfo(name: "restored", dtype: .float32,
                                     shape: [.symbol("N"), .fixed(3), .symbol("H"), .symbol("W")])

    private func graph(_ metadata: [String: String], input: ValueInfo? = nil) -> Graph {
        Graph(inputs: [input ?? image], outputs: [restored], nodes: [], metadata: metadata)
    }

    func testSettingsEncodeOnlyTheFieldsSetInTheFormConvertHasAlwaysWritten() {
        var settings = RestorationContract.Settings()
        settings.task = .superResolve
        settings.range = .unit
        settings.mean = [0.485, 0.456, 0.406]
        settings.residual = true
        settings.multiple = 32
        XCTAssertEqual(settings.metadata, [
            "restore.task": "super-resolve", "restore.range": "0,1", "restore.mean": "0.485,0.456,0.406",
            "restore.residual": "true", "restore.multiple": "32",
        ])
    }

    func testDecodingWhatWasEncodedGivesTheSameSettings() throws {
        var settings = RestorationContract.Settings()
        settings.task = .deblur
        settings.input = "image"
        settings.range = .signed
        settings.std = [0.25, 0.5, 2]
        settings.residual = false
        settings.scale = 4
        settings.tile = 256
        settings.overlap = 16
        XCTAssertEqual(try RestorationContract.Settings(metadata: settings.metadata), settings)
    }

    func testUnsetFieldsTakeTheirDefaults() throws {
        let contract = try RestorationContract(graph: graph([:]))
        XCTAssertEqual(contract, try RestorationContract(
            RestorationContract.Settings(metadata: ["restore.task": "restore", "restore.input": "image",
                                                    "restore.output": "restored", "restore.range": "0,1",
                                                    "restore.mean": "0", "restore.std": "1", "restore.residual": "false",
                                                    "restore.scale": "1", "restore.multiple": "1", "restore.tile": "0",
                                                    "restore.overlap": "0"]),
            graph: graph([:])))
    }

    func testUnknownTaskIsRefusedNamingKeyAndValue() {
        XCTAssertThrowsError(try RestorationContract.Settings(metadata: ["restore.task": "sharpen"])) { error in
            guard case ContractError.badValue(let key, let value, _)? = error as? ContractError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(key, "restore.task")
            XCTAssertEqual(value, "sharpen")
        }
    }

    func testBadValuesAreRefusedNamingTheKey() {
        for (key, value) in [("restore.range", "0,2"), ("restore.mean", "1,2"), ("restore.std", "0,1,1"),
                             ("restore.residual", "maybe"), ("restore.scale", "0"), ("restore.tile", "-1")] {
            XCTAssertThrowsError(try RestorationContract.Settings(metadata: [key: value])) { error in
                XCTAssertEqual((error as? ContractError).flatMap { error -> String? in
                    guard case .badValue(let key, _, _) = error else { return nil }
                    return key
                }, key)
            }
        }
    }

    func testResidualNeedsScaleOne() {
        XCTAssertThrowsError(try RestorationContract(graph: graph(["restore.residual": "true", "restore.scale": "2"]))) {
            guard case ContractError.badValue("restore.residual", _, _)? = $0 as? ContractError else { return XCTFail("\($0)") }
        }
    }

    func testTheImageInputMustBeThreeChannelNCHWAndTheNamesMustExist() {
        let gray = ValueInfo(name: "image", dtype: .float32, shape: [.symbol("N"), .fixed(1), .symbol("H"), .symbol("W")])
        for model in [graph([:], input: gray), graph(["restore.input": "other"]), graph(["restore.output": "other"])] {
            XCTAssertThrowsError(try RestorationContract(graph: model)) {
                guard case ContractError.notAnImageModel? = $0 as? ContractError else { return XCTFail("\($0)") }
            }
        }
    }

    func testMergingTakesTheFieldsTheOverridesSet() {
        var carried = RestorationContract.Settings()
        carried.range = .byte
        carried.scale = 2
        var flags = RestorationContract.Settings()
        flags.range = .unit
        let merged = carried.merging(flags)
        XCTAssertEqual(merged.range, .unit)
        XCTAssertEqual(merged.scale, 2)
    }
}
