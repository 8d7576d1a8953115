import Testing

@testable import RequestTarget

@Suite struct RequestPathTests {
    func normalized(_ raw: String) -> Result<RequestPath, RequestPath.Rejection> {
        RequestPath.normalize(Substring(raw))
    }

    @Test func dotSegmentsResolveInsideTheRoot() throws {
        let path = try normalized("/a/./b/../c//d/").get()
        #expect(path.segments == ["a", "c", "d"])
        #expect(path.hasTrailingSlash)
        #expect(try normalized("/").get().segments.isEmpty)
    }

    @Test(arguments: [
        ("/../etc/passwd", RequestPath.Rejection.escapesRoot),
        ("/a/../../etc", .escapesRoot),
        ("/%2e%2e/etc/passwd", .escapesRoot),
        ("/a%2Fb", .encodedSlash),
        ("/a%00b", .nulByte),
        ("/a%zz", .badPercentEncoding),
        ("/a%", .badPercentEncoding),
        ("relative", .notAbsolute),
        ("/%ff", .invalidUTF8),
    ])
    func hostilePathsAreRefused(raw: String, rejection: RequestPath.Rejection) {
        #expect(normalized(raw) == .failure(rejection))
    }

    @Test func percentDecodingAndHiddenSegments() throws {
        let path = try normalized("/docs/hello%20world.txt").get()
        #expect(path.relative == "docs/hello world.txt")
        #expect(try normalized("/.git/config").get().hasHiddenSegment)
        #expect(try !normalized("/.well-known/security.txt").get().hasHiddenSegment)
        #expect(path.encoded(trailingSlash: false) == "/docs/hello%20world.txt")
    }
}
