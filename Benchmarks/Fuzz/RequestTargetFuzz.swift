// libFuzzer target over what Vantage decides from a request head: the target's form, the normal form of its path
// (every encoded-slash policy), the Host check, the transfer coding, and the static file server's own path
// normalization behind it. Built and run by Benchmarks/fuzz.sh, never by CI.
//
// The input is read as a request head: "METHOD TARGET VERSION" then "Name: value" lines. Besides not crashing,
// each run checks properties the request path relies on, and traps when one fails:
// - a normal form is a fixed point, starts with one "/", and holds no empty, "." or ".." segment;
// - under `reject`, no normal form holds an encoded slash or backslash;
// - a path the normalizer accepts never climbs above the root in the static server either.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
    guard let requestLine = lines.first else { return 0 }
    let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false)
    let target = parts.count > 1 ? String(parts[1]) : String(requestLine)
    _ = RequestMethod.isAcceptable(parts.first ?? "")
    var codings: [Substring] = []
    for line in lines.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        let name = line[..<colon].lowercased()
        let value = line[line.index(after: colon)...]
        if name == "host" { _ = HostName.isValidAuthority(value) }
        if name == "transfer-encoding" { codings.append(value) }
    }
    _ = TransferCoding.isChunkedOnly(codings)
    guard case .success(let parsed) = RequestTarget.parse(target) else { return 0 }
    if let authority = parsed.authority, !HostName.isValidAuthority(authority) { fatalError("parse let a bad authority through") }
    if parsed.path == "*" { return 0 }
    for policy in EncodedSlashPolicy.allCases {
        guard case .success(let normal) = NormalizedPath.normalize(parsed.path, encodedSlashes: policy) else { continue }
        let form = normal ?? String(parsed.path)
        check(form, policy: policy)
        let origin = parsed.originForm(path: normal)
        if !origin.hasPrefix("/") { fatalError("origin form \(origin) does not start with /") }
    }
    return 0
}

private func check(_ form: String, policy: EncodedSlashPolicy) {
    guard case .success(nil) = NormalizedPath.normalize(Substring(form), encodedSlashes: policy) else {
        fatalError("\(form) is not a fixed point")
    }
    if !form.hasPrefix("/") || form.hasPrefix("//") { fatalError("\(form) does not start with one /") }
    let segments = form.split(separator: "/", omittingEmptySubsequences: false).dropFirst().dropLast()
    if segments.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) { fatalError("\(form) has a bad segment") }
    if policy == .reject {
        let upper = form.uppercased()
        if upper.contains("%2F") || upper.contains("%5C") || form.contains("\\") { fatalError("\(form) kept a slash escape") }
    }
    if case .failure(let rejection) = RequestPath.normalize(Substring(form)), rejection == .escapesRoot {
        fatalError("\(form) climbs above the root in the file server")
    }
}
