/// File extension to media type, plus which types are worth compressing.
public enum MediaTypes {
    static let table: [String: String] = [
        "html": "text/html; charset=utf-8", "htm": "text/html; charset=utf-8",
        "css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8",
        "mjs": "text/javascript; charset=utf-8", "json": "application/json", "map": "application/json",
        "webmanifest": "application/manifest+json", "xml": "application/xml", "rss": "application/rss+xml",
        "atom": "application/atom+xml", "txt": "text/plain; charset=utf-8", "md": "text/markdown; charset=utf-8",
        "csv": "text/csv; charset=utf-8", "ics": "text/calendar",
        "svg": "image/svg+xml", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
        "webp": "image/webp", "avif": "image/avif", "ico": "image/x-icon", "bmp": "image/bmp", "tif": "image/tiff",
        "tiff": "image/tiff",
        "woff": "font/woff", "woff2": "font/woff2", "ttf": "font/ttf", "otf": "font/otf",
        "eot": "application/vnd.ms-fontobject",
        "mp3": "audio/mpeg", "ogg": "audio/ogg", "oga": "audio/ogg", "wav": "audio/wav", "flac": "audio/flac",
        "m4a": "audio/mp4", "mp4": "video/mp4", "m4v": "video/mp4", "webm": "video/webm", "ogv": "video/ogg",
        "mov": "video/quicktime",
        "pdf": "application/pdf", "zip": "application/zip", "gz": "application/gzip", "br": "application/x-brotli",
        "tar": "application/x-tar", "7z": "application/x-7z-compressed", "wasm": "application/wasm",
        "bin": "application/octet-stream", "exe": "application/octet-stream", "dmg": "application/octet-stream",
        "iso": "application/octet-stream", "deb": "application/vnd.debian.binary-package",
        "apk": "application/vnd.android.package-archive", "epub": "application/epub+zip",
        "yaml": "application/yaml", "yml": "application/yaml", "toml": "application/toml",
    ]

    /// The media type for a file name, `application/octet-stream` when unknown.
    public static func type(forPath path: String) -> String {
        guard let dot = path.lastIndex(of: "."), !path[dot...].contains("/") else {
            return "application/octet-stream"
        }
        return table[path[path.index(after: dot)...].lowercased()] ?? "application/octet-stream"
    }

    /// Whether an answer of this type is a page (`text/html`, parameters aside): what a page view needs.
    public static func isHTML(_ contentType: String) -> Bool {
        contentType.utf8.starts(with: "text/html".utf8)
    }

    /// Whether compressing a body of this type pays off (text-like formats do; images, video and archives do not).
    public static func isCompressible(_ contentType: String) -> Bool {
        if contentType.hasPrefix("text/") { return true }
        let essence = contentType.split(separator: ";").first.map(String.init) ?? contentType
        switch essence {
        case "application/json", "application/manifest+json", "application/xml", "application/rss+xml",
            "application/atom+xml", "image/svg+xml", "application/wasm", "application/yaml", "application/toml",
            "font/ttf", "font/otf", "application/vnd.ms-fontobject", "image/x-icon", "image/bmp":
            return true
        default:
            return false
        }
    }
}
