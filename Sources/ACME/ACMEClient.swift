import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL
import Synchronization

/// An RFC 8555 client for one ACME directory: the directory, a pool of replay nonces (refilled from every answer,
/// `badNonce` retried with a fresh one), signed POSTs, and the resources of an issuance.
///
/// Control plane only: it runs on Swift concurrency and AsyncHTTPClient, never on the gateway's event loops.
public final class ACMEClient: Sendable {
    public let directoryURL: String
    private let http: HTTPClient
    private let logger: Logger
    private let state = Mutex<(directory: Directory?, nonces: [String])>((nil, []))
    /// Requests waiting on the CA give up after this.
    static let requestTimeout = TimeAmount.seconds(30)
    /// Nonces kept for later requests; more are dropped (each is good for one request only anyway).
    static let maxPooledNonces = 16

    /// `trustRoots`: PEM certificates to trust for the directory's TLS instead of the system's (a private CA).
    public init(directoryURL: String, trustRoots: [NIOSSLCertificate]? = nil, logger: Logger) {
        self.directoryURL = directoryURL
        self.logger = logger
        var tls = TLSConfiguration.makeClientConfiguration()
        if let trustRoots { tls.trustRoots = .certificates(trustRoots) }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        // A CA that is down refuses connections; the pool retries them until the connect timeout, so keep it short.
        configuration.timeout = .init(connect: .seconds(5), read: Self.requestTimeout)
        configuration.redirectConfiguration = .disallow
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    public func shutdown() async {
        try? await http.shutdown()
    }

    // MARK: - Transport

    struct Response {
        var status: Int
        var headers: HTTPHeaders
        var body: Data

        var location: String? { headers.first(name: "location") }

        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            do {
                return try JSONDecoder().decode(T.self, from: body)
            } catch {
                throw ACMEError.unexpected("the CA sent a \(T.self) that cannot be read: \(String(decoding: body.prefix(300), as: UTF8.self))")
            }
        }
    }

    private func execute(_ url: String, method: HTTPMethod, body: Data? = nil) async throws -> Response {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "User-Agent", value: "vantage-acme/1")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/jose+json")
            request.body = .bytes(ByteBuffer(data: body))
        }
        let response = try await http.execute(request, timeout: Self.requestTimeout)
        var buffer = try await response.body.collect(upTo: 8 << 20)
        let data = buffer.readData(length: buffer.readableBytes) ?? Data()
        if let nonce = response.headers.first(name: "replay-nonce") {
            state.withLock { state in
                if state.nonces.count < Self.maxPooledNonces { state.nonces.append(nonce) }
            }
        }
        return Response(status: Int(response.status.code), headers: response.headers, body: data)
    }

    /// The directory, fetched once.
    public func directory() async throws -> Directory {
        if let directory = state.withLock({ $0.directory }) { return directory }
        let response = try await execute(directoryURL, method: .GET)
        guard response.status == 200 else {
            throw ACMEError.unexpected("the ACME directory \(directoryURL) answered \(response.status)")
        }
        let directory = try response.decode(Directory.self)
        state.withLock { $0.directory = directory }
        return directory
    }

    private func nonce() async throws -> String {
        if let nonce = state.withLock({ $0.nonces.popLast() }) { return nonce }
        let directory = try await directory()
        // `execute` pools the answer's Replay-Nonce.
        let response = try await execute(directory.newNonce, method: .HEAD)
        guard let nonce = state.withLock({ $0.nonces.popLast() }) else {
            throw ACMEError.unexpected("the CA's newNonce answered \(response.status) without a Replay-Nonce")
        }
        return nonce
    }

    /// A signed POST (`payload` nil: POST-as-GET). A `badNonce` refusal is retried with a fresh nonce, as RFC 8555
    /// §6.5 asks; any other problem is thrown.
    func post(_ url: String, payload: Data?, key: AccountKey, keyID: String?) async throws -> Response {
        var attempt = 0
        while true {
            attempt += 1
            let body = try key.sign(payload: payload, url: url, nonce: try await nonce(), keyID: keyID)
            let response = try await execute(url, method: .POST, body: body)
            guard response.status >= 400 else { return response }
            let problem = (try? JSONDecoder().decode(Problem.self, from: response.body))
                ?? Problem(type: nil, detail: String(decoding: response.body.prefix(300), as: UTF8.self), status: response.status)
            if problem.kind == "badNonce" && attempt < 5 {
                logger.debug("ACME badNonce, retrying", metadata: ["url": "\(url)"])
                continue
            }
            throw ACMEError.problem(problem, status: response.status, url: url, retryAfter: Self.retryAfter(response.headers))
        }
    }

    static func retryAfter(_ headers: HTTPHeaders) -> Date? {
        guard let value = headers.first(name: "retry-after") else { return nil }
        if let seconds = Int(value) { return Date().addingTimeInterval(TimeInterval(seconds)) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: value)
    }

    // MARK: - Resources

    /// Creates the account for `key`, or finds the one it already has (the CA answers 200 with its URL): the
    /// account URL, used as `kid` from then on.
    public func account(key: AccountKey, contact: [String], termsAgreed: Bool, binding: ExternalAccountBinding?)
        async throws -> String
    {
        let directory = try await directory()
        var members = ["\"termsOfServiceAgreed\":\(termsAgreed)"]
        if !contact.isEmpty { members.append("\"contact\":[\(contact.map(jsonString).joined(separator: ","))]") }
        if let binding {
            members.append("\"externalAccountBinding\":" + key.externalAccountBinding(
                keyID: binding.keyID, macKey: binding.macKey, url: directory.newAccount))
        } else if directory.meta?.externalAccountRequired == true {
            throw ACMEError.unexpected("the CA requires external account binding: set tls.acme.eab { kid, hmac_key }")
        }
        let response = try await post(directory.newAccount, payload: Data("{\(members.joined(separator: ","))}".utf8), key: key, keyID: nil)
        guard let url = response.location else { throw ACMEError.unexpected("the CA created an account without telling its URL") }
        return url
    }

    /// Orders a certificate for `names`: the order's URL and the order.
    public func newOrder(names: [String], key: AccountKey, account: String) async throws -> (url: String, order: Order) {
        let directory = try await directory()
        let identifiers = names.map { "{\"type\":\"dns\",\"value\":\(jsonString($0))}" }.joined(separator: ",")
        let response = try await post(directory.newOrder, payload: Data("{\"identifiers\":[\(identifiers)]}".utf8), key: key, keyID: account)
        guard let url = response.location else { throw ACMEError.unexpected("the CA created an order without telling its URL") }
        return (url, try response.decode(Order.self))
    }

    public func fetch<T: Decodable>(_ type: T.Type, at url: String, key: AccountKey, account: String) async throws -> (T, retryAfter: Date?) {
        let response = try await post(url, payload: nil, key: key, keyID: account)
        return (try response.decode(T.self), Self.retryAfter(response.headers))
    }

    /// Tells the CA a challenge is ready to be checked.
    public func respond(to challenge: Challenge, key: AccountKey, account: String) async throws {
        _ = try await post(challenge.url, payload: Data("{}".utf8), key: key, keyID: account)
    }

    /// Sends the CSR (DER) of a ready order.
    public func finalize(_ order: Order, csr: [UInt8], key: AccountKey, account: String) async throws -> Order {
        let response = try await post(order.finalize, payload: Data("{\"csr\":\"\(Base64URL.encode(csr))\"}".utf8), key: key, keyID: account)
        return try response.decode(Order.self)
    }

    /// The issued chain, leaf first, as PEM.
    public func downloadCertificate(at url: String, key: AccountKey, account: String) async throws -> String {
        let response = try await post(url, payload: nil, key: key, keyID: account)
        let text = String(decoding: response.body, as: UTF8.self)
        guard text.contains("-----BEGIN CERTIFICATE-----") else {
            throw ACMEError.unexpected("the CA's certificate download is not a PEM chain")
        }
        return text
    }

    /// ARI's suggested renewal window for a certificate (`certID` per RFC 9773 §4.1), when the CA offers ARI.
    public func renewalWindow(certificateID: String) async throws -> ClosedRange<Date>? {
        guard let base = try await directory().renewalInfo else { return nil }
        let response = try await execute(base.hasSuffix("/") ? base + certificateID : base + "/" + certificateID, method: .GET)
        guard response.status == 200 else { return nil }
        let info = try response.decode(RenewalInfo.self)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        func date(_ text: String) -> Date? { formatter.date(from: text) ?? plain.date(from: text) }
        guard let start = date(info.suggestedWindow.start), let end = date(info.suggestedWindow.end), start <= end else { return nil }
        return start...end
    }
}

/// External Account Binding credentials from the CA (RFC 8555 §7.3.4).
public struct ExternalAccountBinding: Sendable, Equatable {
    public var keyID: String
    /// The MAC key, decoded from the base64url text CAs hand out.
    public var macKey: Data

    public init(keyID: String, macKey: Data) {
        self.keyID = keyID
        self.macKey = macKey
    }
}
