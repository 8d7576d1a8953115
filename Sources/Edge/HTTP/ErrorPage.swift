import HeaderRules
import Insights
import NIOCore
import NIOHTTP1
import Tracking

/// Short plain-text error answers: the status line repeated with a reason a person can act on.
enum ErrorPage {
    static func make(_ status: HTTPResponseStatus, reason: String) -> (HTTPHeaders, ByteBuffer) {
        let body = ByteBuffer(string: "\(status.code) \(status.reasonPhrase): \(reason)\n")
        let headers: HTTPHeaders = [
            "Content-Type": "text/plain; charset=utf-8", "Content-Length": String(body.readableBytes),
            "Cache-Control": "no-store",
        ]
        return (headers, body)
    }

    /// Writes a complete HTTP/1.1 error answer as raw bytes (for handlers in front of or instead of the request
    /// handler: a malformed or overlong head has no request to answer through) and closes the connection once it
    /// has left. Returns the number of bytes written.
    @discardableResult
    static func sendAndClose(_ status: HTTPResponseStatus, reason: String, context: ChannelHandlerContext) -> Int {
        let (headers, body) = make(status, reason: reason)
        var buffer = context.channel.allocator.buffer(capacity: 192 + body.readableBytes)
        HTTPHead.writeStatusLine(status, into: &buffer)
        HTTPHead.write(headers, into: &buffer)
        buffer.writeStaticString("Connection: close\r\n\r\n")
        buffer.writeImmutableBuffer(body)
        let size = buffer.readableBytes
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(NIOAny(buffer)).whenComplete { _ in bound.value.close(promise: nil) }
        return size
    }
}

/// An error answer in the form the client asked for (RFC 9110 §12.5.1 `Accept`): the site's page for the status
/// (HTML unless configured otherwise), JSON for API clients, plain text otherwise.
enum ErrorAnswer {
    enum Format: Equatable {
        case page
        case json
        case plain
    }

    /// Which form fits `accept`: JSON when it ranks `application/json` above HTML and text; the page when there is
    /// one and the client takes HTML (or anything); plain text otherwise.
    static func format(accept: String?, hasPage: Bool) -> Format {
        guard let accept, !accept.isEmpty else { return hasPage ? .page : .plain }
        var html = 0.0, json = 0.0, plain = 0.0, any = 0.0, text = 0.0
        for range in accept.split(separator: ",") {
            let parts = range.split(separator: ";")
            let type = parts.first?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
            var quality = 1.0
            for parameter in parts.dropFirst() {
                let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                if pair.count == 2, pair[0].lowercased() == "q", let value = Double(pair[1]) { quality = value }
            }
            switch type {
            case "text/html", "application/xhtml+xml": html = max(html, quality)
            case "application/json", "application/problem+json": json = max(json, quality)
            case "text/plain": plain = max(plain, quality)
            case "text/*": text = max(text, quality)
            case "*/*": any = max(any, quality)
            default: break
            }
        }
        let htmlRank = max(html, text, any), plainRank = max(plain, text, any)
        if json > 0 && json > htmlRank && json > plainRank { return .json }
        if hasPage && htmlRank > 0 && htmlRank >= plainRank { return .page }
        return .plain
    }

    /// Headers and body of an error answer.
    static func make(
        _ status: HTTPResponseStatus, reason: String, pages: ErrorPages?, accept: String?, facts: @autoclosure () -> ExchangeFacts
    ) -> (HTTPHeaders, ByteBuffer) {
        let page = pages?.page(for: Int(status.code))
        let format = format(accept: accept, hasPage: page != nil)
        let body: ByteBuffer
        let contentType: String
        switch format {
        case .plain:
            return ErrorPage.make(status, reason: reason)
        case .json:
            var facts = facts()
            facts.error = (Int(status.code), reason)
            var buffer = ByteBuffer()
            buffer.writeStaticString("{\"error\":{\"status\":")
            buffer.writeDecimal(Int(status.code))
            buffer.writeJSONField("\"reason\":", reason)
            buffer.writeJSONField("\"request_id\":", facts.value(of: .requestID))
            buffer.writeStaticString("}}\n")
            (body, contentType) = (buffer, "application/json")
        case .page:
            var facts = facts()
            facts.error = (Int(status.code), reason)
            let page = page!
            // The request's values in an HTML page are the client's text: escaped.
            let escape: ((String) -> String)? = page.isHTML ? { escapeHTML($0) } : nil
            let text = page.body.render(facts, escape: escape)
            (body, contentType) = (ByteBuffer(string: text), page.contentType)
        }
        let headers: HTTPHeaders = [
            "Content-Type": contentType, "Content-Length": String(body.readableBytes), "Cache-Control": "no-store",
        ]
        return (headers, body)
    }
}
