import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The monotonic clock that progress deadlines read (header and body timeouts, a request body's rate, a response's
/// send progress, a proxied exchange's timeouts, a pooled connection's idle time): the kernel's last tick of
/// `CLOCK_MONOTONIC` (a few milliseconds old at most), which costs about a fifth of a precise read. Those deadlines
/// are seconds long and a request reads this clock several times, so the precise clock is kept for what is
/// reported (a request's duration, upstream latency).
///
/// Same time base as `NIODeadline.now()`, never ahead of it: a deadline computed from this clock falls due at most
/// one tick early, and an elapsed time measured up to a precise reading is at most one tick long.
public enum ProgressClock {
    /// Nanoseconds since boot, to the kernel's tick.
    @inlinable
    public static func now() -> UInt64 {
        var spec = timespec()
        #if os(Linux)
        clock_gettime(CLOCK_MONOTONIC_COARSE, &spec)
        #else
        clock_gettime(CLOCK_MONOTONIC, &spec)
        #endif
        return UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
    }
}

extension NIODeadline {
    /// Now, by ``ProgressClock``: for deadlines of a second or more, not for what is measured and reported.
    @inlinable
    public static var progressNow: NIODeadline { .uptimeNanoseconds(ProgressClock.now()) }
}
