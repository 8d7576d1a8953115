/// What a `User-Agent` header says about the client: browser, operating system, device class, and whether it is a
/// machine (with the reason).
///
/// With ``UserAgentRules`` loaded (the default install), the browser and OS come from uap-core's parsers and
/// crawlers from the crawler-user-agents list; the reasons for the machines people want told apart (mail proxies,
/// link previews, monitors, HTTP libraries, headless browsers), app HTTP clients and the device class come from the
/// ordered token rules below, which also stand in for the lists when they are not installed. The first matching
/// rule wins, so more specific tokens (Edge, Opera, Samsung) come before the engines they embed (Chrome, Safari).
public struct UserAgent: Sendable, Equatable {
    public enum Device: String, Sendable, CaseIterable {
        case desktop, mobile, tablet, tv, console, wearable, car, bot, other
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

    /// Classifies a header value (nil or empty: an empty-agent bot), with the lists in `rules` when loaded
    /// (`scratch` is the calling loop's).
    public init(parsing header: String?, rules: UserAgentRules? = nil, scratch: UserAgentRules.Scratch? = nil) {
        guard let header, !header.isEmpty else {
            botReason = .empty
            device = .bot
            return
        }
        let text: LoweredAgent
        if let rules, let scratch {
            // One pass over the agent finds the lists' candidates and the token rules' tokens alike.
            var bytes = header
            let reading = bytes.withUTF8 { rules.read(UnsafeRawBufferPointer($0), scratch: scratch) }
            text = LoweredAgent(header, present: scratch.tokensFound)
            if let named = Self.namedBrowser(header, lowercased: text) {
                (browser, browserVersion) = named
            } else if let found = reading.browser {
                (browser, browserVersion) = (Self.browserNames[found.name] ?? found.name, found.version)
                // uap-core names TV middleware, not the browser in it.
                if browser == "HbbTV" { (browser, browserVersion) = Self.browser(header, lowercased: text) }
            }
            if let named = Self.namedSystem(text) {
                (os, osVersion) = (named, "")
            } else if let found = reading.system {
                (os, osVersion) = (Self.systemNames[found.name] ?? found.name, found.version)
                if os == "iOS" && text.contains(id: Token.ipad) { os = "iPadOS" }
            }
            if !Self.isAppClient(text) {
                botReason = Self.botReason(text) ?? (reading.isCrawler || Self.announcesMachine(text) ? .crawler : nil)
            }
        } else {
            text = LoweredAgent(header)
            botReason = Self.isAppClient(text) ? nil : Self.botReason(text) ?? (Self.announcesMachine(text) ? .crawler : nil)
            (browser, browserVersion) = Self.browser(header, lowercased: text)
            (os, osVersion) = Self.operatingSystem(header, lowercased: text)
        }
        // Apps that name Android outside uap-core's patterns (`RadioPublic/android-2.2`).
        if os.isEmpty && text.contains(id: Token.android) { os = "Android" }
        if Self.isAppClient(text) { (browser, browserVersion) = ("App", "") }
        device = botReason != nil ? .bot : Self.device(text, os: os)
        // Android on Amazon's devices (Fire TV, Kindle Fire) is Fire OS.
        if os == "Android" && (text.contains(id: Token.aft) || text.contains(id: Token.kf) || text.contains(id: Token.silk)) { os = "Fire OS" }
    }

    /// Browsers uap-core's list (as Debian ships it) does not name, by their own token: (token in the lower-cased
    /// header, name).
    static let namedBrowsers: [(token: String, name: String)] = [
        ("yabrowser/", "Yandex Browser"), ("yasearchbrowser/", "Yandex Browser"), ("yandexsearchbrowser/", "Yandex Browser"),
        ("huaweibrowser/", "Huawei Browser"), ("quark/", "Quark"), ("vivobrowser/", "vivo Browser"),
        ("miuibrowser/", "Mi Browser"), ("mqqbrowser/", "QQ Browser"), ("qqbrowser/", "QQ Browser"),
        ("micromessenger/", "WeChat"), ("gsa/", "Google App"), (" omi/", "Opera Devices"), ("lg browser/", "LG Browser"),
        ("heytapbrowser/", "HeyTap Browser"), ("oppobrowser/", "HeyTap Browser"), ("phx/", "Phoenix Browser"),
        ("odin/", "Odin"), ("mzbrowser/", "Meizu Browser"), ("puffin/", "Puffin Web Browser"),
    ]

    static let namedBrowserIDs = namedBrowsers.map { AgentTokens.id($0.token) }
    static let namedSystemIDs = namedSystems.map { AgentTokens.id($0.token) }

    /// Ids of the single tokens the rules test on every new agent (a bit test each, no hashing).
    enum Token {
        static let ipad = AgentTokens.id("ipad"), iphone = AgentTokens.id("iphone"), ipod = AgentTokens.id("ipod")
        static let aft = AgentTokens.id("; aft"), kf = AgentTokens.id("; kf"), silk = AgentTokens.id("silk/")
        static let midp = AgentTokens.id("midp"), j2me = AgentTokens.id("j2me"), android = AgentTokens.id("android")
        static let adr = AgentTokens.id("adr "), mobi = AgentTokens.id("mobi"), safari = AgentTokens.id("safari")
        static let phone = AgentTokens.id("phone"), okhttp = AgentTokens.id("okhttp/")
        /// Phones by their makers, browsers and apps: feature phones' WAP browsers (Openwave's `UP.Browser`,
        /// MediaTek's `MAUI`, Obigo), Facebook for Android (`FB4A`), UC Browser's iPhone agent (`dv(iPh`).
        static let otherPhones = AgentTokens.ids([
            "blackberry", "opera mini", "midp", "symbian", "kaios", "fb4a", "dv(iph", "up.browser", "mmp/", "maui", "wap",
            "obigo", "nokia", "sonyericsson", "brew",
        ])
        /// Office and other apps stating the form factor.
        static let desktop = AgentTokens.id("; desktop;")
        static let speaker = AgentTokens.id("sonos")
    }

    static func namedBrowser(_ header: String, lowercased text: LoweredAgent) -> (String, String)? {
        for (number, (token, name)) in namedBrowsers.enumerated() {
            guard text.contains(id: namedBrowserIDs[number]), let offset = text.offset(of: token) else { continue }
            let utf8 = header.utf8
            let start = utf8.index(utf8.startIndex, offsetBy: offset + token.utf8.count, limitedBy: utf8.endIndex) ?? utf8.endIndex
            return (name, header.version(after: start) ?? "")
        }
        return nil
    }

    /// Systems uap-core's list does not tell apart or does not know: (token in the lower-cased header, name).
    /// Mac apps name the Mac (`Mac OS/11.1`, `Apple/MacBookPro16,1`, a PowerPC Mac's `Power%20Macintosh`) where
    /// uap-core reads their CFNetwork as iOS; Opera's Presto on MIPS Linux is Opera's TV platform; `Zeasn` is the
    /// maker of Whale OS; Amazon's own players say `Amazon;AFT…` (a Fire TV) with no Android in sight.
    static let namedSystems: [(token: String, name: String)] = [
        ("android tv", "Android TV"), ("google tv", "Android TV"), ("androidtv", "Android TV"),
        ("harmonyos", "HarmonyOS"), ("vidaa", "VIDAA"), ("opera tv", "Opera TV"), ("linux mips", "Opera TV"),
        (" tivo", "TiVo OS"), ("(tivo", "TiVo OS"), ("tivo-", "TiVo OS"), ("roku", "Roku OS"), ("vizios", "ViziOS"),
        ("vizio smartcast", "ViziOS"), ("cyanogenmod", "CyanogenMod"), ("mocordroid", "MocorDroid"),
        ("whaleos", "Whale OS"), ("zeasn", "Whale OS"), ("wear os", "Wear OS"), ("watchos", "watchOS"),
        ("watch os", "watchOS"), ("apple watch", "watchOS"), ("windows ce", "Windows CE"), ("web0s", "webOS"),
        ("webos", "webOS"), ("kaios", "KaiOS"), ("amazon;aft", "Fire OS"), ("amazon;kf", "Fire OS"),
        ("mac os/", "macOS"), ("apple/mac", "macOS"), ("power%20macintosh", "macOS"), ("chromebook", "ChromeOS"),
        ("(win10 ", "Windows"), ("(win7 ", "Windows"), ("(win8", "Windows"), ("msoffice", "Windows"),
        ("dv(iph", "iOS"),
    ]

    static func namedSystem(_ text: LoweredAgent) -> String? {
        if let number = namedSystemIDs.firstIndex(where: { text.contains(id: $0) }) { return namedSystems[number].name }
        // Java ME phones announce MIDP; Android builds of old mobile browsers did too, naming Android as well.
        if (text.contains(id: Token.midp) || text.contains(id: Token.j2me)) && !text.contains(id: Token.android)
            && !text.contains(id: Token.adr)
        {
            return "Java ME"
        }
        // Android apps that name the platform outside uap-core's patterns (`RadioPublic/android-2.2`), and OkHttp,
        // Android's HTTP client.
        if text.contains(id: Token.okhttp) { return "Android" }
        return nil
    }

    /// What only machines put in a user agent: a word naming a tool's job (crawler, monitor, checker, fetcher, ...),
    /// or a URL or an address to write to without a platform people use (podcast and feed apps name their site, but
    /// also the phone or desktop they run on).
    static let machineWords = [
        "crawl", "spider", "scanner", "monitor", "checker", "check service",
        "fetcher", "indexer", "validator", "probe", "scraper", "extractor", "transcoder", "lookup", "resolver",
        "verifier", "analyzer", "benchmark", "bench/", "collector", "harvest", "sitemap", "subscribers", "headless",
        "google page speed", "google search console", "duplexweb-google", "(compatible; google", "; google-",
        "google-", "health check", "robot",
    ]

    static let contactMarks = ["http://", "https://", "+http", "www."]
    static let platformWords = ["android", "ios", "iphone", "ipad", "macos", "mac os", "windows", "linux; u;", "app"]

    static func announcesMachine(_ text: LoweredAgent) -> Bool {
        if text.containsAny(machineWordIDs) { return true }
        let contact = text.containsAny(contactMarkIDs) || text.hasAddress
        return contact && !text.containsAny(platformWordIDs)
    }

    /// uap-core's family names where Vantage stores another: a browser's mobile build is the browser (mobile is the
    /// device class), and the names people know.
    static let browserNames: [String: String] = [
        "Chrome Mobile": "Chrome", "Chrome Mobile iOS": "Chrome", "Chrome Mobile WebView": "Chrome WebView",
        "Mobile Safari": "Safari", "Mobile Safari UI/WKWebView": "Safari WebView", "Firefox Mobile": "Firefox",
        "Firefox iOS": "Firefox", "Edge Mobile": "Edge", "Opera Mobile": "Opera", "IE": "Internet Explorer",
        "IE Mobile": "Internet Explorer", "DuckDuckGo Mobile": "DuckDuckGo", "Android": "Android Browser",
        "MiuiBrowser": "Mi Browser", "QQ Browser Mobile": "QQ Browser", "Amazon Silk": "Silk", "Other": "",
    ]
    static let systemNames: [String: String] = ["Mac OS X": "macOS", "Chrome OS": "ChromeOS", "Web0S": "webOS", "Other": ""]

    /// The HTTP clients of native apps (Android's OkHttp and Dalvik, Flutter's Dart, Apple's CFNetwork and
    /// URLSession, Alamofire, React Native): people using an app, not machines.
    static let appClientTokens = ["okhttp/", "dart/", "dart:io", "cfnetwork/", "darwin/", "dalvik/", "alamofire/", "urlsession", "reactnative", "expo/"]

    static func isAppClient(_ text: LoweredAgent) -> Bool { text.containsAny(appClientTokenIDs) }

    // MARK: - Rules

    /// Substrings (of the lower-cased header) that mark a machine, by reason; checked in this order.
    static let botRules: [(BotReason, [String])] = [
        (.mailProxy, ["googleimageproxy", "yahoomailproxy", "outlook-imageproxy", "proxy.mail.ru"]),
        (.linkPreview, [
            "facebookexternalhit", "facebookcatalog", "twitterbot", "slackbot", "slack-imgproxy", "discordbot",
            "telegrambot", "whatsapp/", "linkedinbot", "skypeuripreview", "pinterestbot", "redditbot", "embedly",
            "quora link preview", "vkshare", "iframely", "bingpreview", "snap url preview", "mastodon/",
        ]),
        (.monitoring, [
            "uptimerobot", "pingdom", "statuscake", "site24x7", "newrelicpinger", "datadog", "gtmetrix",
            "chrome-lighthouse", "kube-probe", "elb-healthchecker", "googlestackdrivermonitoring", "better uptime",
        ]),
        (.headless, ["headlesschrome", "phantomjs", "puppeteer", "playwright", "selenium"]),
        (.httpLibrary, [
            "curl/", "wget/", "python-requests", "python-urllib", "python-httpx", "aiohttp/", "go-http-client",
            "java/", "apache-httpclient", "libwww-perl", "axios/", "node-fetch", "undici", "got (",
            "ruby/", "php/", "guzzlehttp", "httpie/", "postmanruntime", "insomnia/", "reqwest/", "scrapy",
            "wordpress/",
        ]),
        // Without the crawler list: the crawlers that announce themselves, and the best-known names.
        (.crawler, [
            "bot/", "bot;", "bot)", "bot.htm", "crawler", "spider", "slurp", "archiver", "mediapartners-google",
            "adsbot-google", "google-inspectiontool", "feedfetcher", "yandexbot", "baiduspider", "sogou web",
            "semrush", "ahrefs", "mj12", "petalbot", "ccbot", "gptbot", "chatgpt-user", "claudebot", "anthropic-ai",
            "perplexitybot", "bytespider", "amazonbot", "applebot", "duckduckbot", "qwantify", "seznambot",
            "ia_archiver", "heritrix", "nutch", "feedly", "inoreader",
        ]),
    ]

    static let botRuleIDs = botRules.map { ($0.0, AgentTokens.ids($0.1)) }
    static let machineWordIDs = AgentTokens.ids(machineWords)
    static let contactMarkIDs = AgentTokens.ids(contactMarks)
    static let platformWordIDs = AgentTokens.ids(platformWords)
    static let appClientTokenIDs = AgentTokens.ids(appClientTokens)
    static let consoleTokenIDs = AgentTokens.ids(consoleTokens)
    static let tvTokenIDs = AgentTokens.ids(tvTokens)
    static let carTokenIDs = AgentTokens.ids(carTokens)
    static let wearableTokenIDs = AgentTokens.ids(wearableTokens)
    static let tabletTokenIDs = AgentTokens.ids(tabletTokens)

    static func botReason(_ text: LoweredAgent) -> BotReason? {
        for (reason, needles) in botRuleIDs where text.containsAny(needles) { return reason }
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

    static func browser(_ header: String, lowercased text: LoweredAgent) -> (String, String) {
        for (name, tokens) in browserRules {
            for token in tokens {
                guard let end = text.index(after: token, in: header) else { continue }
                if token == "Trident/" { return (name, text.version(after: "rv:", in: header) ?? "") }
                return (name, header.version(after: end) ?? "")
            }
        }
        // Safari names its version in `Version/`; other WebKit apps have no Version token.
        if text.contains("safari/") || text.contains("applewebkit/") && (text.contains("iphone") || text.contains("ipad")) {
            if let version = text.version(after: "Version/", in: header) { return ("Safari", version) }
            if text.contains("mobile/") { return ("Mobile Safari WebView", "") }
            return ("Safari", "")
        }
        return ("", "")
    }

    static func operatingSystem(_ header: String, lowercased text: LoweredAgent) -> (String, String) {
        if let end = text.index(after: "Windows NT ", in: header) {
            let known = ["10.0": "10", "6.3": "8.1", "6.2": "8", "6.1": "7", "6.0": "Vista", "5.1": "XP"]
            let number = header.version(after: end, parts: 2) ?? ""
            return ("Windows", known[number] ?? number)
        }
        if text.contains("windows phone") { return ("Windows Phone", text.version(after: "Windows Phone ", in: header) ?? "") }
        if text.contains("windows") { return ("Windows", "") }
        if text.contains("iphone") || text.contains("ipad") || text.contains("ipod") {
            let version = text.version(after: " OS ", in: header, separator: "_") ?? ""
            return (text.contains("ipad") ? "iPadOS" : "iOS", version)
        }
        if let end = text.index(after: "Android", in: header) {
            let after = header[end...].drop { $0 == " " }
            return ("Android", after.version(after: after.startIndex) ?? "")
        }
        // "cros" alone is inside "Microsoft".
        if text.contains("; cros ") { return ("ChromeOS", "") }
        if text.contains("mac os x") || text.contains("macintosh") {
            return ("macOS", text.version(after: "Mac OS X ", in: header, separator: "_") ?? "")
        }
        if text.contains("linux") || text.contains("x11") { return ("Linux", "") }
        return ("", "")
    }

    /// Device tokens (of the lower-cased header), checked before the phone and tablet rules: TV sets and sticks,
    /// game consoles, watches, car browsers.
    static let tvTokens = [
        "smart-tv", "smarttv", "smart tv", "smart_tv", "hbbtv", "googletv", "google tv", "android tv", "androidtv",
        "appletv", "apple tv", "tvos", "roku", "web0s", "netcast", "bravia", "crkey", "viera", "aquos", "philipstv",
        "opera tv", "; tv;", "(tv;", " tv)", "vidaa", "tizen tv", "tizen 2.3) applewebkit", "dtv", "; aft", "mibox",
        "shield android tv", "sonydtv", "tpvision", "nettv", "inettvbrowser", "freebox", "sky_stb", "set-top",
        "kaiostv", "lg browser", "webos", " tv box", "tvbox", " tv build", " omi/", "smart_tv", "amazon;aft",
        "linux mips", "brightsign", "youview", "hybridcast",
    ]
    static let consoleTokens = ["playstation", "xbox", "nintendo", "ouya"]
    /// Tablets by their own words or their models (Samsung SM-T/SM-P/SM-X, Lenovo TB, Huawei MediaPad/MatePad, Amazon
    /// Kindle and Fire).
    static let tabletTokens = [
        "ipad", "tablet", "kindle", "silk/", "; sm-t", "; sm-p", "; sm-x", "; gt-p", "lenovo tb", "; tb-", "mediapad",
        "matepad", "nexus 7", "nexus 9", "nexus 10", "pixel c", "xoom", "playbook", "; kf", "tab ", "lenovo yt",
        "/apad",
    ]
    /// Watches and headsets (Samsung's `SM-R` models are its watches; Meta's Quest browses in `VR Safari`).
    static let wearableTokens = [
        "watch", "wear os", "; glass", "oculus", "vr safari", "; quest 2", "; quest 3", "; quest pro", "; sm-r", "samsung sm-r",
    ]
    static let carTokens = ["tesla", "qtcarbrowser", "android automotive", "carplay", "; car;"]

    /// What an Android device's model says of its form, by its words: TV boxes and sticks (`Smotreshka Box 115NA`,
    /// `TOUCAN Stick 4K`, `HiBox-hero`, the `shell` of TV sets' Android), laptops running Android apps
    /// (`Latitude 7390`, `HP Chromebook 11`), tablets (`Xiaomi Pad 5`, `Galaxy Tab`, `MID1125`).
    static func androidModelDevice(_ text: LoweredAgent) -> Device? {
        guard let model = text.androidModel() else { return nil }
        func isAny(_ list: [[UInt8]], _ word: ArraySlice<UInt8>) -> Bool { list.contains { word.elementsEqual($0) } }
        func has(_ word: ArraySlice<UInt8>, prefix: [UInt8]) -> Bool { word.starts(with: prefix) }
        func has(_ word: ArraySlice<UInt8>, suffix: [UInt8]) -> Bool { word.count >= suffix.count && word.suffix(suffix.count).elementsEqual(suffix) }
        if text.containsWord(in: model, where: { isAny(tvModelWords, $0) || $0.count > 3 && has($0, suffix: Word.box) }) { return .tv }
        if text.containsWord(in: model, where: { isAny(laptopModelWords, $0) }) { return .desktop }
        let tablet = text.containsWord(in: model) { word in
            if has(word, prefix: Word.tab) || has(word, prefix: Word.nook) || word.elementsEqual(Word.kids) { return true }
            if has(word, prefix: Word.mid) && (word.count == 3 || (48...57).contains(word[word.startIndex + 3])) { return true }
            // "pad" anywhere in the word: Pad, MatePad, SURFpad, G-PADLITE.
            var index = word.startIndex
            while index + 3 <= word.endIndex {
                if word[index] == UInt8(ascii: "p") && word[index + 1] == UInt8(ascii: "a") && word[index + 2] == UInt8(ascii: "d") { return true }
                index += 1
            }
            return false
        }
        return tablet ? .tablet : nil
    }

    enum Word {
        static let box = Array("box".utf8), tab = Array("tab".utf8), nook = Array("nook".utf8), kids = Array("kids".utf8)
        static let mid = Array("mid".utf8)
    }

    /// Systems only desktops and laptops run (uap-core's names), besides Windows, macOS and Linux.
    static let desktopSystems: Set<String> = [
        "Windows", "macOS", "Linux", "ChromeOS", "Ubuntu", "Fedora", "Debian", "FreeBSD", "OpenBSD", "NetBSD", "Solaris",
        "Haiku", "BeOS", "AmigaOS", "MorphOS", "OS/2", "CentOS", "Red Hat", "Mandriva", "Slackware", "Gentoo", "Kubuntu",
        "Linux Mint", "SUSE", "openSUSE", "Mageia", "Arch Linux", "Sabayon", "PCLinuxOS", "Xubuntu", "Lubuntu", "Elementary OS",
    ]

    static let tvModelWords = [
        "tv", "dtv", "box", "stick", "shell", "uhd", "dvb", "iptv", "stb", "dongle", "smarttv", "androidtv", "4k",
    ].map { Array($0.utf8) }
    static let laptopModelWords = [
        "chromebook", "pixelbook", "latitude", "inspiron", "travelmate", "aspire", "satellite", "thinkpad", "ideapad",
        "elitebook", "probook", "zenbook", "vivobook",
    ].map { Array($0.utf8) }

    static func device(_ text: LoweredAgent, os: String) -> Device {
        if text.containsAny(consoleTokenIDs) { return .console }
        if text.containsAny(tvTokenIDs) { return .tv }
        if text.containsAny(carTokenIDs) { return .car }
        if text.containsAny(wearableTokenIDs) { return .wearable }
        if text.contains(id: Token.android), let device = androidModelDevice(text) { return device }
        if text.containsAny(tabletTokenIDs) { return .tablet }
        if text.contains(id: Token.desktop) { return .desktop }
        // A speaker is none of the classes.
        if text.contains(id: Token.speaker) { return .other }
        // Chrome and the other browsers on Android tablets leave out "Mobile"; apps' and media players' agents
        // leave it out on phones too, so only a browser's agent without it says tablet.
        if os == "Android" && !text.contains(id: Token.mobi) && text.contains(id: Token.safari) { return .tablet }
        if text.contains(id: Token.mobi) || text.contains(id: Token.iphone) || text.contains(id: Token.ipod) || text.contains(id: Token.phone)
            || os == "Android"
            || text.containsAny(Token.otherPhones) || os == "Windows Phone" || os == "iOS"
        {
            return .mobile
        }
        if desktopSystems.contains(os) { return .desktop }
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
