import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// First handler of every client connection: counts open connections for the gauge and enforces the global cap.
///
/// A connection over `limits.max_connections` is served one answer, 503 with `Retry-After`, and closed (clients and
/// load balancers can tell "full" from "down"); one over the hard ceiling (a tenth more) is closed at once, before
/// any TLS or HTTP work is spent on it, so a flood cannot exhaust file descriptors.
final class ConnectionAccountingHandler: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    private let core: GatewayCore
    private let connection: ConnectionInfo
    private let maxConnections: Int
    private var counted = false

    init(core: GatewayCore, connection: ConnectionInfo, maxConnections: Int) {
        self.core = core
        self.connection = connection
        self.maxConnections = maxConnections
    }

    /// Connections beyond this are closed without an answer.
    static func hardCeiling(_ maxConnections: Int) -> Int { maxConnections + max(16, maxConnections / 10) }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { admit(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        admit(context: context)
        context.fireChannelActive()
    }

    private func admit(context: ChannelHandlerContext) {
        guard !counted else { return }
        counted = true
        let open = core.openConnections.add(1, ordering: .relaxed).newValue
        core.metrics.openConnections.increment()
        core.metrics.acceptedConnections.increment()
        guard open > maxConnections else { return }
        if open > Self.hardCeiling(maxConnections) {
            core.metrics.refusedConnections.increment()
            context.close(promise: nil)
            return
        }
        core.metrics.overCapacityConnections.increment()
        connection.overCapacity = true
        if core.overCapacityLogged.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
            core.logger.warning(
                "\(open) connections are open, over limits.max_connections (\(maxConnections)): answering 503 with Retry-After (logged once)")
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if counted {
            counted = false
            core.openConnections.subtract(1, ordering: .relaxed)
            core.metrics.openConnections.decrement()
        }
        context.fireChannelInactive()
    }
}

/// Sits right after the TLS handler: counts handshakes and their failures, and notes the negotiated version for
/// the access log.
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
