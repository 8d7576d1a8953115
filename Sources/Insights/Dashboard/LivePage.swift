import Foundation

/// The live view: people on the site in the last 30 minutes and the latest events, rendered on the server. Without
/// script the page reloads itself every two seconds (a refresh inside `<noscript>`); with script, `live.js` (served
/// beside it, allowed by the page's policy and nothing else) follows the server-sent events of `api/v1/live` and
/// updates the numbers and the list in place.
public struct LivePage {
    public var snapshot: LiveFeed.Snapshot
    public var site: String
    /// Where the page is mounted (`/` on the admin listener, a share link's path).
    public var basePath: String

    public init(snapshot: LiveFeed.Snapshot, site: String, basePath: String = "/") {
        (self.snapshot, self.site, self.basePath) = (snapshot, site, basePath)
    }

    /// The page's policy: the dashboard's, plus its own script and its event stream.
    public static let contentSecurityPolicy =
        "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    public var html: String {
        let site = escapeHTML(self.site)
        let query = DashboardPage.queryString(["site": self.site])
        // The stream starts after the events the page already lists.
        let stream = DashboardPage.queryString(["site": self.site, "after": String(snapshot.recent.first?.sequence ?? -1)])
        let rows = snapshot.recent.map(Self.row).joined()
        let empty = rows.isEmpty ? "<tr id=\"live-empty\"><td colspan=\"6\" class=\"empty\">No events in the last 30 minutes.</td></tr>" : ""
        return """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <noscript><meta http-equiv="refresh" content="2"></noscript>
            <title>Live · \(site) · Vantage insights</title>
            <link rel="stylesheet" href="\(basePath)assets/insights.css">
            <script src="\(basePath)assets/live.js" defer></script>
            </head>
            <body>
            <header><p class="brand">Vantage <span>insights</span></p><h1>\(site), live</h1>
            <nav aria-label="Views"><ul><li><a href="\(escapeHTML(basePath + query))">Dashboard</a></li><li><a aria-current="page" href="\(escapeHTML(basePath + "live" + query))">Live</a></li></ul></nav></header>
            <main id="live" data-stream="\(escapeHTML(basePath + "api/v1/live" + stream))">
            <section aria-labelledby="now"><h2 id="now" class="hidden">Now</h2><dl class="headline">\
            <div><dt>Visitors in the last 30 minutes</dt><dd id="live-visitors" aria-live="polite">\(snapshot.visitors.formatted())</dd></div>\
            <div><dt>Pageviews in the last 30 minutes</dt><dd id="live-pageviews">\(snapshot.pageviews.formatted())</dd></div></dl></section>
            <section aria-labelledby="latest"><h2 id="latest">Latest events</h2>
            <div class="scroll"><table class="events"><caption class="hidden">The latest events, newest first</caption><thead><tr><th scope="col">Time (UTC)</th><th scope="col">Kind</th><th scope="col">Page or event</th><th scope="col">Source</th><th scope="col">Country</th><th scope="col">Device</th></tr></thead>
            <tbody id="live-events">\(empty)\(rows)</tbody></table></div></section>
            </main>
            </body>
            </html>

            """
    }

    static func row(_ entry: LiveFeed.Entry) -> String {
        let time = String(ResultJSON.instant(entry.time).dropFirst(11).prefix(8))
        let cells = [entry.kind.name, entry.what, entry.source.isEmpty ? "Direct / None" : entry.source, entry.country, entry.device]
        return "<tr><th scope=\"row\">\(time)</th>" + cells.map { "<td>\(escapeHTML($0))</td>" }.joined() + "</tr>"
    }

    /// One server-sent event: the numbers and the events after the last one sent (`id` lets a reconnecting
    /// browser say where it was).
    public static func event(_ snapshot: LiveFeed.Snapshot) -> String {
        let events = snapshot.recent.map { entry -> [String: Any] in
            ["time": ResultJSON.instant(entry.time), "kind": entry.kind.name, "what": entry.what, "source": entry.source,
             "country": entry.country, "device": entry.device]
        }
        let object: [String: Any] = ["visitors": snapshot.visitors, "pageviews": snapshot.pageviews, "events": events]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        let id = snapshot.recent.first.map { "id: \($0.sequence)\n" } ?? ""
        return id + "event: live\ndata: " + String(decoding: data, as: UTF8.self) + "\n\n"
    }

    /// The live view's script (no framework; text is set as text, never as markup).
    public static let script = """
        (function () {
          "use strict";
          var root = document.getElementById("live");
          if (!root || !window.EventSource) { return; }
          var source = new EventSource(root.getAttribute("data-stream"));
          // Where no stream is served (a site's insights route), reload every two seconds, as without script.
          source.onerror = function () {
            if (source.readyState === EventSource.CLOSED) { setTimeout(function () { location.reload(); }, 2000); }
          };
          source.addEventListener("live", function (message) {
            var data = JSON.parse(message.data);
            document.getElementById("live-visitors").textContent = data.visitors.toLocaleString("en");
            document.getElementById("live-pageviews").textContent = data.pageviews.toLocaleString("en");
            var body = document.getElementById("live-events");
            var empty = document.getElementById("live-empty");
            if (empty && data.events.length) { empty.parentNode.removeChild(empty); }
            data.events.slice().reverse().forEach(function (event) {
              var row = document.createElement("tr");
              [event.time.slice(11, 19), event.kind, event.what, event.source || "Direct / None", event.country, event.device]
                .forEach(function (text, index) {
                  var cell = document.createElement(index === 0 ? "th" : "td");
                  if (index === 0) { cell.setAttribute("scope", "row"); }
                  cell.textContent = text;
                  row.appendChild(cell);
                });
              body.insertBefore(row, body.firstChild);
            });
            while (body.rows.length > 50) { body.deleteRow(body.rows.length - 1); }
          });
        })();

        """
}
