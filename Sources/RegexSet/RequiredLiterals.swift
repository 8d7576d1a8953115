/// The literal text a regular expression cannot match without: a set of strings, one of which every match contains
/// (lower-cased, so the check runs on a lower-cased subject whatever the pattern's case rules). Used to skip, with
/// one scan of the subject, the patterns that cannot match it.
///
/// Reads the PCRE syntax the user-agent lists use: literals and escapes, classes, groups (capturing, `(?:`, named,
/// atomic, inline flags), alternation and quantifiers. Whatever it does not understand makes the pattern a
/// candidate for every subject: the answer is only ever too cautious, never wrong.
public enum RequiredLiterals {
    /// The strings, one of which is in every match (the most selective of ``clauses(of:)``); nil when nothing is
    /// required (or the syntax was not read).
    public static func of(_ pattern: String) -> [String]? {
        clauses(of: pattern).max { Parser.score($0.map { Array($0.utf8) }) < Parser.score($1.map { Array($0.utf8) }) }
    }

    /// Everything a match needs: every clause holds, and a clause holds when one of its strings occurs (`Chrome/\d+
    /// Mobile Safari` needs "chrome/" and "mobile safari"). Empty when nothing is required or the syntax was not
    /// read. A pattern that is one alternation at the top has one clause (the union of its branches' best).
    public static func clauses(of pattern: String) -> [[String]] {
        var parser = Parser(bytes: Array(pattern.utf8))
        parser.collectClauses = true
        let top = parser.alternation()
        guard !parser.failed, parser.index == parser.bytes.count else { return [] }
        let clauses = parser.topClauses ?? top.map { [$0] } ?? []
        return clauses.map { $0.map { String(decoding: $0, as: UTF8.self) } }
    }

    struct Parser {
        let bytes: [UInt8]
        var index = 0
        /// Set when the syntax is not understood.
        var failed = false
        /// When set, the top-level sequence (a pattern without top-level alternation) records all its clauses.
        var collectClauses = false
        var depth = 0
        var topClauses: [[[UInt8]]]?

        init(bytes: [UInt8]) { self.bytes = bytes }

        var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

        /// Branches separated by `|`: every branch must require something, and any of their sets may occur.
        mutating func alternation() -> [[UInt8]]? {
            var union: [[UInt8]] = []
            var everyBranchRequires = true
            var branches = 0
            let atTop = depth == 0
            depth += 1
            defer { depth -= 1 }
            while true {
                branches += 1
                let branch = sequence(recordClauses: atTop && collectClauses)
                if failed { return nil }
                if let branch { union += branch } else { everyBranchRequires = false }
                guard peek == UInt8(ascii: "|") else { break }
                index += 1
            }
            // A top-level alternation: its clauses were one branch's only.
            if atTop && branches > 1 { topClauses = nil }
            return everyBranchRequires && !union.isEmpty ? union : nil
        }

        /// Atoms one after another, up to `|`, `)` or the end: the best of the literal runs and required groups.
        mutating func sequence(recordClauses: Bool = false) -> [[UInt8]]? {
            var candidates: [[[UInt8]]] = []
            var run: [UInt8] = []
            func endRun() {
                if !run.isEmpty { candidates.append([run]) }
                run = []
            }
            while let byte = peek, byte != UInt8(ascii: "|"), byte != UInt8(ascii: ")") {
                let atom = self.atom()
                if failed { return nil }
                let (minimum, present) = quantifier()
                if failed { return nil }
                switch atom {
                case .literal(let character):
                    if !present {
                        run.append(character)
                    } else if minimum >= 1 {
                        // `ab+c`: "ab" is there, and so is "bc" (the last repetition touches what follows).
                        run.append(character)
                        endRun()
                        run = [character]
                    } else {
                        endRun()
                    }
                case .literals(let text):
                    if present {
                        endRun()
                    } else {
                        run += text
                    }
                case .wildcard, .zeroWidth:
                    endRun()
                case .group(let required):
                    endRun()
                    if let required, minimum >= 1 { candidates.append(required) }
                }
            }
            endRun()
            if recordClauses { topClauses = candidates.isEmpty ? nil : candidates }
            // The set whose shortest string is longest filters best.
            return candidates.max { Self.score($0) < Self.score($1) }
        }

        /// How well a set filters: the set whose shortest string is longest, then the one with fewer strings.
        static func score(_ set: [[UInt8]]) -> (Int, Int) { (set.map(\.count).min() ?? 0, -set.count) }

        enum Atom {
            case literal(UInt8)
            case literals([UInt8])
            case wildcard
            case zeroWidth
            case group([[UInt8]]?)
        }

        mutating func atom() -> Atom {
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "."): return .wildcard
            case UInt8(ascii: "^"), UInt8(ascii: "$"): return .zeroWidth
            case UInt8(ascii: "["):
                let start = index
                skipClass()
                return failed ? .wildcard : classAtom(bytes[start..<(index - 1)])
            case UInt8(ascii: "("): return group()
            case UInt8(ascii: "\\"): return escape()
            case UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "?"):
                failed = true
                return .wildcard
            default: return .literal(lower(byte))
            }
        }

        mutating func escape() -> Atom {
            guard let byte = peek else {
                failed = true
                return .wildcard
            }
            index += 1
            switch byte {
            case UInt8(ascii: "d"), UInt8(ascii: "D"), UInt8(ascii: "w"), UInt8(ascii: "W"), UInt8(ascii: "s"),
                UInt8(ascii: "S"), UInt8(ascii: "h"), UInt8(ascii: "H"), UInt8(ascii: "v"), UInt8(ascii: "V"),
                UInt8(ascii: "R"), UInt8(ascii: "N"), UInt8(ascii: "X"), UInt8(ascii: "C"):
                return .wildcard
            case UInt8(ascii: "b"), UInt8(ascii: "B"), UInt8(ascii: "A"), UInt8(ascii: "z"), UInt8(ascii: "Z"),
                UInt8(ascii: "G"), UInt8(ascii: "K"):
                return .zeroWidth
            case UInt8(ascii: "1")...UInt8(ascii: "9"), UInt8(ascii: "p"), UInt8(ascii: "P"), UInt8(ascii: "x"),
                UInt8(ascii: "u"), UInt8(ascii: "o"), UInt8(ascii: "c"), UInt8(ascii: "g"), UInt8(ascii: "k"),
                UInt8(ascii: "0"), UInt8(ascii: "E"):
                // Back references, properties, code points: not read, so nothing is assumed of them.
                if byte == UInt8(ascii: "p") || byte == UInt8(ascii: "P") || byte == UInt8(ascii: "x")
                    || byte == UInt8(ascii: "g") || byte == UInt8(ascii: "k"), peek == UInt8(ascii: "{")
                {
                    while let next = peek, next != UInt8(ascii: "}") { index += 1 }
                    index += 1
                }
                return .wildcard
            case UInt8(ascii: "Q"):
                var text: [UInt8] = []
                while index < bytes.count {
                    if bytes[index] == UInt8(ascii: "\\"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "E") {
                        index += 2
                        break
                    }
                    text.append(lower(bytes[index]))
                    index += 1
                }
                return .literals(text)
            case UInt8(ascii: "t"): return .literal(9)
            case UInt8(ascii: "n"): return .literal(10)
            case UInt8(ascii: "r"): return .literal(13)
            case UInt8(ascii: "f"): return .literal(12)
            case UInt8(ascii: "e"): return .literal(27)
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"):
                failed = true
                return .wildcard
            default: return .literal(lower(byte))
            }
        }

        /// After `(`: the group's kind, then its contents up to the matching `)`.
        mutating func group() -> Atom {
            var lookaround = false
            if peek == UInt8(ascii: "?") {
                index += 1
                guard let kind = peek else {
                    failed = true
                    return .wildcard
                }
                switch kind {
                case UInt8(ascii: ":"), UInt8(ascii: ">"), UInt8(ascii: "|"):
                    index += 1
                case UInt8(ascii: "="), UInt8(ascii: "!"):
                    index += 1
                    lookaround = true
                case UInt8(ascii: "<"):
                    index += 1
                    if peek == UInt8(ascii: "=") || peek == UInt8(ascii: "!") {
                        index += 1
                        lookaround = true
                    } else {
                        skipName(until: UInt8(ascii: ">"))
                    }
                case UInt8(ascii: "P"):
                    index += 1
                    guard peek == UInt8(ascii: "<") else {
                        failed = true
                        return .wildcard
                    }
                    skipName(until: UInt8(ascii: ">"))
                case UInt8(ascii: "'"):
                    skipName(until: UInt8(ascii: "'"))
                case UInt8(ascii: "#"):
                    while let next = peek, next != UInt8(ascii: ")") { index += 1 }
                    index += 1
                    return .zeroWidth
                default:
                    // Inline flags: `(?i)` alone, or `(?i:...)` as a group.
                    while let next = peek, next != UInt8(ascii: ")"), next != UInt8(ascii: ":") {
                        guard (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(next) || next == UInt8(ascii: "-")
                            || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(next)
                        else {
                            failed = true
                            return .wildcard
                        }
                        index += 1
                    }
                    guard let end = peek else {
                        failed = true
                        return .wildcard
                    }
                    index += 1
                    if end == UInt8(ascii: ")") { return .zeroWidth }
                }
            }
            let inner = alternation()
            if failed { return .wildcard }
            guard peek == UInt8(ascii: ")") else {
                failed = true
                return .wildcard
            }
            index += 1
            return lookaround ? .zeroWidth : .group(inner)
        }

        mutating func skipName(until end: UInt8) {
            while let next = peek, next != end { index += 1 }
            index += 1
        }

        /// A class that stands for one letter in either case (`[Ss]`, as the lists spell case-insensitive words) or
        /// one plain character is that (lower-cased) literal; any other class, a wildcard.
        func classAtom(_ content: ArraySlice<UInt8>) -> Atom {
            guard let first = content.first, first != UInt8(ascii: "^") else { return .wildcard }
            let plain = content.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            }
            guard plain, content.allSatisfy({ lower($0) == lower(first) }) else { return .wildcard }
            return .literal(lower(first))
        }

        /// Skips a character class (`[...]`, with `]` first taken literally, escapes and `[:name:]` inside).
        mutating func skipClass() {
            if peek == UInt8(ascii: "^") { index += 1 }
            if peek == UInt8(ascii: "]") { index += 1 }
            while let byte = peek {
                index += 1
                if byte == UInt8(ascii: "\\") {
                    index += 1
                } else if byte == UInt8(ascii: "["), peek == UInt8(ascii: ":") {
                    while let next = peek, next != UInt8(ascii: "]") { index += 1 }
                    index += 1
                } else if byte == UInt8(ascii: "]") {
                    return
                }
            }
            failed = true
        }

        /// A quantifier after an atom, if any: its minimum count (lazy and possessive suffixes skipped).
        mutating func quantifier() -> (minimum: Int, present: Bool) {
            guard let byte = peek else { return (1, false) }
            var minimum: Int
            switch byte {
            case UInt8(ascii: "*"), UInt8(ascii: "?"):
                index += 1
                minimum = 0
            case UInt8(ascii: "+"):
                index += 1
                minimum = 1
            case UInt8(ascii: "{"):
                // `{n}`, `{n,}`, `{n,m}`; anything else is a literal brace, read as the next atom.
                var cursor = index + 1
                var digits = 0
                var value = 0
                while cursor < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[cursor]) {
                    value = value * 10 + Int(bytes[cursor] - UInt8(ascii: "0"))
                    cursor += 1
                    digits += 1
                }
                guard digits > 0, cursor < bytes.count else { return (1, false) }
                if bytes[cursor] == UInt8(ascii: ",") {
                    cursor += 1
                    while cursor < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[cursor]) { cursor += 1 }
                }
                guard cursor < bytes.count, bytes[cursor] == UInt8(ascii: "}") else { return (1, false) }
                index = cursor + 1
                minimum = value
            default:
                return (1, false)
            }
            if peek == UInt8(ascii: "?") || peek == UInt8(ascii: "+") { index += 1 }
            return (minimum, true)
        }

        func lower(_ byte: UInt8) -> UInt8 {
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte
        }
    }
}
