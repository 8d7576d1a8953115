import Compression
import Config
import Foundation

/// Settings of one `static` route.
///
/// Keys (all optional but `root`):
/// - `root`: folder to serve; a relative path is taken from the config file's folder.
/// - `index`: file names tried for a folder, default `[index.html]`.
/// - `browse`: list folders that have no index file, default false.
/// - `compress`: on-the-fly codings for compressible types, default `[br, gzip]`; `[]` turns it off.
/// - `compress_min_size`: smallest body worth compressing, default 256 bytes.
/// - `precompressed`: serve `file.br` / `file.gz` siblings when the client accepts them, default true.
/// - `cache_control`: a `Cache-Control` value added to every answer of the route.
/// - `strip_prefix`: map the path after the route prefix onto `root` (nginx `alias`), default false (nginx `root`).
/// - `hidden_files`: serve dotfiles such as `.env`, default false (`.well-known` is always served).
/// - `allow_symlinks_outside_root`: follow symlinks that lead out of `root`, default false.
/// - `try_files`: paths tried in order when a request misses (nginx's `try_files`): `{path}` is the request path,
///   a trailing `/` asks for a folder with an index, a fixed path (`/index.html`) is a fallback. None found: 404.
public struct StaticConfiguration: Sendable, Equatable {
    public var root: String
    public var index: [String] = ["index.html"]
    public var browse = false
    public var compress: [ContentCoding] = [.brotli, .gzip]
    public var compressMinSize = 256
    public var precompressed = true
    public var cacheControl: String?
    public var stripPrefix = false
    public var hiddenFiles = false
    public var allowSymlinksOutsideRoot = false
    /// `try_files` candidates, in order (empty: the request path alone).
    public var tryFiles: [String] = []

    /// Creates a configuration serving `root` with defaults for everything else.
    public init(root: String) {
        self.root = root
    }

    /// The keys this type reads.
    public static let keys = [
        "root", "index", "browse", "compress", "compress_min_size", "precompressed", "cache_control", "strip_prefix",
        "hidden_files", "allow_symlinks_outside_root", "try_files",
    ]

    /// Reads the configuration from a `static:` mapping. The root must be an existing folder.
    public init(from node: ConfigNode) throws {
        let map = try node.mapping(keys: Self.keys)
        let rootNode = try map.required("root", expected: "the folder to serve")
        root = try rootNode.path()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw rootNode.error("expected an existing folder, found \"\(root)\" which is not one")
        }
        if let value = map["index"] { index = try value.stringList() }
        if let value = map["browse"] { browse = try value.bool() }
        if let value = map["compress"] {
            compress = try value.list().map { item in
                switch try item.oneOf(["br", "brotli", "gzip"]) {
                case "gzip": return .gzip
                default: return .brotli
                }
            }
        }
        if let value = map["compress_min_size"] { compressMinSize = try value.byteSize() }
        if let value = map["precompressed"] { precompressed = try value.bool() }
        if let value = map["cache_control"] { cacheControl = try value.nonEmptyString() }
        if let value = map["strip_prefix"] { stripPrefix = try value.bool() }
        if let value = map["hidden_files"] { hiddenFiles = try value.bool() }
        if let value = map["allow_symlinks_outside_root"] { allowSymlinksOutsideRoot = try value.bool() }
        if let value = map["try_files"] {
            let items = try value.list()
            tryFiles = try value.stringList()
            if tryFiles.isEmpty { throw value.error("expected at least one path, such as [\"{path}\", \"{path}/\", \"/index.html\"]") }
            for (index, candidate) in tryFiles.enumerated() {
                let rest = candidate.replacingOccurrences(of: "{path}", with: "")
                guard candidate.hasPrefix("/") || candidate.hasPrefix("{path}"), !rest.contains("{"), !rest.contains("}"),
                    !candidate.contains("?")
                else {
                    throw items[index].error(
                        "expected a path starting with / or {path} ({path} is the only placeholder), found \"\(candidate)\"")
                }
            }
        }
    }
}

/// Settings shared by all static routes: the in-memory cache of hot files.
///
/// Keys of `static_cache:`:
/// - `max_bytes`: memory for cached files and their compressed forms, default 64MB.
/// - `max_file_size`: larger files are streamed from disk (zero-copy on plain HTTP/1.1), default 1MB.
/// - `max_entries`: number of cached files, default 10000.
/// - `validity`: how long a cached file is trusted before its metadata is checked again, default 1s.
public struct StaticCacheConfiguration: Sendable, Equatable {
    public var maxBytes = 64 << 20
    public var maxFileSize = 1 << 20
    public var maxEntries = 10_000
    public var validity: Duration = .seconds(1)

    /// Defaults.
    public init() {}

    /// The keys this type reads.
    public static let keys = ["max_bytes", "max_file_size", "max_entries", "validity"]

    /// Reads `static_cache:`.
    public init(from node: ConfigNode) throws {
        let map = try node.mapping(keys: Self.keys)
        if let value = map["max_bytes"] { maxBytes = try value.byteSize() }
        if let value = map["max_file_size"] { maxFileSize = try value.byteSize() }
        if let value = map["max_entries"] { maxEntries = try value.int(in: 1...10_000_000) }
        if let value = map["validity"] { validity = try value.duration() }
    }
}
