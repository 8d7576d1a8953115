import Compression
import NIOCore
import NIOHTTP1
import NIOPosix
import RequestTarget

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the static handler needs to know about a request.
public struct StaticRequest: Sendable {
    /// GET or HEAD; anything else is answered 405.
    public var method: HTTPMethod
    /// The percent-encoded path (no query), already stripped of the route prefix when the route says so.
    public var path: Substring
    /// The query string without `?`, kept for redirects.
    public var query: Substring?
    /// Request headers (conditionals, Range, Accept-Encoding).
    public var headers: RequestHeaderSummary

    /// A HEAD request (matched by case: `==` on `HTTPMethod` compares raw-value strings).
    var isHead: Bool { if case .HEAD = method { true } else { false } }

    /// Creates a request description.
    public init(method: HTTPMethod, path: Substring, query: Substring?, headers: RequestHeaderSummary) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
    }
}

/// An open file region to send; whoever sends it closes the handle.
public struct FileBody: Sendable {
    /// The open file.
    public var handle: NIOFileHandle
    /// First byte to send.
    public var offset: Int
    /// Number of bytes to send.
    public var length: Int
}

/// The answer of the static handler.
public struct StaticResponse: Sendable {
    /// The body to send.
    public enum Body: Sendable {
        case empty
        case buffer(ByteBuffer)
        case file(FileBody)
    }

    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: Body
    /// For error answers, a short reason the edge renders as the body.
    public var errorReason: String?
    /// For full answers from the cache: which cached file and variant (index 0 is identity), so the edge can reuse
    /// headers it already completed with Date and Server within the same second.
    public var cachedVariant: (file: CachedFile, variant: Int)?

    static func error(_ status: HTTPResponseStatus, _ reason: String, headers: HTTPHeaders = [:]) -> StaticResponse {
        StaticResponse(status: status, headers: headers, body: .empty, errorReason: reason)
    }
}

/// Either an answer ready now (a cache hit, the common case: no future is allocated) or one that needs the disk.
public enum StaticResult {
    case ready(StaticResponse)
    case pending(EventLoopFuture<StaticResponse>)
}

/// Serves one folder with the caching, conditional, range and compression behaviour users expect from nginx and
/// Caddy. Every disk access runs on the blocking thread pool; cache hits are answered on the event loop.
public final class StaticFileServer: Sendable {
    /// The route's settings.
    public let configuration: StaticConfiguration
    /// The real path of the root (symlinks resolved), the boundary requests may not leave.
    public let rootRealPath: String
    let cache: FileCache
    let cacheSettings: StaticCacheConfiguration
    let threadPool: NIOThreadPool
    let namespace: Int
    let validityNanoseconds: UInt64

    /// Creates a server for a route. Fails when the root folder cannot be resolved.
    public init(
        configuration: StaticConfiguration, cache: FileCache, cacheSettings: StaticCacheConfiguration,
        threadPool: NIOThreadPool
    ) throws {
        guard let real = realpath(configuration.root, nil) else {
            throw IOError(errnoCode: errno, reason: "realpath(\(configuration.root))")
        }
        rootRealPath = String(cString: real)
        free(real)
        self.configuration = configuration
        self.cache = cache
        self.cacheSettings = cacheSettings
        self.threadPool = threadPool
        // Routes with different compression settings must not share entries for the same file.
        let codings = configuration.compress.map(\.token).joined(separator: ",")
        namespace = cache.namespace(for: "\(codings)|\(configuration.precompressed)|\(configuration.compressMinSize)|"
            + "\(configuration.cacheControl ?? "")|\(configuration.index)|\(configuration.browse)|\(rootRealPath)|"
            + "\(configuration.tryFiles)")
        validityNanoseconds = UInt64(max(0, TimeAmount(cacheSettings.validity).nanoseconds))
    }

    /// Answers a request.
    public func respond(to request: StaticRequest, on eventLoop: any EventLoop) -> StaticResult {
        switch request.method {
        case .GET, .HEAD: break
        default: return .ready(.error(.methodNotAllowed, "only GET and HEAD are allowed here", headers: ["Allow": "GET, HEAD"]))
        }
        // Most paths are already normal (no dot segments, escapes or double slashes): use them as the key as they
        // are and only normalize on a miss.
        var normalized: RequestPath?
        let keyPath: String
        if RequestPath.isAlreadyNormal(request.path) {
            keyPath = String(request.path)
        } else {
            switch RequestPath.normalize(request.path) {
            case .success(let path):
                if !configuration.hiddenFiles && path.hasHiddenSegment {
                    return .ready(.error(.notFound, "not found"))
                }
                normalized = path
                keyPath = path.encoded(trailingSlash: path.hasTrailingSlash)
            case .failure(let rejection):
                return .ready(.error(.badRequest, rejection.rawValue))
            }
        }
        let key = FileCache.Key(namespace: namespace, path: keyPath)
        switch cache.lookup(key, now: NIODeadline.now().uptimeNanoseconds, validity: validityNanoseconds) {
        case .hit(let file, let needsRevalidation):
            if needsRevalidation { revalidate(key: key, file: file, on: eventLoop) }
            return .ready(Self.answer(request, from: file))
        case .miss:
            break
        }
        let path: RequestPath
        switch normalized.map(Result.success) ?? RequestPath.normalize(request.path) {
        case .success(let value): path = value
        case .failure(let rejection): return .ready(.error(.badRequest, rejection.rawValue))
        }
        let query = request.query.map(String.init)
        let acceptEncoding = request.headers.acceptEncoding
        let future = threadPool.runIfActive(eventLoop: eventLoop) { [self] in
            if configuration.tryFiles.isEmpty {
                return try self.resolve(path, key: key, query: query, acceptEncoding: acceptEncoding)
            }
            return try self.resolveTrying(path, key: key, query: query, acceptEncoding: acceptEncoding)
        }
        return .pending(future.map { resolution in
            switch resolution {
            case .cached(let file): return Self.answer(request, from: file)
            case .large(let large): return Self.answer(request, from: large)
            case .response(let response): return response
            }
        }.flatMapErrorThrowing { _ in .error(.internalServerError, "the file could not be read") })
    }

    // MARK: - Answers from metadata (event loop)

    static func answer(_ request: StaticRequest, from file: CachedFile) -> StaticResponse {
        switch Preconditions.evaluate(
            method: request.method, headers: request.headers, validators: file.validators, variantTags: file.variantTags)
        {
        case .notModified:
            let coding = AcceptEncoding.choose(request.headers.acceptEncoding, available: file.availableCodings)
            return notModified(file.variant(for: coding).headers)
        case .preconditionFailed:
            return .error(.preconditionFailed, "precondition failed")
        case .proceed:
            break
        }
        switch rangeDecision(request, validators: file.validators, size: file.identity.body.readableBytes) {
        case .full:
            break
        case .refused(let response):
            return response
        case .partial(let range, let size):
            let body = file.identity.body
            let slice = body.getSlice(at: body.readerIndex + range.lowerBound, length: range.count)!
            return StaticResponse(
                status: .partialContent, headers: partialHeaders(file.identity.headers, range: range, size: size),
                body: .buffer(slice))
        }
        var variantIndex = 0
        if !file.encoded.isEmpty, let coding = AcceptEncoding.choose(request.headers.acceptEncoding, available: file.availableCodings),
            let position = file.availableCodings.firstIndex(of: coding)
        {
            variantIndex = position + 1
        }
        let variant = variantIndex == 0 ? file.identity : file.encoded[variantIndex - 1]
        var response = StaticResponse(
            status: .ok, headers: variant.headers, body: request.isHead ? .empty : .buffer(variant.body))
        response.cachedVariant = (file, variantIndex)
        return response
    }

    static func answer(_ request: StaticRequest, from large: LargeFile) -> StaticResponse {
        var close = true
        defer { if close { try? large.handle.close() } }
        switch Preconditions.evaluate(method: request.method, headers: request.headers, validators: large.validators) {
        case .notModified: return notModified(large.headers)
        case .preconditionFailed: return .error(.preconditionFailed, "precondition failed")
        case .proceed: break
        }
        var headers = large.headers
        var status = HTTPResponseStatus.ok
        var offset = 0, length = large.size
        // A precompressed sibling is a different representation: ranges apply to the identity only.
        if large.coding == nil {
            switch rangeDecision(request, validators: large.validators, size: large.size) {
            case .full:
                break
            case .refused(let response):
                return response
            case .partial(let range, let size):
                status = .partialContent
                offset = range.lowerBound
                length = range.count
                headers = partialHeaders(headers, range: range, size: size)
            }
        }
        if request.isHead { return StaticResponse(status: status, headers: headers, body: .empty) }
        close = false
        return StaticResponse(
            status: status, headers: headers, body: .file(FileBody(handle: large.handle, offset: offset, length: length)))
    }

    enum RangeDecision {
        case full
        case partial(ClosedRange<Int>, size: Int)
        case refused(StaticResponse)
    }

    /// Which part of a representation of `size` bytes a request gets: all of it, one range (GET with a Range header
    /// that If-Range allows), or a 416.
    static func rangeDecision(_ request: StaticRequest, validators: Validators, size: Int) -> RangeDecision {
        guard case .GET = request.method, let header = request.headers.range,
            Preconditions.ifRangeAllowsPartial(headers: request.headers, validators: validators)
        else { return .full }
        switch ByteRange.evaluate(header, size: size) {
        case .full: return .full
        case .partial(let range): return .partial(range, size: size)
        case .unsatisfiable:
            return .refused(.error(.rangeNotSatisfiable, "range not satisfiable", headers: ["Content-Range": "bytes */\(size)"]))
        }
    }

    /// The full answer's headers adjusted for a 206.
    static func partialHeaders(_ full: HTTPHeaders, range: ClosedRange<Int>, size: Int) -> HTTPHeaders {
        var headers = full
        headers.replaceOrAdd(name: "Content-Length", value: String(range.count))
        headers.add(name: "Content-Range", value: "bytes \(range.lowerBound)-\(range.upperBound)/\(size)")
        return headers
    }

    static func notModified(_ full: HTTPHeaders) -> StaticResponse {
        var headers = HTTPHeaders()
        for name in ["ETag", "Last-Modified", "Cache-Control", "Vary"] {
            if let value = full.first(name: name) { headers.add(name: name, value: value) }
        }
        return StaticResponse(status: .notModified, headers: headers, body: .empty)
    }

    // MARK: - Disk (blocking pool)

    struct LargeFile: Sendable {
        var handle: NIOFileHandle
        var size: Int
        var coding: ContentCoding?
        var validators: Validators
        var headers: HTTPHeaders
    }

    enum Resolution: Sendable {
        case cached(CachedFile)
        case large(LargeFile)
        case response(StaticResponse)
    }

    /// `try_files`: the first candidate that exists answers (cached under the request's key, so the next request
    /// for the path is a cache hit); none: 404. Runs on the blocking pool.
    func resolveTrying(_ path: RequestPath, key: FileCache.Key, query: String?, acceptEncoding: String?) throws -> Resolution {
        let requested = path.encoded(trailingSlash: path.hasTrailingSlash)
        for candidate in configuration.tryFiles {
            let text = candidate.replacingOccurrences(of: "{path}", with: requested)
            guard case .success(let tried) = RequestPath.normalize(Substring(text)),
                configuration.hiddenFiles || !tried.hasHiddenSegment
            else { continue }
            let full = rootRealPath + (tried.segments.isEmpty ? "" : "/" + tried.relative)
            guard let info = statFile(full) else { continue }
            if tried.hasTrailingSlash || tried.segments.isEmpty {
                // A folder is taken when it has an index (or may be listed).
                guard info.isDirectory,
                    configuration.browse || configuration.index.contains(where: { statFile(full + "/" + $0)?.isRegular == true })
                else { continue }
            } else if !info.isRegular {
                continue
            }
            return try resolve(tried, key: key, query: query, acceptEncoding: acceptEncoding)
        }
        return .response(.error(.notFound, "not found"))
    }

    /// Maps a normalized path to a file and loads it. Runs on the blocking pool.
    func resolve(_ path: RequestPath, key: FileCache.Key, query: String?, acceptEncoding: String?) throws -> Resolution {
        var full = rootRealPath + (path.segments.isEmpty ? "" : "/" + path.relative)
        guard var info = statFile(full) else { return .response(.error(.notFound, "not found")) }
        if info.isDirectory {
            guard path.hasTrailingSlash else {
                var location = path.encoded(trailingSlash: true)
                if let query { location += "?" + query }
                return .response(
                    StaticResponse(status: .movedPermanently, headers: ["Location": location], body: .empty,
                                   errorReason: "moved to \(location)"))
            }
            var found: (String, FileInfo)?
            for name in configuration.index {
                let candidate = full + "/" + name
                if let candidateInfo = statFile(candidate), candidateInfo.isRegular {
                    found = (candidate, candidateInfo)
                    break
                }
            }
            guard let found else {
                if configuration.browse, isInsideRoot(full) {
                    return .response(DirectoryListing.render(directory: full, requestPath: path))
                }
                return .response(.error(.notFound, "not found"))
            }
            (full, info) = found
        }
        guard info.isRegular else { return .response(.error(.notFound, "not found")) }
        guard isInsideRoot(full) else { return .response(.error(.forbidden, "forbidden")) }
        let contentType = MediaTypes.type(forPath: full)

        if info.size <= cacheSettings.maxFileSize {
            let body = try readWholeFile(full)
            var compressed: [(ContentCoding, ByteBuffer)] = []
            let compressible = MediaTypes.isCompressible(contentType)
            for coding in ContentCoding.allCases {
                if configuration.precompressed, let sibling = statFile(full + coding.fileExtension), sibling.isRegular,
                    sibling.size <= cacheSettings.maxFileSize, let bytes = try? readWholeFile(full + coding.fileExtension)
                {
                    compressed.append((coding, bytes))
                } else if compressible, configuration.compress.contains(coding),
                    body.readableBytes >= configuration.compressMinSize,
                    let bytes = Compressor.compress(body, coding: coding)
                {
                    compressed.append((coding, bytes))
                }
            }
            let file = CachedFile(
                path: full, fingerprint: info.fingerprint, contentType: contentType, body: body,
                compressed: compressed, cacheControl: configuration.cacheControl)
            cache.insert(key, file, now: NIODeadline.now().uptimeNanoseconds)
            return .cached(file)
        }

        // Too large to cache: stream it, preferring a precompressed sibling the client accepts.
        var servedPath = full
        var servedInfo = info
        var coding: ContentCoding?
        if configuration.precompressed {
            let siblings = ContentCoding.allCases.compactMap { coding -> (ContentCoding, FileInfo)? in
                guard let sibling = statFile(full + coding.fileExtension), sibling.isRegular else { return nil }
                return (coding, sibling)
            }
            if let chosen = AcceptEncoding.choose(acceptEncoding, available: siblings.map(\.0)),
                let sibling = siblings.first(where: { $0.0 == chosen })
            {
                coding = chosen
                servedPath = full + chosen.fileExtension
                servedInfo = sibling.1
            }
        }
        let descriptor = open(servedPath, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return .response(.error(.forbidden, "forbidden")) }
        let lastModified = info.fingerprint.modifiedNanoseconds / 1_000_000_000
        var tag = "\(String(lastModified, radix: 16))-\(String(info.size, radix: 16))"
        if let coding { tag += "-\(coding.token)" }
        let validators = Validators(etag: "\"\(tag)\"", lastModified: lastModified)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(servedInfo.size))
        headers.add(name: "Last-Modified", value: HTTPDate.format(epochSeconds: lastModified))
        headers.add(name: "ETag", value: validators.etag)
        if let coding { headers.add(name: "Content-Encoding", value: coding.token) } else {
            headers.add(name: "Accept-Ranges", value: "bytes")
        }
        if configuration.precompressed { headers.add(name: "Vary", value: "Accept-Encoding") }
        if let cacheControl = configuration.cacheControl { headers.add(name: "Cache-Control", value: cacheControl) }
        return .large(LargeFile(
            handle: NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: descriptor), size: servedInfo.size,
            coding: coding, validators: validators, headers: headers))
    }

    private func revalidate(key: FileCache.Key, file: CachedFile, on eventLoop: any EventLoop) {
        let cache = self.cache
        threadPool.submit { state in
            guard case .active = state else { return }
            let current = statFile(file.path)?.fingerprint
            cache.finishRevalidation(
                key, file: file, stillCurrent: current == file.fingerprint, now: NIODeadline.now().uptimeNanoseconds)
        }
    }

    /// Whether `path` resolves (symlinks followed) to a place inside the root, or symlinks may leave it anyway.
    func isInsideRoot(_ path: String) -> Bool {
        if configuration.allowSymlinksOutsideRoot { return true }
        guard let real = realpath(path, nil) else { return false }
        defer { free(real) }
        let resolved = String(cString: real)
        return resolved == rootRealPath || resolved.hasPrefix(rootRealPath == "/" ? "/" : rootRealPath + "/")
    }
}

// MARK: - Small POSIX helpers (blocking; thread pool only)

struct FileInfo {
    var isDirectory: Bool
    var isRegular: Bool
    var size: Int
    var fingerprint: CachedFile.Fingerprint
}

func statFile(_ path: String) -> FileInfo? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    let kind = info.st_mode & S_IFMT
    let modified = Int(info.st_mtim.tv_sec) * 1_000_000_000 + Int(info.st_mtim.tv_nsec)
    return FileInfo(
        isDirectory: kind == S_IFDIR, isRegular: kind == S_IFREG, size: Int(info.st_size),
        fingerprint: .init(
            device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int(info.st_size),
            modifiedNanoseconds: modified))
}

func readWholeFile(_ path: String) throws -> ByteBuffer {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { throw IOError(errnoCode: errno, reason: "open") }
    defer { close(descriptor) }
    var info = stat()
    guard fstat(descriptor, &info) == 0 else { throw IOError(errnoCode: errno, reason: "fstat") }
    let size = Int(info.st_size)
    var buffer = ByteBufferAllocator().buffer(capacity: size)
    while buffer.readableBytes < size {
        let wanted = size - buffer.readableBytes
        let count = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: wanted) { target in
            let result = read(descriptor, target.baseAddress, min(target.count, wanted))
            if result < 0 { throw IOError(errnoCode: errno, reason: "read") }
            return result
        }
        if count == 0 { break }
    }
    return buffer
}
