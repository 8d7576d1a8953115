import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import PlainErrors
import Synchronization

/// Active health checks for one upstream: `GET path` on a fresh connection (TLS for `https://`) every interval; `fails` failures in a
/// row take the upstream out, `passes` successes bring it back. Runs on one event loop; a check never blocks it.
final class HealthChecker: Sendable {
    let target: UpstreamTarget
    let settings: ProxyConfiguration.HealthCheckSettings
    private let eventLoop: any EventLoop
    private let logger: Logger
    private let task = Mutex<RepeatedTask?>(nil)
    private let streak = Mutex((passes: 0, fails: 0))

    init(target: UpstreamTarget, settings: ProxyConfiguration.HealthCheckSettings, eventLoop: any EventLoop, logger: Logger) {
        self.target = target
        self.settings = settings
        self.eventLoop = eventLoop
        self.logger = logger
    }

    func start() {
        let repeated = eventLoop.scheduleRepeatedAsyncTask(
            initialDelay: .zero, delay: TimeAmount(settings.interval)
        ) { [self] _ in
            check().map { outcome in self.record(outcome) }
        }
        task.withLock { $0 = repeated }
    }

    func stop() {
        task.withLock { task in
            task?.cancel()
            task = nil
        }
    }

    private func record(_ result: Result<Int, any Error>) {
        let healthy: Bool
        switch result {
        case .success(let status): healthy = settings.expectStatus.contains(status)
        case .failure: healthy = false
        }
        if !healthy { target.healthCheckFailures.add(1, ordering: .relaxed) }
        let (passes, fails) = streak.withLock { streak in
            if healthy {
                streak.passes += 1
                streak.fails = 0
            } else {
                streak.fails += 1
                streak.passes = 0
            }
            return streak
        }
        if healthy && passes >= settings.passes {
            if target.setChecked(healthy: true) { logger.notice("upstream \(target.address) passed its health check: back in service") }
        } else if !healthy && fails >= settings.fails {
            if target.setChecked(healthy: false) {
                let detail: String
                switch result {
                case .success(let status): detail = "status \(status)"
                case .failure(let error): detail = UserFacingError.describe(error)
                }
                logger.warning("upstream \(target.address) failed its health check (\(detail)): out of service")
            }
        }
    }

    /// One check; the future never fails, it carries the outcome.
    private func check() -> EventLoopFuture<Result<Int, any Error>> {
        let promise = eventLoop.makePromise(of: Int.self)
        let path = settings.path
        let host = target.address.authority
        let target = self.target
        var bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(TimeAmount(settings.timeout))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls = target.tls {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tls.context, serverHostname: target.serverName))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(HealthProbeHandler(path: path, host: host, promise: promise))
                }
            }
        if target.address.socketAddress.protocol != .unix {
            bootstrap = bootstrap.channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
        }
        let connecting = bootstrap.connect(to: target.address.socketAddress)
        connecting.whenFailure { promise.fail($0) }
        let timeout = eventLoop.scheduleTask(in: TimeAmount(settings.timeout)) {
            promise.fail(ChannelError.connectTimeout(TimeAmount(self.settings.timeout)))
        }
        return promise.futureResult.always { _ in
            timeout.cancel()
            connecting.whenSuccess { $0.close(promise: nil) }
        }.map { .success($0) }.recover { .failure($0) }
    }
}

/// Sends one `GET` and reports the status code.
private final class HealthProbeHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let path: String
    private let host: String
    private let promise: EventLoopPromise<Int>

    init(path: String, host: String, promise: EventLoopPromise<Int>) {
        self.path = path
        self.host = host
        self.promise = promise
    }

    func channelActive(context: ChannelHandlerContext) {
        let headers: HTTPHeaders = ["Host": host, "User-Agent": "vantage-health-check", "Connection": "close"]
        context.write(wrapOutboundOut(.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) {
            promise.succeed(Int(head.status.code))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ChannelError.eof)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}
