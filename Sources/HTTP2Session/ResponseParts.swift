// What a response is submitted with: its header fields and the codes its stream can be reset with.

/// The error codes this server resets streams with (RFC 9113 §7).
public enum StreamResetCode: UInt32, Sendable {
    /// The answer is complete; the client can stop sending its body.
    case noError = 0x0
    /// The response broke off (the upstream failed after the head went out).
    case internalError = 0x2
    /// A stream refused before any processing (new streams during shutdown).
    case refusedStream = 0x7
    /// The response was abandoned (no progress within send_timeout, or the exchange was cut).
    case cancel = 0x8
}

/// Header fields to send, as one byte array and offsets. The session keeps one, filled through
/// ``HTTP2ServerSession/respond(stream:endStream:fields:)`` and reused for every response of the connection, so a
/// response head costs no allocation once its arrays have grown; a prepared list (a cached file's head) is copied
/// in with ``append(contentsOf:)``.
public struct FieldList: Sendable {
    var bytes: [UInt8] = []
    var ranges: [(name: Int, nameLength: Int, value: Int, valueLength: Int)] = []

    public init() {}

    /// An empty list with room for a typical response head (no reallocation while it is filled).
    public init(reservingCapacity bytes: Int, fields: Int) {
        self.bytes.reserveCapacity(bytes)
        ranges.reserveCapacity(fields)
    }

    /// Appends a field; the name is lower-cased on the way (HTTP/2 field names are lower case, RFC 9113 §8.2), so
    /// `Content-Type` from an HTTP/1-style header list can be passed as it is.
    public mutating func append(name: String, value: String) {
        let nameStart = bytes.count
        for byte in name.utf8 { bytes.append(byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte) }
        let valueStart = bytes.count
        bytes.append(contentsOf: value.utf8)
        ranges.append((nameStart, valueStart - nameStart, valueStart, bytes.count - valueStart))
    }

    /// Appends a field named by a constant (lower-cased on the way, as above).
    public mutating func append(name: StaticString, value: String) {
        var value = value
        value.withUTF8 { append(name: name, utf8: UnsafeRawBufferPointer($0)) }
    }

    /// Appends a field named by a constant whose value is given as UTF-8 bytes.
    public mutating func append(name: StaticString, utf8 value: UnsafeRawBufferPointer) {
        let nameStart = bytes.count
        name.withUTF8Buffer { utf8 in
            for byte in utf8 { bytes.append(byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte) }
        }
        let valueStart = bytes.count
        bytes.append(contentsOf: value)
        ranges.append((nameStart, valueStart - nameStart, valueStart, bytes.count - valueStart))
    }

    /// Appends every field of `other`, in order.
    public mutating func append(contentsOf other: FieldList) {
        let offset = bytes.count
        bytes.append(contentsOf: other.bytes)
        for range in other.ranges {
            ranges.append((range.name + offset, range.nameLength, range.value + offset, range.valueLength))
        }
    }

    public var isEmpty: Bool { ranges.isEmpty }
    public var count: Int { ranges.count }

    mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        ranges.removeAll(keepingCapacity: true)
    }
}
