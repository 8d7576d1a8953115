/// An ordered list of regular expressions, asked "which is the first that matches this text?" cheaply: a pattern
/// is only tried when one of its required literals (``RequiredLiterals``) occurs in the text, found for all
/// patterns at once by one ``LiteralScanner`` pass. The first match in list order wins, as in uap-core's parsers.
///
/// Read-only once built: every thread shares it, matching with its own ``RegexSet/Scratch``.
public final class RegexSet: Sendable {
    public struct Entry: Sendable {
        public var pattern: String
        public var caseInsensitive: Bool

        public init(_ pattern: String, caseInsensitive: Bool = false) {
            self.pattern = pattern
            self.caseInsensitive = caseInsensitive
        }
    }

    let patterns: [CompiledPattern]
    let scanner: LiteralScanner
    /// Patterns (by index) each literal stands for.
    let patternsOfLiteral: [[Int32]]
    /// Patterns without a required literal: tried for every text.
    let unfiltered: [Int32]
    let wordCount: Int
    /// Longer texts are matched on their first this many bytes (a bound on the cost of one text).
    public let maximumTextBytes: Int

    /// Compiles `entries`; throws on the first that does not compile.
    public init(_ entries: [Entry], maximumTextBytes: Int = 1024) throws(CompiledPattern.SyntaxError) {
        var compiled: [CompiledPattern] = []
        compiled.reserveCapacity(entries.count)
        var literalIndex: [[UInt8]: Int] = [:]
        var literals: [[UInt8]] = []
        var patternsOfLiteral: [[Int32]] = []
        var unfiltered: [Int32] = []
        for (number, entry) in entries.enumerated() {
            compiled.append(try CompiledPattern(entry.pattern, caseInsensitive: entry.caseInsensitive))
            guard let required = RequiredLiterals.of(entry.pattern), !required.isEmpty else {
                unfiltered.append(Int32(number))
                continue
            }
            for literal in Set(required.map { Array($0.utf8) }) {
                let index = literalIndex[literal] ?? {
                    literals.append(literal)
                    patternsOfLiteral.append([])
                    literalIndex[literal] = literals.count - 1
                    return literals.count - 1
                }()
                patternsOfLiteral[index].append(Int32(number))
            }
        }
        patterns = compiled
        scanner = LiteralScanner(literals: literals)
        self.patternsOfLiteral = patternsOfLiteral
        self.unfiltered = unfiltered
        wordCount = (entries.count + 63) / 64
        self.maximumTextBytes = maximumTextBytes
    }

    public var count: Int { patterns.count }

    /// Patterns tried for every text (no literal could be required of them).
    public var unfilteredCount: Int { unfiltered.count }

    /// One thread's working memory: PCRE2 match data, the candidate bit set, the lower-cased text.
    public final class Scratch {
        public let match: MatchScratch
        var candidates: [UInt64]
        var lowered: [UInt8] = []

        public init(for set: RegexSet) {
            match = MatchScratch(maximumGroups: 16)
            candidates = [UInt64](repeating: 0, count: set.wordCount)
        }
    }

    /// The index of the first pattern matching `text`, or nil; its groups are then in `scratch.match`. `text` must
    /// stay alive while the groups are read.
    public func firstMatch(_ text: UnsafeRawBufferPointer, scratch: Scratch) -> Int? {
        let text = UnsafeRawBufferPointer(rebasing: text.prefix(maximumTextBytes))
        markCandidates(text, scratch)
        var found: Int?
        scratch.candidates.withUnsafeMutableBufferPointer { words in
            for word in 0..<words.count where words[word] != 0 {
                var bits = words[word]
                while bits != 0 {
                    let index = word * 64 + bits.trailingZeroBitCount
                    bits &= bits - 1
                    if found == nil, patterns[index].matches(text, scratch: scratch.match) { found = index }
                }
                words[word] = 0
            }
        }
        return found
    }

    private func markCandidates(_ text: UnsafeRawBufferPointer, _ scratch: Scratch) {
        scratch.lowered.removeAll(keepingCapacity: true)
        for byte in text { scratch.lowered.append(byte >= 65 && byte <= 90 ? byte + 32 : byte) }
        scratch.candidates.withUnsafeMutableBufferPointer { words in
            for pattern in unfiltered { words[Int(pattern) >> 6] |= 1 << UInt64(pattern & 63) }
            scratch.lowered.withUnsafeBytes { lowered in
                scanner.scan(lowered) { literal in
                    for pattern in patternsOfLiteral[literal] { words[Int(pattern) >> 6] |= 1 << UInt64(pattern & 63) }
                }
            }
        }
    }
}
