import CRestore
import Format
import Runtime

/// An error raised by the C entry points themselves (bad arguments, buffers too small),
/// carrying the status it returns.
struct CallFailure: Error {
    let status: restore_status
    let message: String

    static func argument(_ message: String) -> CallFailure { CallFailure(status: RESTORE_ERROR_ARGUMENT, message: message) }
    static func shape(_ message: String) -> CallFailure { CallFailure(status: RESTORE_ERROR_SHAPE, message: message) }
    static func memory(_ message: String) -> CallFailure { CallFailure(status: RESTORE_ERROR_MEMORY, message: message) }
    static func unsupported(_ message: String) -> CallFailure { CallFailure(status: RESTORE_ERROR_UNSUPPORTED, message: message) }
    static func `internal`(_ message: String) -> CallFailure { CallFailure(status: RESTORE_ERROR_INTERNAL, message: message) }
}

/// Runs the body of entry point `function`, turning every thrown error into a status and
/// this thread's last-error message ("function: what went wrong"); success clears it.
func reporting(_ function: String, _ body: () throws -> Void) -> restore_status {
    do {
        try body()
        LastError.set(nil)
        return RESTORE_OK
    } catch {
        let message = (error as? CallFailure)?.message ?? "\(error)"
        LastError.set("\(function): \(message)")
        return status(of: error)
    }
}

/// The status a library error maps to: files that cannot be opened are I/O, bytes that
/// are not a valid model are format, things valid but not implemented are unsupported,
/// sizes that do not fit the model are shape, and anything unexpected is internal.
func status(of error: any Error) -> restore_status {
    switch error {
    case let failure as CallFailure:
        return failure.status
    case let error as RGraphError:
        switch error {
        case .cannotOpen, .cannotWrite: return RESTORE_ERROR_IO
        case .unsupportedVersion, .unknownOp, .unknownQuantization: return RESTORE_ERROR_UNSUPPORTED
        case .tooSmall, .badMagic, .fixedHeaderChecksumMismatch, .sectionOutOfRange, .misplacedSection,
             .overlappingSections, .checksumMismatch, .tensorChecksumMismatch, .malformedHeader, .invalidAttributes, .unknownDType, .badShape,
             .tensorLengthMismatch, .misalignedTensor, .tensorOutOfRange, .duplicateTensor, .invalidQuantization:
            return RESTORE_ERROR_FORMAT
        }
    case let error as ModelError:
        switch error {
        // A file whose nodes cannot load is not a valid model, unless one of them is valid
        // but not implemented here: that one says more about what to do.
        case .invalidNodes(let problems):
            return problems.contains { status(of: $0, planning: false) == RESTORE_ERROR_UNSUPPORTED }
                ? RESTORE_ERROR_UNSUPPORTED : RESTORE_ERROR_FORMAT
        case .missingInput, .unexpectedInput, .weightFed, .inputType: return RESTORE_ERROR_ARGUMENT
        case .inputShape, .inconsistentSymbol: return RESTORE_ERROR_SHAPE
        case .node(let problem): return status(of: problem, planning: true)
        case .valueTooLarge: return RESTORE_ERROR_MEMORY
        case .invalidConstant: return RESTORE_ERROR_FORMAT
        case .constantReplacement: return RESTORE_ERROR_ARGUMENT
        }
    case let error as NodeProblem:
        return status(of: error, planning: true)
    case let error as OpError:
        return status(of: .op(error), planning: true)
    case let error as GraphError:
        return status(of: .graph(error), planning: false)
    case let error as ContractError:
        switch error {
        case .badValue: return RESTORE_ERROR_FORMAT
        case .notAnImageModel: return RESTORE_ERROR_UNSUPPORTED
        }
    case let error as RestoreError:
        switch error {
        case .imageShape, .outputShape: return RESTORE_ERROR_SHAPE
        case .tileForFixedModel, .overlap, .tileTooSmall: return RESTORE_ERROR_ARGUMENT
        }
    case is MemoryLimitError:
        return RESTORE_ERROR_MEMORY
    case let error as TrainingError:
        switch error {
        case .cancelled: return RESTORE_CANCELLED
        case .shapeMismatch: return RESTORE_ERROR_SHAPE
        case .noTrainableWeights: return RESTORE_ERROR_ARGUMENT
        }
    case let error as GeneratorError:
        switch error {
        case .notAGenerator: return RESTORE_ERROR_UNSUPPORTED
        case .classOutOfRange, .truncationMismatch: return RESTORE_ERROR_ARGUMENT
        }
    case let error as PixelImageError:
        switch error {
        case .tensorShape: return RESTORE_ERROR_SHAPE
        }
    default:
        return RESTORE_ERROR_INTERNAL
    }
}

/// The status of one node's problem: when `planning` for given input sizes, an op's shape
/// error is those sizes not fitting (shape); when loading, before any size is known, it
/// is a node the file describes wrongly (format).
private func status(of problem: NodeProblem, planning: Bool) -> restore_status {
    switch problem {
    case .graph(let error):
        switch error {
        case .missingAttribute, .unknownAttribute, .badAttribute, .missingInput, .unknownValue: return RESTORE_ERROR_FORMAT
        }
    case .op(let error):
        switch error {
        case .shape: return planning ? RESTORE_ERROR_SHAPE : RESTORE_ERROR_FORMAT
        case .notPlanTime, .unsupported: return RESTORE_ERROR_UNSUPPORTED
        }
    case .outputNotProduced: return RESTORE_ERROR_FORMAT
    }
}
