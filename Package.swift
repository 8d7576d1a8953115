// swift-tools-version:6.0
import PackageDescription

// MARK: - Dependencies

let nioCore: Target.Dependency = .product(name: "NIOCore", package: "swift-nio")
let nioPosix: Target.Dependency = .product(name: "NIOPosix", package: "swift-nio")
let nioHTTP1: Target.Dependency = .product(name: "NIOHTTP1", package: "swift-nio")
let nioTLS: Target.Dependency = .product(name: "NIOTLS", package: "swift-nio")
let nioSSL: Target.Dependency = .product(name: "NIOSSL", package: "swift-nio-ssl")
let nioHTTP2: Target.Dependency = .product(name: "NIOHTTP2", package: "swift-nio-http2")
let nioExtras: Target.Dependency = .product(name: "NIOExtras", package: "swift-nio-extras")
let nioWebSocket: Target.Dependency = .product(name: "NIOWebSocket", package: "swift-nio")
let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")
let metrics: Target.Dependency = .product(name: "Metrics", package: "swift-metrics")
let prometheus: Target.Dependency = .product(name: "Prometheus", package: "swift-prometheus")
let yams: Target.Dependency = .product(name: "Yams", package: "Yams")
let serviceLifecycle: Target.Dependency = .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let unixSignals: Target.Dependency = .product(name: "UnixSignals", package: "swift-service-lifecycle")
let httpClient: Target.Dependency = .product(name: "AsyncHTTPClient", package: "async-http-client")
let crypto: Target.Dependency = .product(name: "Crypto", package: "swift-crypto")
let x509: Target.Dependency = .product(name: "X509", package: "swift-certificates")
let asn1: Target.Dependency = .product(name: "SwiftASN1", package: "swift-asn1")
let nioFoundation: Target.Dependency = .product(name: "NIOFoundationCompat", package: "swift-nio")
let argumentParser: Target.Dependency = .product(name: "ArgumentParser", package: "swift-argument-parser")
let heap: Target.Dependency = .product(name: "HeapModule", package: "swift-collections")

/// One set of compiler settings for every target: Swift 6 mode and explicit existentials.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

/// The data-plane modules also skip run-time exclusivity checks in release builds: the handlers are confined to
/// one event loop by construction, and the checks cost about 4% of a small request in profiles.
let dataPlaneSettings: [SwiftSetting] = swiftSettings + [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "vantage",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "vantage", targets: ["vantage"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
    ],
    targets: [
        // MARK: - C libraries from Debian

        .systemLibrary(name: "CBrotli", pkgConfig: "libbrotlienc", providers: [.apt(["libbrotli-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CMaxMindDB", pkgConfig: "libmaxminddb", providers: [.apt(["libmaxminddb-dev"])]),
        .systemLibrary(name: "CPCRE2", pkgConfig: "libpcre2-8", providers: [.apt(["libpcre2-dev"])]),
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        .systemLibrary(name: "CNGHTTP2", pkgConfig: "libnghttp2", providers: [.apt(["libnghttp2-dev"])]),

        // MARK: - Modules

        /// YAML configuration reading: positions, key paths, did-you-mean, `${ENV}` substitution.
        .target(name: "Config", dependencies: [yams], swiftSettings: swiftSettings),
        /// Request targets as the edge decides on them: the one normal form of a path (and the file server's view of
        /// it), the target's forms, host names, method and transfer-coding rules. Pure and dependency-free (the fuzz
        /// target compiles it alone).
        .target(name: "RequestTarget", swiftSettings: dataPlaneSettings),
        /// Many regular expressions matched as one ordered set: PCRE2 (JIT) behind a literal prefilter
        /// (Aho–Corasick over each pattern's required literals). The user-agent lists run on it.
        .target(name: "RegexSet", dependencies: ["CPCRE2"], swiftSettings: dataPlaneSettings),
        /// CRC-32C by the processor's instruction (the event spool's record checksum; zlib has only CRC-32).
        .target(name: "CCRC32C"),
        /// Compression codecs (brotli, gzip) over ByteBuffer.
        .target(name: "Compression", dependencies: ["CBrotli", "CZlib", nioCore], swiftSettings: swiftSettings),
        /// The static file server: path safety, MIME, conditional and range logic, cache.
        .target(
            name: "Static",
            dependencies: ["Config", "Compression", "RequestTarget", nioCore, nioPosix, nioHTTP1, logging],
            swiftSettings: dataPlaneSettings
        ),
        /// Errors of the libraries underneath (NIO's system calls, NIOSSL's handshakes, AsyncHTTPClient) in the words of the person reading.
        .target(name: "PlainErrors", dependencies: [nioCore, nioSSL, httpClient], swiftSettings: swiftSettings),
        /// Header rules (`set`/`add`/`remove` for answers and upstream requests) and the `{placeholder}` templates
        /// they and redirects fill from the request.
        .target(name: "HeaderRules", dependencies: ["Config", nioHTTP1], swiftSettings: dataPlaneSettings),
        /// A strict, incremental HTTP/1.1 request parser on raw bytes (RFC 9112 framing, bounded).
        .target(name: "HTTP1Parser", dependencies: [nioCore, nioHTTP1], swiftSettings: dataPlaneSettings),
        /// The cheap monotonic clock progress deadlines read (the kernel's tick), shared by the edge and the proxy.
        .target(name: "Clocks", dependencies: [nioCore], swiftSettings: dataPlaneSettings),
        /// A loop's flushes coalesced to the end of its tick, so the answers of one tick leave back to back.
        .target(name: "FlushCoalescing", dependencies: [nioCore, logging, metrics], swiftSettings: dataPlaneSettings),
        /// The reverse proxy: upstream pools (plain and TLS), balancing, health checks, forwarding headers, WebSocket tunnels.
        .target(
            name: "Proxy",
            dependencies: ["Clocks", "Config", "FlushCoalescing", "HeaderRules", "HTTP1Parser", "PlainErrors", "RequestTarget", nioCore, nioPosix, nioHTTP1, nioSSL, nioTLS, logging],
            swiftSettings: dataPlaneSettings
        ),
        /// Tracking: events and their enrichment (GeoIP, user agent, source, visitors and sessions), the tracking API,
        /// the durable spool between the request path and ClickHouse, and the ClickHouse shipper.
        .target(
            name: "Tracking", dependencies: ["Config", "Compression", "PlainErrors", "RequestTarget", "CCRC32C", "CZlib", "CMaxMindDB", "CLZ4", "RegexSet", nioCore, nioPosix, nioHTTP1, logging, httpClient, crypto, heap],
            swiftSettings: dataPlaneSettings),
        /// Rate limiting as pure values (GCRA rates, daily quotas, bounded key tables): no I/O, injected clock.
        .target(name: "RateLimit", swiftSettings: dataPlaneSettings),
        /// ACME (RFC 8555): the client, HTTP-01 answers, certificate storage with locks, renewal.
        .target(
            name: "ACME",
            dependencies: ["Config", crypto, x509, asn1, httpClient, nioCore, nioHTTP1, nioSSL, nioFoundation, logging],
            swiftSettings: swiftSettings),
        /// Campaign short links: the model, the in-memory index, the journal store, the admin operations.
        .target(name: "Links", dependencies: ["Config", "Tracking", nioCore, nioPosix, logging], swiftSettings: dataPlaneSettings),
        /// The server side of an HTTP/2 connection over libnghttp2's session: bytes in, request events out, responses
        /// queued until flow control takes them.
        .target(name: "HTTP2Session", dependencies: ["CNGHTTP2", nioCore], swiftSettings: dataPlaneSettings),
        /// Composition root and data plane.
        .target(
            name: "Edge",
            dependencies: [
                "Clocks", "Config", "FlushCoalescing", "HeaderRules", "HTTP1Parser", "HTTP2Session", "Insights", "PlainErrors", "RegexSet", "RequestTarget", "Static", "Proxy", "Tracking", "Links", "RateLimit", "ACME", nioCore, nioPosix, nioHTTP1, nioTLS, nioSSL, nioHTTP2, nioExtras, nioWebSocket, logging, metrics,
                prometheus, serviceLifecycle, unixSignals, crypto,
            ],
            swiftSettings: dataPlaneSettings
        ),
        /// The thin executable.
        /// The reports people read: one query model, evaluated over the spool (and ClickHouse), rendered as JSON,
        /// tables and pages.
        .target(name: "Insights", dependencies: ["Tracking", nioCore, logging], swiftSettings: swiftSettings),
        .executableTarget(
            name: "vantage", dependencies: ["Edge", "Tracking", "Links", "Config", "Insights", "PlainErrors", nioCore, nioPosix, logging, httpClient, argumentParser, heap],
            swiftSettings: swiftSettings, plugins: ["BuildInfo"]),
        /// The commit being built, for `vantage --version` (a prebuild command running git).
        .plugin(name: "BuildInfo", capability: .buildTool(), path: "Plugins/BuildInfo"),

        /// Microseconds per user agent the cache has never seen (Benchmarks/enrichment.py runs it in release).
        .executableTarget(
            name: "ua-bench", dependencies: ["Tracking"], path: "Benchmarks/UserAgentBench", swiftSettings: swiftSettings),

        /// Nanoseconds per shipped page view for the visits table's ledger.
        .executableTarget(
            name: "ledger-bench", dependencies: ["Tracking", nioCore], path: "Benchmarks/VisitLedgerBench", swiftSettings: swiftSettings),

        /// Nanoseconds and allocations per rate-limit check (Benchmarks/ratelimit.py runs it in release).
        .executableTarget(
            name: "ratelimit-bench", dependencies: ["RateLimit", "Tracking"], path: "Benchmarks/RateLimitBench",
            swiftSettings: swiftSettings),

        // MARK: - Tests

        .testTarget(name: "ConfigTests", dependencies: ["Config"], swiftSettings: swiftSettings),
        .testTarget(name: "CompressionTests", dependencies: ["Compression", nioCore], swiftSettings: swiftSettings),
        .testTarget(name: "ProxyTests", dependencies: ["Proxy", "Config", "HTTP1Parser", nioHTTP1], swiftSettings: swiftSettings),
        .testTarget(name: "TrackingTests", dependencies: ["Tracking", "CCRC32C", nioCore, nioHTTP1, logging, crypto, .product(name: "NIOEmbedded", package: "swift-nio")], swiftSettings: swiftSettings),
        .testTarget(name: "RateLimitTests", dependencies: ["RateLimit"], swiftSettings: swiftSettings),
        .testTarget(
            name: "HTTP2SessionTests", dependencies: ["HTTP2Session", nioCore, .product(name: "NIOEmbedded", package: "swift-nio")],
            swiftSettings: swiftSettings),
        .testTarget(name: "HTTP1ParserTests", dependencies: ["HTTP1Parser", nioCore, nioHTTP1, .product(name: "NIOEmbedded", package: "swift-nio")], swiftSettings: swiftSettings),
        .testTarget(name: "HeaderRulesTests", dependencies: ["HeaderRules", "Config", nioHTTP1], swiftSettings: swiftSettings),
        .testTarget(name: "RegexSetTests", dependencies: ["RegexSet"], swiftSettings: swiftSettings),
        .testTarget(name: "InsightsTests", dependencies: ["Insights", "Tracking"], swiftSettings: swiftSettings),
        .testTarget(name: "RequestTargetTests", dependencies: ["RequestTarget"], swiftSettings: swiftSettings),
        .testTarget(
            name: "FlushCoalescingTests", dependencies: ["FlushCoalescing", nioCore, logging, .product(name: "NIOEmbedded", package: "swift-nio")],
            swiftSettings: swiftSettings),
        .testTarget(name: "ACMETests", dependencies: ["ACME", "Config", crypto, x509, asn1], swiftSettings: swiftSettings),
        .testTarget(name: "LinksTests", dependencies: ["Links", "Tracking", nioCore, logging], swiftSettings: swiftSettings),
        .testTarget(name: "StaticTests", dependencies: ["Static", "RequestTarget", nioCore, nioHTTP1], swiftSettings: swiftSettings),
        .testTarget(
            name: "EdgeTests",
            dependencies: ["Edge", "Config", "HeaderRules", "HTTP1Parser", "Proxy", "RegexSet", "RequestTarget", nioCore, nioHTTP1, nioPosix, .product(name: "NIOEmbedded", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IntegrationTests", dependencies: ["vantage"], exclude: ["Backends"], swiftSettings: swiftSettings),
    ],
    swiftLanguageModes: [.v6]
)
