import Tracking

/// A short-link click: the request that followed the link becomes its click event (one event, built once), marked
/// `unique` or `repeat` for the visitor once enrichment knows who that is.
public struct LinkClick: EventReclassification {
    public var id: LinkID
    public var slug: String
    /// `{"link_id":…,"to":…}`.
    public var properties: String
    let recent: RecentClicks

    public init(id: LinkID, slug: String, properties: String, recent: RecentClicks) {
        self.id = id
        self.slug = slug
        self.properties = properties
        self.recent = recent
    }

    public func prepare(_ event: inout TrackingEvent) {
        event.kind = .linkClick
        event.eventName = slug
        event.properties = properties
    }

    /// Whether the visitor clicked this link within the repeat window already (so reports count unique clicks).
    /// Machines are not marked: they are flagged as bots and left out of unique counts anyway.
    public func classify(_ event: inout TrackingEvent) {
        guard event.botReason.isEmpty else { return }
        guard !event.visitorID.isEmpty else {
            event.eventType = "unique"
            return
        }
        var hasher = SipHash24(key0: 0x6c69_6e6b_636c_6963 ^ id.high, key1: id.low)
        hasher.combineField(event.visitorID)
        let isRepeat = recent.isRepeat(hasher.finalize(), now: UInt32(clamping: event.timeMilliseconds / 1000))
        event.eventType = isRepeat ? "repeat" : "unique"
    }
}
