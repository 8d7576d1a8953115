import Testing

@testable import Config

@Suite struct ConfigNodeTests {
    func document(_ yaml: String, environment: [String: String] = [:]) throws -> ConfigNode {
        try ConfigDocument(yaml: yaml, file: "test.yaml", environment: environment).root
    }

    @Test func unknownKeySuggestsTheClosestOne() throws {
        let root = try document("listen: 1\nsitse: []\n")
        let error = #expect(throws: ConfigError.self) { try root.mapping(keys: ["listen", "sites"]) }
        #expect(error?.line == 2)
        #expect(error?.keyPath == "sitse")
        #expect(error?.description.contains("did you mean \"sites\"") == true)
        #expect(error?.description.hasPrefix("test.yaml:2:") == true)
    }

    @Test func typeMismatchNamesPathExpectedAndFound() throws {
        let root = try document("sites:\n  - routes:\n      - path: [a, b]\n")
        let map = try root.mapping(keys: ["sites"])
        let route = try map["sites"]!.list()[0].mapping(keys: ["routes"])["routes"]!.list()[0]
        let path = try route.mapping(keys: ["path"])["path"]!
        let error = #expect(throws: ConfigError.self) { try path.string() }
        #expect(error?.keyPath == "sites[0].routes[0].path")
        #expect(error?.line == 3)
        #expect(error?.message == "expected a string, found a list")
    }

    @Test func environmentSubstitution() throws {
        let root = try document(
            "a: \"${TOKEN}\"\nb: \"${MISSING:-fallback}\"\nc: \"$${LITERAL}\"\nd: \"${NOPE}\"\n",
            environment: ["TOKEN": "s3cret"])
        let map = try root.mapping(keys: ["a", "b", "c", "d"])
        #expect(try map["a"]!.string() == "s3cret")
        #expect(try map["b"]!.string() == "fallback")
        #expect(try map["c"]!.string() == "${LITERAL}")
        let error = #expect(throws: ConfigError.self) { try map["d"]!.string() }
        #expect(error?.message.contains("environment variable NOPE is not set") == true)
    }

    @Test func durationsAndSizes() throws {
        let root = try document("a: 500ms\nb: 10s\nc: 2m\nd: 16KB\ne: 2GB\nf: 512\ng: soon\n")
        let map = try root.mapping(keys: ["a", "b", "c", "d", "e", "f", "g"])
        #expect(try map["a"]!.duration() == .milliseconds(500))
        #expect(try map["b"]!.duration() == .seconds(10))
        #expect(try map["c"]!.duration() == .seconds(120))
        #expect(try map["d"]!.byteSize() == 16 * 1024)
        #expect(try map["e"]!.byteSize() == 2 << 30)
        #expect(try map["f"]!.byteSize() == 512)
        #expect(throws: ConfigError.self) { try map["g"]!.duration() }
    }

    @Test func syntaxErrorsCarryALine() {
        let error = #expect(throws: ConfigError.self) {
            _ = try ConfigDocument(yaml: "a: 1\nb: [unclosed\nc: 3\n", file: "bad.yaml", environment: [:])
        }
        #expect(error?.line ?? 0 > 0)
        #expect(error?.description.hasPrefix("bad.yaml:") == true)
    }

    @Test func duplicateKeysAreRefused() {
        #expect(throws: ConfigError.self) {
            _ = try ConfigDocument(yaml: "a: 1\na: 2\n", file: "dup.yaml", environment: [:])
        }
    }

    @Test func closestMatchIgnoresFarWords() {
        #expect(closestMatch(to: "rotues", in: ["routes", "hosts"]) == "routes")
        #expect(closestMatch(to: "zzzzzz", in: ["routes", "hosts"]) == nil)
    }
}
@Suite struct ConfigPathTests {
    @Test func relativePathsAreTakenFromTheConfigFilesFolder() throws {
        let root = try ConfigDocument(yaml: "a: www\nb: /srv/www\nc: ../data/spool\n", file: "/etc/vantage/vantage.yaml", environment: [:]).root
        let map = try root.mapping(keys: ["a", "b", "c"])
        #expect(try map["a"]?.path() == "/etc/vantage/www")
        #expect(try map["b"]?.path() == "/srv/www")
        #expect(try map["c"]?.path() == "/etc/data/spool")
    }
}
