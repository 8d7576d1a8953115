import NIOCore
import NIOHTTP1

/// A request head as the data plane keeps it: method, version and target, and the header fields as bytes
/// (``RequestFields``) rather than a string per name and value.
///
/// NIO's `HTTPRequestHead` keeps its parts in a heap box and its headers as an array of string pairs: two
/// allocations and two strings per header for every request, most of them never read (the edge reads a few
/// headers through ``RequestFields/first(name:)`` and its header summary, and the proxy copies the rest upstream
/// as bytes).
public struct RequestHead: Sendable {
    public var method: HTTPMethod
    public var version: HTTPVersion
    /// The request target (after admission: origin-form, its path in normal form).
    public var uri: String
    public var headers: RequestFields

    public init(version: HTTPVersion, method: HTTPMethod, uri: String, headers: RequestFields = RequestFields()) {
        self.version = version
        self.method = method
        self.uri = uri
        self.headers = headers
    }

    /// The head of NIO's type (HTTP/2 streams' heads start as one in tests and tools).
    public init(_ head: HTTPRequestHead) {
        self.init(version: head.version, method: head.method, uri: head.uri, headers: RequestFields(head.headers))
    }

    /// The head as NIO's type, for code off the request path that takes one.
    public var httpRequestHead: HTTPRequestHead {
        HTTPRequestHead(version: version, method: method, uri: uri, headers: headers.httpHeaders)
    }

    /// A HEAD request, matched by case: `==` on `HTTPMethod` resolves to the raw-value comparison (two strings) for
    /// a check that runs on every answer.
    @inlinable
    public var isHeadRequest: Bool { if case .HEAD = method { true } else { false } }

    /// Whether the connection stays open after this request by its version and `Connection` header (RFC 9112
    /// §9.3): HTTP/1.1 unless `close`, HTTP/1.0 only with `keep-alive`. Read from the bytes (it is asked for every
    /// HTTP/1.1 request, and browsers send `Connection: keep-alive`).
    public var isKeepAlive: Bool {
        var close = false, keepAlive = false
        headers.forEach { name, value in
            guard RequestFields.namesMatch(name, "connection") else { return }
            var start = 0
            for end in 0...value.count where end == value.count || value[end] == UInt8(ascii: ",") {
                var first = start, last = end
                while first < last && (value[first] == UInt8(ascii: " ") || value[first] == UInt8(ascii: "\t")) { first += 1 }
                while last > first && (value[last - 1] == UInt8(ascii: " ") || value[last - 1] == UInt8(ascii: "\t")) { last -= 1 }
                let token = UnsafeRawBufferPointer(rebasing: value[first..<last])
                if RequestFields.namesMatch(token, "close") { close = true }
                if RequestFields.namesMatch(token, "keep-alive") { keepAlive = true }
                start = end + 1
            }
        }
        return version.major == 1 && version.minor == 0 ? keepAlive : !close
    }
}

/// A request's header fields in one buffer: the names and values as received, then a table of where each sits
/// (four 32-bit numbers a field). One allocation for the whole list, and nothing made per field until a caller
/// asks for a string.
///
/// Lookups compare names ASCII case-insensitively, as `HTTPHeaders` does. Changing the list (``add(name:value:)``,
/// ``replaceOrAdd(name:value:)``, ``remove(name:)``: an absolute-form target's Host, an HTTP/2 body without a
/// length) writes the list anew; it happens on a few requests at most.
public struct RequestFields: Sendable {
    /// The field bytes, then the table from `tableStart`.
    @usableFromInline var storage: ByteBuffer
    @usableFromInline var tableStart: Int
    /// The number of fields.
    public private(set) var count: Int

    /// The bytes of the fields' names and values (and what comes before them), without the table.
    public var byteCount: Int { tableStart }

    @usableFromInline static let entryBytes = 16

    private init(storage: ByteBuffer, tableStart: Int, count: Int) {
        self.storage = storage
        self.tableStart = tableStart
        self.count = count
    }

    /// No fields.
    public init() {
        storage = ByteBuffer()
        tableStart = 0
        count = 0
    }

    /// The fields of a head parsed from `bytes` at `fields`' offsets, copied into a buffer of their own (a slice of
    /// the read would keep the whole receive buffer, which NIO then cannot reuse, for as long as the request lives).
    @usableFromInline
    init(copying bytes: UnsafeRawBufferPointer, fields: [ParsedRequestHead.Field]) {
        // The fields' bytes end where the last value ends; the request line before them is copied too so the
        // offsets stay as the parser found them (it is a few dozen bytes).
        let end = fields.last.map { Int($0.valueStart + $0.valueLength) } ?? 0
        let tableStart = end
        var storage = ByteBufferAllocator().buffer(capacity: tableStart + fields.count * Self.entryBytes)
        storage.writeWithUnsafeMutableBytes(minimumWritableBytes: tableStart + fields.count * Self.entryBytes) { out in
            if end > 0 { out.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<end])) }
            var at = tableStart
            for field in fields {
                out.storeBytes(of: UInt32(field.nameStart).littleEndian, toByteOffset: at, as: UInt32.self)
                out.storeBytes(of: UInt32(field.nameLength).littleEndian, toByteOffset: at + 4, as: UInt32.self)
                out.storeBytes(of: UInt32(field.valueStart).littleEndian, toByteOffset: at + 8, as: UInt32.self)
                out.storeBytes(of: UInt32(field.valueLength).littleEndian, toByteOffset: at + 12, as: UInt32.self)
                at += Self.entryBytes
            }
            return at
        }
        self.storage = storage
        self.tableStart = tableStart
        count = fields.count
    }

    /// Fields given as names and values, in order.
    public init<Pairs: Sequence>(pairs: Pairs) where Pairs.Element == (String, String) {
        var builder = Builder()
        for (name, value) in pairs { builder.add(name: name, value: value) }
        self = builder.finish()
    }

    /// The fields of NIO's header list.
    public init(_ headers: HTTPHeaders) {
        self.init(pairs: headers.lazy.map { ($0.name, $0.value) })
    }

    /// The fields as NIO's header list.
    public var httpHeaders: HTTPHeaders {
        var headers = HTTPHeaders()
        headers.reserveCapacity(count)
        forEach { name, value in
            headers.add(name: String(decoding: name, as: UTF8.self), value: String(decoding: value, as: UTF8.self))
        }
        return headers
    }

    /// Calls `body` with each field's name and value bytes, in order (valid only during the call).
    @inlinable
    public func forEach(_ body: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Void) {
        guard count > 0 else { return }
        storage.withUnsafeReadableBytes { raw in
            var at = tableStart
            for _ in 0..<count {
                let nameStart = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
                let nameLength = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at + 4, as: UInt32.self)))
                let valueStart = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at + 8, as: UInt32.self)))
                let valueLength = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at + 12, as: UInt32.self)))
                body(
                    UnsafeRawBufferPointer(rebasing: raw[nameStart..<nameStart + nameLength]),
                    UnsafeRawBufferPointer(rebasing: raw[valueStart..<valueStart + valueLength]))
                at += Self.entryBytes
            }
        }
    }

    /// The first value of the field `name` (any case).
    public func first(name: String) -> String? {
        var found: String?
        var name = name
        name.withUTF8 { wanted in
            forEach { fieldName, value in
                if found == nil && Self.namesMatch(fieldName, UnsafeRawBufferPointer(wanted)) {
                    found = String(decoding: value, as: UTF8.self)
                }
            }
        }
        return found
    }

    /// Whether a field `name` (any case) is present.
    public func contains(name: String) -> Bool {
        var found = false
        var name = name
        name.withUTF8 { wanted in
            forEach { fieldName, _ in
                if !found && Self.namesMatch(fieldName, UnsafeRawBufferPointer(wanted)) { found = true }
            }
        }
        return found
    }

    /// The comma-separated elements of every field `name`, trimmed of spaces and tabs, empty ones left out (as
    /// `HTTPHeaders`' subscript of the same name gives them).
    public subscript(canonicalForm name: String) -> [Substring] {
        var elements: [Substring] = []
        var name = name
        name.withUTF8 { wanted in
            forEach { fieldName, value in
                guard Self.namesMatch(fieldName, UnsafeRawBufferPointer(wanted)) else { return }
                let text = String(decoding: value, as: UTF8.self)
                for element in text.split(separator: ",") {
                    let trimmed = element.drop { $0 == " " || $0 == "\t" }
                    let end = trimmed.lastIndex { $0 != " " && $0 != "\t" }
                    if let end { elements.append(trimmed[...end]) }
                }
            }
        }
        return elements
    }

    /// Appends a field.
    public mutating func add(name: String, value: String) {
        rewrite(dropping: nil, adding: (name, value))
    }

    /// Replaces every field `name` (any case) with one field of `value`, at the end.
    public mutating func replaceOrAdd(name: String, value: String) {
        rewrite(dropping: name, adding: (name, value))
    }

    /// Removes every field `name` (any case).
    public mutating func remove(name: String) {
        rewrite(dropping: name, adding: nil)
    }

    private mutating func rewrite(dropping dropped: String?, adding added: (String, String)?) {
        var builder = Builder()
        var dropped = dropped ?? ""
        dropped.withUTF8 { droppedName in
            forEach { name, value in
                if droppedName.isEmpty || !Self.namesMatch(name, UnsafeRawBufferPointer(droppedName)) { builder.add(name, value) }
            }
        }
        if let (name, value) = added { builder.add(name: name, value: value) }
        self = builder.finish()
    }

    /// ASCII case-insensitive equality of a name with a literal.
    @inlinable
    static func namesMatch(_ name: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
        literal.withUTF8Buffer { namesMatch(name, UnsafeRawBufferPointer($0)) }
    }

    /// ASCII case-insensitive equality of two names.
    @inlinable
    static func namesMatch(_ left: UnsafeRawBufferPointer, _ right: UnsafeRawBufferPointer) -> Bool {
        guard left.count == right.count else { return false }
        for index in 0..<left.count {
            let a = left[index], b = right[index]
            if a != b && (a | 0x20 != b | 0x20 || !(a | 0x20 >= UInt8(ascii: "a") && a | 0x20 <= UInt8(ascii: "z"))) { return false }
        }
        return true
    }

    /// Builds a field list one field at a time (HTTP/2 streams' fields, a list rewritten): the bytes go into the
    /// list's own buffer as they come, the table after them at the end.
    public struct Builder {
        var storage: ByteBuffer
        var entries: [ParsedRequestHead.Field] = []

        /// `byteCount`: about how many name and value bytes there will be.
        public init(byteCount: Int = 256, fieldCount: Int = 16) {
            storage = ByteBufferAllocator().buffer(capacity: byteCount + fieldCount * RequestFields.entryBytes)
            entries.reserveCapacity(fieldCount)
        }

        public mutating func add(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) {
            let nameStart = storage.writerIndex
            storage.writeBytes(name)
            let valueStart = storage.writerIndex
            storage.writeBytes(value)
            entries.append(ParsedRequestHead.Field(
                nameStart: Int32(nameStart), nameLength: Int32(name.count), valueStart: Int32(valueStart), valueLength: Int32(value.count)))
        }

        public mutating func add(name: String, value: String) {
            var name = name, value = value
            name.withUTF8 { name in value.withUTF8 { value in add(UnsafeRawBufferPointer(name), UnsafeRawBufferPointer(value)) } }
        }

        public consuming func finish() -> RequestFields {
            let tableStart = storage.writerIndex
            for entry in entries {
                storage.writeInteger(UInt32(entry.nameStart), endianness: .little)
                storage.writeInteger(UInt32(entry.nameLength), endianness: .little)
                storage.writeInteger(UInt32(entry.valueStart), endianness: .little)
                storage.writeInteger(UInt32(entry.valueLength), endianness: .little)
            }
            return RequestFields(storage: storage, tableStart: tableStart, count: entries.count)
        }
    }
}

extension RequestFields: Sequence {
    /// Each field as strings (made for the iteration; the request path reads bytes through ``forEach(_:)``).
    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        var pairs: [(name: String, value: String)] = []
        pairs.reserveCapacity(count)
        forEach { name, value in
            pairs.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        }
        return pairs.makeIterator()
    }
}

extension RequestFields: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(pairs: elements)
    }
}

extension RequestFields: Equatable {
    /// Equal when the same names (any case) carry the same values in the same order.
    public static func == (lhs: RequestFields, rhs: RequestFields) -> Bool {
        lhs.count == rhs.count
            && lhs.map { ($0.name.lowercased(), $0.value) }.elementsEqual(rhs.map { ($0.name.lowercased(), $0.value) }) { $0 == $1 }
    }
}
