#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file reads and all-or-nothing writes, shared by the PNG and NPY readers/writers
/// (and by rrun for the text files it writes: metrics.csv, the HTML report).
///
/// Writing goes to a fresh file beside the destination and is renamed over it only once
/// every byte is on disk, so a crash or a full disk never leaves a half-written output
/// under the real name. (rename(2) is atomic within one file system; the temporary file
/// is in the same directory for that reason.)
public enum FileBytes {
    /// A file-system failure in words (the caller adds which reader or writer it was).
    private struct Failure: Error {
        var detail: String
    }

    /// Reads the whole file at `path`; a failure is thrown as `failure(detail)`, the
    /// caller's typed error naming the file.
    static func readAll(_ path: String, failure: (_ detail: String) -> any Error) throws -> [UInt8] {
        try reporting(failure) { try readAll(path) }
    }

    /// Writes `bytes` to `path` as `writeAtomically(_:to:)` below; a failure is thrown as
    /// `failure(detail)`.
    public static func writeAtomically(_ bytes: [UInt8], to path: String, failure: (_ detail: String) -> any Error) throws {
        try bytes.withUnsafeBytes { try writeAtomically($0, to: path, failure: failure) }
    }

    /// The same for bytes in any buffer (a C library's output, written without a copy).
    static func writeAtomically(_ bytes: UnsafeRawBufferPointer, to path: String,
                                failure: (_ detail: String) -> any Error) throws {
        try reporting(failure) { try writeAtomically([bytes], to: path) }
    }

    /// The same for the concatenation of `parts` (a header and a body kept apart).
    static func writeAtomically(_ parts: [UnsafeRawBufferPointer], to path: String,
                                failure: (_ detail: String) -> any Error) throws {
        try reporting(failure) { try writeAtomically(parts, to: path) }
    }

    private static func reporting<T>(_ failure: (_ detail: String) -> any Error, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as Failure {
            throw failure(error.detail)
        }
    }

    /// Reads the whole file at `path`.
    private static func readAll(_ path: String) throws -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw Failure(detail: "cannot open: \(errnoText())") }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw Failure(detail: "cannot stat: \(errnoText())") }
        guard (status.st_mode & S_IFMT) == S_IFREG else { throw Failure(detail: "not a regular file") }
        var bytes = [UInt8](repeating: 0, count: Int(status.st_size))
        var filled = 0
        while filled < bytes.count {
            let got = bytes.withUnsafeMutableBytes { buffer in
                read(descriptor, buffer.baseAddress.map { $0 + filled }, buffer.count - filled)
            }
            if got < 0 && errno == EINTR { continue }
            guard got >= 0 else { throw Failure(detail: "read failed: \(errnoText())") }
            if got == 0 { bytes.removeLast(bytes.count - filled) } // the file shrank while read
            filled += got
        }
        return bytes
    }

    /// Writes `parts` one after the other to `path` through a temporary file in the same
    /// directory, renamed over `path` only when complete; on any failure the temporary file
    /// is removed.
    private static func writeAtomically(_ parts: [UnsafeRawBufferPointer], to path: String) throws {
        let temporary = try createTemporarySibling(of: path)
        var completed = false
        defer { if !completed { unlink(temporary.path) } }
        do {
            defer { close(temporary.descriptor) }
            for bytes in parts {
                var written = 0
                while written < bytes.count {
                    let put = write(temporary.descriptor, bytes.baseAddress.map { $0 + written }, bytes.count - written)
                    if put < 0 && errno == EINTR { continue }
                    guard put > 0 else { throw Failure(detail: "write failed: \(errnoText())") }
                    written += put
                }
            }
            guard fsync(temporary.descriptor) == 0 else { throw Failure(detail: "fsync failed: \(errnoText())") }
        }
        guard rename(temporary.path, path) == 0 else {
            throw Failure(detail: "cannot rename \(temporary.path) into place: \(errnoText())")
        }
        completed = true
    }

    /// Creates `.<name>.<pid>-<n>.tmp` next to `path`. open(2) with mode 0666 lets the
    /// umask decide the permissions, as for any ordinary new file (mkstemp would force 0600).
    private static func createTemporarySibling(of path: String) throws -> (path: String, descriptor: Int32) {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[...$0]) } ?? ""
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard !name.isEmpty else { throw Failure(detail: "the output path names a directory") }
        for attempt in 0..<64 {
            let candidate = "\(directory).\(name).\(getpid())-\(attempt)-\(UInt32.random(in: 0...UInt32.max)).tmp"
            let descriptor = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if descriptor >= 0 { return (candidate, descriptor) }
            if errno != EEXIST { throw Failure(detail: "cannot create a temporary file beside it: \(errnoText())") }
        }
        throw Failure(detail: "cannot find a free temporary name beside it")
    }

    private static func errnoText() -> String {
        String(cString: strerror(errno))
    }
}
