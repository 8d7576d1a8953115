import Compression
import NIOHTTP1
import Testing

@testable import Static

@Suite struct ByteRangeTests {
    @Test func ranges() {
        #expect(ByteRange.evaluate(nil, size: 100) == .full)
        #expect(ByteRange.evaluate("bytes=0-9", size: 100) == .partial(0...9))
        #expect(ByteRange.evaluate("bytes=90-", size: 100) == .partial(90...99))
        #expect(ByteRange.evaluate("bytes=-10", size: 100) == .partial(90...99))
        #expect(ByteRange.evaluate("bytes=-500", size: 100) == .partial(0...99))
        #expect(ByteRange.evaluate("bytes=50-500", size: 100) == .partial(50...99))
        #expect(ByteRange.evaluate("bytes=100-", size: 100) == .unsatisfiable)
        #expect(ByteRange.evaluate("bytes=-0", size: 100) == .unsatisfiable)
        #expect(ByteRange.evaluate("bytes=0-1,5-6", size: 100) == .full)
        #expect(ByteRange.evaluate("items=0-1", size: 100) == .full)
        #expect(ByteRange.evaluate("bytes=9-1", size: 100) == .full)
        #expect(ByteRange.evaluate("bytes=a-b", size: 100) == .full)
    }
}

@Suite struct PreconditionTests {
    let validators = Validators(etag: "\"abc-10\"", lastModified: 1_700_000_000)

    func evaluate(_ headers: HTTPHeaders, method: HTTPMethod = .GET) -> PreconditionOutcome {
        Preconditions.evaluate(
            method: method, headers: RequestHeaderSummary(headers), validators: validators,
            variantTags: ["\"abc-10-br\""])
    }

    @Test func ifNoneMatch() {
        #expect(evaluate(["If-None-Match": "\"abc-10\""]) == .notModified)
        #expect(evaluate(["If-None-Match": "W/\"abc-10\""]) == .notModified)
        #expect(evaluate(["If-None-Match": "\"x\", \"abc-10-br\""]) == .notModified)
        #expect(evaluate(["If-None-Match": "*"]) == .notModified)
        #expect(evaluate(["If-None-Match": "\"other\""]) == .proceed)
        #expect(evaluate(["If-None-Match": "\"abc-10\""], method: .POST) == .preconditionFailed)
    }

    @Test func ifModifiedSinceIsIgnoredWhenIfNoneMatchIsPresent() {
        let later = HTTPDate.format(epochSeconds: 1_700_000_100)
        #expect(evaluate(["If-Modified-Since": later]) == .notModified)
        let earlier = HTTPDate.format(epochSeconds: 1_600_000_000)
        #expect(evaluate(["If-Modified-Since": earlier]) == .proceed)
        #expect(evaluate(["If-Modified-Since": later, "If-None-Match": "\"other\""]) == .proceed)
    }

    @Test func ifMatchAndIfUnmodifiedSince() {
        #expect(evaluate(["If-Match": "\"abc-10\""]) == .proceed)
        #expect(evaluate(["If-Match": "W/\"abc-10\""]) == .preconditionFailed)
        #expect(evaluate(["If-Match": "\"nope\""]) == .preconditionFailed)
        let earlier = HTTPDate.format(epochSeconds: 1_600_000_000)
        #expect(evaluate(["If-Unmodified-Since": earlier]) == .preconditionFailed)
    }

    @Test func ifRange() {
        #expect(Preconditions.ifRangeAllowsPartial(headers: RequestHeaderSummary(), validators: validators))
        #expect(Preconditions.ifRangeAllowsPartial(headers: RequestHeaderSummary(["If-Range": "\"abc-10\""]), validators: validators))
        #expect(!Preconditions.ifRangeAllowsPartial(headers: RequestHeaderSummary(["If-Range": "\"old\""]), validators: validators))
        #expect(!Preconditions.ifRangeAllowsPartial(headers: RequestHeaderSummary(["If-Range": "W/\"abc-10\""]), validators: validators))
        let date = HTTPDate.format(epochSeconds: validators.lastModified)
        #expect(Preconditions.ifRangeAllowsPartial(headers: RequestHeaderSummary(["If-Range": date]), validators: validators))
    }

    @Test func httpDateRoundTrip() {
        #expect(HTTPDate.format(epochSeconds: 784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == 784_111_777)
        #expect(HTTPDate.parse("yesterday") == nil)
    }
}

@Suite struct AcceptEncodingTests {
    let both: [ContentCoding] = [.brotli, .gzip]

    @Test func choosesByPreferenceAndQuality() {
        #expect(AcceptEncoding.choose(nil, available: both) == nil)
        #expect(AcceptEncoding.choose("gzip, deflate, br", available: both) == .brotli)
        #expect(AcceptEncoding.choose("gzip", available: both) == .gzip)
        #expect(AcceptEncoding.choose("br;q=0, gzip", available: both) == .gzip)
        #expect(AcceptEncoding.choose("*", available: both) == .brotli)
        #expect(AcceptEncoding.choose("*;q=0", available: both) == nil)
        #expect(AcceptEncoding.choose("identity", available: both) == nil)
        #expect(AcceptEncoding.choose("br", available: [.gzip]) == nil)
    }
}

@Suite struct MediaTypeTests {
    @Test func lookups() {
        #expect(MediaTypes.type(forPath: "/x/index.html") == "text/html; charset=utf-8")
        #expect(MediaTypes.type(forPath: "/x/APP.JS") == "text/javascript; charset=utf-8")
        #expect(MediaTypes.type(forPath: "/x.d/noext") == "application/octet-stream")
        #expect(MediaTypes.isCompressible("image/svg+xml"))
        #expect(!MediaTypes.isCompressible("image/png"))
    }
}
