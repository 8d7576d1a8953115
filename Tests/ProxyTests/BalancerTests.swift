import Testing

@testable import Proxy

@Suite struct BalancerTests {
    func picks(_ balance: ProxyConfiguration.Balance, weights: [Int], count: Int, key: String? = nil,
               eligible: @escaping (Int) -> Bool = { _ in true }, active: @escaping (Int) -> Int = { _ in 0 }) -> [Int]
    {
        var state = Balancer.State(count: weights.count)
        return (0..<count).compactMap { _ in
            Balancer.pick(balance, weights: weights, state: &state, key: key, eligible: eligible, active: active)
        }
    }

    @Test func smoothWeightedRoundRobinInterleaves() {
        // nginx's sequence for 5,1,1.
        #expect(picks(.roundRobin, weights: [5, 1, 1], count: 7) == [0, 0, 1, 0, 2, 0, 0])
        let spread = picks(.roundRobin, weights: [3, 1], count: 400)
        #expect(spread.filter { $0 == 0 }.count == 300)
    }

    @Test func roundRobinSkipsIneligible() {
        #expect(picks(.roundRobin, weights: [1, 1, 1], count: 4, eligible: { $0 != 1 }) == [0, 2, 0, 2])
        #expect(picks(.roundRobin, weights: [1, 1], count: 1, eligible: { _ in false }).isEmpty)
    }

    @Test func leastConnectionsWeighsLoadAgainstWeight() {
        #expect(picks(.leastConnections, weights: [1, 1, 1], count: 1, active: { [5, 2, 9][$0] }) == [1])
        // 4 in flight on weight 4 beats 2 in flight on weight 1.
        #expect(picks(.leastConnections, weights: [4, 1], count: 1, active: { [4, 2][$0] }) == [0])
        // Ties rotate.
        #expect(Set(picks(.leastConnections, weights: [1, 1, 1], count: 3)) == [0, 1, 2])
    }

    @Test func rendezvousHashIsStickyAndMovesOnlyTheLostKeys() {
        let keys = (0..<300).map { "client-\($0)" }
        let before = keys.map { picks(.headerHash("x"), weights: [1, 1, 1], count: 1, key: $0)[0] }
        #expect(keys.map { picks(.headerHash("x"), weights: [1, 1, 1], count: 1, key: $0)[0] } == before)
        for upstream in 0..<3 { #expect(before.filter { $0 == upstream }.count > 60) }
        let after = keys.map { picks(.headerHash("x"), weights: [1, 1, 1], count: 1, key: $0, eligible: { $0 != 2 })[0] }
        for (old, new) in zip(before, after) where old != 2 { #expect(old == new) }
        #expect(after.allSatisfy { $0 != 2 })
    }

    @Test func hashWithoutKeyFallsBackToRoundRobin() {
        #expect(picks(.clientAddressHash, weights: [1, 1], count: 4) == [0, 1, 0, 1])
    }
}

@Suite struct RetryPolicyTests {
    func progress(attempts: Int = 1, responseStarted: Bool = false, unbuffered: Bool = false, idempotent: Bool = true,
                  elapsedSeconds: Int64 = 0) -> RetryPolicy.Progress
    {
        RetryPolicy.Progress(
            attempts: attempts, maxTries: 3, elapsed: .seconds(elapsedSeconds), window: .seconds(10),
            responseStarted: responseStarted, bodyPartlySentUnbuffered: unbuffered, idempotent: idempotent)
    }

    @Test func connectFailuresAreRetriedForEveryMethod() {
        #expect(RetryPolicy.mayRetry(after: .connect(timedOut: false), progress(idempotent: false)))
        #expect(RetryPolicy.mayRetry(after: .connect(timedOut: true), progress()))
    }

    @Test func resetsAreRetriedOnlyForIdempotentRequests() {
        #expect(RetryPolicy.mayRetry(after: .reset, progress()))
        #expect(!RetryPolicy.mayRetry(after: .reset, progress(idempotent: false)))
    }

    @Test func neverAfterTheResponseStartedOrAnUnbufferedBodyLeft() {
        #expect(!RetryPolicy.mayRetry(after: .reset, progress(responseStarted: true)))
        #expect(!RetryPolicy.mayRetry(after: .reset, progress(unbuffered: true)))
        #expect(!RetryPolicy.mayRetry(after: .timeout, progress()))
    }

    @Test func boundedInTriesAndTime() {
        #expect(!RetryPolicy.mayRetry(after: .connect(timedOut: false), progress(attempts: 3)))
        #expect(!RetryPolicy.mayRetry(after: .connect(timedOut: false), progress(elapsedSeconds: 11)))
    }

    @Test func idempotentMethods() {
        #expect(RetryPolicy.isIdempotent(.GET) && RetryPolicy.isIdempotent(.PUT) && RetryPolicy.isIdempotent(.DELETE))
        #expect(!RetryPolicy.isIdempotent(.POST) && !RetryPolicy.isIdempotent(.PATCH))
    }
}
