import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import Tracking

@Suite struct APIFieldsTests {
    @Test func pathTuplesQueryAndBodyMergeInTheTrackersOrder() throws {
        var fields = APIFields()
        try fields.addPathTuples("/vid/V1/ROCK/ON/lone")
        try fields.addQuery("utm_source=news%20letter&page=2&x=a+b")
        var body = ByteBuffer(string: #"{"page":3,"rel":1,"ok":true,"pi":3.25,"big":1e3,"uname":null,"params":{"page":"9","extra":"E"}}"#)
        try fields.addJSONBody(body)
        #expect(fields.text("vid") == "V1", "values keep their case")
        #expect(fields.text("rock") == "ON" && fields["lone"] == .text(""))
        #expect(fields.text("utm_source") == "news letter" && fields.text("x") == "a b")
        #expect(fields["page"] == .number("3"), "the body wins over the query; params do not override")
        #expect(fields.text("rel") == "1" && fields.text("ok") == "true" && fields.text("pi") == "3.25")
        #expect(fields.text("big") == "1000")
        #expect(fields["uname"] == nil, "null is no value")
        #expect(fields.text("extra") == "E")
        body = ByteBuffer(string: "[1,2]")
        #expect(throws: APIFields.Refusal.self) { try fields.addJSONBody(body) }
        #expect(throws: APIFields.Refusal.self) { try fields.addJSONBody(ByteBuffer(string: "{oops")) }
    }

    @Test func limitsAreEnforcedWithNamedFields() throws {
        var limits = APIFields.Limits()
        limits.maxFields = 2
        limits.maxValueBytes = 8
        var fields = APIFields(limits: limits)
        try fields.set("a", .text("1"))
        try fields.set("b", .text("2"))
        try fields.set("a", .text("3"))  // replacing is not adding
        #expect(throws: APIFields.Refusal(description: "more than 2 fields")) { try fields.set("c", .text("4")) }
        // Too long: cut at a character boundary (é is two bytes: it is not split) and named, not refused.
        try fields.set("A", .text("1234567é9"))
        #expect(fields.text("a") == "1234567")
        try fields.set("b", .json("{\"long\":true}"))
        #expect(fields["b"] == .text("{\"long\":"))
        #expect(fields.truncated == ["a", "b"])
        #expect(APIFields.percentDecode("%41%zz%4", plusIsSpace: false) == "A%zz%4")
    }
}

/// Serialized: the tests share one `EmbeddedEventLoop`, which is not thread-safe (promises made on it from tests
/// running in parallel race).
@Suite(.serialized) struct TrackingAPIUnitTests {
    static let loop = EmbeddedEventLoop()

    func api(_ configure: (inout TrackingAPIConfiguration) -> Void = { _ in }) -> TrackingAPI {
        var configuration = TrackingAPIConfiguration()
        configuration.enabled = true
        configure(&configuration)
        return TrackingAPI(configuration: configuration, enrichment: nil, consentHistory: nil)
    }

    func request(_ method: HTTPMethod, _ target: String, body: String? = nil, origin: String? = nil) -> APIRequest {
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        return APIRequest(
            method: method, path: parts[0], query: parts.count > 1 ? parts[1] : "", body: body.map { ByteBuffer(string: $0) },
            cookie: nil, origin: origin, clientAddress: "203.0.113.7", siteHosts: ["example.com"], isTLS: true,
            eventLoop: Self.loop)
    }

    func respond(_ api: TrackingAPI, _ request: APIRequest) -> (APIResponse, [TrackingEvent]) {
        var generator = EventIDGenerator()
        guard case .respond(let response, let events) = api.handle(request, now: 1_795_600_000_000, makeID: {
            generator.next(unixMilliseconds: 1_795_600_000_000)
        }) else {
            Issue.record("expected an immediate answer")
            return (APIResponse(status: .internalServerError), [])
        }
        return (response, events)
    }

    @Test func pathsOfBothGenerationsRoute() {
        #expect(TrackingAPI.route("/tr/v1/tr/vid/x")! == (.track, "/vid/x"))
        #expect(TrackingAPI.route("/tr/v1/vid/x")! == (.track, "vid/x"), "legacy tuples right after /tr/v1/")
        #expect(TrackingAPI.route("/tr/v1/")! == (.track, ""))
        #expect(TrackingAPI.route("/tr/v1/str/")!.0 == .serverTrack && TrackingAPI.route("/str/v1/")!.0 == .serverTrack)
        #expect(TrackingAPI.route("/tr/v1/img/a/b")!.0 == .pixel && TrackingAPI.route("/img/v1/")!.0 == .pixel)
        #expect(TrackingAPI.route("/tr/v1/xrdr/")!.0 == .redirect && TrackingAPI.route("/rdr/v1/")!.0 == .redirect)
        #expect(TrackingAPI.route("/tr/v1/ltv/")!.0 == .ltv && TrackingAPI.route("/tlv/v1/")!.0 == .ltv)
        #expect(TrackingAPI.route("/tr/v1/ppi/agree")!.0 == .consent && TrackingAPI.route("/ppi/v1/agree")!.0 == .consent)
        #expect(TrackingAPI.route("/tr/v1/ppi/geoip")!.0 == .geoIP)
        #expect(TrackingAPI.route("/tr/v1/rpi/redirects/u/p/h")!.0 == .unsupported("rpi"))
        #expect(TrackingAPI.route("/other") == nil)
    }

    @Test func redirectsGoOnlyWhereAllowed() {
        let api = api {
            $0.redirectHosts = ["partner.com", "*.example.org"]
            $0.redirectKey = Array("0123456789abcdef".utf8)
        }
        #expect(api.allowsRedirect(to: "https://example.com/x", signature: nil, siteHosts: ["example.com"]))
        #expect(api.allowsRedirect(to: "https://www.example.com/x", signature: nil, siteHosts: ["example.com"]))
        #expect(api.allowsRedirect(to: "/relative", signature: nil, siteHosts: []))
        #expect(api.allowsRedirect(to: "https://PARTNER.com", signature: nil, siteHosts: []))
        #expect(api.allowsRedirect(to: "https://a.b.example.org/", signature: nil, siteHosts: []))
        #expect(!api.allowsRedirect(to: "https://example.org.evil.com/", signature: nil, siteHosts: []))
        #expect(!api.allowsRedirect(to: "//evil.com/", signature: nil, siteHosts: []))
        #expect(!api.allowsRedirect(to: "javascript:alert(1)", signature: nil, siteHosts: []))
        #expect(!api.allowsRedirect(to: "https://evil.com\\@example.com/", signature: nil, siteHosts: ["example.com"]))
        #expect(!api.allowsRedirect(to: "https://user@evil.com/", signature: nil, siteHosts: ["user"]))
        let target = "https://anywhere.net/p?q=1"
        let signature = TrackingAPI.signature(for: target, key: Array("0123456789abcdef".utf8))
        #expect(signature.count == 64)
        #expect(api.allowsRedirect(to: target, signature: signature, siteHosts: []))
        #expect(api.allowsRedirect(to: target, signature: signature.uppercased(), siteHosts: []))
        #expect(!api.allowsRedirect(to: target + "x", signature: signature, siteHosts: []))
    }

    @Test func corsNeverPairsAWildcardWithCredentials() {
        let own = api()
        let allowed = own.corsHeaders(request(.OPTIONS, "/tr/v1/tr/", origin: "https://example.com"))
        #expect(allowed.first(name: "access-control-allow-origin") == "https://example.com")
        #expect(allowed.first(name: "access-control-allow-credentials") == "true")
        #expect(own.corsHeaders(request(.OPTIONS, "/tr/v1/tr/", origin: "https://evil.com")).first(name: "access-control-allow-origin") == nil)
        let open = api { $0.corsOrigins = ["*"] }
        let any = open.corsHeaders(request(.GET, "/tr/v1/tr/", origin: "https://evil.com"))
        #expect(any.first(name: "access-control-allow-origin") == "*" && any.first(name: "access-control-allow-credentials") == nil)
        let (preflight, events) = respond(own, request(.OPTIONS, "/tr/v1/tr/", origin: "https://example.com"))
        #expect(preflight.status == .noContent && events.isEmpty)
        #expect(preflight.headers.first(name: "access-control-allow-methods") == "GET, POST, OPTIONS")
    }

    @Test func eventsCarryTheirFieldsAndPersonalDataStaysOut() throws {
        let api = api()
        let (response, events) = respond(api, request(.POST, "/tr/v1/tr/", body: #"{"vid":"v-1","sid":"s-1","uid":"u-1","ename":"signup","etyp":"conversion","url":"https://example.com/pricing?plan=pro#top","last":"https://google.com/","email":"a@b.c","gclid":"G","utm_source":"ads","cflags":"7","w":1280}"#))
        #expect(response.status == .ok && response.headers.first(name: "cache-control") == "no-store, max-age=0")
        let event = try #require(events.first)
        #expect(event.kind == .track && event.visitorID == "v-1" && event.sessionID == "s-1" && event.userID == "u-1")
        #expect(event.eventName == "signup" && event.eventType == "conversion")
        #expect(event.target == "/pricing?plan=pro" && event.host == "example.com" && event.referrer == "https://google.com/")
        #expect(event.clickID == "gclid=G" && event.utmSource == "ads" && event.consentFlags == 7)
        #expect(event.properties == #"{"w":"1280"}"#)
        let (server, serverEvents) = respond(api, request(.POST, "/tr/v1/str/", body: #"{"vid":"v-1"}"#))
        #expect(String(buffer: server.body) == "\"\(serverEvents[0].id)\"")
        let (pixel, _) = respond(api, request(.GET, "/tr/v1/img/"))
        #expect(Array(pixel.body.readableBytesView) == TrackingAPI.transparentGIF && TrackingAPI.transparentGIF.count == 43)
        let (headPixel, _) = respond(api, request(.HEAD, "/tr/v1/img/"))
        #expect(headPixel.body.readableBytes == 0 && headPixel.headers["content-length"] == ["43"])
        let (_, payments) = respond(api, request(.POST, "/tr/v1/ltv/", body: #"{"uid":"u","payments":[{"amt":1.5,"currency":"eur"},{"revenue":"2"}]}"#))
        #expect(payments.map(\.revenue) == [1.5, 2] && payments.map(\.currency) == ["EUR", "USD"])
        let (missing, none) = respond(api, request(.POST, "/tr/v1/ltv/", body: #"{"uid":"u"}"#))
        #expect(missing.status == .badRequest && none.isEmpty)
        let (consent, agreed) = respond(api, request(.POST, "/tr/v1/ppi/agree", body: #"{"vid":"v-1","cflags":1024}"#))
        #expect(consent.status == .ok && agreed.first?.kind == .consent && agreed.first?.consentFlags == 1024)
        let (noVid, _) = respond(api, request(.POST, "/tr/v1/ppi/agree", body: #"{"cflags":1}"#))
        #expect(noVid.status == .badRequest)
    }

    @Test func moneyLandsOnEveryKindAndUnknownCurrenciesAreRefused() throws {
        let api = api()
        let (_, tracked) = respond(api, request(.POST, "/tr/v1/tr/", body: #"{"ename":"purchase","revenue":"19.90","currency":"eur"}"#))
        #expect(tracked.first?.revenue == 19.9 && tracked.first?.currency == "EUR")
        let (_, server) = respond(api, request(.POST, "/tr/v1/str/", body: #"{"vid":"v-1","amt":5}"#))
        #expect(server.first?.revenue == 5 && server.first?.currency == "USD")
        let (_, query) = respond(api, request(.GET, "/tr/v1/tr/?amount=3.5&currency=JPY"))
        #expect(query.first?.revenue == 3.5 && query.first?.currency == "JPY")
        let (unknown, none) = respond(api, request(.POST, "/tr/v1/tr/", body: #"{"revenue":1,"currency":"XYZ"}"#))
        #expect(unknown.status == .badRequest && none.isEmpty)
        #expect(String(buffer: unknown.body).contains(#"field "currency": "XYZ" is not an ISO 4217 currency code"#))
        let (notANumber, _) = respond(api, request(.POST, "/tr/v1/str/", body: #"{"revenue":"a lot"}"#))
        #expect(notANumber.status == .badRequest && String(buffer: notANumber.body).contains(#"field "revenue""#))
        let (payment, _) = respond(api, request(.POST, "/tr/v1/ltv/", body: #"{"payments":[{"amt":1,"currency":"usd"},{"amt":2,"currency":"DOGE"}]}"#))
        #expect(payment.status == .badRequest, "one bad payment refuses the call: nothing half-recorded")
        let (noMoney, plain) = respond(api, request(.POST, "/tr/v1/tr/", body: #"{"ename":"signup"}"#))
        #expect(noMoney.status == .ok && plain.first?.revenue == 0 && plain.first?.currency == "")
    }

    @Test func completedEventsKeepTheRequestsFieldsAndTheAPIs() {
        var api = TrackingAPI.event(kind: .track, fields: APIFields(), id: EventID(high: 1, low: 2), now: 5)
        api.eventName = "e"
        api.target = "/page"
        let request = TrackingEvent(
            id: EventID(high: 9, low: 9), timeMilliseconds: 4, site: "s", host: "h", kind: .request, method: "POST",
            scheme: "https", target: "/tr/v1/tr/", status: 200, bytesIn: 10, bytesOut: 0, durationMicroseconds: 3,
            referrer: "https://h/page", userAgent: "UA", httpVersion: "HTTP/2.0", clientAddress: "203.0.113.7")
        let completed = api.completed(byRequest: request)
        #expect(completed.id == EventID(high: 1, low: 2) && completed.kind == .track && completed.eventName == "e")
        #expect(completed.target == "/page" && completed.referrer == "", "the page itself is no referrer")
        #expect(completed.method == "POST" && completed.userAgent == "UA" && completed.site == "s" && completed.status == 200)
    }
}
