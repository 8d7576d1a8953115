/// The order of requests on one HTTP/1.1 connection, as a pure value that ``RequestHandler`` asks at each event
/// (RFC 9112 §9.3): parts of a request that arrives while an answer is still being produced wait their turn, and
/// reads are held while they wait (so a client cannot pile requests up: at most one read's worth is queued);
/// nothing that arrives after an answer that closes the connection is a request (RFC 9112 §9.6); bytes that failed
/// to parse behind a complete request are refused once that request is answered; a connection told to quiesce
/// closes once idle. HTTP/2 streams never queue. Generic over the part and the refusal so tests need no parser.
struct HTTP1Pipeline<Part, Refusal> {
    /// An array rather than a ring buffer: empty, it costs no allocation, and it holds at most one read's worth.
    private var queued: [Part] = []
    /// A read was asked for and not passed on.
    private(set) var readHeld = false
    /// The connection closes after the current answer.
    private(set) var closing = false
    /// Bytes after the current request did not parse: once its answer is out, they get this refusal and the
    /// connection closes.
    private(set) var refusalAfterCurrent: Refusal?
    /// The server is shutting down: the connection closes once idle, and every answer says so.
    private(set) var quiescing = false

    enum Arrival: Equatable {
        /// Nothing after a closing answer (or bytes already refused) is a request.
        case drop
        /// A pipelined request: answered after the current one.
        case queue
        /// The part belongs to the request being read (or starts one): process it now.
        case process
    }

    /// A request part arrived. `afterCompleteRequest`: the exchange in flight has received its whole request;
    /// `keepsConnection`: its answer leaves the connection open.
    mutating func received(_ part: Part, afterCompleteRequest: Bool, keepsConnection: Bool) -> Arrival {
        if closing || refusalAfterCurrent != nil { return .drop }
        guard afterCompleteRequest else { return .process }
        guard keepsConnection else { return .drop }
        queued.append(part)
        return .queue
    }

    /// Whether a read may go through now. Held while pipelined requests wait and while a proxied upload waits for
    /// its upstream; not merely because an answer is pending (toggling read interest costs two `epoll_ctl` calls).
    mutating func mayRead(bodyPaused: Bool) -> Bool {
        if closing { return false }
        if bodyPaused || !queued.isEmpty {
            readHeld = true
            return false
        }
        return true
    }

    /// A paused request body may flow again: whether a held read goes through now.
    mutating func bodyResumed() -> Bool {
        guard readHeld, queued.isEmpty else { return false }
        readHeld = false
        return true
    }

    /// The current answer closes the connection: what waits is dropped. Returns whether to close once the answer is
    /// written (false: the refusal of bytes after the request is answered first, and closes).
    mutating func closeAfterAnswer() -> Bool {
        closing = true
        queued.removeAll()
        return refusalAfterCurrent == nil
    }

    /// A refusal that closes the connection: pipelined requests are not served.
    mutating func dropQueued() {
        queued.removeAll()
    }

    /// Bytes behind a complete request failed to parse. `answerPending`: its client expects more answers on this
    /// connection and the current one is not finished, so it learns why the connection ends.
    mutating func malformedAfterRequest(_ refusal: Refusal, answerPending: Bool) {
        queued.removeAll()
        if answerPending { refusalAfterCurrent = refusal }
    }

    enum Completion {
        /// Answer the bytes that failed to parse (and close).
        case refuse(Refusal)
        /// The connection is closing: nothing follows.
        case stop
        /// Serve the queued parts (``nextQueued()``), then ask ``idle(exchangeInFlight:bodyPaused:)``.
        case serveQueued
    }

    /// An exchange completed in both directions.
    mutating func exchangeCompleted() -> Completion {
        if let refusal = refusalAfterCurrent {
            refusalAfterCurrent = nil
            return .refuse(refusal)
        }
        return closing ? .stop : .serveQueued
    }

    mutating func nextQueued() -> Part? {
        queued.isEmpty ? nil : queued.removeFirst()
    }

    enum IdleAction: Equatable {
        case none
        /// Quiescing and nothing in flight: close.
        case close
        /// The queue drained: let the held read through.
        case resumeReads
    }

    /// After the queued parts were served.
    mutating func idle(exchangeInFlight: Bool, bodyPaused: Bool) -> IdleAction {
        guard !closing, queued.isEmpty else { return .none }
        if quiescing && !exchangeInFlight { return .close }
        if readHeld && !bodyPaused {
            readHeld = false
            return .resumeReads
        }
        return .none
    }

    /// The server shuts down: returns whether to close now (nothing in flight or waiting).
    mutating func quiesce(idle: Bool) -> Bool {
        quiescing = true
        return idle && queued.isEmpty
    }
}
