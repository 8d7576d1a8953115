import Config
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// `tracking.nats`: every event, from the spool, published to a NATS subject for live consumers (the older
/// tracker's and Pushtech's queues), as an independent sink beside ClickHouse.
///
/// ```yaml
/// tracking:
///   nats:
///     url: nats://127.0.0.1:4222       # user:password@ in the URL, or the *_env keys
///     subject: vantage.events
///     user_env: NATS_USER              # optional: user and password, or a token, from the environment
///     password_env: NATS_PASSWORD
///     token_env: NATS_TOKEN
///     batch: 500                       # events per publication round
/// ```
public struct NATSConfiguration: Sendable, Equatable {
    public var url: String
    public var options: NATSConnection.Options
    public var subject = "vantage.events"
    public var batch = 500
    public var retryMin: TimeAmount = .milliseconds(200)
    public var retryMax: TimeAmount = .seconds(30)

    public static let keys = ["url", "subject", "user_env", "password_env", "token_env", "batch"]

    public init(url: String) throws {
        self.url = url
        options = try NATSConnection.Options(url: url)
    }

    public init(from node: ConfigNode) throws {
        // `nats: nats://host:4222` is short for `{ url: nats://host:4222 }`.
        let map = (try? node.string()) == nil ? try node.mapping(keys: Self.keys) : nil
        let urlNode = try map?.required("url", expected: "the server's nats://host:port") ?? node
        url = try urlNode.nonEmptyString()
        do {
            options = try NATSConnection.Options(url: url)
        } catch {
            throw urlNode.error("\(error)")
        }
        guard let map else { return }
        if let value = map["subject"] {
            subject = try value.nonEmptyString()
            // Publishing needs a literal subject: tokens without wildcards, joined by dots.
            guard subject.split(separator: ".", omittingEmptySubsequences: false).allSatisfy({ token in
                !token.isEmpty && token.utf8.allSatisfy { $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "*") && $0 != UInt8(ascii: ">") }
            }) else { throw value.error("expected a subject such as vantage.events (no wildcards, no empty tokens)") }
        }
        func secret(_ key: String) throws -> String? {
            guard let value = map[key] else { return nil }
            let variable = try value.nonEmptyString()
            guard let secret = value.environmentValue(variable), !secret.isEmpty else {
                throw value.error("expected the environment variable \(variable) to be set")
            }
            return secret
        }
        if let user = try secret("user_env") { options.user = user }
        if let password = try secret("password_env") { options.password = password }
        if let token = try secret("token_env") { options.token = token }
        if let value = map["batch"] { batch = try value.int(in: 1...10_000) }
    }
}

/// Publishes the spool's segments to NATS, each event once as its NDJSON export line with its id as
/// `Nats-Msg-Id`: with a JetStream stream on the subject, a segment counts as taken when the stream acknowledged
/// every event in it (a repeat after a failure or a restart is dropped by the stream's duplicate window); without
/// one, when the server's `PONG` came after them (core NATS keeps nothing: subscribers present get them). Failures
/// reconnect with backoff and send the segment again; ClickHouse's progress is independent (``SpoolSinks``).
final class NATSSink: Sendable {
    struct Figures {
        var published = 0
        var segments = 0
        var failures = 0
        var connected = false
        var jetStream = false
        var lastFailure: String?
    }

    private let configuration: NATSConfiguration
    private let spool: Spool
    private let sinks: SpoolSinks
    private let erased: ErasedVisitors
    private let group: any EventLoopGroup
    private let blockingPool: NIOThreadPool
    private let logger: Logger
    private let figures = Mutex(Figures())
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(
        configuration: NATSConfiguration, spool: Spool, sinks: SpoolSinks, erased: ErasedVisitors, group: any EventLoopGroup,
        blockingPool: NIOThreadPool, logger: Logger
    ) {
        self.configuration = configuration
        self.spool = spool
        self.sinks = sinks
        self.erased = erased
        self.group = group
        self.blockingPool = blockingPool
        self.logger = logger
    }

    /// Why the last attempt failed, while that is the latest word.
    var lastFailure: String? { figures.withLock { $0.lastFailure } }

    func start() {
        task.withLock { $0 = Task { await self.run() } }
    }

    func stop() async {
        let running = task.withLock { $0 }
        running?.cancel()
        await running?.value
    }

    private func run() async {
        var backoff = Backoff(minimum: configuration.retryMin, maximum: configuration.retryMax)
        var connection: NATSConnection?
        var jetStream = false
        var checkedAt = NIODeadline.uptimeNanoseconds(0)
        var lastFailureLog: NIODeadline?
        while !Task.isCancelled {
            do {
                if connection == nil {
                    connection = try await NATSConnection.connect(configuration.options, group: group)
                    checkedAt = .uptimeNanoseconds(0)
                    logger.info("nats: connected to \(configuration.options.host):\(configuration.options.port), publishing to \(configuration.subject)")
                }
                guard let current = connection else { continue }
                // A stream may be added or removed while running: looked at again every 30 seconds.
                if NIODeadline.now() - checkedAt >= .seconds(30) {
                    let found = try await current.streamExists(for: configuration.subject)
                    if found != jetStream || checkedAt == .uptimeNanoseconds(0) {
                        logger.info(found
                            ? "nats: a JetStream stream takes \(configuration.subject): each event is acknowledged"
                            : "nats: no JetStream stream takes \(configuration.subject): events go to the subscribers present (core NATS stores nothing)")
                    }
                    jetStream = found
                    checkedAt = .now()
                    figures.withLock {
                        $0.connected = true
                        $0.jetStream = found
                    }
                }
                guard let segment = sinks.pending(for: .nats).first else {
                    try await Task.sleep(nanoseconds: 100_000_000)
                    continue
                }
                let messages = try await read(segment)
                var start = 0
                while start < messages.count {
                    let end = min(messages.count, start + configuration.batch)
                    _ = try await current.publish(Array(messages[start..<end]), subject: configuration.subject, jetStream: jetStream)
                    start = end
                }
                try sinks.acknowledge([segment], by: .nats)
                backoff.reset()
                figures.withLock {
                    $0.published += messages.count
                    $0.segments += 1
                    $0.connected = true
                    $0.lastFailure = nil
                }
            } catch is CancellationError {
                break
            } catch {
                let reason = "\(error)"
                figures.withLock {
                    $0.failures += 1
                    $0.connected = false
                    $0.lastFailure = reason
                }
                if lastFailureLog.map({ NIODeadline.now() - $0 >= .seconds(60) }) ?? true {
                    lastFailureLog = .now()
                    logger.warning("nats: cannot publish (retrying with backoff; events wait in the spool): \(reason)")
                }
                await connection?.close()
                connection = nil
                let pause = backoff.next()
                try? await Task.sleep(nanoseconds: UInt64(max(0, pause.nanoseconds)))
            }
        }
        await connection?.close()
    }

    /// The segment's events as NDJSON export lines with their ids, read on the blocking pool (erased visitors'
    /// records left out).
    private func read(_ segment: Spool.Segment) async throws -> [(id: String, payload: ByteBuffer)] {
        try await blockingPool.runIfActive { [spool, erased] in
            var messages: [(id: String, payload: ByteBuffer)] = []
            messages.reserveCapacity(segment.records)
            try spool.forEachRecord(of: segment) { record in
                if erased.matches(record) { return }
                guard let event = try? EventRecord.decode(ByteBuffer(bytes: record)) else { return }
                var payload = ByteBuffer()
                event.writeJSON(into: &payload)
                messages.append((event.id.description, payload))
            }
            return messages
        }
    }

    func render(into text: inout String) {
        let figures = self.figures.withLock { $0 }
        text += "# HELP vantage_nats_events_published_total Events published to NATS and acknowledged.\n"
        text += "# TYPE vantage_nats_events_published_total counter\nvantage_nats_events_published_total \(figures.published)\n"
        text += "# HELP vantage_nats_connected 1 while the NATS sink publishes.\n"
        text += "# TYPE vantage_nats_connected gauge\nvantage_nats_connected \(figures.connected ? 1 : 0)\n"
        text += "# HELP vantage_nats_jetstream 1 when a JetStream stream acknowledges the subject's events.\n"
        text += "# TYPE vantage_nats_jetstream gauge\nvantage_nats_jetstream \(figures.jetStream ? 1 : 0)\n"
        text += "# TYPE vantage_nats_failures_total counter\nvantage_nats_failures_total \(figures.failures)\n"
        text += "# HELP vantage_nats_pending_segments Sealed spool segments not yet published to NATS.\n"
        text += "# TYPE vantage_nats_pending_segments gauge\nvantage_nats_pending_segments \(sinks.pending(for: .nats).count)\n"
    }
}
