import Testing

@testable import Tracking

/// A corpus of user agents as browsers, apps, libraries and crawlers send them (formats from the vendors' public
/// documentation), with what each must classify as.
@Suite struct UserAgentTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var header: String
        var browser: String
        var version: String
        var os: String
        var osVersion: String
        var device: UserAgent.Device
        var bot: UserAgent.BotReason? = nil
        var testDescription: String { "\(browser.isEmpty ? "?" : browser) on \(os.isEmpty ? "?" : os)" }
    }

    static let corpus: [Case] = [
        Case(header: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
             browser: "Chrome", version: "131.0", os: "Windows", osVersion: "10", device: .desktop),
        Case(header: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
             browser: "Edge", version: "131.0", os: "Windows", osVersion: "10", device: .desktop),
        Case(header: "Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:115.0) Gecko/20100101 Firefox/115.0",
             browser: "Firefox", version: "115.0", os: "Windows", osVersion: "7", device: .desktop),
        Case(header: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
             browser: "Safari", version: "18.1", os: "macOS", osVersion: "10.15", device: .desktop),
        Case(header: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.7; rv:132.0) Gecko/20100101 Firefox/132.0",
             browser: "Firefox", version: "132.0", os: "macOS", osVersion: "14.7", device: .desktop),
        Case(header: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0",
             browser: "Opera", version: "115.0", os: "Linux", osVersion: "", device: .desktop),
        Case(header: "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36",
             browser: "Chrome", version: "129.0", os: "ChromeOS", osVersion: "", device: .desktop),
        Case(header: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
             browser: "Safari", version: "17.6", os: "iOS", osVersion: "17.6", device: .mobile),
        Case(header: "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
             browser: "Chrome", version: "131.0", os: "iOS", osVersion: "18.1", device: .mobile),
        Case(header: "Mozilla/5.0 (iPad; CPU OS 16_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
             browser: "Safari", version: "16.6", os: "iPadOS", osVersion: "16.7", device: .tablet),
        Case(header: "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36",
             browser: "Chrome", version: "131.0", os: "Android", osVersion: "14", device: .mobile),
        Case(header: "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
             browser: "Chrome", version: "130.0", os: "Android", osVersion: "13", device: .tablet),
        Case(header: "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
             browser: "Samsung Internet", version: "26.0", os: "Android", osVersion: "14", device: .mobile),
        Case(header: "Mozilla/5.0 (Android 14; Mobile; rv:132.0) Gecko/132.0 Firefox/132.0",
             browser: "Firefox", version: "132.0", os: "Android", osVersion: "14", device: .mobile),
        Case(header: "Mozilla/5.0 (Windows NT 10.0; Trident/7.0; rv:11.0) like Gecko",
             browser: "Internet Explorer", version: "11.0", os: "Windows", osVersion: "10", device: .desktop),
        Case(header: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
             browser: "", version: "", os: "", osVersion: "", device: .bot, bot: .crawler),
        Case(header: "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
             browser: "Chrome", version: "116.0", os: "", osVersion: "", device: .bot, bot: .crawler),
        Case(header: "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
             browser: "", version: "", os: "", osVersion: "", device: .bot, bot: .crawler),
        Case(header: "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
             browser: "", version: "", os: "", osVersion: "", device: .bot, bot: .linkPreview),
        Case(header: "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
             browser: "", version: "", os: "", osVersion: "", device: .bot, bot: .linkPreview),
        Case(header: "WhatsApp/2.23.20.0",
             browser: "", version: "", os: "", osVersion: "", device: .bot, bot: .linkPreview),
        Case(header: "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
             browser: "Firefox", version: "11.0", os: "Windows", osVersion: "XP", device: .bot, bot: .mailProxy),
        Case(header: "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
             browser: "", version: "", os: "", osVersion: "", device: .bot, bot: .mailProxy),
        Case(header: "curl/8.5.0", browser: "", version: "", os: "", osVersion: "", device: .bot, bot: .httpLibrary),
        Case(header: "python-requests/2.32.3", browser: "", version: "", os: "", osVersion: "", device: .bot, bot: .httpLibrary),
        Case(header: "Go-http-client/1.1", browser: "", version: "", os: "", osVersion: "", device: .bot, bot: .httpLibrary),
        Case(header: "Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
             browser: "", version: "", os: "", osVersion: "", device: .bot, bot: .monitoring),
        Case(header: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
             browser: "Chrome", version: "120.0", os: "Linux", osVersion: "", device: .bot, bot: .headless),
        Case(header: "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
             browser: "", version: "", os: "", osVersion: "", device: .bot, bot: .crawler),
        // More browsers and apps.
        Case(header: "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 EdgA/131.0.0.0",
             browser: "Edge", version: "131.0", os: "Android", osVersion: "14", device: .mobile),
        Case(header: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/132.0 Mobile/15E148 Safari/605.1.15",
             browser: "Firefox", version: "132.0", os: "iOS", osVersion: "17.7", device: .mobile),
        Case(header: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0.0.0 YaBrowser/24.10.0.0 Safari/537.36",
             browser: "Yandex Browser", version: "24.10", os: "Windows", osVersion: "10", device: .desktop),
        Case(header: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
             browser: "Chrome", version: "131.0", os: "macOS", osVersion: "10.15", device: .desktop),
        Case(header: "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
             browser: "Firefox", version: "133.0", os: "Linux", osVersion: "", device: .desktop),
        Case(header: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Vivaldi/7.0.3495.18",
             browser: "Vivaldi", version: "7.0", os: "Windows", osVersion: "10", device: .desktop),
        Case(header: "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
             browser: "Chrome", version: "131.0", os: "Android", osVersion: "10", device: .mobile),
        Case(header: "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
             browser: "Chrome", version: "131.0", os: "iPadOS", osVersion: "18.1", device: .tablet),
        // Link previews, crawlers, AI fetchers.
        Case(header: "Twitterbot/1.0", browser: "", version: "", os: "", osVersion: "", device: .bot, bot: .linkPreview),
        Case(header: "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
             browser: "", version: "", os: "", osVersion: "", device: .bot, bot: .linkPreview),
        Case(header: "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
             browser: "", version: "", os: "", osVersion: "", device: .bot, bot: .linkPreview),
        Case(header: "TelegramBot (like TwitterBot)", browser: "", version: "", os: "", osVersion: "", device: .bot, bot: .linkPreview),
        Case(header: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
             browser: "Safari", version: "17.4", os: "macOS", osVersion: "10.15", device: .bot, bot: .crawler),
        Case(header: "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
             browser: "", version: "", os: "", osVersion: "", device: .bot, bot: .crawler),
        Case(header: "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
             browser: "", version: "", os: "", osVersion: "", device: .bot, bot: .crawler),
        Case(header: "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
             browser: "", version: "", os: "", osVersion: "", device: .bot, bot: .crawler),
        Case(header: "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)",
             browser: "", version: "", os: "", osVersion: "", device: .bot, bot: .crawler),
        Case(header: "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
             browser: "", version: "", os: "", osVersion: "", device: .bot, bot: .crawler),
        Case(header: "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)",
             browser: "Safari", version: "", os: "Android", osVersion: "5.0", device: .bot, bot: .crawler),
        // Libraries and monitors.
        Case(header: "Wget/1.21.3", browser: "", version: "", os: "", osVersion: "", device: .bot, bot: .httpLibrary),
        // Native apps' HTTP clients are people using an app.
        Case(header: "okhttp/4.12.0", browser: "App", version: "", os: "", osVersion: "", device: .other),
        Case(header: "Dart/3.5 (dart:io)", browser: "App", version: "", os: "", osVersion: "", device: .other),
        Case(header: "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/AP2A.240805.005)",
             browser: "App", version: "", os: "Android", osVersion: "14", device: .mobile),
        Case(header: "MyShop/5.2 CFNetwork/1496.0.7 Darwin/23.5.0", browser: "App", version: "", os: "", osVersion: "", device: .other),
        // Devices beyond phones, tablets and computers.
        Case(header: "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) 76.0.3809.146/6.0 TV Safari/537.36",
             browser: "Safari", version: "", os: "Linux", osVersion: "", device: .tv),
        Case(header: "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko)",
             browser: "", version: "", os: "", osVersion: "", device: .console),
        Case(header: "Mozilla/5.0 (X11; GNU/Linux) AppleWebKit/601.1 (KHTML, like Gecko) Tesla QtCarBrowser Safari/601.1",
             browser: "Safari", version: "", os: "Linux", osVersion: "", device: .car),
        Case(header: "axios/1.7.7", browser: "", version: "", os: "", osVersion: "", device: .bot, bot: .httpLibrary),
        Case(header: "Java/17.0.9", browser: "", version: "", os: "", osVersion: "", device: .bot, bot: .httpLibrary),
        Case(header: "Apache-HttpClient/4.5.14 (Java/17.0.9)", browser: "", version: "", os: "", osVersion: "", device: .bot, bot: .httpLibrary),
        Case(header: "PostmanRuntime/7.42.0", browser: "", version: "", os: "", osVersion: "", device: .bot, bot: .httpLibrary),
        Case(header: "Mozilla/5.0 (compatible; Pingdom.com_bot_version_1.4_(http://www.pingdom.com/))",
             browser: "", version: "", os: "", osVersion: "", device: .bot, bot: .monitoring),
        Case(header: "kube-probe/1.30", browser: "", version: "", os: "", osVersion: "", device: .bot, bot: .monitoring),
    ]

    @Test(arguments: corpus)
    func classifies(_ sample: Case) {
        let agent = UserAgent(parsing: sample.header)
        #expect(agent.browser == sample.browser, "\(sample.header)")
        #expect(agent.browserVersion == sample.version, "\(sample.header)")
        #expect(agent.os == sample.os, "\(sample.header)")
        #expect(agent.osVersion == sample.osVersion, "\(sample.header)")
        #expect(agent.device == sample.device, "\(sample.header)")
        #expect(agent.botReason == sample.bot, "\(sample.header)")
    }

    @Test func anEmptyAgentIsAMachine() {
        #expect(UserAgent(parsing: nil).botReason == .empty)
        #expect(UserAgent(parsing: "").device == .bot)
    }
}

@Suite struct UserAgentCacheTests {
    @Test func repeatsAreHitsAndTheSizeStaysBounded() {
        let cache = UserAgentCache(capacity: 4)
        let chrome = UserAgentTests.corpus[0].header
        #expect(cache.classify(chrome).browser == "Chrome")
        #expect(cache.classify(chrome).browser == "Chrome")
        #expect(cache.hits.value == 1 && cache.misses.value == 1)
        for index in 0..<20 { _ = cache.classify("agent-\(index)/1.0") }
        #expect(cache.count <= 8)
        #expect(cache.rotations > 0)
        // A recently used entry survives a rotation by being promoted.
        let cache2 = UserAgentCache(capacity: 2)
        _ = cache2.classify("a/1")
        _ = cache2.classify("b/1")
        _ = cache2.classify("c/1")  // rotates: {a, b} become the previous generation
        _ = cache2.classify("a/1")  // found in previous, promoted
        #expect(cache2.hits.value == 1)
    }
}
