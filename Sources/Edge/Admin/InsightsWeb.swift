import Foundation
import Insights
import NIOCore
import NIOHTTP1
import Tracking

/// A request to the reports' web pages, whichever listener it reached: the admin listener (mounted at `/`) or a
/// site's `insights` route (mounted at its path).
struct InsightsWebRequest: Sendable {
    var method: HTTPMethod
    /// The path below the mount, from its `/` (`/`, `/login`, `/api/v1/stats`, ...).
    var path: String
    /// The query's names and values.
    var parameters: [String: String]
    var authorization: String?
    var cookie: String?
    /// A form's body (`POST /login`).
    var body: String
    /// Who asked (wrong tokens are counted per address).
    var clientAddress: String
    /// Where the pages are mounted, ending in `/`.
    var basePath: String
    /// Whether the browser came over HTTPS (the session cookie is then `Secure`).
    var secure: Bool
}

/// An answer to a report or a page: status, body and headers, whichever transport sends it.
struct WebAnswer: Sendable {
    var status: HTTPResponseStatus
    var body: String
    var contentType = "text/plain; charset=utf-8"
    var headers: HTTPHeaders = [:]

    init(_ status: HTTPResponseStatus, _ body: String, contentType: String = "text/plain; charset=utf-8", headers: HTTPHeaders = [:]) {
        (self.status, self.body, self.contentType, self.headers) = (status, body, contentType, headers)
    }
}

/// The reports' pages, independent of the listener: the dashboard, the live view, the sign-in form, the stats and
/// activity APIs, share links and the assets. The event stream of the live view and the admin API stay on the admin
/// listener (`AdminHandler`).
extension Gateway {
    /// Pages carry a policy that allows no script and no inline style (the live view allows its own script).
    static let pageHeaders: HTTPHeaders = [
        "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
    ]

    /// Whether `path` (below the mount) is one of the reports' pages.
    static func isInsightsPath(_ path: String) -> Bool {
        ["/", "/login", "/logout", "/live", "/api/v1/stats", "/api/v1/activity", "/assets/insights.css", "/assets/live.js"].contains(path)
            || path.hasPrefix("/share/")
    }

    /// The answer to `request`; nil when its path is not one of the reports' pages.
    func insightsWeb(_ request: InsightsWebRequest) async -> WebAnswer? {
        let path = request.path
        let reading = request.method == .GET || request.method == .HEAD
        switch (request.method, path) {
        case (_, "/assets/insights.css") where reading:
            return WebAnswer(.ok, DashboardStyle.css, contentType: "text/css; charset=utf-8", headers: ["X-Content-Type-Options": "nosniff"])
        case (_, "/assets/live.js") where reading:
            return WebAnswer(.ok, LivePage.script, contentType: "text/javascript; charset=utf-8", headers: ["X-Content-Type-Options": "nosniff"])
        case (.GET, "/login"):
            return Self.page(.ok, Self.loginPage(message: nil, basePath: request.basePath))
        case (.POST, "/login"):
            return login(request)
        case (.GET, "/logout"):
            var headers = Self.pageHeaders
            headers.add(name: "Set-Cookie", value: "\(AdminSessions.cookieName)=; Path=\(request.basePath); Max-Age=0; HttpOnly; SameSite=Strict")
            headers.add(name: "Location", value: request.basePath + "login")
            return WebAnswer(.seeOther, "", headers: headers)
        default:
            break
        }
        if path.hasPrefix("/share/") { return await shared(request) }
        guard ["/", "/live", "/api/v1/stats", "/api/v1/activity"].contains(path) else { return nil }
        guard reading else {
            return WebAnswer(.methodNotAllowed, "405 Method Not Allowed: reports are read with GET\n", headers: ["Allow": "GET, HEAD"])
        }
        guard isAllowedToRead(request) else {
            if path == "/" || path == "/live" {
                return WebAnswer(.seeOther, "", headers: ["Location": request.basePath + "login"])
            }
            return WebAnswer(.unauthorized, "401 Unauthorized: send Authorization: Bearer <token>\n", headers: ["WWW-Authenticate": "Bearer"])
        }
        return await report(path: path, parameters: request.parameters, basePath: request.basePath, sharedSite: nil)
    }

    /// The admin token as a bearer header, or a signed-in browser's cookie; anyone when no token is configured.
    func isAllowedToRead(_ request: InsightsWebRequest) -> Bool {
        guard let token = adminToken else { return true }
        if Signatures.equal(request.authorization ?? "", "Bearer " + token) { return true }
        return adminSessions.isSignedIn(cookieHeader: request.cookie, token: token)
    }

    /// The dashboard, the live view or an API report (`sharedSite`: a share link's, forced).
    private func report(path: String, parameters: [String: String], basePath: String, sharedSite: String?) async -> WebAnswer {
        var asked = parameters
        if let sharedSite { asked["site"] = sharedSite }
        let parameters = asked
        do {
            switch path {
            case "/":
                return Self.page(.ok, try await dashboardPage(parameters, basePath: basePath, sharedSite: sharedSite))
            case "/live":
                return await livePage(parameters, basePath: basePath)
            default:
                let body = path == "/api/v1/stats" ? try await stats(parameters) : try await activityAnswer(parameters)
                let type = parameters["format"] == "csv" ? "text/csv; charset=utf-8" : "application/json"
                return WebAnswer(.ok, body, contentType: type, headers: sharedSite == nil ? [:] : ["Referrer-Policy": "no-referrer"])
            }
        } catch let error as InsightsQueryError {
            if path.hasPrefix("/api/") { return WebAnswer(.badRequest, "400 Bad Request: \(error)\n") }
            return Self.page(.badRequest, Self.messagePage("That report cannot be shown", "\(error)", basePath: basePath))
        } catch {
            if path.hasPrefix("/api/") { return WebAnswer(.internalServerError, "500 Internal Server Error: \(error)\n") }
            return Self.page(.internalServerError, Self.messagePage("The report failed", "\(error)", basePath: basePath))
        }
    }

    /// The live page of `parameters`' site.
    private func livePage(_ parameters: [String: String], basePath: String) async -> WebAnswer {
        guard let site = parameters["site"] ?? defaultReportSite, siteNames.contains(site) else {
            return WebAnswer(.badRequest, "400 Bad Request: site: expected the name of a configured site\n")
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        await liveFeed.refresh(now: now)
        let snapshot = await liveFeed.snapshot(site: site, now: now)
        var headers = Self.pageHeaders
        headers.replaceOrAdd(name: "Content-Security-Policy", value: LivePage.contentSecurityPolicy)
        return WebAnswer(.ok, LivePage(snapshot: snapshot, site: site, basePath: basePath).html, contentType: "text/html; charset=utf-8",
                         headers: headers)
    }

    /// `/share/<secret>/...`: one site's pages and reports, without the token.
    private func shared(_ request: InsightsWebRequest) async -> WebAnswer? {
        if let wait = adminSessions.retryAfter(request.clientAddress) {
            return WebAnswer(.tooManyRequests, "429 Too Many Requests: try again in \(wait) s\n", headers: ["Retry-After": String(wait)])
        }
        let parts = request.path.dropFirst("/share/".count).split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let secret = parts.first, let site = shareLinks.site(forSecret: secret) else {
            adminSessions.failed(request.clientAddress)
            return WebAnswer(.notFound, "404 Not Found: no such share link (it may have been revoked)\n")
        }
        guard request.method == .GET || request.method == .HEAD else {
            return WebAnswer(.methodNotAllowed, "405 Method Not Allowed: a share link only reads\n", headers: ["Allow": "GET, HEAD"])
        }
        let rest = "/" + (parts.count > 1 ? String(parts[1]) : "")
        switch rest {
        case "/assets/insights.css", "/assets/live.js":
            var asset = request
            asset.path = rest
            return await insightsWeb(asset)
        case "/", "/live", "/api/v1/stats", "/api/v1/activity":
            return await report(path: rest, parameters: request.parameters, basePath: request.basePath + "share/\(secret)/", sharedSite: site)
        case "/api/v1/live":
            return nil  // the event stream: the admin listener's
        default:
            return WebAnswer(.notFound, "404 Not Found: a share link opens its dashboard, its live view, CSV and JSON\n")
        }
    }

    /// `POST /login`: the token for a session cookie, wrong tokens counted.
    private func login(_ request: InsightsWebRequest) -> WebAnswer {
        let address = request.clientAddress
        if let wait = adminSessions.retryAfter(address) {
            var answer = Self.page(.tooManyRequests, Self.loginPage(message: "Too many wrong tokens: try again in \(wait) s.", basePath: request.basePath))
            answer.headers.add(name: "Retry-After", value: String(wait))
            return answer
        }
        let form = AdminHandler.formParameters(Substring(request.body))
        guard let token = adminToken else { return WebAnswer(.seeOther, "", headers: ["Location": request.basePath]) }
        guard Signatures.equal(form["token"] ?? "", token) else {
            adminSessions.failed(address)
            return Self.page(.unauthorized, Self.loginPage(message: "That is not the admin token.", basePath: request.basePath))
        }
        adminSessions.succeeded(address)
        let cookie = "\(AdminSessions.cookieName)=\(adminSessions.cookie(token: token)); Path=\(request.basePath); "
            + "Max-Age=\(Int(AdminSessions.lifetime)); HttpOnly; SameSite=Strict\(request.secure ? "; Secure" : "")"
        return WebAnswer(.seeOther, "", headers: ["Location": request.basePath, "Set-Cookie": cookie])
    }

    static func page(_ status: HTTPResponseStatus, _ html: String) -> WebAnswer {
        WebAnswer(status, html, contentType: "text/html; charset=utf-8", headers: pageHeaders)
    }

    static func loginPage(message: String?, basePath: String) -> String {
        page(title: "Sign in", basePath: basePath, body: """
            <main class="login"><p class="brand">Vantage <span>insights</span></p><h1>Sign in</h1>
            \(message.map { "<p class=\"error\" role=\"alert\">\(escapeHTML($0))</p>" } ?? "")
            <form method="post" action="\(escapeHTML(basePath))login"><label for="token">Admin token</label>
            <input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
            <button>Sign in</button></form>
            <p>The token is the value of the variable <code>admin.token_env</code> names.</p></main>
            """)
    }

    static func messagePage(_ title: String, _ message: String, basePath: String) -> String {
        page(title: title, basePath: basePath, body: "<main class=\"login\"><h1>\(escapeHTML(title))</h1><p class=\"error\">\(escapeHTML(message))</p><p><a href=\"\(escapeHTML(basePath))\">Back to the dashboard</a></p></main>")
    }

    static func page(title: String, basePath: String, body: String) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escapeHTML(title)) · Vantage insights</title><link rel="stylesheet" href="\(escapeHTML(basePath))assets/insights.css"></head>
        <body>\(body)</body></html>

        """
    }
}
