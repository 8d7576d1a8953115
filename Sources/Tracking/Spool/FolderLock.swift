import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One process per data folder (the spool, the links journal): an exclusive `flock` on the folder itself and on a
/// lock file inside it, released by the kernel when the process dies.
///
/// The lock file alone is not enough: once it is deleted (a cleanup script, `rm -rf` of the folder's contents), a
/// second process creates a new file and locks that, and both write the same segments. Locking the folder's own
/// descriptor closes that door for every process of this version; ``isIntact()`` notices when the file was removed
/// or replaced anyway (by an older version or another tool), so the owner can stop writing there.
public final class FolderLock: Sendable {
    /// The lock file.
    public let path: String
    public let directory: String
    private let fileDescriptor: Int32
    private let folderDescriptor: Int32
    private let device: UInt64
    private let inode: UInt64
    private let released = Atomic<Bool>(false)

    /// Why the lock could not be taken.
    public enum Failure: Error, Equatable {
        /// Another process holds it.
        case busy
        /// The folder or the file cannot be opened (the text says why, in the system's words).
        case cannotOpen(String)
    }

    /// Takes the lock on `directory` and its file `fileName` (created with `mode` when missing).
    public init(directory: String, fileName: String, mode: mode_t = 0o600) throws(Failure) {
        self.directory = directory
        path = directory + "/" + fileName
        folderDescriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard folderDescriptor >= 0 else { throw .cannotOpen("cannot open \(directory): \(String(cString: strerror(errno)))") }
        guard flock(folderDescriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(folderDescriptor)
            throw .busy
        }
        fileDescriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, mode)
        guard fileDescriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            close(folderDescriptor)
            throw .cannotOpen("cannot open \(path): \(reason)")
        }
        guard flock(fileDescriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(fileDescriptor)
            close(folderDescriptor)
            throw .busy
        }
        var info = stat()
        fstat(fileDescriptor, &info)
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }

    /// Whether the lock file at ``path`` is still the file this lock holds: false once it was deleted or replaced.
    /// One `stat` call: call it off the event loops.
    public func isIntact() -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }

    /// Releases the lock; later calls do nothing.
    public func release() {
        guard !released.exchange(true, ordering: .relaxed) else { return }
        close(fileDescriptor)
        close(folderDescriptor)
    }

    deinit { release() }
}
