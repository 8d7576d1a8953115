/// What a `User-Agent` header says about the client: browser, operating system, device class, and whether it is a
/// machine (with the reason). Rules are ordered token checks over the header, written from the vendors' documented
/// formats; the first matching rule wins, so more specific tokens (Edge, Opera, Samsung) come before the engines
/// they embed (Chrome, Safari).
public struct UserAgent: Sendable, Equatable {
    public enum Device: String, Sendable {
        case desktop, mobile, tablet, bot, other
    }

    /// Why a client counts as a machine.
    public enum BotReason: String, Sendable {
        /// No user agent at all.
        case empty
        /// Search engines, SEO tools, AI crawlers: anything announcing itself as a bot, crawler or spider.
        case crawler
        /// Chat and social apps fetching a link to show its preview.
        case linkPreview = "link_preview"
        /// Mail providers fetching images (and so open pixels) on the reader's behalf.
        case mailProxy = "mail_proxy"
        /// HTTP libraries and command-line tools.
        case httpLibrary = "http_library"
        /// Uptime and performance monitors.
        case monitoring
        /// Browsers driven by automation.
        case headless
    }

    public var browser = ""
    public var browserVersion = ""
    public var os = ""
    public var osVersion = ""
    public var device = Device.other
    public var botReason: BotReason?

    public var isBot: Bool { botReason != nil }

    public init() {}

    /// Classifies a header value (nil or empty: an empty-agent bot).
    public init(parsing header: String?) {
        guard let header, !header.isEmpty else {
            botReason = .empty
            device = .bot
            return
        }
        let text = header.lowercased()
        botReason = Self.botReason(text)
        (browser, browserVersion) = Self.browser(header, lowercased: text)
        (os, osVersion) = Self.operatingSystem(header, lowercased: text)
        device = botReason != nil ? .bot : Self.device(text, os: os)
    }

    // MARK: - Rules

    /// Substrings (of the lower-cased header) that mark a machine, by reason; checked in this order.
    static let botRules: [(BotReason, [String])] = [
        (.mailProxy, ["googleimageproxy", "yahoomailproxy", "outlook-imageproxy", "proxy.mail.ru"]),
        (.linkPreview, [
            "facebookexternalhit", "facebookcatalog", "twitterbot", "slackbot", "slack-imgproxy", "discordbot",
            "telegrambot", "whatsapp/", "linkedinbot", "skypeuripreview", "pinterest", "redditbot", "embedly",
            "quora link preview", "vkshare", "iframely", "bingpreview", "snapchat", "mastodon/",
        ]),
        (.monitoring, [
            "uptimerobot", "pingdom", "statuscake", "site24x7", "newrelicpinger", "datadog", "gtmetrix",
            "chrome-lighthouse", "kube-probe", "elb-healthchecker", "googlestackdrivermonitoring", "better uptime",
        ]),
        (.headless, ["headlesschrome", "phantomjs", "puppeteer", "playwright", "selenium", "electron/"]),
        (.httpLibrary, [
            "curl/", "wget/", "python-requests", "python-urllib", "python-httpx", "aiohttp/", "go-http-client",
            "java/", "okhttp", "apache-httpclient", "libwww-perl", "axios/", "node-fetch", "undici", "got (",
            "ruby", "php/", "guzzlehttp", "httpie/", "postmanruntime", "insomnia/", "dart:io", "reqwest/",
            "scrapy", "wordpress/",
        ]),
        (.crawler, [
            "bot", "crawler", "crawl", "spider", "slurp", "archiver", "mediapartners-google", "adsbot-google",
            "google-inspectiontool", "feedfetcher", "bingpreview", "yandex", "baidu", "sogou", "semrush", "ahrefs",
            "mj12", "petalsearch", "ccbot", "gptbot", "chatgpt-user", "claude", "anthropic", "perplexity",
            "bytespider", "amazonbot", "applebot", "duckduckgo", "qwantify", "seznam", "ia_archiver", "heritrix",
            "nutch", "feedly", "inoreader", "rss", "validator", "lighthouse", "preview",
        ]),
    ]

    static func botReason(_ text: String) -> BotReason? {
        for (reason, needles) in botRules where needles.contains(where: { text.contains($0) }) { return reason }
        return nil
    }

    /// Browser tokens, most specific first: (name, tokens whose following digits are the version).
    static let browserRules: [(String, [String])] = [
        ("Edge", ["Edg/", "EdgA/", "EdgiOS/", "Edge/"]),
        ("Opera", ["OPR/", "OPiOS/", "Opera/"]),
        ("Samsung Internet", ["SamsungBrowser/"]),
        ("Yandex Browser", ["YaBrowser/"]),
        ("Vivaldi", ["Vivaldi/"]),
        ("UC Browser", ["UCBrowser/"]),
        ("Brave", ["Brave/"]),
        ("DuckDuckGo", ["DuckDuckGo/", "Ddg/"]),
        ("Facebook", ["FBAV/"]),
        ("Instagram", ["Instagram "]),
        ("Firefox", ["Firefox/", "FxiOS/"]),
        ("Chrome", ["CriOS/", "Chrome/"]),
        ("Internet Explorer", ["MSIE ", "Trident/"]),
    ]

    static func browser(_ header: String, lowercased text: String) -> (String, String) {
        for (name, tokens) in browserRules {
            for token in tokens {
                guard let range = header.range(of: token) else { continue }
                if token == "Trident/" { return (name, header.version(after: "rv:") ?? "") }
                return (name, header.version(after: range.upperBound) ?? "")
            }
        }
        // Safari names its version in `Version/`; other WebKit apps have no Version token.
        if header.contains("Safari/") || header.contains("AppleWebKit/") && (text.contains("iphone") || text.contains("ipad")) {
            if let version = header.version(after: "Version/") { return ("Safari", version) }
            if header.contains("Mobile/") { return ("Mobile Safari WebView", "") }
            return ("Safari", "")
        }
        return ("", "")
    }

    static func operatingSystem(_ header: String, lowercased text: String) -> (String, String) {
        if let range = header.range(of: "Windows NT ") {
            let known = ["10.0": "10", "6.3": "8.1", "6.2": "8", "6.1": "7", "6.0": "Vista", "5.1": "XP"]
            let number = header.version(after: range.upperBound, parts: 2) ?? ""
            return ("Windows", known[number] ?? number)
        }
        if text.contains("windows phone") { return ("Windows Phone", header.version(after: "Windows Phone ") ?? "") }
        if text.contains("windows") { return ("Windows", "") }
        if text.contains("iphone") || text.contains("ipad") || text.contains("ipod") {
            let version = header.version(after: " OS ", separator: "_") ?? ""
            return (text.contains("ipad") ? "iPadOS" : "iOS", version)
        }
        if let range = header.range(of: "Android") {
            let after = header[range.upperBound...].drop { $0 == " " }
            return ("Android", after.version(after: after.startIndex) ?? "")
        }
        if text.contains("cros") { return ("ChromeOS", "") }
        if header.contains("Mac OS X") || header.contains("Macintosh") {
            return ("macOS", header.version(after: "Mac OS X ", separator: "_") ?? "")
        }
        if text.contains("linux") || text.contains("x11") { return ("Linux", "") }
        return ("", "")
    }

    static func device(_ text: String, os: String) -> Device {
        if text.contains("ipad") || text.contains("tablet") || (os == "Android" && !text.contains("mobile")) {
            return .tablet
        }
        if text.contains("mobi") || text.contains("iphone") || text.contains("ipod") || os == "Windows Phone" {
            return .mobile
        }
        if ["Windows", "macOS", "Linux", "ChromeOS"].contains(os) { return .desktop }
        return .other
    }
}

extension StringProtocol {
    /// The version number right after `token`: digits and dots (or `separator`, turned into dots), at most
    /// `parts` components.
    func version(after token: String, separator: Character = ".", parts: Int = 2) -> String? {
        guard let range = range(of: token) else { return nil }
        return version(after: range.upperBound, separator: separator, parts: parts)
    }

    func version(after start: Index, separator: Character = ".", parts: Int = 2) -> String? {
        var components: [Substring] = []
        var index = start
        while components.count < parts {
            let digits = self[index...].prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty else { break }
            components.append(Substring(digits))
            index = digits.endIndex
            guard index < endIndex, self[index] == separator || self[index] == "." else { break }
            index = self.index(after: index)
        }
        return components.isEmpty ? nil : components.joined(separator: ".")
    }
}
