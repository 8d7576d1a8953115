import HTTP1Parser
import HTTP2Session
import RequestTarget
import NIOCore

/// A response head under construction, whatever the protocol: HTTP/1.1 header lines in a buffer, or an HTTP/2
/// field list. The fields an exchange adds to every answer (``ExchangeFields``) are written through this once for
/// both.
protocol ResponseFields {
    mutating func add(_ name: StaticString, _ value: String)
    mutating func add(name: String, value: String)
    /// A field whose value is given as UTF-8 bytes (the request ID's digits).
    mutating func add(_ name: StaticString, utf8 value: UnsafeRawBufferPointer)
}

/// HTTP/1.1: `Name: value\r\n` lines appended to the head's bytes.
struct HTTP1HeaderLines: ResponseFields {
    var buffer: ByteBuffer

    mutating func add(_ name: StaticString, _ value: String) {
        buffer.writeStaticString(name)
        buffer.writeStaticString(": ")
        buffer.writeString(value)
        buffer.writeStaticString("\r\n")
    }

    mutating func add(name: String, value: String) { buffer.writeHeaderLine(name: name, value: value) }

    mutating func add(_ name: StaticString, utf8 value: UnsafeRawBufferPointer) {
        buffer.writeStaticString(name)
        buffer.writeStaticString(": ")
        buffer.writeBytes(value)
        buffer.writeStaticString("\r\n")
    }
}

/// HTTP/2: fields for the session (names lower-cased as they are appended).
extension FieldList: ResponseFields {
    mutating func add(_ name: StaticString, _ value: String) { append(name: name, value: value) }
    mutating func add(name: String, value: String) { append(name: name, value: value) }
    mutating func add(_ name: StaticString, utf8 value: UnsafeRawBufferPointer) { append(name: name, utf8: value) }
}

/// The fields an exchange adds to its answer beyond the route's own: the request ID (proxied answers), HSTS on
/// TLS, the visitor cookie, a redirect's Location and the rate-limit headers.
struct ExchangeFields {
    var requestID: RequestID?
    var hsts: String?
    var visitorCookie: String?
    var location: String?
    var rateLimit: (policy: String, quota: String)?

    func write(to fields: inout some ResponseFields) {
        if let requestID { requestID.withUTF8 { fields.add("X-Request-Id", utf8: $0) } }
        if let hsts { fields.add("Strict-Transport-Security", hsts) }
        if let visitorCookie { fields.add("Set-Cookie", visitorCookie) }
        if let location { fields.add("Location", location) }
        if let rateLimit {
            fields.add("RateLimit-Policy", rateLimit.policy)
            fields.add("RateLimit", rateLimit.quota)
        }
    }
}
