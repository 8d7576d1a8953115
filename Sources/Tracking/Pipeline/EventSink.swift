import Logging
import NIOCore
import Synchronization

/// Where a pipeline's events go: the ClickHouse client and shipper, or nothing (the events stay in the spool).
/// A reload that changes `tracking.clickhouse` replaces them: the new shipper starts only once the old one stopped,
/// so two shippers never read the spool at once, and queued events go to the new sink. The consent history and
/// `vantage` queries read through it too, so they follow the sink in use.
final class EventSink: Sendable {
    private struct State {
        var clickHouse: ClickHouseConfiguration?
        var client: ClickHouseClient?
        var shipper: Shipper?
        var task: Task<Void, Never>?
        /// Set by ``start()``: a sink installed before it waits for it.
        var started = false
    }

    private let state = Mutex(State())

    /// Why the last ClickHouse call failed, while that is the latest word; nil without ClickHouse or when it answers.
    var clickHouseFailure: String? { state.withLock { $0.shipper }?.lastFailure }
    /// Whether a shipper runs (the loops' seal timers read it on every tick).
    private let running = Atomic<Bool>(false)
    private let group: any EventLoopGroup
    private let makeShipper: @Sendable (ClickHouseConfiguration, ClickHouseClient) -> Shipper
    private let logger: Logger

    /// A sink for `clickHouse` (none: the spool only), not yet shipping.
    init(
        clickHouse: ClickHouseConfiguration?, group: any EventLoopGroup, logger: Logger,
        makeShipper: @escaping @Sendable (ClickHouseConfiguration, ClickHouseClient) -> Shipper
    ) {
        self.group = group
        self.logger = logger
        self.makeShipper = makeShipper
        state.withLock { $0 = make(clickHouse) }
    }

    private func make(_ clickHouse: ClickHouseConfiguration?) -> State {
        guard let clickHouse else { return State() }
        let client = ClickHouseClient(configuration: clickHouse, group: group)
        return State(clickHouse: clickHouse, client: client, shipper: makeShipper(clickHouse, client))
    }

    var isShipping: Bool { running.load(ordering: .relaxed) }

    /// The shipper in use, if any.
    var shipper: Shipper? { state.withLock { $0.shipper } }

    /// Starts shipping.
    func start() {
        state.withLock { state in
            state.started = true
            state.task = state.shipper.map { shipper in Task { await shipper.run() } }
            running.store(state.shipper != nil, ordering: .relaxed)
        }
    }

    /// Replaces the sink with one for `clickHouse`: the running shipper is cancelled (a batch in flight is sent
    /// again later) and the new one starts once it stopped.
    func replace(with clickHouse: ClickHouseConfiguration?) {
        var fresh = make(clickHouse)
        running.store(false, ordering: .relaxed)
        state.withLock { state in
            let previous = state
            previous.task?.cancel()
            let shipper = previous.started ? fresh.shipper : nil
            fresh.started = previous.started
            fresh.task = Task { [self] in
                await previous.task?.value
                await previous.client?.shutdown()
                guard let shipper, !Task.isCancelled else { return }
                running.store(true, ordering: .relaxed)
                await shipper.run()
            }
            state = fresh
        }
        logger.notice("tracking: events now go to \(clickHouse.map { $0.endpoints.joined(separator: ", ") } ?? "the spool only (no ClickHouse)")")
    }

    /// Stops shipping and closes the client.
    func stop() async {
        let current = state.withLock { $0 }
        current.task?.cancel()
        await current.task?.value
        await current.client?.shutdown()
    }

    /// The ClickHouse sink in use (its client and settings), if any: reports read through it.
    var clickHouse: (client: ClickHouseClient, configuration: ClickHouseConfiguration)? {
        state.withLock { state in state.client.flatMap { client in state.clickHouse.map { (client, $0) } } }
    }

    /// Runs a read query against the events table (`{table}` stands for it); nil without ClickHouse.
    func query(_ sql: String) async throws -> String? {
        let current = state.withLock { $0 }
        guard let client = current.client, let clickHouse = current.clickHouse else { return nil }
        let table = "\(clickHouse.database).\(clickHouse.table)"
        return try await client.query(sql.replacingOccurrences(of: "{table}", with: table), logger: logger)
    }
}
