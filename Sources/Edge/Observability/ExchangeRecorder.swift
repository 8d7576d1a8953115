import Links
import NIOCore
import NIOHTTP1
import Tracking

/// What an answered exchange leaves behind: its route's metrics, its events in the spool (the rules of what they
/// are live in Tracking: ``PageView``, ``EventRecorder/recordAnswered(_:facts:enricher:apiEvents:reclassification:rateLimitFlag:nowMilliseconds:)``),
/// and its access-log line. Runs on the exchange's loop when the answer is complete, before its last bytes leave:
/// whoever got an answer has an event, even if the process is killed right after.
struct ExchangeRecorder {
    let loop: LoopContext
    let connection: ConnectionInfo
    /// Metrics of requests no route took.
    let unroutedMetrics: RouteMetrics

    func record(_ exchange: Exchange) {
        let elapsed = NIODeadline.now().uptimeNanoseconds &- exchange.startNanoseconds
        (exchange.route?.metrics ?? unroutedMetrics).record(
            loop: loop.index, status: exchange.status, nanoseconds: Int(elapsed), sent: exchange.sentBytes,
            received: exchange.bodyBytes)
        let events = exchange.route?.track ?? true ? loop.events : nil
        let accessLog = exchange.route?.accessLog ?? true ? loop.accessLog : nil
        guard events != nil || accessLog != nil else { return }
        let now = loop.refreshClock()
        let client = connection.clientAddress(of: exchange)
        var eventID: EventID?
        if let events {
            let started = Int64(now) - Int64(elapsed / 1_000_000)
            var event = requestEvent(
                exchange, id: events.nextID(unixMilliseconds: started), started: started, elapsed: elapsed, client: client)
            eventID = events.recordAnswered(
                &event, facts: requestFacts(exchange, client: client), enricher: loop.enricher, apiEvents: exchange.apiEvents,
                reclassification: exchange.click, rateLimitFlag: exchange.rateLimitFlag, nowMilliseconds: Int64(now))
        }
        if let accessLog { log(exchange, to: accessLog, client: client, eventID: eventID, elapsed: elapsed, now: now) }
    }

    /// The request's own event (what a tracking API call's events are completed by). Inlined so the event (560
    /// bytes) is built where the caller keeps it rather than returned through a copy.
    @inline(__always)
    func requestEvent(_ exchange: Exchange, id: EventID, started: Int64, elapsed: UInt64, client: String) -> TrackingEvent {
        let head = exchange.head
        let headers = exchange.headers
        // The Go tracker's short-link API carries a password in its path: it never reaches the log or the event.
        let target = LegacyShortLinkAPI.redactedTarget(head.uri) ?? head.uri
        return TrackingEvent(
            id: id, timeMilliseconds: started, site: exchange.siteName,
            host: headers.host ?? "", kind: exchange.eventKind, method: head.method.rawValue,
            scheme: connection.isTLS ? "https" : "http", target: target, status: Int(exchange.status.code),
            bytesIn: exchange.bodyBytes, bytesOut: exchange.sentBytes, durationMicroseconds: Int(elapsed / 1000),
            upstream: exchange.proxy?.upstreamAddress ?? "",
            upstreamMicroseconds: exchange.proxy?.upstreamHeaderNanoseconds.map { Int($0 / 1000) } ?? 0,
            referrer: headers.referer ?? "", userAgent: headers.userAgent ?? "", httpVersion: exchange.protocolName,
            tlsVersion: connection.tlsVersion ?? "", requestID: exchange.requestID ?? headers.acceptableRequestID ?? .empty,
            clientAddress: client)
    }

    /// What enrichment reads about the request besides its event.
    /// `eagerMemo`: the facts serve many events of one client (a WebSocket's messages), so the connection's client
    /// memo is made now rather than at its second event.
    func requestFacts(_ exchange: Exchange, client: String, eagerMemo: Bool = false) -> RequestFacts {
        let headers = exchange.headers
        return RequestFacts(
            clientAddress: client, userAgent: headers.userAgent, cookie: headers.cookie, doNotTrack: headers.doNotTrack,
            globalPrivacyControl: headers.globalPrivacyControl, siteHosts: exchange.siteHosts,
            issuedVisitorID: exchange.issuedVisitorID, memo: connection.clientMemo(eager: eagerMemo))
    }

    /// The access-log line: the target as sent, less personal query parameters (as the events keep it).
    private func log(_ exchange: Exchange, to accessLog: AccessLogBuffer, client: String, eventID: EventID?, elapsed: UInt64, now: Int) {
        let head = exchange.head
        let headers = exchange.headers
        let scrubber = loop.events?.scrubber ?? QueryScrubber.standard
        let original = exchange.originalTarget ?? head.uri
        let sentTarget = LegacyShortLinkAPI.redactedTarget(original) ?? original
        let format = loop.accessLogFormat
        let entry = AccessLogEntry(
            milliseconds: now % 1000, client: client, method: head.method.rawValue, host: headers.host,
            uri: scrubber.scrub(url: sentTarget) ?? sentTarget, proto: exchange.protocolName, status: Int(exchange.status.code),
            bytesSent: exchange.sentBytes, bytesReceived: exchange.bodyBytes, elapsedNanoseconds: elapsed,
            site: exchange.siteName, route: exchange.route?.label ?? "-", tls: connection.tlsVersion, requestID: exchange.requestID,
            eventID: format.writes(.eventID) ? eventID?.description : nil, upstream: exchange.proxy?.upstreamAddress,
            upstreamMicroseconds: exchange.proxy?.upstreamHeaderNanoseconds.map { Int($0 / 1000) }, userAgent: headers.userAgent,
            referer: headers.referer.map { scrubber.scrub(url: $0) ?? $0 })
        accessLog.append(entry, format: format, isoSecond: loop.isoSecond, commonLogSecond: loop.commonLogSecond)
    }
}
