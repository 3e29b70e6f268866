import CKernels
import Foundation
import Format

/// What the CPU running this process can do, and which kernel variants run: the binary is
/// built for any x86-64 (a plain `swift build -c release` targets SSE2), and the hot
/// kernels of Sources/CKernels pick their AVX2 or AVX-512 variant here at run time.
///
/// `RESTORE_CPU=avx512|avx2|generic` in the environment forces a lower path (to measure
/// or test the AVX2 path on an AVX-512 machine); a level the CPU lacks is not taken.
public enum CPUFeatures {
    /// The environment variable that forces a path.
    public static let environmentVariable = CPULevel.environmentVariable

    /// The best level this CPU runs.
    public static let detected = level(fromC: restore_cpu_detected_level())

    /// The level the kernels use: `detected`, or lower when `RESTORE_CPU` asks for it.
    public static let level: CPULevel = choice.level

    /// AVX-512F kernels (GEMM, activations) run.
    public static var avx512: Bool { level >= .avx512 }

    /// AVX2 + FMA kernels run.
    public static var avx2: Bool { level >= .avx2 }

    /// Whether this CPU can run kernels written for `candidate`.
    public static func supports(_ candidate: CPULevel) -> Bool { candidate <= detected }

    /// The levels this CPU supports, lowest first: the paths tests compare with the reference.
    public static var supportedLevels: [CPULevel] { CPULevel.allCases.filter(supports) }

    /// One line for `rrun -v` and `rrun bench`: the path taken and why.
    public static var summary: String { "CPU path \(name(of: level)) (\(choice.reason))" }

    /// `generic` for the portable level, else the level's name: the spelling `RESTORE_CPU` takes.
    public static func name(of level: CPULevel) -> String { level == .portable ? "generic" : level.rawValue }


    /// The level as the C kernels number it (RESTORE_CPU_GENERIC, _AVX2, _AVX512).
    public static func cValue(of level: CPULevel) -> Int32 {
        switch level {
        case .portable: Int32(RESTORE_CPU_GENERIC)
        case .avx2: Int32(RESTORE_CPU_AVX2)
        case .avx512: Int32(RESTORE_CPU_AVX512)
        }
    }

    private static func level(fromC value: Int32) -> CPULevel {
        switch value {
        case Int32(RESTORE_CPU_AVX512): .avx512
        case Int32(RESTORE_CPU_AVX2): .avx2
        default: .portable
        }
    }

    private static let choice: (level: CPULevel, reason: String) = {
        let detectedName = name(of: detected)
        guard let text = ProcessInfo.processInfo.environment[environmentVariable], !text.isEmpty else {
            return (detected, "detected \(detectedName)")
        }
        guard let asked = CPULevel(named: text) else {
            return (detected, "detected \(detectedName); \(environmentVariable)=\(text) is not generic, avx2 or avx512, ignored")
        }
        guard supports(asked) else {
            return (detected, "detected \(detectedName); \(environmentVariable)=\(text) needs a CPU this one is not, ignored")
        }
        return (asked, "\(environmentVariable)=\(text); detected \(detectedName)")
    }()
}
