// swift-tools-version:6.2
import PackageDescription

// libFuzzer targets for every reader of untrusted bytes (docs/design.md §7). A package of its
// own so the main build and CI never compile them; build and run with scripts/fuzz.sh.
// Each target's main hands its test to libFuzzer (FuzzSupport.runLibFuzzer).
let package = Package(
    name: "RestoreFuzz",
    dependencies: [
        .package(name: "Restore", path: ".."),
    ],
    targets: [
        .systemLibrary(name: "CLibFuzzer"),
        .target(name: "FuzzSupport", dependencies: ["CLibFuzzer"]),
        .executableTarget(name: "FuzzONNX", dependencies: [
            "FuzzSupport",
            .product(name: "RestoreConvert", package: "Restore"),
        ]),
        .executableTarget(name: "FuzzRGraph", dependencies: [
            "FuzzSupport",
            .product(name: "RestoreFormat", package: "Restore"),
        ]),
        .executableTarget(name: "FuzzSafetensors", dependencies: [
            "FuzzSupport",
            .product(name: "RestoreFormat", package: "Restore"),
        ]),
        .executableTarget(name: "FuzzPlan", dependencies: [
            "FuzzSupport",
            .product(name: "RestoreFormat", package: "Restore"),
            .product(name: "RestoreRuntime", package: "Restore"),
        ]),
        .executableTarget(name: "FuzzPNG", dependencies: [
            "FuzzSupport",
            .product(name: "RestoreRuntime", package: "Restore"),
            .product(name: "RestoreImageFiles", package: "Restore"),
        ]),
        .executableTarget(name: "FuzzJPEG", dependencies: [
            "FuzzSupport",
            .product(name: "RestoreRuntime", package: "Restore"),
            .product(name: "RestoreImageFiles", package: "Restore"),
        ]),
        .executableTarget(name: "FuzzWebP", dependencies: [
            "FuzzSupport",
            .product(name: "RestoreRuntime", package: "Restore"),
            .product(name: "RestoreImageFiles", package: "Restore"),
        ]),
        .executableTarget(name: "FuzzNPY", dependencies: [
            "FuzzSupport",
            .product(name: "RestoreImageFiles", package: "Restore"),
        ]),
    ],
    swiftLanguageModes: [.v5]
)
