import Edge
import Foundation
import Links
import Logging
import NIOHTTP1
import NIOPosix
import Synchronization

/// `vantage links` when no gateway answers on the admin listener: the same admin API (``LinkAdminAPI``) over the
/// links journal itself, under the folder lock a running gateway holds. The lock decides: free, the gateway is
/// stopped and the change goes into the journal it reads at its next start; taken, a gateway is running and only
/// its admin listener can change its links (two writers would lose changes).
enum StoppedGatewayLinks {
    struct Refusal: Error, CustomStringConvertible {
        var description: String
    }

    /// The note saying where changes go is printed once per command (a removal by slug makes two calls).
    private static let noted = Atomic<Bool>(false)

    static func answer(
        _ method: HTTPMethod, _ path: String, json: Data?, configuration: GatewayConfiguration, unreachable: String
    ) async throws -> (status: Int, body: String) {
        guard let settings = configuration.links else {
            throw Refusal(description: "\(unreachable); and \(configuration.sourcePath) has no links (a links route or a links: section)")
        }
        guard settings.store == "journal" else {
            throw Refusal(description: "\(unreachable); links are kept in ClickHouse (links.store: clickhouse): change them through a running node's admin API")
        }
        let folder = URL(fileURLWithPath: settings.directory).standardizedFileURL.path
        if settings.directory == LinksConfiguration().directory, !FileManager.default.fileExists(atPath: folder) {
            // The default folder is relative to the gateway's working directory, which need not be ours.
            throw Refusal(description: """
                \(unreachable); and there is no links folder at \(folder). Without links.dir the folder is data/links \
                in the gateway's working directory (/var/lib/vantage for the packaged service): run this from there, \
                or set links.dir in the configuration
                """)
        }
        var logger = Logger(label: "vantage.links")
        logger.logLevel = .warning
        let links: LinkService
        do {
            links = try LinkService(configuration: settings, clickHouse: nil, pool: NIOThreadPool.singleton, logger: logger)
        } catch let error as JournalLinkStore.StoreError where error.description.contains("in use by another Vantage process") {
            throw Refusal(description: "\(unreachable); and the links folder \(folder) is held by a running Vantage, so only its admin listener may change it: check admin.listen and admin.token_env")
        }
        if !noted.exchange(true, ordering: .relaxed) {
            printError("no Vantage answers on the admin listener: working on the links journal in \(folder) directly (a gateway reads it when it starts)")
        }
        let api = LinkAdminAPI(links: links, blocking: { work in try work() })
        let components = URLComponents(string: path)
        var parameters: [String: String] = [:]
        for item in components?.queryItems ?? [] { parameters[item.name] = item.value ?? "" }
        let segments = (components?.path ?? path).split(separator: "/").dropFirst().map { $0.removingPercentEncoding ?? String($0) }
        let answer = await api.answer(.init(method: method.rawValue, segments: segments, parameters: parameters, body: json ?? Data()))
        await links.shutdown()
        return (answer.status, answer.json)
    }
}
