import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Where ACME keeps accounts, certificates and keys, shared by every Vantage process that points at it.
///
/// Keys are slash-separated paths (`accounts/<ca>/<email>/key.pem`). `lock(_:)` is exclusive across processes, so
/// two gateways sharing the folder do not order the same name twice: the second waits, then finds the first one's
/// certificate.
public protocol ACMEStorage: Sendable {
    func load(_ key: String) throws -> Data?
    /// Replaces the value atomically (readers see the old or the new one, never a part).
    func store(_ key: String, _ data: Data) throws
    /// Removes the value, if there is one.
    func delete(_ key: String) throws
    /// Waits until `name` is locked for this caller. Release with ``ACMEStorageLock/unlock()``.
    func lock(_ name: String) async throws -> any ACMEStorageLock
}

public protocol ACMEStorageLock: Sendable {
    func unlock()
}

/// ``ACMEStorage`` in a folder: files written 0600 through a temporary file, `fsync` and `rename`; locks are
/// `flock` on files under `locks/`, which the kernel releases when a process dies, so a crash leaves no stale lock.
public final class FileACMEStorage: ACMEStorage {
    public let root: URL

    public init(root: String) throws {
        self.root = URL(fileURLWithPath: root, isDirectory: true)
        try Self.makeFolder(self.root.path)
    }

    static func makeFolder(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    /// A storage key as a path under the root; `..`, empty parts and odd characters are refused.
    func path(_ key: String) throws -> String {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_@+")
        guard !parts.isEmpty, parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." && $0.allSatisfy(allowed.contains) }) else {
            throw ACMEError.unexpected("invalid storage key \(key)")
        }
        return root.appendingPathComponent(key).path
    }

    public func load(_ key: String) throws -> Data? {
        let path = try path(key)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try Data(contentsOf: URL(fileURLWithPath: path))
    }

    public func store(_ key: String, _ data: Data) throws {
        let path = try path(key)
        let folder = (path as NSString).deletingLastPathComponent
        try Self.makeFolder(folder)
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ACMEError.unexpected("cannot write \(temporary): \(String(cString: strerror(errno)))") }
        var failed = false
        data.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if written <= 0 {
                    if errno == EINTR { continue }
                    failed = true
                    return
                }
                offset += written
            }
        }
        if fsync(fd) != 0 { failed = true }
        close(fd)
        guard !failed, rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw ACMEError.unexpected("cannot write \(path): \(reason)")
        }
        let folderFD = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if folderFD >= 0 {
            fsync(folderFD)
            close(folderFD)
        }
    }

    public func delete(_ key: String) throws {
        let path = try path(key)
        guard unlink(path) == 0 || errno == ENOENT else {
            throw ACMEError.unexpected("cannot remove \(path): \(String(cString: strerror(errno)))")
        }
    }

    public func lock(_ name: String) async throws -> any ACMEStorageLock {
        let path = try path("locks/\(name).lock")
        try Self.makeFolder((path as NSString).deletingLastPathComponent)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ACMEError.unexpected("cannot open lock \(path): \(String(cString: strerror(errno)))") }
        // Non-blocking attempts with a pause between them: a blocking flock would hold a concurrency thread.
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                let reason = String(cString: strerror(errno))
                close(fd)
                throw ACMEError.unexpected("cannot lock \(path): \(reason)")
            }
            do {
                try await Task.sleep(for: .milliseconds(250))
            } catch {
                close(fd)
                throw error
            }
        }
        return FileLock(fd: fd)
    }

    final class FileLock: ACMEStorageLock {
        /// -1 once unlocked (a second unlock does nothing).
        let fd: Atomic<Int32>
        init(fd: Int32) { self.fd = Atomic(fd) }
        func unlock() {
            let fd = self.fd.exchange(-1, ordering: .relaxed)
            guard fd >= 0 else { return }
            flock(fd, LOCK_UN)
            close(fd)
        }
    }
}
