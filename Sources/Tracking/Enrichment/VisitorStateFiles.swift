#if canImport(Glibc)
import Glibc
#endif

/// The visitor state kept across a restart, so a deploy does not split the day's visitors or their open sessions.
///
/// Files in the spool folder (one process owns it, through the spool's lock), owner-only (0600), each written
/// whole through a temporary file and a rename:
/// - `visitor-keys`: today's and yesterday's cookieless keys, rewritten at every rotation (a key leaves the disk the
///   day after its own day). Never shipped, never exported: only what turns an address and user agent into today's
///   visitor id.
/// - `sessions`: the sessions open at shutdown (visitor hash, session id, last request, first-touch channel), read
///   and deleted at start; sessions that timed out meanwhile are dropped.
/// - `visits`: with ClickHouse, the open visits the shipper keeps current in the visits table (their landing values
///   and counts), read and deleted at start.
public struct VisitorStateFiles: Sendable {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    public var keysPath: String { directory + "/visitor-keys" }
    public var sessionsPath: String { directory + "/sessions" }

    static let keysHeader = "vantage visitor keys 1"
    static let sessionsMagic = Array("vantage sessions 1\n".utf8)
    static let sessionBytes = 21

    // MARK: Keys

    /// The keys saved by an earlier run if they are still of use on `today` (their day is today or yesterday);
    /// older or unreadable files are deleted.
    public func loadKeys(today: Int64) -> VisitorKeyring.Keys? {
        guard let bytes = Self.readWhole(keysPath, limit: 4096) else { return nil }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
        func key(_ line: Substring, _ name: String) -> VisitorKeyring.Key? {
            let parts = line.split(separator: " ")
            guard parts.count == 3, parts[0] == name, let k0 = UInt64(parts[1], radix: 16), let k1 = UInt64(parts[2], radix: 16)
            else { return nil }
            return VisitorKeyring.Key(k0, k1)
        }
        guard lines.count == 4, lines[0] == Self.keysHeader, lines[1].hasPrefix("day "),
            let day = Int64(lines[1].dropFirst(4)), let current = key(lines[2], "today"),
            let previous = key(lines[3], "yesterday"), day >= today - 1, day <= today
        else {
            unlink(keysPath)
            return nil
        }
        return VisitorKeyring.Keys(day: day, today: current, yesterday: previous)
    }

    /// Replaces the keys file with `keys`.
    public func saveKeys(_ keys: VisitorKeyring.Keys) throws(StateFileError) {
        func hex(_ value: UInt64) -> String { String(value, radix: 16) }
        let text = """
            \(Self.keysHeader)
            day \(keys.day)
            today \(hex(keys.today.k0)) \(hex(keys.today.k1))
            yesterday \(hex(keys.yesterday.k0)) \(hex(keys.yesterday.k1))

            """
        try Self.writeWhole(keysPath, Array(text.utf8))
    }

    // MARK: Sessions

    /// The sessions saved at the last shutdown, at most `limit` (the session table's size); the file is deleted
    /// once read (a crash later must not bring back these sessions a second time).
    public func takeSessions(limit: Int) -> [SavedSession] {
        guard let bytes = Self.readWhole(sessionsPath, limit: Self.sessionsMagic.count + limit * Self.sessionBytes) else { return [] }
        unlink(sessionsPath)
        guard bytes.starts(with: Self.sessionsMagic) else { return [] }
        var sessions: [SavedSession] = []
        let body = bytes[Self.sessionsMagic.count...]
        sessions.reserveCapacity(body.count / Self.sessionBytes)
        body.withUnsafeBytes { raw in
            var offset = 0
            while offset + Self.sessionBytes <= raw.count {
                sessions.append(SavedSession(
                    visitor: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)),
                    session: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)),
                    lastSeen: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 16, as: UInt32.self)),
                    channel: raw[offset + 20]))
                offset += Self.sessionBytes
            }
        }
        return sessions
    }

    /// Writes the open sessions (at shutdown).
    public func saveSessions(_ sessions: [SavedSession]) throws(StateFileError) {
        var bytes = Self.sessionsMagic
        bytes.reserveCapacity(bytes.count + sessions.count * Self.sessionBytes)
        for saved in sessions {
            withUnsafeBytes(of: saved.visitor.littleEndian) { bytes.append(contentsOf: $0) }
            withUnsafeBytes(of: saved.session.littleEndian) { bytes.append(contentsOf: $0) }
            withUnsafeBytes(of: saved.lastSeen.littleEndian) { bytes.append(contentsOf: $0) }
            bytes.append(saved.channel)
        }
        try Self.writeWhole(sessionsPath, bytes)
    }

    // MARK: Visits

    /// The visits the shipper kept current in ClickHouse, as saved at the last shutdown (``VisitLedger/saved()``);
    /// the file is deleted once read.
    public var visitsPath: String { directory + "/visits" }

    public func takeVisits(limit: Int) -> [UInt8] {
        guard let bytes = Self.readWhole(visitsPath, limit: limit) else { return [] }
        unlink(visitsPath)
        return bytes
    }

    public func saveVisits(_ bytes: [UInt8]) throws(StateFileError) {
        try Self.writeWhole(visitsPath, bytes)
    }

    // MARK: Files

    /// Why a state file could not be written, in the system's words.
    public struct StateFileError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Replaces `path` whole (``FileReplacement``), in this type's error.
    static func writeWhole(_ path: String, _ bytes: [UInt8]) throws(StateFileError) {
        do {
            try FileReplacement.replace(path, with: bytes)
        } catch {
            throw StateFileError(description: error.description)
        }
    }

    /// The whole file, or nil when it does not exist, cannot be read or is longer than `limit` bytes.
    static func readWhole(_ path: String, limit: Int) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_size >= 0, info.st_size <= limit else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var offset = 0
        while offset < bytes.count {
            let result = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if result < 0 && errno == EINTR { continue }
            guard result > 0 else { return nil }
            offset += result
        }
        return bytes
    }
}
