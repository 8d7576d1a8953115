/// How a request body is arriving, judged against `limits.body_timeout` and `limits.body_min_rate`: a pure value
/// fed reads and the time (nanoseconds of a monotonic clock), shared by HTTP/1.1 (``ConnectionGuardStateMachine``)
/// and HTTP/2 streams (``HTTP2ConnectionHandler``).
struct BodyProgress: Equatable {
    /// Start of the rate measurement: the head, or the moment reading resumed after a pause.
    private(set) var since: UInt64
    private(set) var lastRead: UInt64
    private(set) var bytes = 0

    init(now: UInt64) {
        since = now
        lastRead = now
    }

    /// Why a body is refused.
    enum Verdict: Equatable {
        /// Nothing arrived for `timeout`.
        case stalled
        /// After `timeout`, the average rate is below the minimum.
        case tooSlow
    }

    mutating func received(_ count: Int, now: UInt64) {
        bytes += count
        lastRead = now
    }

    /// The rate check alone (the gap is the timer's business on HTTP/1.1).
    func rateVerdict(now: UInt64, timeout: UInt64, minRate: Int) -> Verdict? {
        let elapsed = now &- since
        guard minRate > 0, elapsed > timeout else { return nil }
        return Double(bytes) < Double(minRate) * Double(elapsed) / 1e9 ? .tooSlow : nil
    }

    /// Both checks, for a periodic sweep.
    func verdict(now: UInt64, timeout: UInt64, minRate: Int) -> Verdict? {
        if now &- lastRead > timeout { return .stalled }
        return rateVerdict(now: now, timeout: timeout, minRate: minRate)
    }
}
