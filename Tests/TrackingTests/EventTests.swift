import Foundation
import NIOCore
import Testing

@testable import Tracking

@Suite struct EventTests {
    @Test func idsAreVersion7SortedByTimeAndUnique() {
        var generator = EventIDGenerator(seed: 42)
        let first = generator.next(unixMilliseconds: 1_700_000_000_000).description
        let second = generator.next(unixMilliseconds: 1_700_000_000_001).description
        #expect(first.count == 36)
        #expect(UUID(uuidString: first) != nil)
        let versionIndex = first.index(first.startIndex, offsetBy: 14)
        #expect(first[versionIndex] == "7")
        let variant = first[first.index(first.startIndex, offsetBy: 19)]
        #expect("89ab".contains(variant))
        #expect(first < second)
        #expect(first.hasPrefix("018bcfe5-6800"))  // 1_700_000_000_000 ms in the first 48 bits
        var ids = Set<String>()
        for _ in 0..<10_000 { ids.insert(generator.next(unixMilliseconds: 1_700_000_000_000).description) }
        #expect(ids.count == 10_000)
    }

    /// What the data plane fills in, with a whole address (as before enrichment).
    static let plainEvent = TrackingEvent(
        id: EventID(high: 0x018b_cfe5_6800_7000, low: 0x8000_0000_0000_0001), timeMilliseconds: 1_700_000_000_123,
        site: "example.com", host: "www.example.com", kind: .pageview, method: "GET", scheme: "https",
        target: "/a \"quoted\" path?utm_source=x&q=1", status: 200, bytesIn: 0, bytesOut: 1234,
        durationMicroseconds: 567, upstream: "127.0.0.1:3000", upstreamMicroseconds: 400,
        referrer: "https://ref.example/", userAgent: "curl/8", httpVersion: "HTTP/2.0", tlsVersion: "TLSv1.3",
        requestID: "abc", clientAddress: "203.0.113.7")

    /// An enriched event, every field set.
    static let event: TrackingEvent = {
        var event = plainEvent
        event.clientAddress = "203.0.113.0"
        event.eventName = "signup"
        event.eventType = "conversion"
        event.visitorID = "016f2740-6e8c-11ea-9f0b-5d70c66851be"
        event.sessionID = "0123456789abc"
        event.sessionStart = true
        event.userID = "u-1"
        event.browser = "Firefox"
        event.browserVersion = "133"
        event.os = "Linux"
        event.device = "desktop"
        event.country = "DE"
        event.region = "Bavaria"
        event.city = "München"
        event.latitude = 48.1
        event.longitude = 11.6
        event.referrerHost = "ref.example"
        event.sourceCategory = "other"
        event.utmSource = "x"
        event.clickID = "gclid=1"
        event.consentFlags = 1024
        event.revenue = 9.5
        event.currency = "EUR"
        event.properties = "{\"plan\":\"pro\"}"
        event.channel = "Paid Search"
        event.sessionChannel = "Organic Search"
        event.orgID = "org-id"
        event.org = "emea"
        event.experimentID = "exp-7"
        event.variant = "b"
        event.threadID = "t-1"
        return event
    }()

    /// The record the first version wrote: version byte 1 and no enrichment tail (an event with empty
    /// enrichment fields encodes them in 34 bytes: flags, two one-byte varints, 31 empty strings).
    static func versionOneRecord(_ event: TrackingEvent) -> ByteBuffer {
        var buffer = ByteBuffer()
        EventRecord.encode(event, into: &buffer)
        var v1 = buffer.getSlice(at: 0, length: buffer.readableBytes - 34)!
        v1.setInteger(UInt8(1), at: 0)
        return v1
    }

    @Test func versionTwoRecordsReadWithoutChannels() throws {
        var event = Self.event
        (event.channel, event.sessionChannel) = ("", "")
        (event.orgID, event.org, event.experimentID, event.variant, event.threadID) = ("", "", "", "", "")
        var buffer = ByteBuffer()
        EventRecord.encode(event, into: &buffer)
        var v2 = buffer.getSlice(at: 0, length: buffer.readableBytes - 7)!
        v2.setInteger(UInt8(2), at: 0)
        let decoded = try EventRecord.decode(v2)
        #expect(decoded.properties == event.properties && decoded.currency == "EUR" && decoded.channel.isEmpty)
    }

    @Test func versionThreeRecordsReadWithoutTenancy() throws {
        var event = Self.event
        (event.orgID, event.org, event.experimentID, event.variant, event.threadID) = ("", "", "", "", "")
        var buffer = ByteBuffer()
        EventRecord.encode(event, into: &buffer)
        var v3 = buffer.getSlice(at: 0, length: buffer.readableBytes - 5)!
        v3.setInteger(UInt8(3), at: 0)
        let decoded = try EventRecord.decode(v3)
        #expect(decoded == event)
        // Version 4 keeps them.
        var v4 = ByteBuffer()
        EventRecord.encode(Self.event, into: &v4)
        #expect(try EventRecord.decode(v4).experimentID == "exp-7" && (try EventRecord.decode(v4)).variant == "b")
    }

    @Test func theWordAtATimeEscapeCheckAgreesWithTheByteRule() {
        // Every byte value at every position of a 17-byte run (two words and a tail), among plain and UTF-8 bytes.
        for filler: UInt8 in [UInt8(ascii: "a"), 0xC3, 0x7F, 0x21, 0xFF] {
            for position in 0..<17 {
                for value in UInt8.min...UInt8.max {
                    var bytes = [UInt8](repeating: filler, count: 17)
                    bytes[position] = value
                    let expected = bytes.contains(where: JSONEscaping.needsEscape)
                    let checked = bytes.withUnsafeBytes { JSONEscaping.anyNeedsEscape($0) }
                    if checked != expected { Issue.record("byte \(value) at \(position) among \(filler): \(checked)") }
                }
            }
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0..<40, using: &generator)).map { _ in UInt8.random(in: 0x1C...0xFF, using: &generator) }
            #expect(bytes.withUnsafeBytes { JSONEscaping.anyNeedsEscape($0) } == bytes.contains(where: JSONEscaping.needsEscape))
        }
    }

    @Test func anEventIsOneJSONObjectWithEveryField() throws {
        let event = Self.event
        var buffer = ByteBuffer()
        event.writeJSON(into: &buffer)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any])
        #expect(object["id"] as? String == "018bcfe5-6800-7000-8000-000000000001")
        #expect(object["ts"] as? Int == 1_700_000_000_123)
        #expect(object["path"] as? String == "/a \"quoted\" path")
        #expect(object["query"] as? String == "utm_source=x&q=1")
        #expect(object["url"] as? String == "https://www.example.com/a \"quoted\" path")
        #expect(object["kind"] as? String == "pageview")
        #expect(object["status"] as? Int == 200)
        #expect(object["upstream_us"] as? Int == 400)
        #expect(object["client_ip"] as? String == "203.0.113.0")
        #expect(object["vid"] as? String == "016f2740-6e8c-11ea-9f0b-5d70c66851be")
        #expect(object["session_start"] as? Bool == true)
        #expect(object["bot"] as? Bool == false)
        #expect(object["city"] as? String == "München")
        #expect(object["lat"] as? Double == 48.1)
        #expect(object["cflags"] as? Int == 1024)
        #expect((object["props"] as? [String: Any])?["plan"] as? String == "pro")
        #expect(object["revenue"] == nil, "revenue only on ltv events")
    }

    @Test func theBinaryRecordRoundTrips() throws {
        var buffer = ByteBuffer()
        EventRecord.encode(Self.event, into: &buffer)
        #expect(try EventRecord.decode(buffer) == Self.event)
        let decoded = try EventRecord.decode(buffer)
        #expect(decoded.path == "/a \"quoted\" path")
        #expect(decoded.query == "utm_source=x&q=1")
        #expect(throws: EventRecord.DecodingError.self) { try EventRecord.decode(ByteBuffer(bytes: [9, 0])) }
        #expect(throws: EventRecord.DecodingError.self) { try EventRecord.decode(buffer.getSlice(at: 0, length: 40)!) }
    }

    @Test func longStringsAreCutAtACharacterBoundary() throws {
        var event = Self.event
        event.userAgent = String(repeating: "é", count: 3000)  // two bytes each
        var buffer = ByteBuffer()
        EventRecord.encode(event, into: &buffer)
        let decoded = try EventRecord.decode(buffer)
        #expect(decoded.userAgent.utf8.count == EventRecord.maxStringBytes)
        #expect(decoded.userAgent.allSatisfy { $0 == "é" })
    }

    @Test func addressesAreTruncatedBeforeTheyAreStored() {
        #expect(IPAnonymizer.anonymize("203.0.113.77") == "203.0.113.0")
        #expect(IPAnonymizer.anonymize("2001:db8:abcd:12:1:2:3:4") == "2001:db8:abcd::")
        #expect(IPAnonymizer.anonymize("2001:db8::1") == "2001:db8:0::")
        #expect(IPAnonymizer.anonymize("::1") == "0:0:0::")
    }
}
