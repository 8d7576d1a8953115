import Testing

@testable import Edge

/// The exchange's transitions: what each event asks of the handler.
@Suite struct ExchangeLifecycleTests {
    @Test func anAnswerAfterTheRequestCompletesTheExchange() {
        var lifecycle = ExchangeLifecycle(keepsConnection: true)
        let ended = lifecycle.requestDidEnd()
        #expect(ended == .awaitAnswer, "the handler runs now that the body is in")
        let started = lifecycle.startResponse()
        let again = lifecycle.startResponse()
        #expect(started && !again, "an answer under way cannot be replaced")
        let finished = lifecycle.finishResponse(canStopRequestBody: false)
        #expect(finished == .init(complete: true))
        let late = lifecycle.requestDidEnd()
        #expect(late == .ignore)
    }

    @Test func anAnswerBeforeTheBodyEndsWaitsForItOnHTTP1() {
        var lifecycle = ExchangeLifecycle(keepsConnection: true)
        _ = lifecycle.startResponse()
        let finished = lifecycle.finishResponse(canStopRequestBody: false)
        #expect(finished == .init(), "the body is read to its end first")
        #expect(lifecycle.responseFinished && !lifecycle.requestEnded)
        let ended = lifecycle.requestDidEnd()
        #expect(ended == .complete)
    }

    @Test func anAnswerBeforeTheBodyEndsStopsItOnHTTP2() {
        var lifecycle = ExchangeLifecycle(keepsConnection: true)
        _ = lifecycle.startResponse()
        let finished = lifecycle.finishResponse(canStopRequestBody: true)
        #expect(finished == .init(stopRequestBody: true, complete: true))
        let late = lifecycle.requestDidEnd()
        #expect(late == .ignore, "a late end of the stopped body changes nothing")
    }

    @Test func aClosingAnswerSaysSo() {
        var lifecycle = ExchangeLifecycle(keepsConnection: true, requestEnded: true)
        lifecycle.closeConnectionAfterAnswer()
        _ = lifecycle.startResponse()
        let finished = lifecycle.finishResponse(canStopRequestBody: false)
        #expect(finished == .init(closeConnection: true, complete: true))
        var unpersisted = ExchangeLifecycle(keepsConnection: false, requestEnded: true)
        let closing = unpersisted.finishResponse(canStopRequestBody: true)
        #expect(closing.closeConnection && !closing.stopRequestBody)
    }

    @Test func anAbortedAnswerEndsTheConnection() {
        var lifecycle = ExchangeLifecycle(keepsConnection: true, requestEnded: true)
        _ = lifecycle.startResponse()
        lifecycle.abortResponse()
        #expect(lifecycle.responseFinished && !lifecycle.keepsConnection)
    }

    @Test func switchingProtocolsEndsBothDirections() {
        var lifecycle = ExchangeLifecycle(keepsConnection: true)
        lifecycle.switchedProtocols()
        #expect(lifecycle.requestEnded && lifecycle.responseFinished && lifecycle.responded)
        let started = lifecycle.startResponse()
        #expect(!started)
    }
}
