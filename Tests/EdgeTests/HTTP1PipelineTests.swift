import Testing

@testable import Edge

/// An HTTP/1.1 connection's request order without a channel: pipelined requests wait and hold reads, nothing
/// after a closing answer is a request, bytes that failed to parse behind a request are refused after its answer,
/// quiescing closes once idle.
@Suite struct HTTP1PipelineTests {
    typealias Pipeline = HTTP1Pipeline<String, String>

    @Test func pipelinedRequestsWaitTheirTurnAndHoldReads() {
        var pipeline = Pipeline()
        let first = pipeline.received("GET /a", afterCompleteRequest: false, keepsConnection: true)
        #expect(first == .process)
        let readsWhileAnswering = pipeline.mayRead(bodyPaused: false)
        #expect(readsWhileAnswering, "an answer pending alone holds no read")
        let pipelined = pipeline.received("GET /b", afterCompleteRequest: true, keepsConnection: true)
        #expect(pipelined == .queue)
        let held = pipeline.mayRead(bodyPaused: false)
        #expect(!held && pipeline.readHeld, "at most one read's worth waits")
        guard case .serveQueued = pipeline.exchangeCompleted() else {
            Issue.record("the queue is served after an answer")
            return
        }
        let next = pipeline.nextQueued()
        #expect(next == "GET /b")
        let none = pipeline.nextQueued()
        #expect(none == nil)
        let afterQueue = pipeline.idle(exchangeInFlight: true, bodyPaused: false)
        #expect(afterQueue == .resumeReads)
        let afterResume = pipeline.idle(exchangeInFlight: true, bodyPaused: false)
        #expect(afterResume == .none, "resumed once")
    }

    @Test func nothingAfterAClosingAnswerIsARequest() {
        var pipeline = Pipeline()
        let afterClosing = pipeline.received("GET /a", afterCompleteRequest: true, keepsConnection: false)
        #expect(afterClosing == .drop)
        _ = pipeline.received("GET /b", afterCompleteRequest: true, keepsConnection: true)
        let closesNow = pipeline.closeAfterAnswer()
        #expect(closesNow && pipeline.closing)
        let dropped = pipeline.nextQueued()
        #expect(dropped == nil, "what waited is dropped")
        let afterClose = pipeline.received("GET /c", afterCompleteRequest: false, keepsConnection: true)
        #expect(afterClose == .drop)
        let reads = pipeline.mayRead(bodyPaused: false)
        #expect(!reads && !pipeline.readHeld, "a closing connection reads no more")
        guard case .stop = pipeline.exchangeCompleted() else {
            Issue.record("a closing connection serves nothing more")
            return
        }
    }

    @Test func bytesThatFailedBehindARequestAreRefusedAfterItsAnswer() {
        var pipeline = Pipeline()
        _ = pipeline.received("GET /b", afterCompleteRequest: true, keepsConnection: true)
        pipeline.malformedAfterRequest("400 bare LF", answerPending: true)
        let afterRefusal = pipeline.received("more", afterCompleteRequest: true, keepsConnection: true)
        #expect(afterRefusal == .drop)
        let closesNow = pipeline.closeAfterAnswer()
        #expect(!closesNow, "the refusal goes out first, then the connection closes")
        guard case .refuse(let refusal) = pipeline.exchangeCompleted() else {
            Issue.record("the refusal follows the answer")
            return
        }
        #expect(refusal == "400 bare LF")

        var closingClient = Pipeline()
        closingClient.malformedAfterRequest("400 bare LF", answerPending: false)
        #expect(closingClient.refusalAfterCurrent == nil, "a client that asked to close sent nothing more that counts")
    }

    @Test func aPausedUploadHoldsReadsUntilItResumes() {
        var pipeline = Pipeline()
        let readsWhilePaused = pipeline.mayRead(bodyPaused: true)
        #expect(!readsWhilePaused)
        let whilePaused = pipeline.idle(exchangeInFlight: true, bodyPaused: true)
        #expect(whilePaused == .none)
        let resumed = pipeline.bodyResumed()
        let again = pipeline.bodyResumed()
        #expect(resumed && !again)
    }

    @Test func quiescingClosesOnceIdle() {
        var busy = Pipeline()
        let closesAtOnce = busy.quiesce(idle: false)
        #expect(!closesAtOnce && busy.quiescing)
        guard case .serveQueued = busy.exchangeCompleted() else {
            Issue.record("nothing was closing")
            return
        }
        let whenIdle = busy.idle(exchangeInFlight: false, bodyPaused: false)
        #expect(whenIdle == .close)

        var idle = Pipeline()
        let closesNow = idle.quiesce(idle: true)
        #expect(closesNow)
    }
}
