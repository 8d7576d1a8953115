/// Where a proxied exchange is, as a pure value: ``ProxyExchange`` tells it each event and does what it answers
/// (writes, deadlines, pool hand-backs, telling the client side to pause or resume). Unit-tested without channels.
struct ProxyExchangeState: Equatable {
    enum Response: Equatable {
        /// No response head yet: a failed attempt may still be retried.
        case awaitingHead
        /// The head went to the client and the body follows. `upstreamKeepAlive`: the upstream lets its connection
        /// carry another request.
        case streaming(upstreamKeepAlive: Bool)
        /// The upstream answered 101 to a WebSocket upgrade: the tunnel takes over once the head is read.
        case upgrading
    }

    private(set) var response: Response = .awaitingHead
    /// Answered, failed, cancelled or upgraded: every later event is ignored.
    private(set) var finished = false
    /// The client's request has ended.
    private(set) var requestEnded = false
    /// The whole request, its end included, went to the current connection.
    private(set) var requestFullySent = false
    /// The client side was told to stop reading the request body.
    private(set) var clientPaused = false
    /// The current attempt counts in its target's in-flight requests.
    private(set) var attemptActive = false
    /// A pooled connection died without answering: the retry opens a new one.
    private(set) var freshConnectionNext = false

    var responseStarted: Bool { response != .awaitingHead }

    // MARK: The request

    enum BodyPartAction: Equatable {
        /// The exchange is over or the request already ended.
        case ignore
        /// The upstream answered before the whole body: the rest is not sent.
        case drop
        /// Write it to the bound connection.
        case send
        /// No connection yet: keep it until one is bound.
        case queue
    }

    func bodyPart(connected: Bool) -> BodyPartAction {
        if finished || requestEnded { return .ignore }
        guard connected else { return .queue }
        return responseStarted ? .drop : .send
    }

    enum RequestEndAction: Equatable {
        case ignore
        /// Write the end (last chunk and trailers) to the bound connection, and wait for the response head.
        case sendEnd
        /// Remember it: it goes with the body when a connection is bound (or not at all, once answered).
        case remember
    }

    mutating func requestDidEnd(connected: Bool) -> RequestEndAction {
        if finished || requestEnded { return .ignore }
        requestEnded = true
        guard connected, !responseStarted else { return .remember }
        requestFullySent = true
        return .sendEnd
    }

    /// A connection is bound and the head and queued body went to it: whether the end goes too.
    mutating func connectionBound() -> Bool {
        if requestEnded { requestFullySent = true }
        return requestEnded
    }

    /// The client sends faster than the upstream takes: whether to tell the client side to pause.
    mutating func pauseClient() -> Bool {
        guard !clientPaused else { return false }
        clientPaused = true
        return true
    }

    /// The upstream takes bytes again (or the body no longer matters): whether to tell the client side to resume.
    mutating func resumeClient() -> Bool {
        guard clientPaused else { return false }
        clientPaused = false
        return true
    }

    // MARK: Attempts

    mutating func attemptStarted() {
        attemptActive = true
    }

    /// Whether the attempt was counted in its target's in-flight requests (and so must leave them).
    mutating func attemptEnded() -> Bool {
        defer { attemptActive = false }
        return attemptActive
    }

    /// A pooled connection closed before answering: the next attempt takes a fresh one.
    mutating func pooledConnectionFailed() {
        freshConnectionNext = true
    }

    /// Whether this attempt must open a fresh connection (asked once per attempt).
    mutating func takeFreshConnection() -> Bool {
        defer { freshConnectionNext = false }
        return freshConnectionNext
    }

    /// The exchange ends (answered, failed, cancelled, upgraded): false when it already had.
    mutating func finish() -> Bool {
        guard !finished else { return false }
        finished = true
        return true
    }

    // MARK: The response

    /// The upstream's response head: `upgrade` when it switches a WebSocket request's protocol.
    mutating func responseHead(keepAlive: Bool, upgrade: Bool) {
        response = upgrade ? .upgrading : .streaming(upstreamKeepAlive: keepAlive)
    }

    /// What to do when the upstream's response has ended.
    struct ResponseEndActions: Equatable {
        /// The connection may carry another request: back to the pool; otherwise it closes.
        var reuseConnection: Bool
        /// The client was still sending (and may be paused): let its body drain.
        var resumeClient: Bool
    }

    mutating func responseEnded(connectionReusable: Bool) -> ResponseEndActions {
        finished = true
        let keepAlive = if case .streaming(let keepAlive) = response { keepAlive } else { false }
        // An upstream that answered before taking the whole body, asked to close, or sent more than it framed
        // leaves a connection that cannot carry another request.
        return ResponseEndActions(
            reuseConnection: keepAlive && requestFullySent && connectionReusable,
            resumeClient: requestEnded ? false : resumeClient())
    }
}
