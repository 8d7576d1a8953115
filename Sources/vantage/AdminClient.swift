import AsyncHTTPClient
import Edge
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import PlainErrors

/// Calls the admin listener of a running Vantage (the one the configuration describes), with the admin token when
/// `admin.token_env` names one.
struct AdminClient {
    let baseURL: String
    let token: String?

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    init(configuration: GatewayConfiguration) throws {
        guard let admin = configuration.admin.listen else {
            throw Failure(description: "the admin listener is off (admin.listen)")
        }
        let host = admin.host == "0.0.0.0" || admin.host.isEmpty ? "127.0.0.1" : (admin.host == "::" ? "::1" : admin.host)
        baseURL = "http://\(host.contains(":") ? "[\(host)]" : host):\(admin.port)"
        token = configuration.admin.token
    }

    /// Sends one request; returns the status and the body text. Throws when the gateway cannot be reached.
    func send(_ method: HTTPMethod, _ path: String, json: Data? = nil) async throws -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: json))
        }
        let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
        do {
            let response = try await client.execute(request, timeout: .seconds(120))
            let body = try await response.body.collect(upTo: 16 << 20)
            try await client.shutdown()
            return (Int(response.status.code), String(buffer: body))
        } catch {
            try? await client.shutdown()
            throw Failure(description: "no answer from the admin listener at \(baseURL) (\(UserFacingError.describe(error)))")
        }
    }
}
