import NIOCore
import NIOHTTP1

/// A request's header fields in one allocation: a table of where each name and value sits (four 32-bit numbers a
/// field), then the names and values as received. Nothing is made per field until a caller asks for a string.
///
/// Lookups compare names ASCII case-insensitively, as `HTTPHeaders` does. Changing the list (``add(name:value:)``,
/// ``replaceOrAdd(name:value:)``, ``remove(name:)``: an absolute-form target's Host) writes the list anew; it
/// happens on a few requests at most. The storage is never written once a list holds it, so copies share it
/// (and it may cross threads: `@unchecked Sendable`, as `ManagedBuffer` itself is not).
public struct RequestFields: @unchecked Sendable {
    /// What the storage holds: `count` fields in a table of room for `tableCapacity`, and `byteCount` bytes in use
    /// (the table's included) of the `byteCapacity` asked for (kept here: `ManagedBuffer.capacity` asks the
    /// allocator each time).
    @usableFromInline
    struct Layout {
        @usableFromInline var count: Int
        @usableFromInline var tableCapacity: Int
        @usableFromInline var byteCount: Int
        @usableFromInline var byteCapacity: Int
    }

    /// The table and the bytes, tail-allocated after the layout: one allocation (a `ByteBuffer` is two).
    @usableFromInline
    final class Storage: ManagedBuffer<Layout, UInt8> {
        static func make(tableCapacity: Int, bytes: Int) -> Storage {
            let capacity = tableCapacity * entryBytes + bytes
            let made = Storage.create(minimumCapacity: capacity) { _ in
                Layout(count: 0, tableCapacity: tableCapacity, byteCount: tableCapacity * entryBytes, byteCapacity: capacity)
            }
            return unsafeDowncast(made, to: Storage.self)
        }
    }

    /// Nil: no fields (no allocation).
    @usableFromInline var storage: Storage?

    @usableFromInline static let entryBytes = 16

    /// The number of fields.
    public var count: Int { storage?.header.count ?? 0 }

    /// The bytes of the fields' names and values (and what the parser copied with them), without the table.
    public var byteCount: Int {
        guard let storage else { return 0 }
        return storage.header.byteCount - storage.header.tableCapacity * Self.entryBytes
    }

    @usableFromInline
    init(storage: Storage?) { self.storage = storage }

    /// No fields.
    public init() { storage = nil }

    /// The fields of a head parsed from `bytes` at `fields`' offsets, copied into storage of their own (a slice of
    /// the read would keep the whole receive buffer, which NIO then cannot reuse, for as long as the request lives).
    @usableFromInline
    init(copying bytes: UnsafeRawBufferPointer, fields: [ParsedRequestHead.Field]) {
        guard !fields.isEmpty else {
            storage = nil
            return
        }
        // From the first name to the last value, copied whole: the offsets move by one distance.
        let first = Int(fields[0].nameStart)
        let end = fields.last.map { Int($0.valueStart + $0.valueLength) }!
        let tableBytes = fields.count * Self.entryBytes
        let storage = Storage.make(tableCapacity: fields.count, bytes: end - first)
        storage.withUnsafeMutablePointers { layout, elements in
            let out = UnsafeMutableRawPointer(elements)
            (out + tableBytes).copyMemory(from: bytes.baseAddress! + first, byteCount: end - first)
            let shift = tableBytes - first
            var at = 0
            for field in fields {
                Self.storeEntry(
                    nameStart: Int(field.nameStart) + shift, nameLength: Int(field.nameLength),
                    valueStart: Int(field.valueStart) + shift, valueLength: Int(field.valueLength), into: out + at)
                at += Self.entryBytes
            }
            layout.pointee.count = fields.count
            layout.pointee.byteCount = tableBytes + end - first
        }
        self.storage = storage
    }

    @inline(__always)
    static func storeEntry(nameStart: Int, nameLength: Int, valueStart: Int, valueLength: Int, into out: UnsafeMutableRawPointer) {
        out.storeBytes(of: UInt32(truncatingIfNeeded: nameStart), toByteOffset: 0, as: UInt32.self)
        out.storeBytes(of: UInt32(truncatingIfNeeded: nameLength), toByteOffset: 4, as: UInt32.self)
        out.storeBytes(of: UInt32(truncatingIfNeeded: valueStart), toByteOffset: 8, as: UInt32.self)
        out.storeBytes(of: UInt32(truncatingIfNeeded: valueLength), toByteOffset: 12, as: UInt32.self)
    }

    /// Fields given as names and values, in order.
    public init<Pairs: Sequence>(pairs: Pairs) where Pairs.Element == (String, String) {
        let pairs = Array(pairs)
        var builder = Builder(byteCount: pairs.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count }, fieldCount: pairs.count)
        for (name, value) in pairs { builder.add(name: name, value: value) }
        self = builder.finish()
    }

    /// The fields of NIO's header list.
    public init(_ headers: HTTPHeaders) {
        self.init(pairs: headers.map { ($0.name, $0.value) })
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
        guard let storage else { return }
        storage.withUnsafeMutablePointers { layout, elements in
            let raw = UnsafeRawBufferPointer(start: elements, count: layout.pointee.byteCount)
            var at = 0
            for _ in 0..<layout.pointee.count {
                let nameStart = Int(raw.loadUnaligned(fromByteOffset: at, as: UInt32.self))
                let nameLength = Int(raw.loadUnaligned(fromByteOffset: at + 4, as: UInt32.self))
                let valueStart = Int(raw.loadUnaligned(fromByteOffset: at + 8, as: UInt32.self))
                let valueLength = Int(raw.loadUnaligned(fromByteOffset: at + 12, as: UInt32.self))
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
                if found == nil && HTTPBytes.equalsCaseInsensitive(fieldName, UnsafeRawBufferPointer(wanted)) {
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
                if !found && HTTPBytes.equalsCaseInsensitive(fieldName, UnsafeRawBufferPointer(wanted)) { found = true }
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
                guard HTTPBytes.equalsCaseInsensitive(fieldName, UnsafeRawBufferPointer(wanted)) else { return }
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
        var builder = Builder(
            byteCount: byteCount + (added.map { $0.0.utf8.count + $0.1.utf8.count } ?? 0), fieldCount: count + 1)
        var dropped = dropped ?? ""
        dropped.withUTF8 { droppedName in
            forEach { name, value in
                if droppedName.isEmpty || !HTTPBytes.equalsCaseInsensitive(name, UnsafeRawBufferPointer(droppedName)) { builder.add(name, value) }
            }
        }
        if let (name, value) = added { builder.add(name: name, value: value) }
        self = builder.finish()
    }

    /// Builds a field list one field at a time (HTTP/2 streams' fields, a list rewritten) into the list's own
    /// storage. Not copyable: the storage it fills becomes the list's at ``finish()``, and nothing writes it after.
    public struct Builder: ~Copyable {
        var storage: Storage

        /// `byteCount`: about how many name and value bytes there will be; `fieldCount`: how many fields, at most
        /// (more make the storage grow).
        public init(byteCount: Int = 256, fieldCount: Int = 16) {
            storage = Storage.make(tableCapacity: Swift.max(1, fieldCount), bytes: byteCount)
        }

        public mutating func add(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) {
            let layout = storage.header
            if layout.count == layout.tableCapacity || layout.byteCount + name.count + value.count > layout.byteCapacity {
                grow(tableCapacity: layout.count == layout.tableCapacity ? 2 * layout.tableCapacity : layout.tableCapacity,
                     bytes: 2 * (layout.byteCount + name.count + value.count))
            }
            storage.withUnsafeMutablePointers { layout, elements in
                let out = UnsafeMutableRawPointer(elements)
                let nameStart = layout.pointee.byteCount
                if name.count > 0 { (out + nameStart).copyMemory(from: name.baseAddress!, byteCount: name.count) }
                let valueStart = nameStart + name.count
                if value.count > 0 { (out + valueStart).copyMemory(from: value.baseAddress!, byteCount: value.count) }
                RequestFields.storeEntry(
                    nameStart: nameStart, nameLength: name.count, valueStart: valueStart, valueLength: value.count,
                    into: out + layout.pointee.count * RequestFields.entryBytes)
                layout.pointee.count += 1
                layout.pointee.byteCount = valueStart + value.count
            }
        }

        public mutating func add(name: String, value: String) {
            var name = name, value = value
            name.withUTF8 { name in value.withUTF8 { value in add(UnsafeRawBufferPointer(name), UnsafeRawBufferPointer(value)) } }
        }

        /// Moves the fields to larger storage (the table's room may grow: the bytes move behind it).
        private mutating func grow(tableCapacity: Int, bytes: Int) {
            let old = storage
            storage = Storage.make(tableCapacity: tableCapacity, bytes: bytes)
            old.withUnsafeMutablePointers { oldLayout, oldElements in
                let oldTable = oldLayout.pointee.tableCapacity * RequestFields.entryBytes
                let newTable = tableCapacity * RequestFields.entryBytes
                let shift = newTable - oldTable
                storage.withUnsafeMutablePointers { layout, elements in
                    let out = UnsafeMutableRawPointer(elements), source = UnsafeRawPointer(oldElements)
                    (out + newTable).copyMemory(from: source + oldTable, byteCount: oldLayout.pointee.byteCount - oldTable)
                    for index in 0..<oldLayout.pointee.count {
                        let at = index * RequestFields.entryBytes
                        RequestFields.storeEntry(
                            nameStart: Int(source.loadUnaligned(fromByteOffset: at, as: UInt32.self)) + shift,
                            nameLength: Int(source.loadUnaligned(fromByteOffset: at + 4, as: UInt32.self)),
                            valueStart: Int(source.loadUnaligned(fromByteOffset: at + 8, as: UInt32.self)) + shift,
                            valueLength: Int(source.loadUnaligned(fromByteOffset: at + 12, as: UInt32.self)), into: out + at)
                    }
                    layout.pointee.count = oldLayout.pointee.count
                    layout.pointee.byteCount = oldLayout.pointee.byteCount + shift
                }
            }
        }

        public consuming func finish() -> RequestFields {
            RequestFields(storage: storage.header.count == 0 ? nil : storage)
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
