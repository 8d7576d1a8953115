import Config
import Foundation
import NIOCore
import NIOHTTP1
import Tracking

/// `links.legacy_api`: the Go tracker's short-link API in its old shape, for scripts that still call it. Opt-in,
/// with accounts whose passwords come from the environment.
///
/// ```yaml
/// links:
///   legacy_api:
///     accounts: [{ uid: 14fb0860-b4bf-11e9-8971-7b80435315ac, password_env: TRACKER_RPI_PASSWORD }]
/// ```
public struct LegacyShortLinkConfiguration: Sendable, Equatable {
    public struct Account: Sendable, Equatable {
        public var uid: String
        let password: [UInt8]
    }

    public var accounts: [Account] = []

    public init(from node: ConfigNode) throws {
        let map = try node.mapping(keys: ["accounts"])
        let list = try map.required("accounts", expected: "a list of { uid, password_env }").list()
        guard !list.isEmpty else { throw node.error("expected at least one account") }
        for item in list {
            let account = try item.mapping(keys: ["uid", "password_env"])
            let uid = try account.required("uid", expected: "the account's user id").nonEmptyString()
            let variable = try account.required("password_env", expected: "the environment variable holding its password").nonEmptyString()
            guard let password = item.environmentValue(variable), password.utf8.count >= 8 else {
                throw item.error("expected the environment variable \(variable) to hold the account's password (8 characters or more)")
            }
            accounts.append(Account(uid: uid, password: Array(password.utf8)))
        }
    }
}

/// The tracker's `rpi` calls on the links Vantage keeps (the same store, checks and answers as the admin API's
/// `/links`): `POST .../rpi/redirect/<uid>/<password>[/<host>]` with `{urlfrom, slugfrom?, urlto, oid?, org?}`
/// creates or replaces the link at `urlfrom`; `GET .../rpi/redirects/<uid>/<password>/<host>` lists that host's
/// links as `{"results":[...]}` rows of the tracker's shape. HTTPS only (the credentials are in the path), compared
/// in constant time; the password never reaches the access log or the stored event (``redactedTarget(_:)``).
public struct LegacyShortLinkAPI: Sendable {
    public let configuration: LegacyShortLinkConfiguration
    let admin: LinkAdminAPI

    public init(configuration: LegacyShortLinkConfiguration, admin: LinkAdminAPI) {
        self.configuration = configuration
        self.admin = admin
    }

    /// The prefixes the API answers under: the current and the legacy paths.
    public static let prefixes = ["/tr/v1/rpi/", "/rpi/v1/"]

    /// The largest request body taken (a link is a few hundred bytes; the tracking API's default limit).
    public static let maxBodyBytes = 64 << 10

    /// The path with the password segment masked, for the access log and the request's event, whatever answered
    /// the request (a host without a site too); nil for any other target.
    @inlinable
    public static func redactedTarget(_ target: String) -> String? {
        // Every request's target passes here (twice: its event and its log line), so the test that sets almost all
        // of them apart is inlined where it is called: the second byte (`/t…` or `/r…` only).
        let mayMatch = target.utf8.withContiguousStorageIfAvailable { bytes in
            bytes.count > 2 && bytes[0] == UInt8(ascii: "/") && (bytes[1] == UInt8(ascii: "t") || bytes[1] == UInt8(ascii: "r"))
        }
        guard mayMatch ?? true else { return nil }
        return maskedPassword(target)
    }

    /// ``redactedTarget(_:)`` for a target that may be under one of the ``prefixes``.
    @usableFromInline
    static func maskedPassword(_ target: String) -> String? {
        for prefix in prefixes where target.utf8.starts(with: prefix.utf8) {
            var segments = target.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard segments.count >= 3 else { return nil }
            segments[2] = "***"
            return prefix + segments.joined(separator: "/")
        }
        return nil
    }

    public func handle(_ request: APIRequest, now: Int64) -> APIOutcome {
        guard let prefix = Self.prefixes.first(where: { request.path.hasPrefix($0) }) else {
            return .respond(Self.text(.notFound, "not a short-link API path"), events: [])
        }
        if request.method == .OPTIONS { return .respond(Self.text(.noContent, ""), events: []) }
        let segments = request.path.dropFirst(prefix.count).split(separator: "/").map {
            APIFields.percentDecode($0, plusIsSpace: false)
        }
        guard request.isTLS else {
            return .respond(Self.text(.forbidden, "the short-link API carries credentials: call it over HTTPS"), events: [])
        }
        guard segments.count >= 3, ["redirect", "redirects"].contains(segments[0]) else {
            return .respond(Self.text(.notFound, "expected redirect/<uid>/<password> or redirects/<uid>/<password>/<host>"), events: [])
        }
        guard authenticated(uid: segments[1], password: segments[2]) else {
            return .respond(Self.text(.unauthorized, "wrong user or password"), events: [])
        }
        let promise = request.eventLoop.makePromise(of: APIResponse.self)
        switch (segments[0], request.method) {
        case ("redirect", .POST):
            let body = request.body.map { Data($0.readableBytesView) } ?? Data()
            promise.completeWithTask { await create(body) }
        case ("redirects", .GET), ("redirects", .HEAD):
            guard segments.count >= 4 else {
                return .respond(Self.text(.notFound, "expected redirects/<uid>/<password>/<host>"), events: [])
            }
            promise.completeWithTask { await list(host: segments[3]) }
        default:
            return .respond(Self.text(.methodNotAllowed, "expected POST redirect/... or GET redirects/..."), events: [])
        }
        return .deferred(promise.futureResult)
    }

    private func authenticated(uid: String, password: String) -> Bool {
        var matched = false
        for account in configuration.accounts {
            // Every account is compared, whole, so the time says nothing about which part was wrong.
            let uidMatches = Signatures.equal(Array(uid.utf8), Array(account.uid.utf8))
            let passwordMatches = Signatures.equal(Array(password.utf8), account.password)
            matched = matched || (uidMatches && passwordMatches)
        }
        return matched
    }

    /// `{urlfrom, slugfrom?, urlto, oid?, org?}`: the link at `urlfrom`'s host and path (or `slugfrom`, whose leading
    /// slash is the tracker's), to `urlto`; an existing link there gets the new destination (the tracker replaced it).
    private func create(_ body: Data) async -> APIResponse {
        guard let object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] else {
            return Self.text(.badRequest, "Bad Request: expected a JSON object")
        }
        guard let from = object["urlfrom"] as? String, let to = object["urlto"] as? String, !to.isEmpty else {
            return Self.text(.badRequest, "Bad URL (null): expected urlfrom and urlto")
        }
        var withScheme = from
        if !withScheme.contains("://") { withScheme = "https://" + withScheme }
        guard let url = URLComponents(string: withScheme), let host = url.host, !host.isEmpty else {
            return Self.text(.badRequest, "Bad URL (from): expected urlfrom as https://host/slug")
        }
        var slug = (object["slugfrom"] as? String) ?? url.path
        while slug.hasPrefix("/") { slug.removeFirst() }
        while slug.hasSuffix("/") { slug.removeLast() }
        guard !slug.isEmpty else { return Self.text(.badRequest, "Bad URL (from path): expected a slug after the host") }
        let normalizedHost = LinkRules.normalizeHost(host)
        var tags: [String] = []
        for key in ["oid", "org"] {
            if let value = object[key] as? String, !value.isEmpty { tags.append("\(key):\(value)") }
        }
        var fields: [String: Any] = ["host": normalizedHost, "slug": slug, "destination": to]
        if !tags.isEmpty { fields["tags"] = tags }
        let existing = admin.links.index.link(host: normalizedHost, slug: slug)
        let request: LinkAdminAPI.Request
        if let (existing, _) = existing {
            fields["host"] = nil
            fields["slug"] = nil
            request = .init(method: "PATCH", segments: [existing.id], parameters: [:], body: Self.json(fields))
        } else {
            request = .init(method: "POST", segments: [], parameters: [:], body: Self.json(fields))
        }
        let answer = await admin.answer(request)
        guard (200..<300).contains(answer.status) else {
            let reason = ((try? JSONSerialization.jsonObject(with: Data(answer.json.utf8))) as? [String: Any])?["error"] as? String
            return Self.text(HTTPResponseStatus(statusCode: answer.status), "Bad URL: \(reason ?? answer.json)")
        }
        return Self.text(.ok, "")
    }

    /// The host's links as the tracker's `redirect_history` rows.
    private func list(host: String) async -> APIResponse {
        let normalizedHost = LinkRules.normalizeHost(host)
        var rows: [[String: Any]] = []
        var cursor: LinkCursor?
        repeat {
            let page = admin.links.index.list(LinkFilter(host: normalizedHost), after: cursor, limit: 1000)
            for (link, _) in page {
                let destination = URLComponents(string: link.destination)
                var row: [String: Any] = [
                    "urlfrom": "\(link.host)/\(link.slug)", "hostfrom": link.host, "slugfrom": "/\(link.slug)",
                    "urlto": link.destination, "hostto": destination?.host ?? "", "pathto": destination?.path ?? "",
                    "searchto": destination?.query.map { "?" + $0 } ?? "",
                    "updated_at": ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(link.updatedAt) / 1000)),
                ]
                for tag in link.tags {
                    for key in ["oid", "org"] where tag.hasPrefix(key + ":") { row[key] = String(tag.dropFirst(key.count + 1)) }
                }
                rows.append(row)
            }
            cursor = page.count == 1000 ? page.last.map { LinkCursor(host: $0.0.host, slug: $0.0.slug) } : nil
        } while cursor != nil && rows.count < 100_000
        var response = APIResponse(status: .ok, body: ByteBuffer(bytes: Self.json(["results": rows])))
        response.headers.add(name: "Content-Type", value: "application/json")
        response.headers.add(name: "Cache-Control", value: "no-store")
        response.headers.add(name: "Content-Length", value: String(response.body.readableBytes))
        return response
    }

    private static func json(_ object: Any) -> Data {
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    }

    static func text(_ status: HTTPResponseStatus, _ text: String) -> APIResponse {
        var response = APIResponse(status: status, body: ByteBuffer(string: text.isEmpty ? "" : text + "\n"))
        if !text.isEmpty { response.headers.add(name: "Content-Type", value: "text/plain; charset=utf-8") }
        response.headers.add(name: "Cache-Control", value: "no-store")
        response.headers.add(name: "Content-Length", value: String(response.body.readableBytes))
        return response
    }
}
