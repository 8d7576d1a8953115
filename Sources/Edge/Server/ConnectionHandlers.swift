import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// Counts a client connection for the gauge and enforces the global cap, when the connection is set up: no handler
/// of its own in the pipeline (one that only passed reads along cost a pipeline trip per read and per read-complete).
///
/// A connection over `limits.max_connections` is served one answer, 503 with `Retry-After`, and closed (clients and
/// load balancers can tell "full" from "down"); one over the hard ceiling (a tenth more) is closed at once, before
/// any TLS or HTTP work is spent on it, so a flood cannot exhaust file descriptors.
enum ConnectionAccounting {
    /// Thrown by a connection's set-up over the hard ceiling: NIO closes the connection.
    struct OverHardCeiling: Error {}

    /// Connections beyond this are closed without an answer.
    static func hardCeiling(_ maxConnections: Int) -> Int { maxConnections + max(16, maxConnections / 10) }

    /// Counts the connection until it closes; marks it `overCapacity` when it is over the cap. Throws
    /// ``OverHardCeiling`` when it is over the hard ceiling (it is then closed without being set up).
    static func admit(_ channel: any Channel, core: GatewayCore, connection: ConnectionInfo, maxConnections: Int) throws(OverHardCeiling) {
        let open = core.openConnections.add(1, ordering: .relaxed).newValue
        core.metrics.openConnections.increment()
        core.metrics.acceptedConnections.increment()
        channel.closeFuture.whenComplete { _ in
            core.openConnections.subtract(1, ordering: .relaxed)
            core.metrics.openConnections.decrement()
        }
        guard open > maxConnections else { return }
        if open > hardCeiling(maxConnections) {
            core.metrics.refusedConnections.increment()
            throw OverHardCeiling()
        }
        core.metrics.overCapacityConnections.increment()
        connection.overCapacity = true
        if core.overCapacityLogged.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
            core.logger.warning(
                "\(open) connections are open, over limits.max_connections (\(maxConnections)): answering 503 with Retry-After (logged once)")
        }
    }
}

/// Sits right after the TLS handler until the handshake completes: counts handshakes and their failures, and notes
/// the negotiated version for the access log. It then leaves the pipeline (passing every read along after that
/// would cost a pipeline trip per read for nothing).
final class TLSEventsHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let connection: ConnectionInfo
    private let core: GatewayCore
    private var handshakeDone = false

    init(connection: ConnectionInfo, core: GatewayCore) {
        self.connection = connection
        self.core = core
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            handshakeDone = true
            core.metrics.tlsHandshakes.increment()
            if let version = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self).tlsVersion {
                connection.tlsVersion = Self.describe(version)
            }
            context.fireUserInboundEventTriggered(event)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !handshakeDone {
            core.metrics.tlsHandshakeFailures.increment()
            context.close(promise: nil)
            return
        }
        context.fireErrorCaught(error)
    }

    static func describe(_ version: TLSVersion) -> String {
        switch version {
        case .tlsv13: return "TLSv1.3"
        case .tlsv12: return "TLSv1.2"
        case .tlsv11: return "TLSv1.1"
        case .tlsv1: return "TLSv1.0"
        }
    }
}

/// Closes connections whose errors reached the end of the pipeline (a reset by the peer, a TLS alert after the
/// handshake) without logging each one as a problem.
final class CloseOnErrorHandler: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
