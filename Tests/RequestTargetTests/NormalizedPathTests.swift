import Testing

@testable import RequestTarget

/// The normalization table: every spelling of a path that must reach the same route, and every path that must be
/// refused. The integration suite (`NormalizationIntegrationTests`) sends the same table through the binary.
struct NormalizedPathTests {
    /// raw → normal form (nil: already normal, left as it is).
    static let equivalents: [(String, String?)] = [
        ("/", nil),
        ("/index.html", nil),
        ("/proxy/admin/secret", nil),
        ("/a/b/", nil),
        ("/.well-known/acme-challenge/x", nil),
        ("/a/...", nil),
        ("/a/b%C3%A9", nil),
        ("/p;x=1/y", nil),
        ("/a:b@c", nil),
        // dot segments
        ("/proxy/x/../admin/secret", "/proxy/admin/secret"),
        ("/proxy/./admin/secret", "/proxy/admin/secret"),
        ("/proxy/admin/.", "/proxy/admin/"),
        ("/proxy/admin/x/..", "/proxy/admin/"),
        ("/proxy/%2e%2e/proxy/admin/secret", "/proxy/admin/secret"),
        ("/proxy/x/%2E%2E/admin/secret", "/proxy/admin/secret"),
        ("/proxy/x/.%2e/admin/secret", "/proxy/admin/secret"),
        ("/.", "/"),
        ("/a/..", "/"),
        // repeated slashes
        ("/proxy//admin/secret", "/proxy/admin/secret"),
        ("//proxy/admin/secret", "/proxy/admin/secret"),
        ("/proxy/admin//", "/proxy/admin/"),
        ("/proxy///admin///secret", "/proxy/admin/secret"),
        // unreserved characters decoded, others kept with upper-case hex
        ("/proxy/%61dmin/secret", "/proxy/admin/secret"),
        ("/proxy/%61%64%6D%69%6E/secret", "/proxy/admin/secret"),
        ("/proxy/ADMIN%2d%5f%7e", "/proxy/ADMIN-_~"),
        ("/a/b%c3%a9", "/a/b%C3%A9"),
        ("/a/%25", nil),
        ("/a/%2561", nil),
        ("/a/%3f", "/a/%3F"),
        // raw bytes a URI may not hold are encoded
        ("/a/é", "/a/%C3%A9"),
        ("/a/{x}", "/a/%7Bx%7D"),
        ("/a/\"q\"", "/a/%22q%22"),
    ]

    /// raw → why it is refused.
    static let refusals: [(String, NormalizedPath.Rejection)] = [
        ("", .notAbsolute),
        ("proxy/admin", .notAbsolute),
        ("/..", .escapesRoot),
        ("/a/../..", .escapesRoot),
        ("/%2e%2e/etc/passwd", .escapesRoot),
        ("/proxy%2Fadmin/secret", .encodedSlash),
        ("/proxy%2fadmin/secret", .encodedSlash),
        ("/proxy%5Cadmin", .encodedSlash),
        ("/proxy\\admin", .backslash),
        ("/a/%00", .nulByte),
        ("/a/%zz", .badPercentEncoding),
        ("/a/%4", .badPercentEncoding),
        ("/a/%", .badPercentEncoding),
        ("/a b", .controlCharacter),
        ("/a\tb", .controlCharacter),
        ("/a\u{7f}", .controlCharacter),
        ("/a#frag", .fragment),
    ]

    @Test(arguments: equivalents) func spellingsOfOnePath(raw: String, normal: String?) throws {
        let result = try NormalizedPath.normalize(Substring(raw)).get()
        #expect(result == normal, "\(raw)")
        // The normal form is a fixed point.
        let again = try NormalizedPath.normalize(Substring(normal ?? raw)).get()
        #expect(again == nil, "\(normal ?? raw) is not stable")
    }

    @Test(arguments: refusals) func refusedPaths(raw: String, rejection: NormalizedPath.Rejection) {
        #expect(throws: rejection) { try NormalizedPath.normalize(Substring(raw)).get() }
    }

    @Test func encodedSlashPolicies() throws {
        #expect(try NormalizedPath.normalize("/proxy%2Fadmin/secret", encodedSlashes: .decode).get() == "/proxy/admin/secret")
        #expect(try NormalizedPath.normalize("/a%5Cb", encodedSlashes: .decode).get() == "/a/b")
        #expect(try NormalizedPath.normalize("/x%2F..%2Fadmin", encodedSlashes: .decode).get() == "/admin")
        #expect(try NormalizedPath.normalize("/repo/a%2Fb/raw", encodedSlashes: .keep).get() == nil)
        #expect(try NormalizedPath.normalize("/repo/a%2fb/raw", encodedSlashes: .keep).get() == "/repo/a%2Fb/raw")
        // Kept escapes are not separators: `..` next to one is an ordinary segment name.
        #expect(try NormalizedPath.normalize("/a/..%2F/b", encodedSlashes: .keep).get() == nil)
        // A raw backslash is refused whatever the policy.
        for policy in EncodedSlashPolicy.allCases {
            #expect(throws: NormalizedPath.Rejection.backslash) {
                try NormalizedPath.normalize("/a\\b", encodedSlashes: policy).get()
            }
        }
    }

    @Test func everyByteIsDecidedWithoutCrashing() {
        // Two-byte paths over the whole byte range: either refused, normal, or normalized to a stable form.
        for first in UInt8.min...UInt8.max {
            for second in [UInt8(ascii: "a"), UInt8(ascii: "%"), UInt8(ascii: "."), UInt8(ascii: "/"), 0xC3] {
                let raw = String(decoding: [UInt8(ascii: "/"), first, second], as: UTF8.self)
                if case .success(let normal?) = NormalizedPath.normalize(Substring(raw)) {
                    #expect((try? NormalizedPath.normalize(Substring(normal)).get()) == .some(nil), "\(raw.utf8.map { $0 })")
                }
            }
        }
    }
}

struct RequestTargetTests {
    @Test func originForm() throws {
        let target = try RequestTarget.parse("/a/b?x=1&y=/z").get()
        #expect(target.authority == nil && target.path == "/a/b" && target.query == "x=1&y=/z")
        #expect(target.originForm(path: "/c") == "/c?x=1&y=/z")
        #expect(try RequestTarget.parse("/a?").get().query == "")
        #expect(try RequestTarget.parse("/a").get().query == nil)
    }

    @Test func absoluteForm() throws {
        let target = try RequestTarget.parse("http://Example.com:8080/p/q?x").get()
        #expect(target.authority == "Example.com:8080" && target.path == "/p/q" && target.query == "x")
        #expect(target.originForm() == "/p/q?x")
        let bare = try RequestTarget.parse("HTTPS://example.com").get()
        #expect(bare.authority == "example.com" && bare.path == "/" && bare.query == nil)
        #expect(try RequestTarget.parse("http://example.com?x=1").get().originForm() == "/?x=1")
        #expect(throws: RequestTarget.Rejection.badAuthority) { try RequestTarget.parse("http://evil@localhost/").get() }
        #expect(throws: RequestTarget.Rejection.notAPath) { try RequestTarget.parse("ftp://example.com/").get() }
        #expect(throws: RequestTarget.Rejection.notAPath) { try RequestTarget.parse("example.com:443").get() }
        #expect(try RequestTarget.parse("*").get().path == "*")
    }

    @Test func hostNames() {
        for good in ["", "localhost", "example.com", "example.com:8080", "a-b.c_d.example", "127.0.0.1:80", "[::1]",
                     "[2001:db8::1]:443", "xn--bcher-kva.example", "EXAMPLE.COM."]
        {
            #expect(HostName.isValidAuthority(good), "\(good)")
        }
        for bad in ["evil@localhost", "local host", "localhost/evil", "localhost\\evil", "host:port", "host:99999",
                    "host:123456", ":80", "[::1", "[::1]x", "[zz::1]", "ex%61mple.com", "a,b", "a;b", "host\r\nx: y",
                    "[]"]
        {
            #expect(!HostName.isValidAuthority(bad), "\(bad)")
        }
    }

    @Test func methodsAreUpperCaseTokens() {
        #expect(RequestMethod.isAcceptable("GET") && RequestMethod.isAcceptable("PROPFIND") && RequestMethod.isAcceptable("M-SEARCH"))
        #expect(!RequestMethod.isAcceptable("get") && !RequestMethod.isAcceptable("Get") && !RequestMethod.isAcceptable("")
            && !RequestMethod.isAcceptable("GET /"))
    }
}
