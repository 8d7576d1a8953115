import HTTP1Parser
import NIOCore
import NIOHTTP1
import Static

/// A request part as ``RequestHandler`` takes it: NIO's parts, with the head's summary of the headers the edge reads
/// (``RequestHeaderSummary``) made where the head is, so an HTTP/1.1 head parsed from bytes is summarized in the
/// same pass that makes its header strings.
enum RequestPart {
    case head(HTTPRequestHead, RequestHeaderSummary)
    case body(ByteBuffer)
    case end(HTTPHeaders?)

    /// A part from NIO's types (HTTP/2 streams, tests): the head's headers are read once more for its summary.
    init(_ part: HTTPServerRequestPart) {
        switch part {
        case .head(let head): self = .head(head, RequestHeaderSummary(head.headers))
        case .body(let body): self = .body(body)
        case .end(let trailers): self = .end(trailers)
        }
    }
}

extension ParsedRequestHead {
    /// The head as NIO's type and its summary, in one pass over the header lines: each value's string is made once
    /// and shared by both.
    func makeRequestHead() -> (HTTPRequestHead, RequestHeaderSummary) {
        var summary = RequestHeaderSummary()
        let head = makeHTTPRequestHead { name, value in summary.add(name: name, value: value) }
        return (head, summary)
    }
}
