import Foundation
import NIOHTTP1

/// What `/health` says and the HTTP status load balancers act on, decided from facts the gateway gathers: a pure
/// function, so each rule is tested without servers.
///
/// - `ok`: everything serves as configured.
/// - `degraded` (still 200: the edge serves, someone should look): a proxy route whose upstreams are all down,
///   ClickHouse failing or the backlog older than the threshold, the last reload refused, a certificate expiring
///   within the warning window, a data folder this process no longer owns.
/// - `unhealthy` (503): nothing can be served: no listener, or every route is a proxy whose upstreams are all down.
struct HealthVerdict: Equatable {
    enum Status: String {
        case ok
        case degraded
        case unhealthy
    }

    struct Pool: Equatable {
        /// `site path` of the route.
        var route: String
        var members: Int
        var healthy: Int
    }

    struct Certificate: Equatable {
        var name: String
        var notAfter: Date
    }

    struct Facts {
        var listeners = 1
        var pools: [Pool] = []
        /// Routes that answer without an upstream (files, fixed answers, redirects, links, reports).
        var routesWithoutUpstreams = 0
        var clickHouseConfigured = false
        var clickHouseFailure: String?
        var backlogSeconds = 0.0
        var maxBacklogSeconds = 900.0
        var lastReloadError: String?
        var certificates: [Certificate] = []
        var certificateWarning: TimeInterval = 14 * 86_400
        var now = Date()
        var spoolProblem: String?
        var linksProblem: String?
    }

    var status: Status
    var reasons: [String]

    /// 200 while anything can be served (a degraded edge still answers), 503 when nothing can.
    var httpStatus: HTTPResponseStatus { status == .unhealthy ? .serviceUnavailable : .ok }

    static func decide(_ facts: Facts) -> HealthVerdict {
        var reasons: [String] = []
        let downPools = facts.pools.filter { $0.members > 0 && $0.healthy == 0 }
        for pool in downPools { reasons.append("no healthy upstream for \(pool.route) (\(pool.members) down)") }
        if facts.clickHouseConfigured, let failure = facts.clickHouseFailure {
            reasons.append("ClickHouse: \(failure)")
        }
        if facts.backlogSeconds > facts.maxBacklogSeconds {
            reasons.append("events wait \(Int(facts.backlogSeconds)) s for ClickHouse (more than \(Int(facts.maxBacklogSeconds)) s)")
        }
        if let error = facts.lastReloadError { reasons.append("the last reload was refused: \(error)") }
        for certificate in facts.certificates.sorted(by: { $0.notAfter < $1.notAfter }) {
            let left = certificate.notAfter.timeIntervalSince(facts.now)
            if left <= 0 {
                reasons.append("the certificate for \(certificate.name) has expired")
            } else if left < facts.certificateWarning {
                reasons.append("the certificate for \(certificate.name) expires in \(Int((left / 86_400).rounded(.up))) day(s)")
            }
        }
        if let problem = facts.spoolProblem { reasons.append("spool: \(problem)") }
        if let problem = facts.linksProblem { reasons.append("links: \(problem)") }
        let nothingServes = facts.listeners == 0
            || (facts.routesWithoutUpstreams == 0 && !facts.pools.isEmpty && downPools.count == facts.pools.count)
        if nothingServes {
            return HealthVerdict(status: .unhealthy, reasons: (facts.listeners == 0 ? ["no listener is open"] : []) + reasons)
        }
        return HealthVerdict(status: reasons.isEmpty ? .ok : .degraded, reasons: reasons)
    }
}
