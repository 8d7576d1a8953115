import Foundation
import Logging
import NIOCore
import Testing
import Tracking

@testable import Links

@Suite struct LinkRuleTests {
    @Test func slugsDestinationsAndStatusesAreChecked() throws {
        try LinkRules.checkSlug("spring-sale")
        try LinkRules.checkSlug("a/b.c_d")
        for bad in ["", "/x", "x/", "a..b", "a//b", "sp ace", "ü", String(repeating: "a", count: 129)] {
            #expect(throws: LinkValidationError.self) { try LinkRules.checkSlug(bad) }
        }
        try LinkRules.checkDestination("https://example.com/landing?a=1", host: "go.example.com", slug: "x")
        for bad in ["javascript:alert(1)", "ftp://x.com/", "/relative", "https://", "https://a b.com/", "https://u:p@x.com/",
                    "https://go.example.com/x", "https://go.example.com/x/", "https://x.com\\@y.com/"] {
            #expect(throws: LinkValidationError.self, "\(bad)") { try LinkRules.checkDestination(bad, host: "go.example.com", slug: "x") }
        }
        try LinkRules.checkStatus(308)
        #expect(throws: LinkValidationError.self) { try LinkRules.checkStatus(200) }
        #expect(LinkRules.normalizeHost("Go.Example.COM.:443") == "go.example.com")
        let generated = LinkRules.generateSlug()
        #expect(generated.count == 7 && !generated.contains("0") && !generated.contains("l"))
    }

    @Test func targetsPassTheQueryAndAddTags() {
        var link = Link(id: "1", host: "h", slug: "s", destination: "https://x.com/p?keep=1#top", createdAt: 0)
        #expect(link.target(query: "a=1") == "https://x.com/p?keep=1#top", "no passthrough by default")
        link.passQuery = true
        link.queryDenyList = ["Token"]
        link.addQuery = ["utm_source": "mail list", "keep": "2"]
        #expect(link.target(query: "a=1&token=secret&b") == "https://x.com/p?keep=1&a=1&b&utm_source=mail%20list#top")
        link.destination = "https://x.com/"
        link.passQuery = false
        #expect(link.target(query: "") == "https://x.com/?keep=2&utm_source=mail%20list")
    }
}

@Suite struct LinkIndexTests {
    @Test func clicksAreCountedAndLimitsHoldExactly() async {
        let index = LinkIndex()
        let idA = "00000000-0000-4000-8000-00000000000a", idB = "00000000-0000-4000-8000-00000000000b"
        var limited = Link(id: idA, host: "h", slug: "limited", destination: "https://x.com/", createdAt: 0)
        limited.maxClicks = 100
        var expiring = Link(id: idB, host: "h", slug: "old", destination: "https://x.com/", createdAt: 0)
        expiring.expiresAt = 1000
        expiring.fallback = "https://x.com/over"
        index.put([limited, expiring])
        // 1000 concurrent clicks: exactly 100 redirect.
        let redirected = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<1000 {
                group.addTask {
                    if case .redirect = index.resolve(host: "h", slug: "limited", now: 0) { return 1 }
                    return 0
                }
            }
            return await group.reduce(0, +)
        }
        #expect(redirected == 100)
        #expect(index.link(host: "h", slug: "limited")?.clicks == 100)
        guard case .redirect(let open) = index.resolve(host: "h", slug: "old", now: 999) else {
            Issue.record("expected a redirect before the expiry")
            return
        }
        #expect(open.id.description == idB && open.slug == "old")
        guard case .gone(let gone) = index.resolve(host: "h", slug: "old", now: 1000) else {
            Issue.record("expected gone")
            return
        }
        #expect(gone.fallback == "https://x.com/over" && gone.expired)
        guard case .unknown = index.resolve(host: "h", slug: "nope", now: 0), case .unknown = index.resolve(host: "other", slug: "limited", now: 0)
        else {
            Issue.record("expected unknown")
            return
        }
        #expect(index.list(host: "h", after: nil, limit: 10).map(\.0.slug) == ["limited", "old"])
        #expect(index.list(host: "h", after: "limited", limit: 10).map(\.0.slug) == ["old"])
        let unsaved = index.takeUnsavedClicks()
        #expect(Set(unsaved.map(\.id)) == [idA, idB] && index.takeUnsavedClicks().isEmpty)
        index.remove(host: "h", slug: "old")
        #expect(index.count == 1 && index.link(id: idB) == nil && index.link(id: idA)?.clicks == 100)
        #expect(LinkID("not-an-id") == nil && LinkID(idA)?.description == idA)
        #expect(index.list(host: "h", after: nil, limit: 10).map(\.0.slug) == ["limited"])
        #expect(index.list(host: "h", after: "limited", limit: 10).isEmpty)
    }
}

@Suite struct JournalTests {
    func folder() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("links-\(UUID().uuidString)").path
        return path
    }

    @Test func linksSurviveAReopenWithTheirClicksAndATornTailIsCut() throws {
        let directory = folder()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let store = try JournalLinkStore(directory: directory, logger: Logger(label: "test"))
            _ = try store.load(into: LinkIndex())
            var link = Link(id: "00000000-0000-4000-8000-000000000001", host: "h", slug: "s", destination: "https://x.com/", createdAt: 5)
            link.maxClicks = 3
            link.tags = ["spring"]
            link.addQuery = ["utm_source": "qr"]
            try store.put(link)
            try store.put(Link(id: "00000000-0000-4000-8000-000000000002", host: "h", slug: "t", destination: "https://y.com/", createdAt: 6))
            try store.saveClicks([("00000000-0000-4000-8000-000000000001", 2)])
            try store.delete(Link(id: "00000000-0000-4000-8000-000000000002", host: "h", slug: "t", destination: "https://y.com/", createdAt: 6))
            // A rename: the same id under a new slug.
            link.slug = "s2"
            try store.put(link)
        }
        // A torn record at the end (a crash in the middle of a write).
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: directory + "/links.journal"))
        handle.seekToEndOfFile()
        handle.write(Data([40, 0, 0, 0, 1, 2, 3]))
        try handle.close()
        let reopened = try JournalLinkStore(directory: directory, logger: Logger(label: "test"))
        let index = LinkIndex()
        #expect(try reopened.load(into: index) == 1)
        withExtendedLifetime(reopened) {}
        let (link, clicks) = try #require(index.link(host: "h", slug: "s2"))
        #expect(index.count == 1 && link.maxClicks == 3 && link.tags == ["spring"])
        #expect(link.addQuery == ["utm_source": "qr"] && link.createdAt == 5)
        #expect(clicks == 2)
        #expect(throws: JournalLinkStore.StoreError.self) { _ = try JournalLinkStore(directory: directory, logger: Logger(label: "test")) }
    }
}

/// A click is the request's event as a `link_click`, unique the first time a visitor follows a link within the window.
@Suite struct LinkClickEventTests {
    static func event(visitor: String, at milliseconds: Int64) -> TrackingEvent {
        var event = TrackingEvent(
            id: EventID(high: 1, low: UInt64(milliseconds)), timeMilliseconds: milliseconds, site: "example.com",
            host: "go.example.com", kind: .request, method: "GET", scheme: "https", target: "/spring", status: 302,
            bytesIn: 0, bytesOut: 0, durationMicroseconds: 1, httpVersion: "HTTP/1.1", clientAddress: "203.0.113.7")
        event.visitorID = visitor
        return event
    }

    @Test func aClickIsUniqueOnceThenRepeatedWithinTheWindow() {
        let recent = RecentClicks(capacity: 1024, windowSeconds: 3600)
        let click = LinkClick(id: LinkID(high: 7, low: 9), slug: "spring", properties: #"{"link_id":"x"}"#, recent: recent)
        var first = Self.event(visitor: "v1", at: 1_795_564_000_000)
        click.prepare(&first)
        #expect(first.kind == .linkClick && first.eventName == "spring" && first.properties == #"{"link_id":"x"}"#)
        click.classify(&first)
        var again = Self.event(visitor: "v1", at: 1_795_564_060_000)
        click.classify(&again)
        var other = Self.event(visitor: "v2", at: 1_795_564_060_000)
        click.classify(&other)
        var later = Self.event(visitor: "v1", at: 1_795_564_000_000 + 7_200_000)
        click.classify(&later)
        #expect([first.eventType, again.eventType, other.eventType, later.eventType] == ["unique", "repeat", "unique", "unique"])
        var machine = Self.event(visitor: "v1", at: 1_795_564_070_000)
        machine.botReason = "agent"
        click.classify(&machine)
        #expect(machine.eventType.isEmpty, "machines are flagged as bots, not counted as unique or repeat")
    }
}

@Suite struct LegacyShortLinkRedactionTests {
    @Test func thePasswordSegmentIsMaskedUnderEitherPrefixAndNothingElseIsTouched() {
        #expect(LegacyShortLinkAPI.redactedTarget("/tr/v1/rpi/redirect/u1/secret") == "/tr/v1/rpi/redirect/u1/***")
        #expect(LegacyShortLinkAPI.redactedTarget("/rpi/v1/redirects/u1/secret/example.com") == "/rpi/v1/redirects/u1/***/example.com")
        for target in ["", "/", "/t", "/r", "/tr/v1/rpi/redirect/u1", "/index.html", "/track?x=1", "/rpi/v2/redirect/u/p", "x/tr/v1/rpi/a/b/c"] {
            #expect(LegacyShortLinkAPI.redactedTarget(target) == nil, "\(target)")
        }
    }
}
