import NIOCore

/// The pure state machine behind ``ConnectionGuardHandler``: which timer runs and when a client is cut off for a
/// slow or oversized request head.
///
/// It sees raw bytes (before the HTTP parser) and counts the request head up to its blank line, so a large body
/// sent in the same packet as the head is not mistaken for a large head.
struct ConnectionGuardStateMachine {
    enum State: Equatable {
        /// Between requests (or before the first): the idle timer runs.
        case idle
        /// Some bytes of a head arrived; the header timer runs.
        case readingHead(bytes: Int, matched: Int)
        /// The head is complete (blank line seen or the parser delivered it); no timer until the response ends.
        case inRequest
    }

    enum Action: Equatable {
        case none
        case startTimer(Timer)
        case cancelTimer
        /// Answer with a bare error and close.
        case reject(Rejection)
        case close
    }

    enum Timer: Equatable {
        case idle
        case header
    }

    enum Rejection: Equatable {
        case headerTooLarge
        case headerTimeout
    }

    private(set) var state: State = .idle
    let maxHeaderSize: Int

    init(maxHeaderSize: Int) {
        self.maxHeaderSize = maxHeaderSize
    }

    mutating func connectionActive() -> Action { .startTimer(.idle) }

    /// Bytes arrived from the client.
    mutating func bytesReceived(_ bytes: ByteBuffer) -> Action {
        var count: Int
        var matched: Int
        var startedHead = false
        switch state {
        case .inRequest:
            return .none
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

    /// The HTTP parser delivered a request head.
    mutating func requestHeadReceived() -> Action {
        if state == .inRequest { return .none }
        state = .inRequest
        return .cancelTimer
    }

    /// The response was fully written and the connection stays open.
    mutating func responseCompleted() -> Action {
        state = .idle
        return .startTimer(.idle)
    }

    /// The running timer fired.
    mutating func timerFired() -> Action {
        switch state {
        case .idle: return .close
        case .readingHead: return .reject(.headerTimeout)
        case .inRequest: return .none
        }
    }
}

/// Enforces the header-read timeout (slowloris), the keep-alive idle timeout and the maximum head size on an
/// HTTP/1.1 connection. Sits in front of the HTTP parser.
///
/// Timers are lazy: moving a deadline only updates a field, and the one scheduled task re-arms itself when it fires
/// early. Scheduling and cancelling a task per request cost about a tenth of the request budget in benchmarks.
final class ConnectionGuardHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var machine: ConnectionGuardStateMachine
    private let idleTimeout: TimeAmount
    private let headerTimeout: TimeAmount
    /// When the current timer should go off; nil when no timer runs.
    private var deadline: NIODeadline?
    /// The scheduled wake-up and when it fires.
    private var wakeUp: Scheduled<Void>?
    private var wakeUpAt: NIODeadline?
    private var context: ChannelHandlerContext?

    init(limits: Limits) {
        machine = ConnectionGuardStateMachine(maxHeaderSize: limits.maxHeaderSize)
        idleTimeout = TimeAmount(limits.idleTimeout)
        headerTimeout = TimeAmount(limits.headerTimeout)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { perform(machine.connectionActive(), context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stopTimers()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        perform(machine.connectionActive(), context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        stopTimers()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let action = machine.bytesReceived(unwrapInboundIn(data))
        perform(action, context: context)
        if case .reject = action { return }
        context.fireChannelRead(data)
    }

    /// Called by the request handler when the parser produced a head.
    func requestHeadReceived() {
        guard let context else { return }
        perform(machine.requestHeadReceived(), context: context)
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
        let due = NIODeadline.now() + (kind == .idle ? idleTimeout : headerTimeout)
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
            if rejection == .headerTooLarge {
                ErrorPage.sendAndClose(.requestHeaderFieldsTooLarge, reason: "the request head is too large", context: context)
            } else {
                ErrorPage.sendAndClose(.requestTimeout, reason: "the request head took too long", context: context)
            }
        }
    }
}
