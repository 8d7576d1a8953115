import Logging
import Metrics
import NIOCore

/// One event loop's flushes, coalesced to the end of its tick: a connection that has written an answer (or a
/// proxied request) asks here instead of flushing at once, and after NIO has handled every socket that was ready
/// in the tick, one task flushes each channel that asked.
///
/// Why: a write to a socket whose reader sleeps in `epoll_wait` on another core wakes that core with an
/// inter-processor interrupt, microseconds of kernel time (more in a VM). Writes spread over a tick (parsing,
/// routing and recording the next request between them) find the peer asleep again each time; writes made together
/// find it awake after the first. On this machine's proxy-h1 benchmark the peers' wake-ups were 3.8 µs of kernel
/// time per request against nginx's 1.0. Pipelined requests read together also leave in one write.
///
/// What waits: an answer waits for the rest of its tick (the other sockets that were ready with it), at most a few
/// hundred microseconds at full load; at low load a tick holds one or two sockets and nothing waits.
///
/// Loop-confined: only used on its own event loop.
public final class FlushCoalescer {
    /// Channels one tick may gather; one more is flushed at once (nothing waits or is lost: its write just leaves
    /// on its own). A tick handles one read per ready socket, and a connection's consecutive asks count once, so
    /// this is far above what a tick gathers.
    public static let maxPending = 4096

    private let eventLoop: any EventLoop
    private let logger: Logger
    private var pending: [any Channel] = []
    /// The array being flushed, kept for its capacity.
    private var spare: [any Channel] = []
    private var overflowLogged = false
    private static let overflows = Counter(label: "vantage_flush_coalescing_overflows_total")

    public init(eventLoop: any EventLoop, logger: Logger) {
        self.eventLoop = eventLoop
        self.logger = logger
    }

    /// Flushes `channel` once the loop has handled the rest of this tick's ready sockets. Call on the loop.
    public func flushAtEndOfTick(_ channel: any Channel) {
        // Pipelined answers of one read ask one after the other: one flush sends them all.
        if let last = pending.last, last === channel { return }
        guard pending.count < Self.maxPending else {
            Self.overflows.increment()
            if !overflowLogged {
                overflowLogged = true
                logger.notice(
                    "more than \(Self.maxPending) connections answered in one event-loop tick: the rest are flushed one by one (vantage_flush_coalescing_overflows_total; logged once)"
                )
            }
            channel.flush()
            return
        }
        if pending.isEmpty {
            // NIO runs tasks submitted during a tick after its I/O, in the same tick, without waking the selector.
            eventLoop.assumeIsolatedUnsafeUnchecked().execute { self.flushPending() }
        }
        pending.append(channel)
    }

    private func flushPending() {
        // A flush may run handlers that ask again (a write that completes and lets the next answer go): those gather
        // in the emptied list and get a task of their own, later in the same tick.
        var flushing = spare
        swap(&flushing, &pending)
        for channel in flushing { channel.flush() }
        flushing.removeAll(keepingCapacity: true)
        spare = flushing
    }
}
