import Format
import Foundation
import ImageFiles
@testable import Runtime
import TestSupport
import XCTest

/// Optimizers against torch.optim, trainable weights chosen by name and kept apart from
/// the model, and a short optimisation that must lower its loss.
final class TrainingTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/optimizers")

    private func read(_ name: String) throws -> [Float] {
        try NumPyFile.read(path: Self.fixtures.appendingPathComponent("\(name).npy").path).floats
    }

    /// Two groups with their own rates and decay, StepLR ×0.5 every 2 steps, 5 steps
    /// (scripts/fixtures/make_optimizer_cases.py): AdamW and SGD with momentum.
    func testOptimizersFollowTorchOptim() throws {
        let (gw, gv) = (try read("gw"), try read("gv"))
        for (name, rule) in [("adamw", OptimizerRule.adam()), ("sgd", OptimizerRule.sgd(momentum: 0.9))] {
            var w = try read("w0"), v = try read("v0")
            let optimizer = Optimizer(rule: rule,
                                      groups: [ParameterGroup(parameters: [0], learningRate: 0.01, weightDecay: 0.1),
                                               ParameterGroup(parameters: [1], learningRate: 0.05)],
                                      schedule: .step(every: 2, gamma: 0.5), sizes: [7, 3])
            for step in 0..<5 {
                let (stepW, stepV) = (Array(gw[(step * 7)..<(step * 7 + 7)]), Array(gv[(step * 3)..<(step * 3 + 3)]))
                w.withUnsafeMutableBufferPointer { w in
                    v.withUnsafeMutableBufferPointer { v in
                        stepW.withUnsafeBufferPointer { gw in
                            stepV.withUnsafeBufferPointer { gv in optimizer.step(values: [w, v], gradients: [gw, gv]) }
                        }
                    }
                }
            }
            let errorW = maxAbsAndRelativeError(w, try read("\(name)_w"))
            let errorV = maxAbsAndRelativeError(v, try read("\(name)_v"))
            print("\(name) after 5 steps: max abs \(max(errorW.maxAbs, errorV.maxAbs))")
            XCTAssertLessThanOrEqual(errorW.maxAbs, 1e-6, name)
            XCTAssertLessThanOrEqual(errorV.maxAbs, 1e-6, name)
        }
    }

    func testSchedules() {
        XCTAssertEqual(LearningRateSchedule.step(every: 3, gamma: 0.1).factor(at: 5), 0.1, accuracy: 1e-7)
        XCTAssertEqual(LearningRateSchedule.cosine(steps: 10, floor: 0.2).factor(at: 5), 0.6, accuracy: 1e-6)
        XCTAssertEqual(LearningRateSchedule.cosine(steps: 10).factor(at: 20), 0, accuracy: 1e-7)
        XCTAssertEqual(LearningRateSchedule.exponential(gamma: 0.5).factor(at: 2), 0.25, accuracy: 1e-7)
    }

    func testNamePatterns() {
        XCTAssertTrue(NamePattern("blocks.*.weight").matches("blocks.3.weight"))
        XCTAssertFalse(NamePattern("blocks.*.weight").matches("blocks.3.bias"))
        XCTAssertTrue(NamePattern("head.?").matches("head.1"))
        XCTAssertFalse(NamePattern("head.?").matches("head.12"))
        XCTAssertTrue(NamePattern("*").matches(""))
    }

    /// The small prior network, trained by name: frozen weights stay out, the model's
    /// constants keep their values until `commit`, the loss falls, and `commit` gives the
    /// model the trained values as new generations.
    func testTrainingChosenWeightsLowersTheLossAndCommits() throws {
        let graph = PriorNetwork.unet.graph(height: 32, width: 32, seed: 3)
        let model = try Model(graph: graph)
        let weights = try TrainableWeights(model: model, trainable: ["up*", "output.*"], frozen: ["up0.*"])
        XCTAssertTrue(weights.names.allSatisfy { ($0.hasPrefix("up") && !$0.hasPrefix("up0.")) || $0.hasPrefix("output.") })
        XCTAssertTrue(weights.names.contains("output.weight"))
        let optimizer = Optimizer(rule: .adam(), groups: [ParameterGroup(parameters: Array(weights.names.indices),
                                                                         learningRate: 0.01)], sizes: weights.sizes)
        let trainer = try Trainer(model: model, inputShapes: [[1, 32, 32, 32]], weights: weights, optimizer: optimizer,
                                  threads: 2)
        let input = HostTensor(shape: [1, 32, 32, 32], floats: xorshiftFloats(count: 32 * 32 * 32, seed: 5))
        let target = xorshiftFloats(count: 3 * 32 * 32, seed: 6).map { $0 * 0.5 + 0.5 }
        var losses: [Float] = []
        for _ in 0..<8 {
            losses.append(target.withUnsafeBufferPointer { target in
                trainer.step(inputs: [input]) { output, gradient in
                    Loss.mse.evaluate(output: output, target: target, gradient: gradient)
                }
            })
        }
        XCTAssertLessThan(losses[7], losses[0] * 0.9, "losses \(losses)")
        let original = graph.constants["output.weight"]?.floatValues()
        XCTAssertEqual(model.graph.constants["output.weight"]?.floatValues(), original, "trained before commit")
        XCTAssertNotEqual(weights.values(weights.names.firstIndex(of: "output.weight") ?? 0), original)
        try weights.commit(to: model)
        XCTAssertEqual(model.constantGeneration("output.weight"), 1)
        XCTAssertEqual(model.graph.constants["output.weight"]?.floatValues(),
                       weights.values(weights.names.firstIndex(of: "output.weight") ?? 0))
        // The committed model runs as an ordinary model and gives the trained output.
        let session = Session(model: model, threads: 2)
        let run = try session.run([input])[0].floats
        let trained = trainer.output(inputs: [input]).floats
        XCTAssertLessThanOrEqual(maxAbsAndRelativeError(run, trained).relative, 1e-5)
    }

    func testNoMatchingWeightIsAnError() throws {
        let model = try Model(graph: PriorNetwork.unet.graph(height: 32, width: 32, seed: 3))
        XCTAssertThrowsError(try TrainableWeights(model: model, trainable: ["nothing.*"])) { error in
            XCTAssertEqual(error as? TrainingError, .noTrainableWeights(patterns: ["nothing.*"], frozen: []))
        }
    }
}
