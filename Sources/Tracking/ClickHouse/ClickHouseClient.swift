import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import PlainErrors
import NIOHTTP1
import Synchronization

/// Talks to ClickHouse's HTTP interface: queries in the body or the URL, rows in the body, basic authentication,
/// and failover across endpoints (a failed call moves the next call to the next endpoint).
public final class ClickHouseClient: Sendable {
    /// A failed call: what ClickHouse said (its `Code: NN ... DB::Exception` text) or why it could not be reached.
    public struct Failure: Error, CustomStringConvertible {
        public var endpoint: String
        /// HTTP status when ClickHouse answered, nil when it could not be reached.
        public var status: Int?
        public var message: String

        public var description: String {
            if let status { return "\(endpoint) answered \(status): \(message)" }
            return "\(endpoint) unreachable: \(message)"
        }
    }

    private let endpoints: [ClickHouseEndpoint]
    private let client: HTTPClient
    private let authorization: String?
    private let timeout: TimeAmount
    private let current = EndpointCursor()

    public init(configuration: ClickHouseConfiguration, group: any EventLoopGroup) {
        endpoints = configuration.endpoints.compactMap(ClickHouseEndpoint.init)
        var clientConfiguration = HTTPClient.Configuration()
        clientConfiguration.timeout = .init(connect: configuration.connectTimeout, read: configuration.timeout)
        // AsyncHTTPClient would keep retrying a refused connection until the connect timeout; the shipper retries
        // on its own schedule (`retry.min`/`max`) instead.
        clientConfiguration.connectionPool.retryConnectionEstablishment = false
        clientConfiguration.decompression = .enabled(limit: .ratio(50))
        client = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: clientConfiguration)
        timeout = configuration.timeout
        if configuration.user != nil || configuration.password != nil {
            let credentials = "\(configuration.user ?? "default"):\(configuration.password ?? "")"
            authorization = "Basic " + Data(credentials.utf8).base64EncodedString()
        } else {
            authorization = nil
        }
    }

    /// The endpoint the next call goes to.
    public var endpoint: ClickHouseEndpoint { endpoints[current.value % endpoints.count] }

    /// Runs a query given in the body; returns the answer text.
    @discardableResult
    public func query(_ sql: String, logger: Logger) async throws -> String {
        let answer = try await post(parameters: [], body: ByteBuffer(string: sql), contentEncoding: nil, logger: logger)
        return String(buffer: answer)
    }

    /// Sends rows to an INSERT given in the URL.
    public func insert(_ sql: String, rows: ByteBuffer, gzip: Bool, logger: Logger) async throws {
        _ = try await post(parameters: [("query", sql)], body: rows, contentEncoding: gzip ? "gzip" : nil, logger: logger)
    }

    private func post(parameters: [(String, String)], body: ByteBuffer, contentEncoding: String?, logger: Logger)
        async throws -> ByteBuffer
    {
        let target = endpoint
        var components = URLComponents()
        components.queryItems = parameters.map { URLQueryItem(name: $0.0, value: $0.1) }
        var request = HTTPClientRequest(url: "\(target)/\(parameters.isEmpty ? "" : "?" + (components.percentEncodedQuery ?? ""))")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/octet-stream")
        if let contentEncoding { request.headers.add(name: "Content-Encoding", value: contentEncoding) }
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        request.body = .bytes(body)
        do {
            let response = try await client.execute(request, timeout: timeout, logger: logger)
            let answer = try await response.body.collect(upTo: 16 << 20)
            guard response.status == .ok else {
                throw Failure(
                    endpoint: target.description, status: Int(response.status.code),
                    message: String(buffer: answer).trimmingCharacters(in: .whitespacesAndNewlines))
            }
            return answer
        } catch let failure as Failure {
            if failure.status.map({ $0 >= 500 }) ?? true { current.advance() }
            throw failure
        } catch {
            current.advance()
            throw Failure(endpoint: target.description, status: nil, message: UserFacingError.describe(error))
        }
    }

    public func shutdown() async {
        try? await client.shutdown()
    }
}

/// Which endpoint calls go to: advanced past one that failed, shared by concurrent calls.
final class EndpointCursor: Sendable {
    private let storage = Synchronization.Atomic<Int>(0)
    var value: Int { storage.load(ordering: .relaxed) }
    func advance() { storage.add(1, ordering: .relaxed) }
}
