import Foundation
import Insights
import NIOCore
import NIOHTTP1

extension Gateway {
    /// The dashboard page for `parameters` (or the same page from the last ``ReportCache/lifetime``). A share link's
    /// page (`shared`: its site and path) shows that site only, under the link's path, with no sign-out.
    func dashboardPage(_ parameters: [String: String], shared: (site: String, basePath: String)? = nil) async throws -> String {
        var asked = parameters
        if let shared { asked["site"] = shared.site }
        let parameters = asked
        let sites = shared.map { [$0.site] } ?? siteNames
        let basePath = shared?.basePath ?? "/"
        let query = try InsightsQuery.parse(parameters, defaultSite: defaultReportSite, now: Date())
        let signsIn = adminToken != nil && shared == nil
        return try await reports.report("page \(basePath) " + ReportCache.key(parameters)) {
            let versioned = Set((parameters["versions"] ?? "").split(separator: ",").compactMap { Dimension(rawValue: String($0)) })
            let dashboard = try await self.dashboard(query, panels: Dashboard.panels(showingVersionsOf: versioned))
            var page = DashboardPage(dashboard: dashboard, sites: sites, parameters: parameters, basePath: basePath, signsIn: signsIn)
            page.endedLinks = self.endedLinks(site: query.site, now: Int64(Date().timeIntervalSince1970 * 1000))
            return page.html
        }
    }
}

/// The dashboard's pages on the admin listener: `GET /` (the dashboard), `GET`/`POST /login`, `GET /logout`,
/// `GET /assets/insights.css`. Pages carry a policy that allows no script and no inline style.
extension AdminHandler {
    static let pageHeaders: HTTPHeaders = [
        "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
    ]

    /// Answers the dashboard's open paths (the stylesheet, the sign-in form); false when `path` is not one of them.
    func handleOpenPage(_ head: HTTPRequestHead, path: String, context: ChannelHandlerContext) -> Bool {
        switch (head.method, path) {
        case (.GET, "/assets/insights.css"), (.HEAD, "/assets/insights.css"):
            send(.ok, contentType: "text/css; charset=utf-8", body: DashboardStyle.css, head: head, context: context,
                 extraHeaders: ["X-Content-Type-Options": "nosniff"])
        case (.GET, "/assets/live.js"), (.HEAD, "/assets/live.js"):
            send(.ok, contentType: "text/javascript; charset=utf-8", body: LivePage.script, head: head, context: context,
                 extraHeaders: ["X-Content-Type-Options": "nosniff"])
        case (.GET, "/login"):
            sendPage(.ok, Self.loginPage(message: nil), head: head, context: context)
        case (.POST, "/login"):
            login(head, context: context)
        case (.GET, "/logout"):
            var headers = Self.pageHeaders
            headers.add(name: "Set-Cookie", value: "\(AdminSessions.cookieName)=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict")
            headers.add(name: "Location", value: "/login")
            send(.seeOther, body: "", head: head, context: context, extraHeaders: headers)
        default:
            return false
        }
        return true
    }

    /// Whether the request may go on: no token configured, the bearer token, or (for reading reports only: a
    /// session never changes anything) a signed-in browser.
    func isAuthorized(_ head: HTTPRequestHead, path: String) -> Bool {
        guard let token = endpoints.gateway.adminToken else { return true }
        if Self.constantTimeEquals(head.headers.first(name: "authorization") ?? "", "Bearer " + token) { return true }
        guard head.method == .GET || head.method == .HEAD, ["/", "/api/v1/stats", "/api/v1/activity", "/live", "/api/v1/live"].contains(path)
        else { return false }
        return endpoints.gateway.adminSessions.isSignedIn(cookieHeader: head.headers.first(name: "cookie"), token: token)
    }

    private func login(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let sessions = endpoints.gateway.adminSessions
        let address = context.remoteAddress?.ipAddress ?? "unknown"
        if let wait = sessions.retryAfter(address) {
            sendPage(.tooManyRequests, Self.loginPage(message: "Too many wrong tokens: try again in \(wait) s."), head: head,
                     context: context, extraHeaders: ["Retry-After": String(wait)])
            return
        }
        let form = Self.formParameters(Substring(String(buffer: body)))
        guard let token = endpoints.gateway.adminToken else {
            redirect(to: "/", head: head, context: context)
            return
        }
        guard Self.constantTimeEquals(form["token"] ?? "", token) else {
            sessions.failed(address)
            sendPage(.unauthorized, Self.loginPage(message: "That is not the admin token."), head: head, context: context)
            return
        }
        sessions.succeeded(address)
        let cookie = "\(AdminSessions.cookieName)=\(sessions.cookie(token: token)); Path=/; Max-Age=\(Int(AdminSessions.lifetime)); HttpOnly; SameSite=Strict"
        redirect(to: "/", head: head, context: context, cookie: cookie)
    }

    /// `GET /`: the dashboard (a browser that is not signed in is sent to the form).
    func dashboard(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let parameters = Self.queryParameters(head.uri)
        let gateway = endpoints.gateway
        answerLater(head, context: context) {
            do {
                return Self.pageAnswer(.ok, try await gateway.dashboardPage(parameters))
            } catch let error as InsightsQueryError {
                return Self.pageAnswer(.badRequest, Self.messagePage("That report cannot be shown", "\(error)"))
            } catch {
                return Self.pageAnswer(.internalServerError, Self.messagePage("The report failed", "\(error)"))
            }
        }
    }

    static func pageAnswer(_ status: HTTPResponseStatus, _ page: String) -> Answer {
        Answer(status, page, contentType: "text/html; charset=utf-8", headers: pageHeaders)
    }

    func redirect(to location: String, head: HTTPRequestHead, context: ChannelHandlerContext, cookie: String? = nil) {
        var headers: HTTPHeaders = ["Location": location]
        if let cookie { headers.add(name: "Set-Cookie", value: cookie) }
        send(.seeOther, body: "", head: head, context: context, extraHeaders: headers)
    }

    func sendPage(_ status: HTTPResponseStatus, _ page: String, head: HTTPRequestHead, context: ChannelHandlerContext, extraHeaders: HTTPHeaders = [:]) {
        var headers = Self.pageHeaders
        headers.add(contentsOf: extraHeaders)
        send(status, contentType: "text/html; charset=utf-8", body: page, head: head, context: context, extraHeaders: headers)
    }

    static func loginPage(message: String?) -> String {
        page(title: "Sign in", body: """
            <main class="login"><p class="brand">Vantage <span>insights</span></p><h1>Sign in</h1>
            \(message.map { "<p class=\"error\" role=\"alert\">\(escapeHTML($0))</p>" } ?? "")
            <form method="post" action="/login"><label for="token">Admin token</label>
            <input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
            <button>Sign in</button></form>
            <p>The token is the value of the variable <code>admin.token_env</code> names.</p></main>
            """)
    }

    static func messagePage(_ title: String, _ message: String) -> String {
        page(title: title, body: "<main class=\"login\"><h1>\(escapeHTML(title))</h1><p class=\"error\">\(escapeHTML(message))</p><p><a href=\"/\">Back to the dashboard</a></p></main>")
    }

    static func page(title: String, body: String) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escapeHTML(title)) · Vantage insights</title><link rel="stylesheet" href="/assets/insights.css"></head>
        <body>\(body)</body></html>

        """
    }

}
