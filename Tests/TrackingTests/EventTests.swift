import Foundation
import NIOCore
import Testing

@testable import Tracking

@Suite struct EventTests {
    @Test func idsAreVersion7SortedByTimeAndUnique() {
        var generator = EventIDGenerator(seed: 42)
        let first = EventIDGenerator.format(generator.next(unixMilliseconds: 1_700_000_000_000))
        let second = EventIDGenerator.format(generator.next(unixMilliseconds: 1_700_000_000_001))
        #expect(first.count == 36)
        #expect(UUID(uuidString: first) != nil)
        let versionIndex = first.index(first.startIndex, offsetBy: 14)
        #expect(first[versionIndex] == "7")
        let variant = first[first.index(first.startIndex, offsetBy: 19)]
        #expect("89ab".contains(variant))
        #expect(first < second)
        #expect(first.hasPrefix("018bcfe5-6800"))  // 1_700_000_000_000 ms in the first 48 bits
        var ids = Set<String>()
        for _ in 0..<10_000 { ids.insert(EventIDGenerator.format(generator.next(unixMilliseconds: 1_700_000_000_000))) }
        #expect(ids.count == 10_000)
    }

    @Test func anEventIsOneJSONObjectWithEveryField() throws {
        let event = TrackingEvent(
            id: "018bcfe5-6800-7000-8000-000000000000", timeMilliseconds: 1_700_000_000_123, site: "example.com",
            host: "www.example.com", kind: .request, method: "GET", scheme: "https", path: "/a \"quoted\" path",
            query: "utm_source=x", status: 200, bytesIn: 0, bytesOut: 1234, durationMicroseconds: 567,
            upstream: "127.0.0.1:3000", upstreamMicroseconds: 400, referrer: "https://ref.example/", userAgent: "curl/8",
            httpVersion: "HTTP/2.0", tlsVersion: "TLSv1.3", requestID: "abc", clientAddress: "203.0.113.7")
        var buffer = ByteBuffer()
        event.writeJSON(into: &buffer)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any])
        #expect(object["id"] as? String == event.id)
        #expect(object["ts"] as? Int == 1_700_000_000_123)
        #expect(object["path"] as? String == "/a \"quoted\" path")
        #expect(object["url"] as? String == "https://www.example.com/a \"quoted\" path")
        #expect(object["kind"] as? String == "request")
        #expect(object["status"] as? Int == 200)
        #expect(object["upstream_us"] as? Int == 400)
        #expect(object.count == 22)
    }
}
