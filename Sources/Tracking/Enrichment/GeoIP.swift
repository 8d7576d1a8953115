import CMaxMindDB
import Foundation
import Logging
import Synchronization

/// Where an address is, as far as a GeoIP database knows.
public struct GeoLocation: Sendable, Equatable {
    /// ISO 3166-1 alpha-2 code (`DE`).
    public var country = ""
    /// The first subdivision's English name (`Bavaria`).
    public var region = ""
    public var city = ""
    /// NaN when the database has no coordinates or they are not kept.
    public var latitude = Double.nan
    public var longitude = Double.nan

    public init(country: String = "", region: String = "", city: String = "", latitude: Double = .nan, longitude: Double = .nan) {
        self.country = country
        self.region = region
        self.city = city
        self.latitude = latitude
        self.longitude = longitude
    }

    public static let unknown = GeoLocation()
}

/// An open MaxMind DB file (GeoLite2/GeoIP2 City or Country, or any database with the same layout), memory-mapped
/// by libmaxminddb. Lookups are read-only and safe from any thread.
public final class GeoIPDatabase: @unchecked Sendable {
    /// On the heap, so lookups from several threads share it without Swift's access checks on a stored struct.
    private let database: UnsafeMutablePointer<MMDB_s>
    public let path: String
    /// The file's modification time and size when it was opened (a change triggers a reload).
    let signature: FileSignature

    public struct OpenError: Error, CustomStringConvertible {
        public var description: String
    }

    public init(path: String) throws {
        self.path = path
        guard let signature = FileSignature(path: path) else {
            throw OpenError(description: "cannot read GeoIP database \(path): no such file")
        }
        self.signature = signature
        database = .allocate(capacity: 1)
        database.initialize(to: MMDB_s())
        let status = MMDB_open(path, UInt32(MMDB_MODE_MMAP), database)
        guard status == MMDB_SUCCESS else {
            database.deallocate()
            throw OpenError(description: "cannot open GeoIP database \(path): \(String(cString: MMDB_strerror(status)))")
        }
    }

    deinit {
        MMDB_close(database)
        database.deallocate()
    }

    /// The database's type as it names itself (`GeoLite2-City`).
    public var databaseType: String { String(cString: database.pointee.metadata.database_type) }

    /// The location of `address` (a textual IPv4 or IPv6 address); `.unknown` when the database has no entry.
    public func lookup(_ address: String) -> GeoLocation {
        var result = vantage_geo_result()
        let status = vantage_geo_lookup(database, address, &result)
        guard status == 1 else { return .unknown }
        func text<T>(_ tuple: inout T) -> String {
            withUnsafePointer(to: &tuple) { $0.withMemoryRebound(to: CChar.self, capacity: MemoryLayout<T>.size) { String(cString: $0) } }
        }
        var location = GeoLocation(country: text(&result.country), region: text(&result.region), city: text(&result.city))
        if result.has_location != 0 {
            location.latitude = result.latitude
            location.longitude = result.longitude
        }
        return location
    }
}

/// Identifies a version of a file by modification time and size.
struct FileSignature: Equatable {
    var modified: Int
    var modifiedNanoseconds: Int
    var size: Int

    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        modified = info.st_mtim.tv_sec
        modifiedNanoseconds = info.st_mtim.tv_nsec
        size = Int(info.st_size)
    }
}

/// The configured GeoIP database (`tracking.geoip`), replaced when its file changes or a reload names another one.
/// Loops read ``current`` through their ``Enricher``, which notices a new ``generation`` and drops its cached
/// answers.
public final class GeoIPSource: Sendable {
    struct State {
        var path: String?
        var keepCoordinates: Bool
        var database: GeoIPDatabase?
    }

    private let state: Mutex<State>
    private let generationCounter = Atomic<Int>(0)
    private let logger: Logger

    /// Opens the database at `path` (none: locations stay empty); a missing or broken file is a configuration error
    /// at start (reported before listening). `keepCoordinates` keeps latitude and longitude (off by default: a city
    /// is precise enough for analytics).
    public init(path: String?, keepCoordinates: Bool, logger: Logger) throws {
        self.logger = logger
        let opened = try path.map { try GeoIPDatabase(path: $0) }
        state = Mutex(State(path: path, keepCoordinates: keepCoordinates, database: opened))
        if let opened, let path { logger.info("geoip: \(opened.databaseType) from \(path)") }
    }

    /// No database: locations stay empty until a reload names one.
    public init(logger: Logger) {
        self.logger = logger
        state = Mutex(State(path: nil, keepCoordinates: false, database: nil))
    }

    /// Bumped each time a new file or setting is installed.
    public var generation: Int { generationCounter.load(ordering: .acquiring) }

    public var current: GeoIPDatabase? { state.withLock { $0.database } }

    public var keepCoordinates: Bool { state.withLock { $0.keepCoordinates } }

    public var path: String? { state.withLock { $0.path } }

    /// Opens the database a reload names (blocking: off the loops), so a bad file refuses the reload before
    /// anything changed; nil when the path stays or there is none.
    public func open(forReloadTo path: String?) throws -> GeoIPDatabase? {
        guard let path, path != self.path else { return nil }
        return try GeoIPDatabase(path: path)
    }

    /// Installs a reload's settings: `opened` from ``open(forReloadTo:)`` for a new path.
    public func install(path: String?, keepCoordinates: Bool, opened: GeoIPDatabase?) {
        let changed = state.withLock { state in
            guard state.path != path || state.keepCoordinates != keepCoordinates else { return false }
            if state.path != path { state.database = opened }
            state.path = path
            state.keepCoordinates = keepCoordinates
            return true
        }
        guard changed else { return }
        generationCounter.add(1, ordering: .releasing)
        logger.info("geoip: now \(path.map { "from \($0)" } ?? "off")\(keepCoordinates ? " (with coordinates)" : "")")
    }

    /// Reopens the file when its modification time or size changed (called every few seconds off the loops). A
    /// file that fails to open (half copied, say) keeps the old database serving and is tried again next time.
    public func reloadIfChanged() {
        guard let path, let signature = FileSignature(path: path), signature != current?.signature else { return }
        do {
            let opened = try GeoIPDatabase(path: path)
            let installed = state.withLock { state in
                guard state.path == path else { return false }
                state.database = opened
                return true
            }
            guard installed else { return }
            generationCounter.add(1, ordering: .releasing)
            logger.info("geoip: reloaded \(opened.databaseType) from \(path)")
        } catch {
            logger.warning("geoip: keeping the previous database: \(error)")
        }
    }
}
