import Foundation
import NIOCore
import NIOHTTP1
import RequestTarget

/// HTML listing of a folder, for routes with `browse: true`.
enum DirectoryListing {
    static func render(directory: String, requestPath: RequestPath) -> StaticResponse {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { !$0.hasPrefix(".") }
            .sorted()
        let title = escape(requestPath.encoded(trailingSlash: true).removingPercentEncoding ?? "/")
        var html = "<!doctype html>\n<meta charset=\"utf-8\">\n<title>Index of \(title)</title>\n"
        html += "<h1>Index of \(title)</h1>\n<ul>\n"
        if !requestPath.segments.isEmpty { html += "<li><a href=\"../\">../</a></li>\n" }
        for name in names {
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: directory + "/" + name, isDirectory: &isDirectory)
            let suffix = isDirectory.boolValue ? "/" : ""
            html += "<li><a href=\"\(percentEncode(name))\(suffix)\">\(escape(name))\(suffix)</a></li>\n"
        }
        html += "</ul>\n"
        let body = ByteBuffer(string: html)
        let headers: HTTPHeaders = [
            "Content-Type": "text/html; charset=utf-8", "Content-Length": String(body.readableBytes),
            "Cache-Control": "no-cache",
        ]
        return StaticResponse(status: .ok, headers: headers, body: .buffer(body))
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
