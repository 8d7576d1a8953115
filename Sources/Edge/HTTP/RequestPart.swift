import HTTP1Parser
import NIOCore
import NIOHTTP1
import Static

/// A request part as ``RequestHandler`` takes it: the head as ``RequestHead`` (its fields as bytes) with its summary
/// of the headers the edge reads (``RequestHeaderSummary``), made where the head is, so an HTTP/1.1 head parsed from
/// bytes is summarized in the same pass that copies its fields.
enum RequestPart {
    case head(RequestHead, RequestHeaderSummary)
    case body(ByteBuffer)
    case end(HTTPHeaders?)

    /// A part from NIO's types (tests, tools): the head's headers are read once more for its summary.
    init(_ part: HTTPServerRequestPart) {
        switch part {
        case .head(let head): self = .head(RequestHead(head), RequestHeaderSummary(head.headers))
        case .body(let body): self = .body(body)
        case .end(let trailers): self = .end(trailers)
        }
    }
}

extension ParsedRequestHead {
    /// The head and its summary, in one pass over the header lines: a string is made only for a value the summary
    /// keeps.
    func makeSummarizedHead() -> (RequestHead, RequestHeaderSummary) {
        var summary = RequestHeaderSummary()
        let head = makeRequestHead { name, value in summary.add(name: name, value: String(decoding: value, as: UTF8.self)) }
        return (head, summary)
    }
}
