import Testing

@testable import RegexSet

@Suite struct RegexSetTests {
    @Test func requiredLiteralsAreWhatEveryMatchContains() {
        #expect(RequiredLiterals.of(#"Googlebot\/"#) == ["googlebot/"])
        #expect(RequiredLiterals.of(#"(Firefox|Fennec)/(\d+)\.(\d+)"#).map(Set.init) == ["firefox", "fennec"])
        #expect(RequiredLiterals.of(#"^Mozilla/5\.0 .{0,80}(Edg)e?/(\d+)"#) == ["mozilla/5.0 "])
        #expect(RequiredLiterals.of("ab+cd") == ["bcd"], "the last repetition touches what follows")
        #expect(RequiredLiterals.of("colou?r") == ["colo"])
        #expect(RequiredLiterals.of(#"(?i)yandex(?:bot|images)"#) == ["yandex"])
        #expect(RequiredLiterals.of(#"(?:foo)?bar"#) == ["bar"])
        #expect(RequiredLiterals.of(#"[wW]get"#) == ["wget"], "a class of one letter in both cases is that letter")
        #expect(RequiredLiterals.of(#"(?:[Ss][Pp][Ii][Dd][Ee][Rr]|[Ss]crape)"#).map(Set.init) == ["spider", "scrape"])
        #expect(RequiredLiterals.of(#"x[a-z]yz"#) == ["yz"], "a range is any letter")
        #expect(RequiredLiterals.of(#"[^C]bot"#) == ["bot"], "a negated class is any other character")
        #expect(RequiredLiterals.of(#"\d+|bot"#) == nil, "a branch without a literal: every text is a candidate")
        #expect(RequiredLiterals.of(#"a{2,}x"#) == ["ax"])
        #expect(RequiredLiterals.of(#"\Qa.b\E"#) == ["a.b"])
        #expect(RequiredLiterals.of(#"x(?=abc)"#) == ["x"])
        #expect(RequiredLiterals.of("(unclosed") == nil)
    }

    @Test func clausesAreEverythingAMatchNeeds() {
        #expect(RequiredLiterals.clauses(of: #"(Chrome)/(\d+)\.(\d+) Mobile Safari"#).map(Set.init) == [["chrome"], [")/"], [" mobile safari"]].map(Set.init)
            || Set(RequiredLiterals.clauses(of: #"(Chrome)/(\d+)\.(\d+) Mobile Safari"#).flatMap { $0 }).isSuperset(of: ["chrome", " mobile safari"]))
        #expect(RequiredLiterals.clauses(of: #"(Edg|Edge)/(\d+)"#).count >= 1)
        #expect(RequiredLiterals.clauses(of: #"Googlebot|bingbot"#).map(Set.init) == [["googlebot", "bingbot"]], "a top-level alternation: one clause")
        #expect(RequiredLiterals.clauses(of: #"\d+"#).isEmpty)
    }

    @Test func theScannerFindsEveryLiteralInOnePass() {
        let scanner = LiteralScanner(literals: ["he", "she", "his", "hers", "bot/"].map { Array($0.utf8) })
        var found: [Int] = []
        Array("ushers and robots a bot/1".utf8).withUnsafeBytes { scanner.scan($0) { found.append($0) } }
        #expect(found.sorted() == [0, 1, 3, 4])
    }

    @Test func theScannerFindsWhatABruteForceSearchFinds() {
        // A small alphabet, so that literals of every length (the short ones filtered by their bytes, the long
        // ones by an anchor piece) overlap, repeat and meet the text's ends.
        var generator = SystemRandomNumberGenerator()
        func word(_ length: Int) -> [UInt8] { (0..<length).map { _ in UInt8.random(in: 97...100, using: &generator) } }
        for _ in 0..<50 {
            let literals = Array(Set((0..<40).map { _ in word(Int.random(in: 1...9, using: &generator)) }))
            let scanner = LiteralScanner(literals: literals)
            let text = word(Int.random(in: 0...120, using: &generator))
            var found = [Int](repeating: 0, count: literals.count)
            text.withUnsafeBytes { scanner.scan($0) { found[$0] += 1 } }
            let expected = literals.map { literal in
                literal.count > text.count ? 0 : (0...(text.count - literal.count)).count { text[$0..<($0 + literal.count)].elementsEqual(literal) }
            }
            #expect(found == expected, "\(literals.map { String(decoding: $0, as: UTF8.self) }) in \(String(decoding: text, as: UTF8.self))")
        }
    }

    @Test func theFirstMatchInListOrderWinsWithTheFilterAsWithout() throws {
        let entries = [
            RegexSet.Entry(#"(Edg)e?/(\d+)"#), RegexSet.Entry(#"(OPR)/(\d+)"#), RegexSet.Entry(#"(Chrome)/(\d+)"#),
            RegexSet.Entry(#"(Safari)/(\d+)"#), RegexSet.Entry(#"(?:bot|spider)\b"#, caseInsensitive: true),
            RegexSet.Entry(#"^\S+$"#),
        ]
        // Keyed by the clauses typical texts lack, or by the longest: the same answers.
        for set in [try RegexSet(entries), try RegexSet(entries, typical: ["Mozilla/5.0 Chrome/120.0 Safari/537.36"])] {
            try expectFirstMatches(set, entries)
        }
        #expect(throws: CompiledPattern.SyntaxError.self) { try RegexSet([RegexSet.Entry("(unclosed")]) }
    }

    func expectFirstMatches(_ set: RegexSet, _ entries: [RegexSet.Entry]) throws {
        let scratch = RegexSet.Scratch(for: set)
        let brute = try entries.map { try CompiledPattern($0.pattern, caseInsensitive: $0.caseInsensitive) }
        let texts = [
            "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/131.0 Safari/537.36 Edg/131.0",
            "Mozilla/5.0 Chrome/120.0 Safari/537.36 OPR/105.0", "Mozilla/5.0 Chrome/120.0 Safari/537.36",
            "Mozilla/5.0 Safari/605.1", "Mozilla/5.0 (compatible; SomeBot/1.0)", "curl/8.5.0", "Mozilla/5.0 (X11)",
        ]
        for text in texts {
            let bytes = Array(text.utf8)
            let fast = bytes.withUnsafeBytes { set.firstMatch($0, scratch: scratch) }
            let slow = bytes.withUnsafeBytes { raw in brute.firstIndex { $0.matches(raw, scratch: scratch.match) } }
            #expect(fast == slow, "\(text)")
        }
        let edge = Array(texts[0].utf8)
        edge.withUnsafeBytes { raw in
            #expect(set.firstMatch(raw, scratch: scratch) == 0)
            #expect(scratch.match.group(1) == "Edg" && scratch.match.group(2) == "131")
        }
    }
}
