import ArgumentParser
import Foundation

/// `--threads`, as the training and generation commands (grad, dip, dgp, generate,
/// finetune) share it.
struct KernelThreads: ParsableArguments {
    @Option(name: .customLong("threads"), help: "Threads for Restore's kernels.")
    var count: Int = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        guard (1...RRun.Restore.maximumThreads).contains(count) else {
            throw ValidationError("--threads must be 1 to \(RRun.Restore.maximumThreads), found \(count)")
        }
    }
}
