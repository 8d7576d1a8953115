import RegexSet

#if canImport(Glibc)
import Glibc
#endif

/// A user agent lower-cased (ASCII letters only, so byte offsets stay those of the header), with every token the
/// rules look for found in one pass (``AgentTokens``): a check is then a bit test, where `String.contains` goes
/// through Foundation's locale-aware search (microseconds each, a few hundred per new agent).
struct LoweredAgent {
    let bytes: [UInt8]
    /// Bit `n`: token `n` of ``AgentTokens/all`` occurs.
    private var present: [UInt64]

    init(_ header: String) {
        bytes = Self.lowered(header)
        var present = [UInt64](repeating: 0, count: (AgentTokens.all.count + 63) / 64)
        bytes.withUnsafeBytes { raw in
            AgentTokens.scanner.scan(raw) { token in present[token >> 6] |= 1 << UInt64(token & 63) }
        }
        self.present = present
    }

    /// With the tokens already found (by the lists' pass, ``UserAgentRules`` registering ``AgentTokens/all`` as
    /// its plain literals, in that order).
    init(_ header: String, present: [UInt64]) {
        bytes = Self.lowered(header)
        self.present = present
    }

    /// The header's bytes with ASCII letters lower-cased (through its contiguous UTF-8: a `map` over the UTF-8
    /// view went a byte at a time through the view's iterator).
    static func lowered(_ header: String) -> [UInt8] {
        var header = header
        return header.withUTF8 { utf8 in
            [UInt8](unsafeUninitializedCapacity: utf8.count) { buffer, count in
                for index in 0..<utf8.count {
                    let byte = utf8[index]
                    buffer[index] = byte >= 65 && byte <= 90 ? byte + 32 : byte
                }
                count = utf8.count
            }
        }
    }

    func contains(id token: Int) -> Bool { present[token >> 6] & (1 << UInt64(token & 63)) != 0 }

    /// Whether `needle` occurs: a bit test for the rules' tokens, a byte search for anything else.
    func contains(_ needle: String) -> Bool {
        if let token = AgentTokens.index[needle] { return contains(id: token) }
        return offset(of: needle) != nil
    }

    /// Whether any token of `ids` (from ``AgentTokens/ids(_:)``) occurs.
    func containsAny(_ ids: [Int]) -> Bool { ids.contains { contains(id: $0) } }

    /// The byte offset of `needle` (compared without ASCII case), if it occurs.
    func offset(of needle: String) -> Int? {
        let lowered = needle.utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }
        return lowered.withUnsafeBufferPointer { token in
            bytes.withUnsafeBytes { text -> Int? in
                guard let base = text.baseAddress, let first = token.first, token.count <= text.count else { return nil }
                var start = 0
                let last = text.count - token.count
                while start <= last, let hit = memchr(base + start, Int32(first), last - start + 1) {
                    let offset = base.distance(to: UnsafeRawPointer(hit))
                    if memcmp(hit, token.baseAddress!, token.count) == 0 { return offset }
                    start = offset + 1
                }
                return nil
            }
        }
    }

    /// The index of `header` (the agent this was made from) right after `needle`, compared without ASCII case.
    func index(after needle: String, in header: String) -> String.Index? {
        guard let offset = offset(of: needle) else { return nil }
        let utf8 = header.utf8
        return utf8.index(utf8.startIndex, offsetBy: offset + needle.utf8.count, limitedBy: utf8.endIndex)
    }

    /// The version right after `needle` in `header` (see `StringProtocol.version(after:)`).
    func version(after needle: String, in header: String, separator: Character = ".", parts: Int = 2) -> String? {
        index(after: needle, in: header).flatMap { header.version(after: $0, separator: separator, parts: parts) }
    }

    /// Where the device model is in an Android agent, after its version and locale: in
    /// `Android 11; ru-ru; Xiaomi Pad 5 Pro Build/…`, the bytes of `xiaomi pad 5 pro`. Nil when the agent names no
    /// Android or no model (Chrome's reduced agent, `Android 10; K)`, names none worth reading).
    func androidModel() -> Range<Int>? {
        guard let found = offset(of: "android") else { return nil }
        return bytes.withUnsafeBufferPointer { bytes -> Range<Int>? in
            var index = found + 7
            func isVersion(_ byte: UInt8) -> Bool { byte == 32 || byte == 46 || byte == 95 || (48...57).contains(byte) }
            while index < bytes.count, isVersion(bytes[index]) { index += 1 }
            guard index < bytes.count, bytes[index] == UInt8(ascii: ";") else { return nil }
            index += 1
            while index < bytes.count {
                var start = index
                var end = index
                while end < bytes.count, bytes[end] != UInt8(ascii: ";"), bytes[end] != UInt8(ascii: ")") { end += 1 }
                index = end + 1
                while start < end, bytes[start] == 32 { start += 1 }
                while end > start, bytes[end - 1] == 32 { end -= 1 }
                let count = end - start
                // `U;` (the old security flag), `wv;` (a WebView) and a locale (`en-us`, `pt_BR`) come before the model.
                if count == 0 || count == 1 && bytes[start] == UInt8(ascii: "u")
                    || count == 2 && bytes[start] == UInt8(ascii: "w") && bytes[start + 1] == UInt8(ascii: "v")
                    || (count == 5 || count == 6) && (bytes[start + 2] == UInt8(ascii: "-") || bytes[start + 2] == UInt8(ascii: "_"))
                {
                    continue
                }
                // The model ends where ` Build/` begins.
                var model = start
                while model < end, !(bytes[model] == UInt8(ascii: "b") && model + 6 <= end && model > start && bytes[model - 1] == 32
                    && bytes[model + 1] == UInt8(ascii: "u") && bytes[model + 2] == UInt8(ascii: "i") && bytes[model + 3] == UInt8(ascii: "l")
                    && bytes[model + 4] == UInt8(ascii: "d") && bytes[model + 5] == UInt8(ascii: "/"))
                {
                    model += 1
                }
                while model > start, bytes[model - 1] == 32 { model -= 1 }
                return model - start < 2 ? nil : start..<model
            }
            return nil
        }
    }

    /// Calls `body` with each word (run of ASCII letters and digits) of `range` until it returns true; whether
    /// one did.
    func containsWord(in range: Range<Int>, where body: (ArraySlice<UInt8>) -> Bool) -> Bool {
        func isWordByte(_ byte: UInt8) -> Bool { (97...122).contains(byte) || (48...57).contains(byte) }
        var index = range.lowerBound
        while index < range.upperBound {
            while index < range.upperBound, !isWordByte(bytes[index]) { index += 1 }
            let start = index
            while index < range.upperBound, isWordByte(bytes[index]) { index += 1 }
            if index > start, body(bytes[start..<index]) { return true }
        }
        return false
    }

    /// An email-like `@` followed somewhere by a dot.
    var hasAddress: Bool {
        guard let at = bytes.firstIndex(of: UInt8(ascii: "@")) else { return false }
        return bytes[at...].contains(UInt8(ascii: "."))
    }
}

/// Every token of the user-agent token rules, searched for all at once by one ``LiteralScanner``.
enum AgentTokens {
    /// Single tokens the rules test one by one.
    static let singles = [
        "ipad", "iphone", "ipod", "mobi", "safari", "phone", "blackberry", "opera mini", "midp", "symbian", "kaios",
        "windows phone", "windows", "; cros ", "linux", "x11", "safari/", "applewebkit/", "mobile/", "mac os x",
        "macintosh", "j2me", "android", "adr ", "fb4a", "dv(iph", "; desktop;", "sonos",
        "up.browser", "mmp/", "maui", "wap", "obigo", "nokia", "sonyericsson", "brew",
    ]

    static let all: [String] = {
        var seen = Set<String>()
        var lists = UserAgent.botRules.flatMap(\.1)
        lists += UserAgent.machineWords + UserAgent.contactMarks + UserAgent.platformWords + UserAgent.appClientTokens
        lists += UserAgent.tvTokens + UserAgent.consoleTokens + UserAgent.wearableTokens + UserAgent.carTokens
        lists += UserAgent.tabletTokens + UserAgent.namedBrowsers.map(\.token) + UserAgent.namedSystems.map(\.token)
        lists += singles
        return lists.filter { seen.insert($0).inserted }
    }()

    static let index: [String: Int] = Dictionary(uniqueKeysWithValues: all.enumerated().map { ($1, $0) })

    static let scanner = LiteralScanner(literals: all.map { Array($0.utf8) })

    /// The ids of `tokens` (each is in ``all``).
    static func ids(_ tokens: [String]) -> [Int] { tokens.map(id) }

    /// The id of `token`, which the rules registered in ``all``.
    static func id(_ token: String) -> Int {
        guard let id = index[token] else { preconditionFailure("\(token) is not among the user-agent tokens") }
        return id
    }
}
