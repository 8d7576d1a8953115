import NIOCore
import Testing

@testable import Proxy

/// The proxied exchange's transitions, without channels: what happens to body parts and the request's end before
/// and after a connection and an answer, when a connection may go back to the pool, pausing the client, attempts.
@Suite struct ProxyExchangeStateTests {
    @Test func bodyPartsWaitForAConnectionAndStopAtTheAnswer() {
        var state = ProxyExchangeState()
        #expect(state.bodyPart(connected: false) == .queue)
        #expect(state.bodyPart(connected: true) == .send)
        state.responseHead(keepAlive: true, upgrade: false)
        #expect(state.responseStarted)
        #expect(state.bodyPart(connected: true) == .drop, "an early answer: the rest of the body is not sent")
        let end = state.requestDidEnd(connected: true)
        #expect(end == .remember)
        #expect(!state.requestFullySent)
        #expect(state.bodyPart(connected: true) == .ignore)
    }

    @Test func theEndGoesNowOrWithTheBoundConnection() {
        var connected = ProxyExchangeState()
        #expect(connected.requestDidEnd(connected: true) == .sendEnd)
        #expect(connected.requestFullySent)
        #expect(connected.requestDidEnd(connected: true) == .ignore, "ended once")

        var waiting = ProxyExchangeState()
        #expect(waiting.requestDidEnd(connected: false) == .remember)
        #expect(!waiting.requestFullySent)
        let sendsEnd = waiting.connectionBound()
        #expect(sendsEnd && waiting.requestFullySent)

        var streaming = ProxyExchangeState()
        let nothingYet = streaming.connectionBound()
        #expect(!nothingYet && !streaming.requestFullySent, "the body is still coming")
    }

    @Test func aConnectionGoesBackToThePoolOnlyAfterACleanExchange() {
        var clean = ProxyExchangeState()
        _ = clean.requestDidEnd(connected: true)
        clean.responseHead(keepAlive: true, upgrade: false)
        #expect(clean.responseEnded(connectionReusable: true) == .init(reuseConnection: true, resumeClient: false))
        #expect(clean.finished)

        var asksToClose = ProxyExchangeState()
        _ = asksToClose.requestDidEnd(connected: true)
        asksToClose.responseHead(keepAlive: false, upgrade: false)
        #expect(!asksToClose.responseEnded(connectionReusable: true).reuseConnection)

        var overran = ProxyExchangeState()
        _ = overran.requestDidEnd(connected: true)
        overran.responseHead(keepAlive: true, upgrade: false)
        #expect(!overran.responseEnded(connectionReusable: false).reuseConnection, "more bytes than framed")

        var early = ProxyExchangeState()
        let paused = early.pauseClient()
        #expect(paused)
        early.responseHead(keepAlive: true, upgrade: false)
        let actions = early.responseEnded(connectionReusable: true)
        #expect(actions == .init(reuseConnection: false, resumeClient: true), "the body never all went: the client drains")
        #expect(!early.clientPaused)
    }

    @Test func pausingAndResumingTellTheClientOnce() {
        var state = ProxyExchangeState()
        let first = state.pauseClient()
        let second = state.pauseClient()
        #expect(first && !second)
        let resumed = state.resumeClient()
        let again = state.resumeClient()
        #expect(resumed && !again)
    }

    @Test func attemptsAndTheEndAreCountedOnce() {
        var state = ProxyExchangeState()
        state.attemptStarted()
        let counted = state.attemptEnded()
        let twice = state.attemptEnded()
        #expect(counted && !twice)
        state.pooledConnectionFailed()
        let fresh = state.takeFreshConnection()
        let freshAgain = state.takeFreshConnection()
        #expect(fresh && !freshAgain, "only the next attempt opens a fresh connection")
        let finished = state.finish()
        let finishedAgain = state.finish()
        #expect(finished && !finishedAgain)
        #expect(state.bodyPart(connected: true) == .ignore)
    }

    @Test func aWebSocketUpgradeIsNoStreamingAnswer() {
        var state = ProxyExchangeState()
        state.responseHead(keepAlive: true, upgrade: true)
        #expect(state.response == .upgrading && state.responseStarted)
    }

    @Test func theBodyIsKeptForARetryWhileItFits() {
        var replay = RequestBodyReplay(keeping: true, limit: 10)
        replay.sent(ByteBuffer(string: "12345"))
        replay.sent(ByteBuffer(string: "678"))
        #expect(replay.bytes == 8 && !replay.sentUnkept)
        let resent = replay.takeForRetry()
        #expect(resent.map { String(buffer: $0) } == ["12345", "678"] && replay.bytes == 0)
        for part in resent { replay.sent(part) }
        replay.sent(ByteBuffer(string: "90ab"))
        #expect(replay.sentUnkept && replay.parts.isEmpty, "over the limit: nothing kept, a retry cannot resend")
        replay.sent(ByteBuffer(string: "c"))
        #expect(replay.parts.isEmpty, "once a part went without a copy none is kept")

        var off = RequestBodyReplay(keeping: false, limit: 1 << 20)
        off.sent(ByteBuffer(string: "x"))
        #expect(off.sentUnkept)

        var answered = RequestBodyReplay(keeping: true, limit: 100)
        answered.sent(ByteBuffer(string: "x"))
        answered.answered()
        #expect(answered.parts.isEmpty && !answered.sentUnkept)
    }
}
