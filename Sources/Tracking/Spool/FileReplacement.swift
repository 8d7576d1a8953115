#if canImport(Glibc)
import Glibc
#endif

/// Replaces a file whole: the bytes go to a temporary file beside it (owner-only), are synced, and the temporary
/// file is renamed over the path, so a reader or a crash sees the old file or the new one, never a part. The spool's
/// erasure, the visitor state files and the dashboard's share links write this way.
public enum FileReplacement {
    /// Why the file could not be replaced, in the system's words (with the path).
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Writes `bytes` to `path + temporarySuffix`, syncs it and renames it over `path`.
    public static func replace(_ path: String, with contents: [UInt8], temporarySuffix: String = ".tmp") throws(Failure) {
        let temporary = path + temporarySuffix
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw Failure(description: "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        var failure: Int32? = contents.withUnsafeBytes { bytes in
            var written = 0
            while written < bytes.count {
                let result = write(descriptor, bytes.baseAddress! + written, bytes.count - written)
                if result < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                written += result
            }
            return nil
        }
        if failure == nil, fsync(descriptor) != 0 { failure = errno }
        close(descriptor)
        if let failure {
            unlink(temporary)
            throw Failure(description: "cannot write \(temporary): \(String(cString: strerror(failure)))")
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw Failure(description: "cannot replace \(path): \(reason)")
        }
    }
}
