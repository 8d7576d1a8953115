/// Where a visit came from: the referrer's host and category, the campaign tags of the landing URL (`utm_*`,
/// Plausible-style `ref`/`source`) and ad click ids.
public struct TrafficSource: Sendable, Equatable {
    public enum Category: String, Sendable {
        case direct, `internal`, search, social, email, video, ai, other
    }

    /// The referrer's host, lower-cased, without `www.` (empty without a referrer).
    public var referrerHost = ""
    public var category = Category.direct
    public var utmSource = ""
    public var utmMedium = ""
    public var utmCampaign = ""
    public var utmTerm = ""
    public var utmContent = ""
    /// The first ad click id found, as `name=value` (gclid, fbclid, msclkid, ...).
    public var clickID = ""

    /// Campaign values are cut to this many bytes.
    public static let maxValueBytes = 256

    public init() {}

    /// Reads the referrer header and the request's query string; `ownHosts` are the site's names (their referrals
    /// are internal).
    public init(referrer: String?, query: Substring, ownHosts: [String]) {
        referrerHost = referrer.flatMap(Self.host(ofURL:)) ?? ""
        readCampaign(query)
        category = Self.categorize(host: referrerHost, medium: utmMedium.lowercased(), ownHosts: ownHosts)
    }

    /// Campaign tags and click ids from a query, with the referrer host and category already known (a cached
    /// referrer): the category only changes when the medium says email or social.
    public init(referrerHost: String, category: Category, query: Substring) {
        self.referrerHost = referrerHost
        self.category = category
        guard !query.isEmpty else { return }
        readCampaign(query)
        let medium = utmMedium.lowercased()
        if medium == "email" || medium == "newsletter" { self.category = .email }
        if medium == "social" { self.category = .social }
    }

    private mutating func readCampaign(_ query: Substring) {
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = parts[0].lowercased()
            guard parts.count == 2, !parts[1].isEmpty else { continue }
            let value = { Self.decode(parts[1]) }
            switch name {
            case "utm_source": utmSource = value()
            case "utm_medium": utmMedium = value()
            case "utm_campaign": utmCampaign = value()
            case "utm_term": utmTerm = value()
            case "utm_content": utmContent = value()
            case "ref", "source": if utmSource.isEmpty { utmSource = value() }
            default:
                if clickID.isEmpty, Self.clickIDNames.contains(name) { clickID = name + "=" + value() }
            }
        }
    }

    static let clickIDNames: Set<String> = [
        "gclid", "gbraid", "wbraid", "dclid", "fbclid", "msclkid", "ttclid", "twclid", "li_fat_id", "yclid",
        "igshid", "mc_cid", "epik", "rdt_cid", "sccid",
    ]

    /// Host suffixes by category (a host matches a suffix when equal to it or ending in `.` + it).
    static let searchHosts = [
        "google.com", "bing.com", "duckduckgo.com", "search.yahoo.com", "yandex.ru", "yandex.com", "baidu.com",
        "ecosia.org", "startpage.com", "qwant.com", "search.brave.com", "naver.com", "seznam.cz", "sogou.com",
        "kagi.com", "ask.com", "aol.com", "search.aol.com", "so.com", "daum.net", "coccoc.com", "ya.ru",
    ]
    static let socialHosts = [
        "facebook.com", "fb.com", "t.co", "twitter.com", "x.com", "linkedin.com", "lnkd.in", "instagram.com",
        "reddit.com", "youtube.com", "pinterest.com", "tiktok.com", "news.ycombinator.com", "threads.net",
        "bsky.app", "vk.com", "mastodon.social", "telegram.org", "t.me", "discord.com", "quora.com", "snapchat.com",
        "tumblr.com", "weibo.com", "line.me", "whatsapp.com", "messenger.com",
    ]
    static let videoHosts = [
        "youtube.com", "youtu.be", "vimeo.com", "twitch.tv", "dailymotion.com", "wistia.com", "rumble.com",
        "bilibili.com",
    ]
    /// AI assistants that link to their sources (ChatGPT also tags its links `utm_source=chatgpt.com`).
    static let aiHosts = [
        "chatgpt.com", "chat.openai.com", "openai.com", "perplexity.ai", "gemini.google.com", "bard.google.com",
        "copilot.microsoft.com", "claude.ai", "you.com", "poe.com", "meta.ai", "chat.deepseek.com", "grok.com",
        "chat.mistral.ai", "phind.com",
    ]
    static let emailHosts = [
        "mail.google.com", "outlook.live.com", "outlook.office.com", "outlook.office365.com", "mail.yahoo.com",
        "mail.proton.me", "mail.aol.com", "webmail", "mail.ru", "gmx.net", "web.de", "fastmail.com",
    ]

    static func categorize(host: String, medium: String, ownHosts: [String]) -> Category {
        if medium == "email" || medium == "newsletter" { return .email }
        if medium == "social" { return .social }
        if host.isEmpty { return .direct }
        if ownHosts.contains(where: { own in own == host || isSubdomain(host, of: own) || isSubdomain(own, of: host, label: "www") }) {
            return .internal
        }
        func matches(_ suffixes: [String]) -> Bool {
            suffixes.contains { host == $0 || isSubdomain(host, of: $0) || host.utf8.starts(with: $0.utf8) && host.utf8.dropFirst($0.utf8.count).first == UInt8(ascii: ".") }
        }
        if matches(aiHosts) { return .ai }
        // Google's search lives on many country domains (google.de, google.co.uk).
        if host.hasPrefix("google.") || host.contains(".google.") && !host.hasPrefix("mail.") { return .search }
        if matches(emailHosts) { return .email }
        if matches(searchHosts) { return .search }
        if matches(videoHosts) { return .video }
        if matches(socialHosts) || host.hasPrefix("l.facebook.") || host.hasPrefix("m.facebook.") { return .social }
        return .other
    }

    /// The kind of a `utm_source` value: a host (`chatgpt.com`) by the host lists, a bare name (`google`,
    /// `facebook`, `newsletter`) by the first labels of those hosts and the usual short names.
    static func category(ofSourceName name: String) -> Category {
        if name.utf8.contains(UInt8(ascii: ".")) {
            var host = name
            if host.hasPrefix("www.") { host.removeFirst(4) }
            return categorize(host: host, medium: "", ownHosts: [])
        }
        return namedSources[name] ?? .other
    }

    /// Bare source names: each listed host's first label (google, bing, facebook, youtube, chatgpt, ...) and
    /// common abbreviations.
    static let namedSources: [String: Category] = {
        var names: [String: Category] = [:]
        let lists: [(Category, [String])] = [
            (.social, socialHosts), (.search, searchHosts), (.video, videoHosts), (.ai, aiHosts),
        ]
        for (category, hosts) in lists {
            for host in hosts {
                let label = String(host.prefix { $0 != "." })
                if label.count > 2, !["search", "chat", "mail", "news"].contains(label) { names[label] = category }
            }
        }
        for name in ["google", "yahoo", "duckduckgo", "brave", "yandex"] { names[name] = .search }
        for name in ["fb", "ig", "instagram", "twitter", "x", "linkedin", "reddit", "hackernews", "hn", "mastodon", "bluesky", "threads", "tiktok", "pinterest", "telegram", "whatsapp", "discord"] {
            names[name] = .social
        }
        for name in ["gemini", "copilot", "claude", "perplexity", "chatgpt", "openai", "deepseek", "mistral"] { names[name] = .ai }
        for name in ["gmail", "outlook", "mailchimp"] { names[name] = .email }
        // Meta's ads are tagged `utm_source=meta` (not the meta.ai assistant).
        names["meta"] = .social
        return names
    }()

    /// `host` ends in `.` + `domain` (or, with `label`, is exactly `label.domain`), compared without building strings.
    static func isSubdomain(_ host: String, of domain: String, label: String? = nil) -> Bool {
        let hostBytes = host.utf8, domainBytes = domain.utf8
        guard hostBytes.count > domainBytes.count, hostBytes.reversed().starts(with: domainBytes.reversed()) else { return false }
        let prefix = hostBytes.dropLast(domainBytes.count)
        guard prefix.last == UInt8(ascii: ".") else { return false }
        guard let label else { return true }
        return prefix.dropLast().elementsEqual(label.utf8)
    }

    /// The host of an absolute URL, lower-cased, without port, user info or a leading `www.`.
    static func host(ofURL url: String) -> String? {
        guard let schemeEnd = url.range(of: "://") else { return nil }
        var authority = url[schemeEnd.upperBound...].prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        if authority.hasPrefix("[") {
            return authority.firstIndex(of: "]").map { String(authority[...$0]).lowercased() }
        }
        var host = (authority.firstIndex(of: ":").map { authority[..<$0] } ?? authority).lowercased()
        if host.hasPrefix("www.") { host.removeFirst(4) }
        return host.isEmpty ? nil : host
    }

    /// Form decoding cut to ``maxValueBytes``.
    static func decode(_ text: Substring) -> String { FormDecoding.decode(text, limit: maxValueBytes) }
}
