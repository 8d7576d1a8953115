import Foundation
import Logging
import NIOCore
import Synchronization
import Tracking

#if canImport(Glibc)
import Glibc
#endif

/// glibc's `malloc_trim`, which the Glibc module does not export.
@_silgen_name("malloc_trim") private func malloc_trim(_ pad: Int) -> Int32

/// Where links live between runs. The request path never calls a store: the ``LinkIndex`` answers from memory.
public protocol LinkStore: Sendable {
    /// Puts every stored link, with its click count, into `index` (at start); returns how many.
    func load(into index: LinkIndex) throws -> Int
    func put(_ link: Link) throws
    func delete(_ link: Link) throws
    /// Absolute click counts of links clicked since the last call.
    func saveClicks(_ clicks: [(id: String, clicks: Int)]) throws
}

/// The embedded store: an append-only journal file (`links.journal` in its folder) replayed into memory at start.
///
/// Each record is framed like the event spool's (length, CRC-32, payload), so a torn tail from a crash is found
/// and cut. Every change is one appended record, written with `write` and `fdatasync` (admin calls are rare); click
/// counts are appended in batches once a second. When the journal holds more than twice what is live, it is
/// rewritten (compacted) through a temporary file and a rename. A lock keeps a second process out of the folder.
public final class JournalLinkStore: LinkStore, @unchecked Sendable {
    static let magic: [UInt8] = Array("VLINKS1\n".utf8)
    enum Operation: UInt8 { case put = 1, delete = 2, clicks = 3 }

    public let directory: String
    private let path: String
    private var descriptor: Int32 = -1
    private let folderLock: FolderLock
    private let lock: NSLock = NSLock()
    private let logger: Logger
    /// Bytes written, and bytes the live links would take (for the compaction decision).
    private var journalBytes = 0
    private var liveRecords = 0
    private var records = 0

    public struct StoreError: Error, CustomStringConvertible {
        public var description: String
    }

    public init(directory: String, logger: Logger) throws {
        self.directory = directory
        path = directory + "/links.journal"
        self.logger = logger
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        do {
            folderLock = try FolderLock(directory: directory, fileName: "links.lock")
        } catch .busy {
            throw StoreError(description: "the links folder \(directory) is in use by another Vantage process")
        } catch .cannotOpen(let reason) {
            throw StoreError(description: reason)
        }
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    /// Whether the folder is still this process's; once its lock file is removed or replaced, changes are refused
    /// (another process may be rewriting the journal) until Vantage restarts.
    public var ownershipProblem: String? {
        guard !lostOwnership.load(ordering: .relaxed) else { return lostMessage }
        guard !folderLock.isIntact() else { return nil }
        if !lostOwnership.exchange(true, ordering: .relaxed) { logger.error("links: \(lostMessage)") }
        return lostMessage
    }

    private let lostOwnership = Atomic<Bool>(false)
    private var lostMessage: String {
        "the lock file \(folderLock.path) was removed or replaced while running; link changes are refused until Vantage restarts"
    }

    public func load(into index: LinkIndex) throws -> Int {
        try lock.withLock {
            // Records are replayed straight into the index; only the id → key map lives while loading (to apply
            // deletes, click counts and renames), and the file is mapped, not copied.
            var keys: [LinkID: LinkIndex.Key] = [:]
            var goodEnd = Self.magic.count
            var fileSize = 0
            var mapped: UnsafeMutableRawPointer?
            let existing = open(path, O_RDONLY | O_CLOEXEC)
            if existing >= 0 {
                var info = stat()
                fstat(existing, &info)
                fileSize = Int(info.st_size)
                if fileSize > 0 { mapped = mmap(nil, fileSize, PROT_READ, MAP_PRIVATE, existing, 0) }
                close(existing)
            }
            if fileSize >= Self.magic.count {
                guard let mapped, mapped != MAP_FAILED else { throw StoreError(description: "cannot map \(path)") }
                defer { munmap(mapped, fileSize) }
                let bytes = UnsafeRawBufferPointer(start: mapped, count: fileSize)
                guard Array(bytes.prefix(Self.magic.count)) == Self.magic else {
                    throw StoreError(description: "\(path) is not a links journal")
                }
                keys.reserveCapacity(fileSize / 96)
                var offset = Self.magic.count
                while offset + 8 <= bytes.count {
                    let length = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                    let sum = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))
                    let start = offset + 8
                    guard length > 0, start + length <= bytes.count else { break }
                    let payload = UnsafeRawBufferPointer(rebasing: bytes[start..<start + length])
                    guard Self.checksum(payload) == sum, let record = try? LinkCodec.decode(payload) else { break }
                    switch record {
                    case .put(let link):
                        guard let id = LinkID(link.id) else { break }
                        let key = LinkIndex.Key(host: link.host, slug: link.slug)
                        let previous = keys.updateValue(key, forKey: id)
                        index.put([link])
                        if let previous, previous != key {
                            // A rename: the count moves with the link.
                            let clicks = index.link(host: previous.host, slug: previous.slug)?.clicks ?? 0
                            index.remove(host: previous.host, slug: previous.slug)
                            index.setClicks(clicks, host: key.host, slug: key.slug)
                        }
                    case .delete(let text):
                        if let id = LinkID(text), let key = keys.removeValue(forKey: id) { index.remove(host: key.host, slug: key.slug) }
                    case .clicks(let text, let count):
                        if let id = LinkID(text), let key = keys[id] { index.setClicks(count, host: key.host, slug: key.slug) }
                    }
                    records += 1
                    offset = start + length
                    goodEnd = offset
                }
                if goodEnd < fileSize {
                    logger.warning("links: \(path) ends in \(fileSize - goodEnd) unreadable byte(s) (a torn write); cutting them")
                }
            }
            descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else { throw StoreError(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
            if fileSize < Self.magic.count {
                _ = ftruncate(descriptor, 0)
                try writeAll(Self.magic, at: 0)
                goodEnd = Self.magic.count
            } else if goodEnd < fileSize {
                _ = ftruncate(descriptor, off_t(goodEnd))
            }
            journalBytes = goodEnd
            liveRecords = keys.count
            let count = keys.count
            keys = [:]
            // Loading freed a lot of small allocations; hand the memory back so RSS shows what the index holds.
            _ = malloc_trim(0)
            if records > 2 * liveRecords + 1024 {
                let current = index.snapshot()
                var clicks: [String: Int] = [:]
                for (link, clicked) in current where clicked > 0 { clicks[link.id] = clicked }
                try compact(links: current.map(\.0), clicks: clicks)
            }
            return count
        }
    }

    public func put(_ link: Link) throws {
        try append([.put(link)], sync: true)
        lock.withLock { liveRecords += 1 }
    }

    public func delete(_ link: Link) throws {
        try append([.delete(id: link.id)], sync: true)
    }

    public func saveClicks(_ clicks: [(id: String, clicks: Int)]) throws {
        guard !clicks.isEmpty else { return }
        try append(clicks.map { .clicks(id: $0.id, count: $0.clicks) }, sync: false)
    }

    /// Rewrites the journal when it holds more than twice what is live (called with the index's snapshot).
    public func compactIfWorthIt(_ snapshot: () -> [(Link, clicks: Int)]) throws {
        let worth = lock.withLock { records > 2 * max(liveRecords, 1) + 1024 }
        guard worth else { return }
        let current = snapshot()
        try lock.withLock {
            var clicks: [String: Int] = [:]
            for (link, count) in current where count > 0 { clicks[link.id] = count }
            try compact(links: current.map(\.0), clicks: clicks)
        }
    }

    // MARK: - Files

    private func append(_ entries: [LinkCodec.Record], sync: Bool) throws {
        if let problem = ownershipProblem { throw StoreError(description: problem) }
        var buffer = ByteBuffer()
        for entry in entries {
            var payload = ByteBuffer()
            LinkCodec.encode(entry, into: &payload)
            buffer.writeInteger(UInt32(payload.readableBytes), endianness: .little)
            buffer.writeInteger(payload.withUnsafeReadableBytes { Self.checksum($0) }, endianness: .little)
            buffer.writeBuffer(&payload)
        }
        try lock.withLock {
            guard descriptor >= 0 else { throw StoreError(description: "the links journal is not open") }
            try writeAll(Array(buffer.readableBytesView), at: journalBytes)
            journalBytes += buffer.readableBytes
            records += entries.count
            if sync { _ = fdatasync(descriptor) }
        }
    }

    private func writeAll(_ bytes: [UInt8], at offset: Int) throws {
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { raw in
                pwrite(descriptor, raw.baseAddress! + written, bytes.count - written, off_t(offset + written))
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw StoreError(description: "cannot write \(path): \(String(cString: strerror(errno)))")
            }
            written += count
        }
    }

    /// Writes only what is live into a new file and renames it over the journal (under `lock`).
    private func compact(links: [Link], clicks: [String: Int]) throws {
        var buffer = ByteBuffer()
        buffer.writeBytes(Self.magic)
        var count = 0
        func add(_ record: LinkCodec.Record) {
            var payload = ByteBuffer()
            LinkCodec.encode(record, into: &payload)
            buffer.writeInteger(UInt32(payload.readableBytes), endianness: .little)
            buffer.writeInteger(payload.withUnsafeReadableBytes { Self.checksum($0) }, endianness: .little)
            buffer.writeBuffer(&payload)
            count += 1
        }
        for link in links { add(.put(link)) }
        for (id, clicks) in clicks { add(.clicks(id: id, count: clicks)) }
        let temporary = path + ".compacting"
        let fresh = open(temporary, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fresh >= 0 else { throw StoreError(description: "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let bytes = Array(buffer.readableBytesView)
        let written = bytes.withUnsafeBytes { write(fresh, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(fresh) == 0, rename(temporary, path) == 0 else {
            close(fresh)
            unlink(temporary)
            throw StoreError(description: "cannot compact \(path): \(String(cString: strerror(errno)))")
        }
        if descriptor >= 0 { close(descriptor) }
        descriptor = fresh
        journalBytes = bytes.count
        records = count
        liveRecords = count
        logger.info("links: journal compacted to \(links.count) link(s), \(bytes.count) bytes")
    }

    /// zlib's CRC-32, as the journal's records have always carried (the spool's older segments' checksum).
    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 { SpoolRecordFormat.Checksum.crc32(bytes) }
}

/// The binary form of journal records: an operation byte, then length-prefixed strings and LEB128 varints.
enum LinkCodec {
    enum Record: Equatable {
        case put(Link)
        case delete(id: String)
        case clicks(id: String, count: Int)
    }

    static func encode(_ record: Record, into buffer: inout ByteBuffer) {
        switch record {
        case .put(let link):
            buffer.writeInteger(JournalLinkStore.Operation.put.rawValue)
            for text in [link.id, link.host, link.slug, link.destination] { writeString(text, &buffer) }
            writeVarint(UInt64(link.status), &buffer)
            var flags: UInt8 = link.passQuery ? 1 : 0
            if link.expiresAt != nil { flags |= 2 }
            if link.fallback != nil { flags |= 4 }
            if link.maxClicks != nil { flags |= 8 }
            buffer.writeInteger(flags)
            if let expiresAt = link.expiresAt { writeVarint(UInt64(bitPattern: expiresAt), &buffer) }
            if let fallback = link.fallback { writeString(fallback, &buffer) }
            if let maxClicks = link.maxClicks { writeVarint(UInt64(maxClicks), &buffer) }
            writeVarint(UInt64(link.queryDenyList.count), &buffer)
            for name in link.queryDenyList { writeString(name, &buffer) }
            writeVarint(UInt64(link.addQuery.count), &buffer)
            for (name, value) in link.addQuery.sorted(by: { $0.key < $1.key }) {
                writeString(name, &buffer)
                writeString(value, &buffer)
            }
            writeVarint(UInt64(link.tags.count), &buffer)
            for tag in link.tags { writeString(tag, &buffer) }
            writeVarint(UInt64(bitPattern: link.createdAt), &buffer)
            writeVarint(UInt64(bitPattern: link.updatedAt), &buffer)
        case .delete(let id):
            buffer.writeInteger(JournalLinkStore.Operation.delete.rawValue)
            writeString(id, &buffer)
        case .clicks(let id, let count):
            buffer.writeInteger(JournalLinkStore.Operation.clicks.rawValue)
            writeString(id, &buffer)
            writeVarint(UInt64(count), &buffer)
        }
    }

    static func decode(_ bytes: UnsafeRawBufferPointer) throws -> Record {
        var reader = RecordReader(bytes: bytes)
        switch JournalLinkStore.Operation(rawValue: try reader.byte()) {
        case .put:
            let id = try reader.text(), host = try reader.text(), slug = try reader.text()
            let destination = try reader.text()
            let status = Int(try reader.varint())
            let flags = try reader.byte()
            var link = Link(id: id, host: host, slug: slug, destination: destination, createdAt: 0)
            link.status = status
            link.passQuery = flags & 1 != 0
            if flags & 2 != 0 { link.expiresAt = Int64(bitPattern: try reader.varint()) }
            if flags & 4 != 0 { link.fallback = try reader.text() }
            if flags & 8 != 0 { link.maxClicks = Int(try reader.varint()) }
            for _ in 0..<(try reader.count(limit: 10_000)) { link.queryDenyList.append(try reader.text()) }
            for _ in 0..<(try reader.count(limit: 10_000)) { link.addQuery[try reader.text()] = try reader.text() }
            for _ in 0..<(try reader.count(limit: 10_000)) { link.tags.append(try reader.text()) }
            link.createdAt = Int64(bitPattern: try reader.varint())
            link.updatedAt = Int64(bitPattern: try reader.varint())
            return .put(link)
        case .delete:
            return .delete(id: try reader.text())
        case .clicks:
            return .clicks(id: try reader.text(), count: Int(try reader.varint()))
        case nil:
            throw EventRecord.DecodingError(description: "unknown journal operation")
        }
    }

    private static func writeString(_ text: String, _ buffer: inout ByteBuffer) {
        writeVarint(UInt64(text.utf8.count), &buffer)
        buffer.writeString(text)
    }

    private static func writeVarint(_ value: UInt64, _ buffer: inout ByteBuffer) {
        var value = value
        while value >= 0x80 {
            buffer.writeInteger(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        buffer.writeInteger(UInt8(value))
    }
}
