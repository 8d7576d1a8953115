import HeapModule
import NIOCore

/// The events of a spool folder in time order across loops (`vantage events export`).
///
/// Each loop writes its own segments, so reading files one after another interleaves the loops' hours. This merges
/// the segments by event time, holding one chunk per segment, and sorts what is a little out of order within a
/// segment (an event is recorded when its answer ends, with the time its request started) through a window of
/// ``window`` events. Memory stays bounded whatever the spool holds.
public struct TimeOrderedEvents {
    public let directory: String
    /// Events held back to put local disorder right.
    public let window: Int
    static let chunkSize = 256 << 10

    public init(directory: String, window: Int = 8192) {
        self.directory = directory
        self.window = window
    }

    /// An event and the segment it came from, ordered by time, then id.
    public struct Entry: Comparable {
        public var event: TrackingEvent
        var segment: Int

        public init(event: TrackingEvent, segment: Int) {
            self.event = event
            self.segment = segment
        }

        public static func < (left: Entry, right: Entry) -> Bool {
            (left.event.timeMilliseconds, left.event.id.high, left.event.id.low)
                < (right.event.timeMilliseconds, right.event.id.high, right.event.id.low)
        }

        public static func == (left: Entry, right: Entry) -> Bool { left.event.id == right.event.id && left.segment == right.segment }
    }

    /// A segment's records, decoded as they are needed.
    final class Source {
        let cursor: SegmentCursor
        var pending: [ByteBuffer] = []
        var index = 0

        init(cursor: SegmentCursor) { self.cursor = cursor }

        /// The next readable event (records that do not decode are skipped, as the shipper counts them).
        func next() -> TrackingEvent? {
            while true {
                if index == pending.count {
                    guard let records = cursor.nextChunk() else { return nil }
                    pending = records
                    index = 0
                }
                let record = pending[index]
                index += 1
                if let event = try? EventRecord.decode(record) { return event }
            }
        }
    }

    /// Calls `body` with every event, oldest first.
    public func forEach(_ body: (TrackingEvent) throws -> Void) throws {
        let paths = try SpoolReader(directory: directory).segmentPaths()
        let sources = paths.compactMap { path in
            SegmentCursor(path: path, chunkSize: Self.chunkSize).map { Source(cursor: $0) }
        }
        var heads = Heap<Entry>()
        for (index, source) in sources.enumerated() {
            if let event = source.next() { heads.insert(Entry(event: event, segment: index)) }
        }
        var held = Heap<Entry>()
        while let head = heads.popMin() {
            held.insert(head)
            if held.count > window, let oldest = held.popMin() { try body(oldest.event) }
            if let event = sources[head.segment].next() { heads.insert(Entry(event: event, segment: head.segment)) }
        }
        while let oldest = held.popMin() { try body(oldest.event) }
    }
}
