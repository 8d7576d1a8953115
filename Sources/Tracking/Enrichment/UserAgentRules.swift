import Foundation
import RegexSet
import Yams

/// The well-kept user-agent lists, loaded at start and compiled once into ``RegexSet``s every loop shares:
/// uap-core's `regexes.yaml` (its browser and OS parsers; Debian's `uap-core` package) and the crawler-user-agents
/// patterns (`crawler-user-agents.json`, from PyPI). ``UserAgent`` asks them for the browser, the OS and whether a
/// client is a crawler; without them it falls back to its own token rules.
public final class UserAgentRules: Sendable {
    /// A uap-core parser's replacements (`$1`…`$9` stand for the match's groups).
    struct Parser: Sendable {
        var name: String?
        var major: String?
        var minor: String?
    }

    let browsers: RegexSet
    let browserParsers: [Parser]
    let systems: RegexSet
    let systemParsers: [Parser]
    let crawlers: RegexSet
    /// What was loaded, for the start log.
    public let summary: String

    /// Where the lists are when `tracking.user_agents` names none: where Debian's `uap-core` package and the
    /// install step (`scripts/install-deps.sh`, the Dockerfile) put them.
    public static let defaultRegexesPath = "/usr/share/uap-core/regexes.yaml"
    public static let defaultCrawlersPath = "/usr/local/share/vantage/crawler-user-agents.json"

    /// Crawler-list patterns left out: they name apps people use (in-app browsers, app HTTP clients), not crawlers.
    /// (Each was checked against real browsers' and apps' agents: `Sogou` and `Sonic` also match Sogou's mobile
    /// browser and ViewSonic phones, `AP3A\.240617\.008` a whole Android build, `Code\/1\.` VS Code.)
    static let notCrawlers: Set<String> = [
        "okhttp", "Viber", "Dalvik", "WhatsApp", "MetaIAB Facebook", "Fluid", "Podimo", #"Code\/1\."#, "Sogou", "Sonic",
        #"AP3A\.240617\.008"#,
    ]

    /// Why a list cannot be used: the file, and what is wrong with it.
    public struct LoadError: Error, CustomStringConvertible {
        public var path: String
        public var problem: String
        public var description: String { "\(path): \(problem)" }
    }

    public init(regexesPath: String, crawlersPath: String) throws(LoadError) {
        func read(_ path: String) throws(LoadError) -> Data {
            do {
                return try Data(contentsOf: URL(fileURLWithPath: path))
            } catch {
                throw LoadError(path: path, problem: "cannot be read (\(error.localizedDescription))")
            }
        }
        let regexesText = String(decoding: try read(regexesPath), as: UTF8.self)
        let document: Any?
        do {
            document = try Yams.load(yaml: regexesText)
        } catch {
            throw LoadError(path: regexesPath, problem: "is not YAML: \(error)")
        }
        guard let root = document as? [String: Any], let agentList = root["user_agent_parsers"] as? [[String: Any]],
            let systemList = root["os_parsers"] as? [[String: Any]]
        else {
            throw LoadError(path: regexesPath, problem: "expected uap-core's regexes.yaml (user_agent_parsers, os_parsers)")
        }
        func compile(_ list: [[String: Any]], name: String, major: String, minor: String) throws(LoadError) -> (RegexSet, [Parser]) {
            var entries: [RegexSet.Entry] = []
            var parsers: [Parser] = []
            for item in list {
                guard let pattern = item["regex"] as? String else { continue }
                entries.append(RegexSet.Entry(pattern, caseInsensitive: (item["regex_flag"] as? String) == "i"))
                parsers.append(Parser(
                    name: item[name] as? String, major: item[major].map { "\($0)" }, minor: item[minor].map { "\($0)" }))
            }
            do {
                return (try RegexSet(entries), parsers)
            } catch {
                throw LoadError(path: regexesPath, problem: error.description)
            }
        }
        (browsers, browserParsers) = try compile(agentList, name: "family_replacement", major: "v1_replacement", minor: "v2_replacement")
        (systems, systemParsers) = try compile(systemList, name: "os_replacement", major: "os_v1_replacement", minor: "os_v2_replacement")
        let crawlerList: [[String: Any]]
        do {
            crawlerList = try JSONSerialization.jsonObject(with: try read(crawlersPath)) as? [[String: Any]] ?? []
        } catch let error as LoadError {
            throw error
        } catch {
            throw LoadError(path: crawlersPath, problem: "is not JSON: \(error.localizedDescription)")
        }
        let patterns = crawlerList.compactMap { $0["pattern"] as? String }.filter { !Self.notCrawlers.contains($0) }
        guard !patterns.isEmpty else {
            throw LoadError(path: crawlersPath, problem: "expected the crawler-user-agents list (objects with a \"pattern\")")
        }
        do {
            crawlers = try RegexSet(patterns.map { RegexSet.Entry($0) })
        } catch {
            throw LoadError(path: crawlersPath, problem: error.description)
        }
        let unfiltered = browsers.unfilteredCount + systems.unfilteredCount + crawlers.unfilteredCount
        summary = "\(browsers.count) browser and \(systems.count) OS parsers from \(regexesPath), "
            + "\(crawlers.count) crawler patterns from \(crawlersPath); \(unfiltered) without a required literal"
    }

    /// One loop's matching memory.
    public final class Scratch {
        let browsers: RegexSet.Scratch
        let systems: RegexSet.Scratch
        let crawlers: RegexSet.Scratch

        public init(for rules: UserAgentRules) {
            browsers = RegexSet.Scratch(for: rules.browsers)
            systems = RegexSet.Scratch(for: rules.systems)
            crawlers = RegexSet.Scratch(for: rules.crawlers)
        }
    }

    /// The browser family and version (major.minor) uap-core's parsers give (nil when none matches).
    func browser(_ header: UnsafeRawBufferPointer, scratch: Scratch) -> (name: String, version: String)? {
        guard let index = browsers.firstMatch(header, scratch: scratch.browsers) else { return nil }
        return Self.apply(browserParsers[index], scratch.browsers.match)
    }

    /// The OS family and version (major.minor).
    func system(_ header: UnsafeRawBufferPointer, scratch: Scratch) -> (name: String, version: String)? {
        guard let index = systems.firstMatch(header, scratch: scratch.systems) else { return nil }
        return Self.apply(systemParsers[index], scratch.systems.match)
    }

    /// Whether a crawler-user-agents pattern matches.
    func isCrawler(_ header: UnsafeRawBufferPointer, scratch: Scratch) -> Bool {
        crawlers.firstMatch(header, scratch: scratch.crawlers) != nil
    }

    /// The patterns of each list left to try for `header` after the literal prefilter (browser, OS, crawler;
    /// diagnostics for Benchmarks/UserAgentBench).
    public func candidateCounts(_ header: String, scratch: Scratch) -> (browser: Int, os: Int, crawler: Int) {
        var header = header
        return header.withUTF8 { utf8 in
            let raw = UnsafeRawBufferPointer(utf8)
            return (browsers.candidateCount(raw, scratch: scratch.browsers), systems.candidateCount(raw, scratch: scratch.systems),
                    crawlers.candidateCount(raw, scratch: scratch.crawlers))
        }
    }

    /// uap-core's rule: a replacement (with `$n` standing for group n) or else group 1 for the name, groups 2 and 3
    /// for the major and minor version.
    static func apply(_ parser: Parser, _ match: MatchScratch) -> (name: String, version: String) {
        func substitute(_ template: String) -> String {
            guard template.contains("$") else { return template }
            var result = ""
            var characters = template.makeIterator()
            while let character = characters.next() {
                guard character == "$" else {
                    result.append(character)
                    continue
                }
                guard let digit = characters.next() else { break }
                if let number = digit.wholeNumberValue { result += match.group(number) ?? "" } else { result.append(digit) }
            }
            return result.trimmingCharacters(in: .whitespaces)
        }
        let name = parser.name.map(substitute) ?? match.group(1) ?? ""
        let major = parser.major.map(substitute) ?? match.group(2) ?? ""
        let minor = parser.minor.map(substitute) ?? match.group(3) ?? ""
        return (name, major.isEmpty || minor.isEmpty ? major : major + "." + minor)
    }
}
