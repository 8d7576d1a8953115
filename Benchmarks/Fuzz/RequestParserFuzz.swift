// libFuzzer target over the HTTP/1.1 request parser (Sources/HTTP1Parser), differential against NIO's llhttp-based
// decoder: built and run by Benchmarks/fuzz-parser.sh, never by CI.
//
// Each input is fed to our parser whole and byte by byte, and to NIO's decoder. It traps when:
// - the two feedings of our parser disagree (an incremental parser must not depend on how bytes arrive);
// - ours accepts an input NIO refuses, or frames it differently (requests, targets, header names and values with
//   the surrounding whitespace RFC 9112 §5 excludes, bodies, trailers): ours may only be stricter.
import HTTP1Parser
import NIOCore
import NIOEmbedded
import NIOHTTP1

struct Request: Equatable {
    var method = "", target = "", version = ""
    var headers: [String] = []
    var body: [UInt8] = []
    var trailers: [String] = []
}

/// Our parser's complete requests and how many input bytes they took, or nil when it refused the input.
func ours(_ input: UnsafeBufferPointer<UInt8>, step: Int) -> (requests: [Request], consumed: Int)? {
    var parser = RequestParser()
    var buffer = ByteBuffer()
    var requests: [Request] = []
    var offset = 0
    var consumed = 0
    var complete = 0
    repeat {
        let end = min(input.count, offset + step)
        buffer.writeBytes(UnsafeBufferPointer(rebasing: input[offset..<end]))
        offset = end
        do {
            while let event = try parser.next(&buffer) {
                switch event {
                case .head(let head):
                    var request = Request(method: head.method.rawValue, target: String(decoding: head.target, as: UTF8.self),
                                          version: "\(head.version.major).\(head.version.minor)")
                    head.forEachField { request.headers.append(String(decoding: $0, as: UTF8.self).lowercased() + ":" + String(decoding: $1, as: UTF8.self)) }
                    requests.append(request)
                case .body(let piece): requests[requests.count - 1].body += Array(piece.readableBytesView)
                case .end(let trailers):
                    requests[requests.count - 1].trailers = trailers.map { $0.0.lowercased() + ":" + $0.1 }
                    complete = requests.count
                    consumed = offset - buffer.readableBytes
                }
            }
        } catch {
            return nil
        }
    } while offset < input.count
    // Only whole requests are compared (a request still waiting for bytes is not an answer yet).
    return (Array(requests.prefix(complete)), consumed)
}

/// NIO's complete requests, and whether it refused the input at some point (the requests before the refusal
/// still count: a later bad request does not undo the ones before it).
func nio(_ input: UnsafeBufferPointer<UInt8>) -> (requests: [Request], refused: Bool) {
    let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)))
    defer { _ = try? channel.finish() }
    var requests: [Request] = []
    var complete = 0
    do {
        try channel.writeInbound(ByteBuffer(bytes: input))
        while let part = try channel.readInbound(as: HTTPServerRequestPart.self) {
            switch part {
            case .head(let head):
                requests.append(Request(method: head.method.rawValue, target: head.uri, version: "\(head.version.major).\(head.version.minor)",
                                        headers: head.headers.map { $0.name.lowercased() + ":" + trim($0.value) }))
            case .body(let piece): requests[requests.count - 1].body += Array(piece.readableBytesView)
            case .end(let trailers):
                requests[requests.count - 1].trailers = trailers?.map { $0.name.lowercased() + ":" + trim($0.value) } ?? []
                complete += 1
            }
        }
    } catch {
        return (Array(requests.prefix(complete)), true)
    }
    return (Array(requests.prefix(complete)), false)
}

/// The methods llhttp parses (its method table).
let llhttpMethods: Set<String> = [
    "DELETE", "GET", "HEAD", "POST", "PUT", "CONNECT", "OPTIONS", "TRACE", "COPY", "LOCK", "MKCOL", "MOVE", "PROPFIND",
    "PROPPATCH", "SEARCH", "UNLOCK", "BIND", "REBIND", "UNBIND", "ACL", "REPORT", "MKACTIVITY", "CHECKOUT", "MERGE",
    "M-SEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE", "PATCH", "PURGE", "MKCALENDAR", "LINK", "UNLINK", "SOURCE", "QUERY",
]

func trim(_ value: String) -> String {
    var slice = Substring(value)
    while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
    while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
    return String(slice)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let input = UnsafeBufferPointer(start: data, count: size)
    let whole = ours(input, step: Int.max)
    let byByte = ours(input, step: 1)
    if whole?.requests != byByte?.requests || whole?.consumed != byByte?.consumed {
        fatalError("feeding at once and byte by byte disagree")
    }
    guard let (accepted, consumed) = whole, !accepted.isEmpty else { return 0 }
    // Which methods exist is policy (ours takes any upper-case token, as nginx does; llhttp knows a fixed list), not
    // framing: inputs with a method llhttp does not know are not compared.
    guard accepted.allSatisfy({ llhttpMethods.contains($0.method) }) else { return 0 }
    // Likewise the target's form (origin, absolute, authority, asterisk) is checked after parsing, by the edge's
    // RequestTarget; llhttp checks its own idea of a URL: only origin-form targets are compared.
    guard accepted.allSatisfy({ $0.target.hasPrefix("/") }) else { return 0 }
    // The bytes of the requests ours completed, given to NIO alone, are the same requests to it.
    let reference = nio(UnsafeBufferPointer(rebasing: input[..<consumed]))
    if reference.refused { fatalError("ours accepted requests NIO refuses: \(accepted)") }
    if reference.requests != accepted { fatalError("ours framed differently from NIO: \(accepted) vs \(reference.requests)") }
    return 0
}
