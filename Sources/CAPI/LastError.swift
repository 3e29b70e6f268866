import CRestore
#if canImport(Glibc)
import Glibc
#endif

/// The per-thread message behind `restore_last_error()`: a `malloc`ed C string held in a
/// pthread key, so each thread sees only its own calls and the string is freed when the
/// thread exits (the key's destructor) or the next call replaces it.
enum LastError {
    /// Created once; nil only if the process is out of pthread keys, in which case
    /// messages are dropped rather than shared between threads.
    private static let key: pthread_key_t? = {
        var key = pthread_key_t()
        return pthread_key_create(&key, { free($0) }) == 0 ? key : nil
    }()

    /// Replaces this thread's message; nil clears it.
    static func set(_ message: String?) {
        guard let key else { return }
        let previous = pthread_getspecific(key)
        let fresh = message.flatMap { strdup($0) }
        pthread_setspecific(key, fresh)
        free(previous)
    }

    /// This thread's message, or "" when the last call succeeded.
    static var current: UnsafePointer<CChar> {
        guard let key, let message = pthread_getspecific(key) else { return StaticCString.empty }
        return UnsafePointer(message.assumingMemoryBound(to: CChar.self))
    }
}

/// C strings with static storage (string literals), handed out without copying.
enum StaticCString {
    static let empty = pointer("")

    static func pointer(_ literal: StaticString) -> UnsafePointer<CChar> {
        UnsafeRawPointer(literal.utf8Start).assumingMemoryBound(to: CChar.self)
    }
}

/// A C string owned by a handle: copied from a Swift string, freed with its owner.
/// Immutable after init, so handles share it between threads.
final class OwnedCString: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<CChar>

    init(_ string: String) {
        let bytes = Array(string.utf8CString)
        pointer = .allocate(capacity: bytes.count)
        pointer.initialize(from: bytes, count: bytes.count)
    }

    deinit { pointer.deallocate() }
}
