import NIOCore

/// The request body kept for a retry: copies of what went upstream, while they fit `retries.buffer`. Once a part
/// goes without a copy, a retry could not resend the body, so none is kept from then on.
struct RequestBodyReplay {
    private(set) var parts: [ByteBuffer] = []
    private(set) var bytes = 0
    private var keeping: Bool
    private let limit: Int
    /// Some of the body went upstream without a copy.
    private(set) var sentUnkept = false

    init(keeping: Bool, limit: Int) {
        self.keeping = keeping
        self.limit = limit
    }

    mutating func sent(_ part: ByteBuffer) {
        guard keeping, bytes + part.readableBytes <= limit else {
            keeping = false
            parts.removeAll()
            bytes = 0
            sentUnkept = true
            return
        }
        parts.append(part)
        bytes += part.readableBytes
    }

    /// The copies, to send first on a new attempt (they are kept again as they are sent).
    mutating func takeForRetry() -> [ByteBuffer] {
        defer {
            parts.removeAll()
            bytes = 0
        }
        return parts
    }

    /// The upstream answered: nothing will be retried.
    mutating func answered() {
        parts.removeAll()
        bytes = 0
    }
}
