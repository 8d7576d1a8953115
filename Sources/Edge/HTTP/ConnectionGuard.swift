import Clocks
import NIOCore
import NIOHTTP1

/// The pure state machine behind ``ConnectionGuard``: which timer runs and when a client is cut off for a
/// slow or oversized request head, or a stalled or trickling request body.
///
/// It sees raw bytes (before the HTTP parser) and counts the request head up to its blank line, so a large body
/// sent in the same packet as the head is not mistaken for a large head. Time comes in as an argument
/// (nanoseconds of a monotonic clock), so tests drive it without waiting.
struct ConnectionGuardStateMachine {
    enum State: Equatable {
        /// Between requests (or before the first): the idle timer runs.
        case idle
        /// Some bytes of a head arrived; the header timer runs.
        case readingHead(bytes: Int, matched: Int)
        /// The head is complete (blank line seen or the parser delivered it) and no body is awaited: no timer
        /// until the response ends.
        case inRequest
        /// A request body is arriving: the body timer runs, restarted by every read; the rate is measured since
        /// the body started (or resumed after a pause).
        case readingBody(BodyProgress)
        /// The body is not read for now (a proxied upload waits for its upstream): the client is not to blame.
        case bodyPaused
    }

    enum Action: Equatable {
        case none
        case startTimer(Timer)
        case cancelTimer
        /// Refuse the request (the request handler answers and closes).
        case reject(Rejection)
        case close
    }

    enum Timer: Equatable {
        case idle
        case header
        case body
    }

    enum Rejection: Equatable {
        case headerTooLarge
        case headerTimeout
        case bodyTimeout
        case bodyTooSlow

        var status: HTTPResponseStatus {
            self == .headerTooLarge ? .requestHeaderFieldsTooLarge : .requestTimeout
        }

        var reason: String {
            switch self {
            case .headerTooLarge: "the request head is too large"
            case .headerTimeout: "the request head took too long"
            case .bodyTimeout: "the request body stalled"
            case .bodyTooSlow: "the request body arrives too slowly"
            }
        }
    }

    private(set) var state: State = .idle
    /// Request heads delivered whose responses have not been completely written yet (pipelining, or a large file
    /// still leaving): the connection is idle only when there are none.
    private(set) var responsesPending = 0
    let maxHeaderSize: Int
    /// `limits.body_timeout` in nanoseconds: the longest gap between body reads, and the time after which the
    /// minimum rate applies.
    let bodyTimeout: UInt64
    /// `limits.body_min_rate` in bytes per second (0: no minimum).
    let bodyMinRate: Int

    init(maxHeaderSize: Int, bodyTimeout: UInt64 = 60_000_000_000, bodyMinRate: Int = 0) {
        self.maxHeaderSize = maxHeaderSize
        self.bodyTimeout = bodyTimeout
        self.bodyMinRate = bodyMinRate
    }

    mutating func connectionActive() -> Action { .startTimer(.idle) }

    /// A body is being read and measured: ``bytesReceived(_:now:)`` needs the time (otherwise it does not read it).
    var isReadingBody: Bool {
        if case .readingBody = state { return true }
        return false
    }

    /// Bytes arrived from the client.
    mutating func bytesReceived(_ bytes: ByteBuffer, now: UInt64 = 0) -> Action {
        var count: Int
        var matched: Int
        var startedHead = false
        switch state {
        case .inRequest, .bodyPaused:
            return .none
        case .readingBody(var progress):
            progress.received(bytes.readableBytes, now: now)
            if progress.rateVerdict(now: now, timeout: bodyTimeout, minRate: bodyMinRate) != nil {
                return .reject(.bodyTooSlow)
            }
            state = .readingBody(progress)
            return .startTimer(.body)
        case .idle:
            count = 0
            matched = 0
            startedHead = true
        case .readingHead(let soFar, let matchedSoFar):
            count = soFar
            matched = matchedSoFar
        }
        // Look for CR LF CR LF, carrying a partial match across reads.
        let pattern: [UInt8] = [13, 10, 13, 10]
        var endOfHead: Int?
        bytes.withUnsafeReadableBytes { raw in
            for (offset, byte) in raw.enumerated() {
                if byte == pattern[matched] {
                    matched += 1
                    if matched == 4 {
                        endOfHead = offset + 1
                        return
                    }
                } else {
                    matched = byte == 13 ? 1 : 0
                }
            }
        }
        if let endOfHead {
            if count + endOfHead > maxHeaderSize { return .reject(.headerTooLarge) }
            state = .inRequest
            return .cancelTimer
        }
        count += bytes.readableBytes
        if count > maxHeaderSize { return .reject(.headerTooLarge) }
        state = .readingHead(bytes: count, matched: matched)
        return startedHead ? .startTimer(.header) : .none
    }

    /// The HTTP parser delivered a request head; `expectsBody` when it announced a body still to come.
    mutating func requestHeadReceived(expectsBody: Bool = false, now: UInt64 = 0) -> Action {
        responsesPending += 1
        if expectsBody {
            state = .readingBody(BodyProgress(now: now))
            return .startTimer(.body)
        }
        if state == .inRequest { return .none }
        state = .inRequest
        return .cancelTimer
    }

    /// The whole request (head and body) has been read.
    mutating func requestEnded() -> Action {
        switch state {
        case .readingBody, .bodyPaused:
            state = .inRequest
            return .cancelTimer
        default:
            return .none
        }
    }

    /// The body is not read for now (backpressure from the upstream): its timer stops.
    mutating func bodyPaused() -> Action {
        guard case .readingBody = state else { return .none }
        state = .bodyPaused
        return .cancelTimer
    }

    /// Body reads resume: the timer and the rate measurement start over.
    mutating func bodyResumed(now: UInt64 = 0) -> Action {
        guard state == .bodyPaused else { return .none }
        state = .readingBody(BodyProgress(now: now))
        return .startTimer(.body)
    }

    /// A response was fully written and the connection stays open.
    mutating func responseCompleted() -> Action {
        responsesPending = max(0, responsesPending - 1)
        // A later request is already being served (pipelined behind a file that was still leaving).
        if responsesPending > 0 { return .none }
        state = .idle
        return .startTimer(.idle)
    }

    /// The running timer fired.
    mutating func timerFired() -> Action {
        switch state {
        case .idle: return .close
        case .readingHead: return .reject(.headerTimeout)
        case .readingBody: return .reject(.bodyTimeout)
        case .inRequest, .bodyPaused: return .none
        }
    }
}

/// Sent up the pipeline when ``ConnectionGuard`` refuses the connection's request (a slow or oversized head,
/// a stalled body): the request handler answers it, so the refusal is logged and recorded like any other, and
/// closes the connection.
struct ConnectionGuardRefusal {
    var rejection: ConnectionGuardStateMachine.Rejection
}

/// Enforces the header-read timeout (slowloris), the request-body timeout and minimum rate, the keep-alive idle
/// timeout and the maximum head size on an HTTP/1.1 connection. Not a channel handler of its own: the connection's
/// ``HTTP1RequestDecoder`` shows it every read before parsing (a separate handler cost a pipeline trip per read and
/// per read-complete), and refusals go up from the decoder's context to the request handler as
/// ``ConnectionGuardRefusal``.
///
/// Timers are lazy: moving a deadline only updates a field, and the one scheduled task re-arms itself when it fires
/// early. Scheduling and cancelling a task per request cost about a tenth of the request budget in benchmarks.
final class ConnectionGuard {
    private var machine: ConnectionGuardStateMachine
    private let idleTimeout: TimeAmount
    private let headerTimeout: TimeAmount
    private let bodyTimeout: TimeAmount
    /// A refusal was sent up: nothing more is read from this connection.
    private var refused = false
    /// When the current timer should go off; nil when no timer runs.
    private var deadline: NIODeadline?
    /// The scheduled wake-up and when it fires.
    private var wakeUp: Scheduled<Void>?
    private var wakeUpAt: NIODeadline?
    /// The owning handler's context, while it is in the pipeline.
    private var context: ChannelHandlerContext?

    init(limits: Limits) {
        bodyTimeout = TimeAmount(limits.bodyTimeout)
        machine = ConnectionGuardStateMachine(
            maxHeaderSize: limits.maxHeaderSize, bodyTimeout: UInt64(max(bodyTimeout.nanoseconds, 1)),
            bodyMinRate: limits.bodyMinRate)
        idleTimeout = TimeAmount(limits.idleTimeout)
        headerTimeout = TimeAmount(limits.headerTimeout)
    }

    /// The owning handler joined the pipeline: timers run on its loop, refusals go up from its context.
    func attach(to context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { perform(machine.connectionActive(), context: context) }
    }

    /// The owning handler left the pipeline (the connection closed or became a tunnel).
    func detach() {
        stopTimers()
        context = nil
    }

    func connectionActive() {
        guard let context else { return }
        perform(machine.connectionActive(), context: context)
    }

    func connectionInactive() {
        stopTimers()
    }

    /// Bytes arrived from the client. Returns whether they go on to the parser (not after a refusal).
    func bytesReceived(_ bytes: ByteBuffer) -> Bool {
        guard !refused, let context else { return false }
        // The time matters only to a body's rate: a head's bytes are counted, not timed.
        let action = machine.bytesReceived(bytes, now: machine.isReadingBody ? ProgressClock.now() : 0)
        perform(action, context: context)
        if case .reject = action { return false }
        return true
    }

    /// Called by the request handler when the parser produced a head (`expectsBody` when a body follows).
    func requestHeadReceived(expectsBody: Bool) {
        guard let context else { return }
        perform(machine.requestHeadReceived(expectsBody: expectsBody, now: expectsBody ? ProgressClock.now() : 0), context: context)
    }

    /// Called by the request handler when the request's body (or its bodiless head) has been read to the end.
    func requestEnded() {
        guard let context else { return }
        perform(machine.requestEnded(), context: context)
    }

    /// Called by the request handler when it stops or resumes reading a body for its own reasons (backpressure).
    func requestBody(paused: Bool) {
        guard let context else { return }
        perform(paused ? machine.bodyPaused() : machine.bodyResumed(now: ProgressClock.now()), context: context)
    }

    /// Called by the request handler when a response finished on a connection that stays open.
    func responseCompleted() {
        guard let context else { return }
        perform(machine.responseCompleted(), context: context)
    }

    private func stopTimers() {
        wakeUp?.cancel()
        wakeUp = nil
        wakeUpAt = nil
        deadline = nil
    }

    private func arm(_ kind: ConnectionGuardStateMachine.Timer, context: ChannelHandlerContext) {
        let timeout: TimeAmount
        switch kind {
        case .idle: timeout = idleTimeout
        case .header: timeout = headerTimeout
        case .body: timeout = bodyTimeout
        }
        let due = NIODeadline.uptimeNanoseconds(ProgressClock.now()) + timeout
        deadline = due
        if let wakeUpAt, wakeUpAt <= due { return }  // the pending wake-up comes first and will re-arm
        wakeUp?.cancel()
        schedule(at: due, context: context)
    }

    private func schedule(at due: NIODeadline, context: ChannelHandlerContext) {
        wakeUpAt = due
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        wakeUp = context.eventLoop.scheduleTask(deadline: due) { loopBound.value.wokeUp() }
    }

    private func wokeUp() {
        wakeUp = nil
        wakeUpAt = nil
        guard let context, let deadline else { return }
        if deadline > NIODeadline.now() {
            schedule(at: deadline, context: context)
            return
        }
        self.deadline = nil
        perform(machine.timerFired(), context: context)
    }

    private func perform(_ action: ConnectionGuardStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .cancelTimer:
            deadline = nil
        case .startTimer(let kind):
            arm(kind, context: context)
        case .close:
            stopTimers()
            context.close(promise: nil)
        case .reject(let rejection):
            stopTimers()
            refused = true
            if rejection == .bodyTimeout || rejection == .bodyTooSlow { GatewayMetrics.shared.bodyTimeouts.increment() }
            context.fireUserInboundEventTriggered(ConnectionGuardRefusal(rejection: rejection))
        }
    }
}
