import NIOCore
import NIOHTTP1

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
}
