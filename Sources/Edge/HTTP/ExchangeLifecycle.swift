/// The life of one exchange as a pure value: the request arriving, the answer leaving, and whether the connection
/// carries another request after it. ``RequestHandler`` reports what happened; each transition returns what to do,
/// and the handler does it (dispatch, flush or close, stop a body, move on to the next request).
///
/// The two directions are independent: an answer may be complete while the request body still arrives (an error
/// before the body was read), and a request may end long before its answer (a proxied upload).
struct ExchangeLifecycle: Equatable {
    enum RequestState: Equatable {
        case receiving
        case ended
    }

    enum ResponseState: Equatable {
        case none
        /// The head is out (or held back to share a TLS record): the answer can no longer be replaced.
        case started
        case finished
    }

    private(set) var request: RequestState
    private(set) var response = ResponseState.none
    /// The connection stays open after this exchange (HTTP/1.1 persistence; an HTTP/2 stream only ends itself).
    private(set) var keepsConnection: Bool

    init(keepsConnection: Bool, requestEnded: Bool = false) {
        self.keepsConnection = keepsConnection
        request = requestEnded ? .ended : .receiving
    }

    var requestEnded: Bool { request == .ended }
    var responded: Bool { response != .none }
    var responseFinished: Bool { response == .finished }

    /// The connection closes after this answer (a refusal, a client that asked, a body that will not be read, a
    /// shutdown, a body whose end only the close can tell).
    mutating func closeConnectionAfterAnswer() { keepsConnection = false }

    enum RequestEndAction: Equatable {
        /// Already ended (the answer stopped the body): nothing to do.
        case ignore
        /// The answer is still to come: run the handler waiting for the end, if any.
        case awaitAnswer
        /// The answer was complete already: the exchange is over.
        case complete
    }

    mutating func requestDidEnd() -> RequestEndAction {
        guard request == .receiving else { return .ignore }
        request = .ended
        return response == .finished ? .complete : .awaitAnswer
    }

    /// Starts the answer; `false` when one has started already (it cannot be replaced).
    mutating func startResponse() -> Bool {
        guard response == .none else { return false }
        response = .started
        return true
    }

    /// What finishing the answer asks of the handler.
    struct FinishActions: Equatable {
        /// Tell the client to stop the body it is still sending (HTTP/2: RST_STREAM with NO_ERROR after the answer).
        var stopRequestBody = false
        /// Close the connection once the answer has left; otherwise flush and keep it.
        var closeConnection = false
        /// Both directions are done: forget the exchange and go on to the next request.
        var complete = false
    }

    /// The answer is complete. `canStopRequestBody`: the protocol can stop a body still coming without closing the
    /// connection (HTTP/2); on HTTP/1.1 the body is read to its end, or the connection closes.
    mutating func finishResponse(canStopRequestBody: Bool) -> FinishActions {
        response = .finished
        var actions = FinishActions(closeConnection: !keepsConnection)
        if request == .receiving && canStopRequestBody {
            request = .ended
            actions.stopRequestBody = true
        }
        actions.complete = request == .ended
        return actions
    }

    /// A response under way failed (its upstream went away): it ends here, and so does the connection.
    mutating func abortResponse() {
        response = .finished
        keepsConnection = false
    }

    /// A 101 went out: the connection is a WebSocket or a tunnel now, and the exchange is over.
    mutating func switchedProtocols() {
        response = .finished
        request = .ended
    }
}
