#if canImport(Glibc)
import Glibc
#endif

/// The process's limit on open descriptors.
enum OpenFileLimit {
    /// Raises the soft limit to the hard one, as Go programs and nginx's `worker_rlimit_nofile` do: every connection,
    /// and every large file an HTTP/2 stream sends, holds a descriptor, and the usual soft default (1024) is reached
    /// by a few hundred clients long before memory or CPU run short. Returns the limit now in force.
    @discardableResult
    static func raiseToHardLimit() -> Int {
        #if canImport(Glibc)
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return -1 }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            _ = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        return Int(clamping: limit.rlim_cur)
        #else
        return -1
        #endif
    }
}
