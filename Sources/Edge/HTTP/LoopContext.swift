import FlushCoalescing
import HTTP2Session
import NIOCore
import NIOHTTP1
import RegexSet
import RequestTarget
import Static
import Tracking

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Per-event-loop state that requests share without locks: the cached `Date` header and access-log timestamp, and
/// the loop's access log buffer.
///
/// Only ever touched on its own event loop; handlers reach it through the loop they run on.
final class LoopContext: @unchecked Sendable {
    let eventLoop: any EventLoop
    /// Position of the loop in the group: its slot in per-loop metrics.
    let index: Int
    let accessLog: AccessLogBuffer?
    /// Where this loop's requests become events (nil with tracking off).
    let events: EventRecorder?
    /// Fills in visitor, session, device, source and location before an event is recorded (with `events`).
    let enricher: Enricher?
    private(set) var dateHeader = ""
    private(set) var isoSecond = ""
    /// How this process writes access log lines (`access_log.format`; changes at a restart).
    let accessLogFormat: AccessLogFormat
    /// The loop's match data for sites' `rewrites` (PCRE2 match data is per thread).
    private(set) lazy var rewriteScratch = MatchScratch()
    /// Where a small answer's head and body are gathered into one buffer for one write (``HTTP1ResponseWriter``).
    /// Per loop, not per connection: a buffer whose answer the socket has written is reused. A ring, as the answers
    /// of one tick all wait for its end (``FlushCoalescer``); a ring of 64 answers of a few KB.
    var answers = WriteBufferRing(count: 64)
    /// Where an answer's flush waits for the end of the loop's tick, with the proxy's upstream requests.
    let flushCoalescer: FlushCoalescer
    /// This second as the common log format writes it (`05/Dec/2026:06:27:11 +0000`), for `combined` lines.
    private(set) var commonLogSecond = ""
    private var cachedSecond = -1
    /// Request IDs: 16 random hex digits per loop and run, then a 16-digit counter; unique without a syscall each.
    private let requestIDPrefix: UInt64
    private var requestSerial: UInt64 = 0

    /// Serialized `200 OK` heads of cached files for the current second, Date and Server included.
    private var heads: [HeadKey: CachedHeads] = [:]
    private var headsSecond = -1
    /// A file as a route with (constant) header rules answers it.
    private struct HeadKey: Hashable {
        var file: ObjectIdentifier
        var rules: ObjectIdentifier?
    }
    private struct CachedHeads {
        /// Held so the identifiers cannot be reused by another file or rule set while the entry lives.
        var file: CachedFile
        var rules: ResponseHeaderRules?
        var variants: [ByteBuffer?]
        var http2: [FieldList?]
    }

    init(
        eventLoop: any EventLoop, index: Int, accessLogWriter: AccessLogWriter?, events: EventRecorder? = nil,
        enricher: Enricher? = nil, flushCoalescer: FlushCoalescer
    ) {
        self.flushCoalescer = flushCoalescer
        self.enricher = enricher
        self.eventLoop = eventLoop
        self.index = index
        self.events = events
        accessLog = accessLogWriter.map { AccessLogBuffer(writer: $0) }
        accessLogFormat = accessLogWriter?.format ?? AccessLogFormat()
        var random = SystemRandomNumberGenerator()
        requestIDPrefix = random.next()
        refreshClock()
    }

    /// A new request ID (32 hex digits where it is written).
    func nextRequestID() -> RequestID {
        requestSerial &+= 1
        return RequestID(prefix: requestIDPrefix, serial: requestSerial)
    }

    /// Wall-clock milliseconds now; refreshes the cached strings when the second changed.
    @discardableResult
    @inline(__always)
    func refreshClock() -> Int {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME_COARSE, &spec)
        let second = Int(spec.tv_sec)
        if second != cachedSecond {
            cachedSecond = second
            dateHeader = HTTPDate.format(epochSeconds: second)
            isoSecond = Self.iso8601(epochSeconds: second)
            if accessLogFormat.style == .combined { commonLogSecond = Self.commonLogTime(epochSeconds: second) }
        }
        return second * 1000 + Int(spec.tv_nsec) / 1_000_000
    }

    /// The status line and headers (without the closing blank line) of a cached file's `200 OK` answer, with Date
    /// and Server, serialized once per second per loop instead of once per response.
    /// `base`: the answer's headers; `rules` (constant ones: a cached head is the same for every request) are
    /// applied here, when the head is built.
    func serializedHead(file: CachedFile, variant: Int, base: HTTPHeaders, rules: ResponseHeaderRules? = nil) -> ByteBuffer {
        if let head = currentEntry(for: file, rules: rules)?.variants[variant] { return head }
        var base = base
        rules?.apply(to: &base, facts: Self.noRequestFacts())
        var head = ByteBufferAllocator().buffer(capacity: 320)
        HTTPHead.writeStatusLine(.ok, into: &head)
        HTTPHead.write(base, into: &head)
        head.writeStaticString("Date: ")
        head.writeString(dateHeader)
        head.writeStaticString(rules?.omitsServer == true ? "\r\n" : "\r\nServer: vantage\r\n")
        updateEntry(for: file, rules: rules) { $0.variants[variant] = head }
        return head
    }

    /// The HTTP/2 header block (`:status 200`, lower-cased names, Date and Server) of a cached file's answer, built
    /// once per second per loop.
    func http2Headers(file: CachedFile, variant: Int, base: HTTPHeaders, rules: ResponseHeaderRules? = nil) -> FieldList {
        if let block = currentEntry(for: file, rules: rules)?.http2[variant] { return block }
        var base = base
        rules?.apply(to: &base, facts: Self.noRequestFacts())
        var block = FieldList()
        block.append(name: ":status", value: "200")
        for (name, value) in base { block.append(name: name, value: value) }
        block.append(name: "date", value: dateHeader)
        if rules?.omitsServer != true { block.append(name: "server", value: "vantage") }
        updateEntry(for: file, rules: rules) { $0.http2[variant] = block }
        return block
    }

    /// This second's entry for a file (heads carry the Date, so they are all dropped when the second changes).
    private func currentEntry(for file: CachedFile, rules: ResponseHeaderRules?) -> CachedHeads? {
        if headsSecond != cachedSecond {
            heads.removeAll(keepingCapacity: true)
            headsSecond = cachedSecond
        }
        return heads[HeadKey(file: ObjectIdentifier(file), rules: rules.map(ObjectIdentifier.init))]
            .flatMap { $0.file === file && $0.rules === rules ? $0 : nil }
    }

    private func updateEntry(for file: CachedFile, rules: ResponseHeaderRules?, _ update: (inout CachedHeads) -> Void) {
        let id = HeadKey(file: ObjectIdentifier(file), rules: rules.map(ObjectIdentifier.init))
        guard heads.count < 1024 || heads[id] != nil else { return }
        let slots = file.encoded.count + 1
        var entry = currentEntry(for: file, rules: rules)
            ?? CachedHeads(
                file: file, rules: rules, variants: Array(repeating: nil, count: slots),
                http2: Array(repeating: nil, count: slots))
        update(&entry)
        heads[id] = entry
    }

    /// Cached heads take constant rules only, which never read the request.
    private static func noRequestFacts() -> ExchangeFacts {
        preconditionFailure("constant header rules read no request facts")
    }

    static func commonLogTime(epochSeconds: Int) -> String {
        var time = time_t(epochSeconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func pad(_ value: Int32) -> String { value < 10 ? "0\(value)" : String(value) }
        return "\(pad(parts.tm_mday))/\(months[Int(parts.tm_mon)])/\(parts.tm_year + 1900):"
            + "\(pad(parts.tm_hour)):\(pad(parts.tm_min)):\(pad(parts.tm_sec)) +0000"
    }

    static func iso8601(epochSeconds: Int) -> String {
        var time = time_t(epochSeconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func pad(_ value: Int32, _ width: Int = 2) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1))-\(pad(parts.tm_mday))T"
            + "\(pad(parts.tm_hour)):\(pad(parts.tm_min)):\(pad(parts.tm_sec))"
    }
}

/// What is known about one client connection, shared by its request handlers (one for HTTP/1.1, one per stream
/// for HTTP/2).
///
/// `@unchecked Sendable` because channel initializers are `@Sendable` closures; the mutable fields are written and
/// read on the connection's event loop only (the TLS handler's version, the request handlers' flags and memo).
final class ConnectionInfo: @unchecked Sendable {
    /// Peer address text and bytes.
    let remoteAddress: String
    let remoteIP: [UInt8]
    /// Whether the connection came in on a TLS listener (HSTS, redirects to HTTPS, zero-copy only without TLS).
    let isTLS: Bool
    /// Negotiated TLS version (`TLSv1.3`), set when the handshake completes.
    var tlsVersion: String?
    /// The configuration snapshot as this connection sees it.
    let snapshots: SnapshotView
    /// The connection came in over `limits.max_connections`: its first request is answered 503 and it closes.
    var overCapacity = false
    /// What enrichment worked out about the client, for the connection's next requests (see ``clientMemo(eager:)``).
    private var memo: ClientMemo?
    private var memoAsked = false

    init(channel: any Channel, isTLS: Bool, core: GatewayCore) {
        snapshots = SnapshotView(core: core)
        let address = channel.remoteAddress
        remoteAddress = address?.ipAddress ?? "-"
        remoteIP = address.flatMap { address -> [UInt8]? in
            switch address {
            case .v4(let v4): return withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }
            case .v6(let v6): return withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            default: return nil
            }
        } ?? []
        self.isTLS = isTLS
    }

    /// The memo of the client for an event being recorded: none for the connection's first, made at its second, so
    /// a connection that makes one request (as many do) holds none. `eager` makes it at once (a WebSocket's
    /// messages, all events of one client).
    func clientMemo(eager: Bool) -> ClientMemo? {
        if let memo { return memo }
        guard memoAsked || eager else {
            memoAsked = true
            return nil
        }
        let made = ClientMemo()
        memo = made
        return made
    }
}
