/// An ordered list of regular expressions, asked "which is the first that matches this text?" cheaply: a pattern
/// is only tried when its required literals (``RequiredLiterals/clauses(of:)``: every clause, each by one of its
/// strings) occur in the text, found for all patterns at once by one ``LiteralScanner`` pass (the idea of RE2's
/// FilteredRE2). The first match in list order wins, as in uap-core's parsers.
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
    /// Per literal: the (pattern, clause) pairs it satisfies.
    let clausesOfLiteral: [[(pattern: Int32, clause: Int32)]]
    /// Per pattern: how many clauses must hold, and where its clauses' stamps start.
    let clauseCounts: [Int32]
    let clauseOffsets: [Int32]
    let totalClauses: Int
    /// Patterns without a required literal: tried for every text.
    let unfiltered: [Int32]
    let wordCount: Int
    /// Longer texts are matched on their first this many bytes (a bound on the cost of one text).
    public let maximumTextBytes: Int
    /// At most this many clauses are kept per pattern (the most selective): enough to prune, bounded work.
    static let maximumClauses = 2

    /// Per literal: its index among the plain literals the caller asked to be told about, or -1.
    let plainOfLiteral: [Int32]
    /// How many plain literals there are (``Scratch/containsPlain(_:)``).
    public let plainCount: Int

    /// Compiles `entries`; throws on the first that does not compile. `plain` are strings (lower-case) the same
    /// pass reports as found or not (``Scratch/containsPlain(_:)``): a caller's own token checks ride along.
    /// `typical` are texts like most the set will see: a pattern is filtered by the clauses those texts hold least
    /// (`Mozilla.+Android.+GSA/` by "gsa/", which few texts have, not by "mozilla" and "android", which most have).
    public init(_ entries: [Entry], plain: [String] = [], typical: [String] = [], maximumTextBytes: Int = 1024)
        throws(CompiledPattern.SyntaxError)
    {
        let typical = typical.map { Array($0.lowercased().utf8) }
        /// How many typical texts hold one of the clause's strings.
        func commonness(_ clause: Set<[UInt8]>) -> Int {
            typical.count { text in clause.contains { literal in Self.contains(text, literal) } }
        }
        var compiled: [CompiledPattern] = []
        compiled.reserveCapacity(entries.count)
        var literalIndex: [[UInt8]: Int] = [:]
        var clausesOfLiteral: [[(pattern: Int32, clause: Int32)]] = []
        var clauseCounts: [Int32] = []
        var clauseOffsets: [Int32] = []
        var totalClauses = 0
        var unfiltered: [Int32] = []
        var literals: [[UInt8]] = []
        for (number, entry) in entries.enumerated() {
            compiled.append(try CompiledPattern(entry.pattern, caseInsensitive: entry.caseInsensitive))
            let clauses = Self.mostSelective(RequiredLiterals.clauses(of: entry.pattern), commonness: commonness)
            clauseOffsets.append(Int32(totalClauses))
            clauseCounts.append(Int32(clauses.count))
            guard !clauses.isEmpty else {
                unfiltered.append(Int32(number))
                continue
            }
            for (clauseNumber, clause) in clauses.enumerated() {
                for literal in clause {
                    let index = literalIndex[literal] ?? {
                        literals.append(literal)
                        clausesOfLiteral.append([])
                        literalIndex[literal] = literals.count - 1
                        return literals.count - 1
                    }()
                    clausesOfLiteral[index].append((Int32(number), Int32(clauseNumber)))
                }
            }
            totalClauses += clauses.count
        }
        var plainOfLiteral = [Int32](repeating: -1, count: literals.count)
        for (number, text) in plain.enumerated() {
            let literal = Array(text.utf8)
            if let index = literalIndex[literal] {
                plainOfLiteral[index] = Int32(number)
            } else {
                literalIndex[literal] = literals.count
                literals.append(literal)
                clausesOfLiteral.append([])
                plainOfLiteral.append(Int32(number))
            }
        }
        self.plainOfLiteral = plainOfLiteral
        plainCount = plain.count
        patterns = compiled
        scanner = LiteralScanner(literals: literals)
        self.clausesOfLiteral = clausesOfLiteral
        self.clauseCounts = clauseCounts
        self.clauseOffsets = clauseOffsets
        self.totalClauses = totalClauses
        self.unfiltered = unfiltered
        wordCount = (entries.count + 63) / 64
        self.maximumTextBytes = maximumTextBytes
    }

    /// The clauses a pattern is filtered by: at most ``maximumClauses``, those fewest typical texts hold first,
    /// then those whose shortest string is longest. A clause typical texts hold is kept only when it is the best:
    /// it would prune little, and every occurrence of its strings costs the scan a visit to the pattern.
    static func mostSelective(_ clauses: [[String]], commonness: (Set<[UInt8]>) -> Int) -> [Set<[UInt8]>] {
        let ranked: [(clause: Set<[UInt8]>, common: Int, score: (Int, Int))] = clauses
            .map { Set($0.map { Array($0.utf8) }) }
            .filter { !$0.isEmpty }
            .map { ($0, commonness($0), RequiredLiterals.Parser.score(Array($0))) }
        let sorted = ranked.sorted { $0.common != $1.common ? $0.common < $1.common : $0.score > $1.score }
        return sorted.prefix(maximumClauses).enumerated().filter { $0.offset == 0 || $0.element.common == 0 }.map(\.element.clause)
    }

    /// Whether `literal` occurs in `text`.
    static func contains(_ text: [UInt8], _ literal: [UInt8]) -> Bool {
        guard literal.count <= text.count else { return false }
        return (0...(text.count - literal.count)).contains { start in text[start..<(start + literal.count)].elementsEqual(literal) }
    }

    public var count: Int { patterns.count }

    /// Patterns tried for every text (no literal could be required of them).
    public var unfilteredCount: Int { unfiltered.count }

    /// One thread's working memory: PCRE2 match data, the candidate bit set, the lower-cased text.
    public final class Scratch {
        public let match: MatchScratch
        var candidates: [UInt64]
        var lowered: [UInt8] = []
        /// The scan that last handled each literal, each clause and each pattern (a literal occurring twice is
        /// handled once; a pattern's count of holding clauses starts over with each scan).
        var literalStamps: [UInt32]
        var clauseStamps: [UInt32]
        var patternStamps: [UInt32]
        var holding: [Int32]
        var stamp: UInt32 = 0
        /// Bit `n`: plain literal `n` occurred in the last scanned text.
        public internal(set) var plainFound: [UInt64]

        /// Whether plain literal `index` occurred in the last scanned text.
        public func containsPlain(_ index: Int) -> Bool { plainFound[index >> 6] & (1 << UInt64(index & 63)) != 0 }

        public init(for set: RegexSet) {
            match = MatchScratch(maximumGroups: 16)
            candidates = [UInt64](repeating: 0, count: set.wordCount)
            literalStamps = [UInt32](repeating: 0, count: set.clausesOfLiteral.count)
            clauseStamps = [UInt32](repeating: 0, count: set.totalClauses)
            patternStamps = [UInt32](repeating: 0, count: set.patterns.count)
            holding = [Int32](repeating: 0, count: set.patterns.count)
            plainFound = [UInt64](repeating: 0, count: (set.plainCount + 63) / 64)
        }
    }

    /// The index of the first pattern matching `text`, or nil; its groups are then in `scratch.match`. `text` must
    /// stay alive while the groups are read.
    public func firstMatch(_ text: UnsafeRawBufferPointer, scratch: Scratch) -> Int? {
        scan(text, scratch: scratch)
        return firstMatch(in: 0..<patterns.count, text, scratch: scratch)
    }

    /// Marks the patterns `text` may match, in one pass over it; then ``firstMatch(in:_:scratch:)`` asks for the
    /// first match among any range of patterns (several lists kept in one set share the pass).
    public func scan(_ text: UnsafeRawBufferPointer, scratch: Scratch) {
        for index in scratch.candidates.indices { scratch.candidates[index] = 0 }
        for index in scratch.plainFound.indices { scratch.plainFound[index] = 0 }
        markCandidates(UnsafeRawBufferPointer(rebasing: text.prefix(maximumTextBytes)), scratch)
    }

    /// The index of the first pattern in `range` matching `text` among those ``scan(_:scratch:)`` marked for it
    /// (the same text), or nil; its groups are then in `scratch.match`.
    public func firstMatch(in range: Range<Int>, _ text: UnsafeRawBufferPointer, scratch: Scratch) -> Int? {
        let text = UnsafeRawBufferPointer(rebasing: text.prefix(maximumTextBytes))
        return scratch.candidates.withUnsafeBufferPointer { words -> Int? in
            var word = range.lowerBound >> 6
            while word < words.count, word * 64 < range.upperBound {
                var bits = words[word]
                while bits != 0 {
                    let index = word * 64 + bits.trailingZeroBitCount
                    bits &= bits - 1
                    guard index >= range.lowerBound else { continue }
                    guard index < range.upperBound else { return nil }
                    if patterns[index].matches(text, scratch: scratch.match) { return index }
                }
                word += 1
            }
            return nil
        }
    }

    /// How many patterns the prefilter leaves to try for `text` (diagnostics: the cost of a text is about this
    /// many PCRE2 attempts).
    public func candidateCount(_ text: UnsafeRawBufferPointer, in range: Range<Int>? = nil, scratch: Scratch) -> Int {
        scan(text, scratch: scratch)
        let range = range ?? 0..<patterns.count
        return range.reduce(0) { $0 + (scratch.candidates[$1 >> 6] >> UInt64($1 & 63) & 1 == 1 ? 1 : 0) }
    }

    private func markCandidates(_ text: UnsafeRawBufferPointer, _ scratch: Scratch) {
        if scratch.lowered.count < text.count { scratch.lowered = [UInt8](repeating: 0, count: max(text.count, 256)) }
        scratch.lowered.withUnsafeMutableBufferPointer { lowered in
            for (index, byte) in text.enumerated() { lowered[index] = byte >= 65 && byte <= 90 ? byte + 32 : byte }
        }
        let length = text.count
        scratch.stamp &+= 1
        if scratch.stamp == 0 {
            // Wrapped: nothing may look handled by this scan.
            for index in scratch.literalStamps.indices { scratch.literalStamps[index] = 0 }
            for index in scratch.clauseStamps.indices { scratch.clauseStamps[index] = 0 }
            for index in scratch.patternStamps.indices { scratch.patternStamps[index] = 0 }
            scratch.stamp = 1
        }
        let stamp = scratch.stamp
        scratch.candidates.withUnsafeMutableBufferPointer { words in
            for pattern in unfiltered { words[Int(pattern) >> 6] |= 1 << UInt64(pattern & 63) }
            scratch.literalStamps.withUnsafeMutableBufferPointer { literalStamps in
                scratch.clauseStamps.withUnsafeMutableBufferPointer { clauseStamps in
                    scratch.patternStamps.withUnsafeMutableBufferPointer { patternStamps in
                        scratch.holding.withUnsafeMutableBufferPointer { holding in
                            scratch.lowered.withUnsafeBytes { lowered in
                                scanner.scan(UnsafeRawBufferPointer(rebasing: lowered[..<length])) { literal in
                                    guard literalStamps[literal] != stamp else { return }
                                    literalStamps[literal] = stamp
                                    let plain = plainOfLiteral[literal]
                                    if plain >= 0 { scratch.plainFound[Int(plain) >> 6] |= 1 << UInt64(plain & 63) }
                                    for (pattern, clause) in clausesOfLiteral[literal] {
                                        let slot = Int(clauseOffsets[Int(pattern)] + clause)
                                        guard clauseStamps[slot] != stamp else { continue }
                                        clauseStamps[slot] = stamp
                                        if patternStamps[Int(pattern)] != stamp {
                                            patternStamps[Int(pattern)] = stamp
                                            holding[Int(pattern)] = 0
                                        }
                                        holding[Int(pattern)] += 1
                                        if holding[Int(pattern)] == clauseCounts[Int(pattern)] {
                                            words[Int(pattern) >> 6] |= 1 << UInt64(pattern & 63)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
