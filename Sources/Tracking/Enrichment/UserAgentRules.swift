import Foundation
import RegexSet
import Yams

/// The well-kept user-agent lists, loaded at start and compiled once into ``RegexSet``s every loop shares:
/// uap-core's `regexes.yaml` (its browser and OS parsers; Debian's `uap-core` package) and the crawler-user-agents
/// patterns (`crawler-user-agents.json`, from PyPI). ``UserAgent`` asks them for the browser, the OS and whether a
/// client is a crawler; without them it falls back to its own token rules.
public final class UserAgentRules: Sendable {
    /// A uap-core parser's replacements (`$1`…`$9` stand for the match's groups), read once at load.
    struct Parser: Sendable {
        var name: Template?
        var major: Template?
        var minor: Template?

        init(name: String?, major: String?, minor: String?) {
            (self.name, self.major, self.minor) = (name.map(Template.init), major.map(Template.init), minor.map(Template.init))
        }
    }

    /// A replacement: literal text and group references.
    struct Template: Sendable {
        enum Part: Sendable {
            case text(String)
            case group(Int)
        }

        let parts: [Part]

        init(_ source: String) {
            var parts: [Part] = []
            var text = ""
            var characters = source.makeIterator()
            while let character = characters.next() {
                guard character == "$", let next = characters.next() else {
                    if character != "$" { text.append(character) }
                    continue
                }
                if let number = next.wholeNumberValue {
                    if !text.isEmpty { parts.append(.text(text)) }
                    text = ""
                    parts.append(.group(number))
                } else {
                    text.append(next)
                }
            }
            if !text.isEmpty { parts.append(.text(text)) }
            self.parts = parts
        }

        /// The text with the match's groups in, without surrounding spaces (an empty group leaves none).
        func render(_ match: MatchScratch) -> String {
            if parts.count == 1, case .text(let text) = parts[0] { return text }
            var result = ""
            for part in parts {
                switch part {
                case .text(let text): result += text
                case .group(let number): result += match.group(number) ?? ""
                }
            }
            while result.last == " " { result.removeLast() }
            while result.first == " " { result.removeFirst() }
            return result
        }
    }

    /// The three lists in one set, so one pass over an agent finds the candidates of all three: browser parsers,
    /// then OS parsers, then crawler patterns (``browserRange``, ``systemRange``, ``crawlerRange``).
    let patterns: RegexSet
    let browserParsers: [Parser]
    let systemParsers: [Parser]
    let browserRange: Range<Int>
    let systemRange: Range<Int>
    let crawlerRange: Range<Int>
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

    /// The agents most requests carry (Chrome on Windows and Android, Safari on iPhone and Mac, Firefox, Edge): the
    /// prefilter keys each pattern on the strings these lack, so that they meet few patterns to try.
    static let typicalAgents = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.81 Mobile Safari/537.36",
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
        func entries(_ list: [[String: Any]], name: String, major: String, minor: String) -> ([RegexSet.Entry], [Parser]) {
            var entries: [RegexSet.Entry] = []
            var parsers: [Parser] = []
            for item in list {
                guard let pattern = item["regex"] as? String else { continue }
                entries.append(RegexSet.Entry(pattern, caseInsensitive: (item["regex_flag"] as? String) == "i"))
                parsers.append(Parser(
                    name: item[name] as? String, major: item[major].map { "\($0)" }, minor: item[minor].map { "\($0)" }))
            }
            return (entries, parsers)
        }
        let (browserEntries, browserParsers) = entries(agentList, name: "family_replacement", major: "v1_replacement", minor: "v2_replacement")
        let (systemEntries, systemParsers) = entries(systemList, name: "os_replacement", major: "os_v1_replacement", minor: "os_v2_replacement")
        self.browserParsers = browserParsers
        self.systemParsers = systemParsers
        let crawlerList: [[String: Any]]
        do {
            crawlerList = try JSONSerialization.jsonObject(with: try read(crawlersPath)) as? [[String: Any]] ?? []
        } catch let error as LoadError {
            throw error
        } catch {
            throw LoadError(path: crawlersPath, problem: "is not JSON: \(error.localizedDescription)")
        }
        let crawlerPatterns = crawlerList.compactMap { $0["pattern"] as? String }.filter { !Self.notCrawlers.contains($0) }
        guard !crawlerPatterns.isEmpty else {
            throw LoadError(path: crawlersPath, problem: "expected the crawler-user-agents list (objects with a \"pattern\")")
        }
        browserRange = 0..<browserEntries.count
        systemRange = browserRange.upperBound..<(browserRange.upperBound + systemEntries.count)
        crawlerRange = systemRange.upperBound..<(systemRange.upperBound + crawlerPatterns.count)
        do {
            patterns = try RegexSet(
                browserEntries + systemEntries + crawlerPatterns.map { RegexSet.Entry($0) }, plain: AgentTokens.all,
                typical: Self.typicalAgents)
        } catch {
            // Say which file the pattern came from.
            let fromCrawlers = crawlerPatterns.contains(error.pattern)
            throw LoadError(path: fromCrawlers ? crawlersPath : regexesPath, problem: error.description)
        }
        summary = "\(browserRange.count) browser and \(systemRange.count) OS parsers from \(regexesPath), "
            + "\(crawlerRange.count) crawler patterns from \(crawlersPath); \(patterns.unfilteredCount) without a required literal"
    }

    /// One loop's matching memory.
    public final class Scratch {
        let patterns: RegexSet.Scratch

        public init(for rules: UserAgentRules) {
            patterns = RegexSet.Scratch(for: rules.patterns)
        }

        /// The token rules' tokens (``AgentTokens/all``) found by the last ``UserAgentRules/read(_:scratch:)``.
        var tokensFound: [UInt64] { patterns.plainFound }
    }

    /// What the lists say of an agent, from one pass over it.
    struct Reading {
        var browser: (name: String, version: String)?
        var system: (name: String, version: String)?
        var isCrawler: Bool
    }

    func read(_ header: UnsafeRawBufferPointer, scratch: Scratch) -> Reading {
        patterns.scan(header, scratch: scratch.patterns)
        var reading = Reading(isCrawler: false)
        if let index = patterns.firstMatch(in: browserRange, header, scratch: scratch.patterns) {
            reading.browser = Self.apply(browserParsers[index], scratch.patterns.match)
        }
        if let index = patterns.firstMatch(in: systemRange, header, scratch: scratch.patterns) {
            reading.system = Self.apply(systemParsers[index - systemRange.lowerBound], scratch.patterns.match)
        }
        reading.isCrawler = patterns.firstMatch(in: crawlerRange, header, scratch: scratch.patterns) != nil
        return reading
    }

    /// The patterns of each list left to try for `header` after the literal prefilter (browser, OS, crawler;
    /// diagnostics for Benchmarks/UserAgentBench).
    public func candidateCounts(_ header: String, scratch: Scratch) -> (browser: Int, os: Int, crawler: Int) {
        var header = header
        return header.withUTF8 { utf8 in
            let raw = UnsafeRawBufferPointer(utf8)
            return (patterns.candidateCount(raw, in: browserRange, scratch: scratch.patterns),
                    patterns.candidateCount(raw, in: systemRange, scratch: scratch.patterns),
                    patterns.candidateCount(raw, in: crawlerRange, scratch: scratch.patterns))
        }
    }

    /// uap-core's rule: a replacement (with `$n` standing for group n) or else group 1 for the name, groups 2 and 3
    /// for the major and minor version.
    static func apply(_ parser: Parser, _ match: MatchScratch) -> (name: String, version: String) {
        let name = parser.name?.render(match) ?? match.group(1) ?? ""
        let major = parser.major?.render(match) ?? match.group(2) ?? ""
        let minor = parser.minor?.render(match) ?? match.group(3) ?? ""
        return (name, major.isEmpty || minor.isEmpty ? major : major + "." + minor)
    }
}
