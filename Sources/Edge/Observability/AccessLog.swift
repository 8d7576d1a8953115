import Logging
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes access log lines to stdout, stderr or a file from one background thread, so an event loop never waits on
/// the disk or a slow terminal.
///
/// Event loops fill their own ``AccessLogBuffer`` and hand over whole buffers (at 256 KB or once a second). The
/// queue of handed-over bytes is bounded: past 8 MB the newest buffers are dropped, counted, and logged once.
/// Written buffers go back to the loops (up to ``maxSpareBuffers``).
public final class AccessLogWriter: Sendable {
    struct State {
        var descriptor: CInt
        var pendingBytes = 0
        var warnedDrop = false
    }

    private let output: String
    /// How lines are written (read by each loop's ``AccessLogBuffer`` owner).
    let format: AccessLogFormat
    private let state: Mutex<State>
    private let pool: NIOThreadPool
    private let logger: Logger
    static let maxPendingBytes = 8 << 20
    /// Written buffers kept for the loops to fill again: a fresh buffer is fresh memory, a page fault on the loop
    /// every 4 KB of lines (0.4–0.5 µs a request in proxy-h1's profiles with 256 KB buffers).
    private let spareBuffers = Mutex<[ByteBuffer]>([])
    static let maxSpareBuffers = 4

    /// Opens the output (`stdout`, `stderr` or a file path, appended to). Returns nil for `off`.
    public init?(output: String, format: AccessLogFormat = AccessLogFormat(), logger: Logger) throws {
        if output == "off" { return nil }
        self.output = output
        self.format = format
        self.logger = logger
        state = Mutex(State(descriptor: try Self.open(output)))
        pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
    }

    private static func open(_ output: String) throws -> CInt {
        switch output {
        case "stdout": return STDOUT_FILENO
        case "stderr": return STDERR_FILENO
        default:
            let descriptor = Glibc.open(output, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
            if descriptor < 0 { throw IOError(errnoCode: errno, reason: "open access log \(output)") }
            return descriptor
        }
    }

    /// Reopens a file output (after log rotation moved it), on reload.
    public func reopen() {
        guard output != "stdout" && output != "stderr" else { return }
        pool.submit { [self] _ in
            guard let descriptor = try? Self.open(output) else { return }
            let old = state.withLock { state in
                let old = state.descriptor
                state.descriptor = descriptor
                return old
            }
            close(old)
        }
    }

    /// Queues a filled buffer for writing.
    func submit(_ buffer: ByteBuffer) {
        let size = buffer.readableBytes
        let accepted = state.withLock { state -> Bool in
            if state.pendingBytes + size > Self.maxPendingBytes {
                return false
            }
            state.pendingBytes += size
            return true
        }
        guard accepted else {
            GatewayMetrics.shared.accessLogDropped.increment(by: size)
            let first = state.withLock { state in
                defer { state.warnedDrop = true }
                return !state.warnedDrop
            }
            if first { logger.warning("access log output is too slow; dropping lines (see vantage_access_log_dropped_bytes_total)") }
            return
        }
        let handed = HandedBuffer(buffer)
        pool.submit { [self] _ in
            // Taken out of the box, so nothing else holds it once it is written (a pool thread keeps its last work
            // item, and a buffer it captured, until the next one comes).
            guard let buffer = handed.take() else { return }
            let descriptor = state.withLock { $0.descriptor }
            buffer.withUnsafeReadableBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                    if written <= 0 {
                        if written < 0 && errno == EINTR { continue }
                        break
                    }
                    offset += written
                }
            }
            state.withLock { $0.pendingBytes -= size }
            spareBuffers.withLock { spares in
                if spares.count < Self.maxSpareBuffers { spares.append(buffer) }
            }
        }
    }

    /// An empty buffer for a loop to fill: a written one when there is one, else a new one of `capacity` bytes.
    func emptyBuffer(capacity: Int) -> ByteBuffer {
        // Cleared here rather than by the writer: woken by the hand-over, the writer thread can run before the
        // loop has let go of its copy (both share a core), and clearing a shared buffer allocates a new one.
        guard var buffer = spareBuffers.withLock({ $0.popLast() }) else {
            return ByteBufferAllocator().buffer(capacity: capacity)
        }
        buffer.clear()
        return buffer
    }

    /// Waits until everything queued so far is written (shutdown).
    public func flushAndStop() {
        try? pool.syncShutdownGracefully()
    }
}

/// A buffer on its way to the writer thread.
private final class HandedBuffer: Sendable {
    private let buffer: Mutex<ByteBuffer?>

    init(_ buffer: ByteBuffer) {
        self.buffer = Mutex(buffer)
    }

    func take() -> ByteBuffer? {
        buffer.withLock { $0.take() }
    }
}

/// One event loop's access log buffer. Only touched on its loop.
final class AccessLogBuffer {
    private var buffer: ByteBuffer
    private let writer: AccessLogWriter
    /// Large hand-overs are cheaper to write: the kernel's page-cache work for appending 256 KB at a time was half
    /// that of 32 KB (about 0.2 against 0.4 µs a request in proxy-h1's profiles).
    static let handOverSize = 256 << 10
    static let capacity = handOverSize + 4096

    init(writer: AccessLogWriter) {
        self.writer = writer
        buffer = writer.emptyBuffer(capacity: Self.capacity)
    }

    /// Appends the line of `entry`. The entry is handed over, not captured by a closure that builds the line: the
    /// capture copied it (264 bytes) for every request.
    @inline(__always)
    func append(_ entry: borrowing AccessLogEntry, format: AccessLogFormat, isoSecond: String, commonLogSecond: String) {
        entry.write(into: &buffer, format: format, isoSecond: isoSecond, commonLogSecond: commonLogSecond)
        buffer.writeInteger(UInt8(ascii: "\n"))
        if buffer.readableBytes >= Self.handOverSize { flush() }
    }

    /// Hands the buffered lines to the writer.
    func flush() {
        guard buffer.readableBytes > 0 else { return }
        // The empty buffer is taken before the hand-over: the writer can be done with this one before `submit`
        // returns, and must not give it straight back while this loop still holds it.
        let full = buffer
        buffer = writer.emptyBuffer(capacity: Self.capacity)
        writer.submit(full)
    }
}
