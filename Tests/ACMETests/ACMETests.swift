import Config
import Crypto
import Foundation
import SwiftASN1
import Testing
import X509

@testable import ACME

@Suite struct JWSTests {
    func decodeJSON(_ data: Data) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func signedRequestsVerifyAndCarryTheRightHeader() throws {
        let key = AccountKey()
        let body = try key.sign(payload: Data("{\"a\":1}".utf8), url: "https://ca.test/new-order", nonce: "n1", keyID: "https://ca.test/acct/7")
        let object = try decodeJSON(body)
        let protected64 = try #require(object["protected"] as? String)
        let payload64 = try #require(object["payload"] as? String)
        let protected = try decodeJSON(try #require(Base64URL.decode(protected64)))
        #expect(protected["alg"] as? String == "ES256" && protected["kid"] as? String == "https://ca.test/acct/7")
        #expect(protected["nonce"] as? String == "n1" && protected["url"] as? String == "https://ca.test/new-order")
        #expect(protected["jwk"] == nil, "kid and jwk are exclusive")
        #expect(String(decoding: try #require(Base64URL.decode(payload64)), as: UTF8.self) == "{\"a\":1}")
        let signature64 = try #require(object["signature"] as? String)
        let signatureBytes = try #require(Base64URL.decode(signature64))
        let signature = try P256.Signing.ECDSASignature(rawRepresentation: signatureBytes)
        #expect(key.privateKey.publicKey.isValidSignature(signature, for: Data("\(protected64).\(payload64)".utf8)))

        // Before the account exists: the JWK instead of kid; POST-as-GET: an empty payload.
        let first = try decodeJSON(try key.sign(payload: nil, url: "https://ca.test/new-acct", nonce: "n2", keyID: nil))
        let firstProtected64 = try #require(first["protected"] as? String)
        let firstProtected = try decodeJSON(try #require(Base64URL.decode(firstProtected64)))
        let jwk = try #require(firstProtected["jwk"] as? [String: String])
        #expect(jwk["kty"] == "EC" && jwk["crv"] == "P-256" && jwk["x"]?.count == 43 && jwk["y"]?.count == 43)
        #expect(first["payload"] as? String == "")
    }

    @Test func thumbprintsAndKeyAuthorizationsFollowRFC7638() throws {
        let key = AccountKey()
        #expect(key.jwk.hasPrefix("{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\""), "members in lexicographic order, no spaces")
        let expected = Base64URL.encode(Data(SHA256.hash(data: Data(key.jwk.utf8))))
        #expect(key.thumbprint == expected && key.thumbprint.count == 43)
        #expect(key.keyAuthorization(token: "tok") == "tok.\(expected)")
        // A key survives its PEM.
        #expect(try AccountKey(pem: key.pem).thumbprint == key.thumbprint)
    }

    @Test func externalAccountBindingIsAnHS256SignatureOfTheJWK() throws {
        let key = AccountKey()
        let mac = Data((0..<32).map { UInt8($0) })
        let binding = try decodeJSON(Data(key.externalAccountBinding(keyID: "kid-1", macKey: mac, url: "https://ca.test/new-acct").utf8))
        let protected64 = try #require(binding["protected"] as? String)
        let payload64 = try #require(binding["payload"] as? String)
        let protected = try decodeJSON(try #require(Base64URL.decode(protected64)))
        #expect(protected["alg"] as? String == "HS256" && protected["kid"] as? String == "kid-1")
        #expect(String(decoding: try #require(Base64URL.decode(payload64)), as: UTF8.self) == key.jwk)
        let code = HMAC<SHA256>.authenticationCode(for: Data("\(protected64).\(payload64)".utf8), using: SymmetricKey(data: mac))
        #expect(binding["signature"] as? String == Base64URL.encode(Data(code)))
    }

    @Test func base64URLHasNoPaddingAndRoundTrips() {
        for length in 0..<10 {
            let bytes = Data((0..<length).map { UInt8(250 - $0) })
            let text = Base64URL.encode(bytes)
            #expect(!text.contains("=") && !text.contains("+") && !text.contains("/"))
            #expect(Base64URL.decode(text) == bytes)
        }
    }
}

@Suite struct CertificateTests {
    @Test func requestsNameEveryHostAndAreSignedByTheNewKey() throws {
        let (key, der) = try IssuedCertificate.makeRequest(names: ["a.example", "b.example"])
        let csr = try CertificateSigningRequest(derEncoded: der)
        #expect(csr.publicKey == Certificate.PublicKey(key.publicKey))
        #expect(csr.subject.description.contains("a.example"))
        let request = try csr.attributes.extensionRequest
        let extensions = try #require(request?.extensions)
        let names = try #require(try extensions.subjectAlternativeNames)
        #expect(Array(names) == [.dnsName("a.example"), .dnsName("b.example")])
        #expect(csr.publicKey.isValidSignature(csr.signature, for: csr))
    }

    /// A leaf signed by a throwaway CA, as PEM, with its validity.
    static func makeChain(notBefore: Date, notAfter: Date) throws -> (chain: String, key: String) {
        let caKey = P256.Signing.PrivateKey()
        let leafKey = P256.Signing.PrivateKey()
        let caName = try DistinguishedName { CommonName("Test CA") }
        let leaf = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(bytes: [0x01, 0x02, 0x03]),
            publicKey: Certificate.PublicKey(leafKey.publicKey), notValidBefore: notBefore, notValidAfter: notAfter,
            issuer: caName, subject: try DistinguishedName { CommonName("a.example") }, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                AuthorityKeyIdentifier(keyIdentifier: [0xAA, 0xBB, 0xCC])
                SubjectAlternativeNames([.dnsName("a.example")])
            },
            issuerPrivateKey: Certificate.PrivateKey(caKey))
        return (try leaf.serializeAsPEM().pemString + "\n", leafKey.pemRepresentation)
    }

    @Test func issuedCertificatesKnowTheirLifetimeAndRenewalID() throws {
        let notBefore = Date(timeIntervalSince1970: 1_800_000_000)
        let notAfter = notBefore.addingTimeInterval(90 * 86_400)
        let (chain, key) = try Self.makeChain(notBefore: notBefore, notAfter: notAfter)
        let issued = try IssuedCertificate(names: ["a.example"], chainPEM: chain + chain, keyPEM: key)
        #expect(issued.notBefore == notBefore && issued.notAfter == notAfter)
        #expect(issued.renewalID == "qrvM.AQID", "base64url(AKI) . base64url(serial)")
        #expect(IssuedCertificate.blocks(chain + "junk" + chain).count == 2)
        #expect(throws: (any Error).self) { try IssuedCertificate(names: ["a"], chainPEM: "nothing", keyPEM: key) }
    }
}

@Suite struct RenewalPolicyTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func renewalStartsWithAThirdOfTheLifetimeLeft() {
        let policy = RenewalPolicy()
        let due = policy.renewalDate(notBefore: start, notAfter: start.addingTimeInterval(90 * 86_400))
        #expect(due == start.addingTimeInterval(60 * 86_400))
        let short = policy.renewalDate(notBefore: start, notAfter: start.addingTimeInterval(30))
        #expect(short == start.addingTimeInterval(20))
    }

    @Test func anARIWindowWinsAndJitterPicksAPointInIt() {
        let policy = RenewalPolicy()
        let window = start.addingTimeInterval(1000)...start.addingTimeInterval(2000)
        let notAfter = start.addingTimeInterval(90 * 86_400)
        #expect(policy.renewalDate(notBefore: start, notAfter: notAfter, window: window, jitter: 0) == window.lowerBound)
        #expect(policy.renewalDate(notBefore: start, notAfter: notAfter, window: window, jitter: 0.5) == start.addingTimeInterval(1500))
        #expect(policy.renewalDate(notBefore: start, notAfter: notAfter, window: window, jitter: 7) == window.upperBound)
    }

    @Test func retriesBackOffExponentiallyUpToDaysAndHonourRetryAfter() {
        let policy = RenewalPolicy()
        #expect((1...5).map { policy.retryDelay(failures: $0, now: start) } == [60, 120, 240, 480, 960])
        #expect(policy.retryDelay(failures: 40, now: start) == 2 * 86_400, "capped at two days")
        #expect(policy.retryDelay(failures: 1, now: start, retryAfter: start.addingTimeInterval(3600)) == 3600)
        #expect(policy.retryDelay(failures: 3, now: start, retryAfter: start.addingTimeInterval(10)) == 240)
    }
}

@Suite struct StorageTests {
    func folder() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("acme-storage-\(UUID().uuidString)").path
    }

    @Test func valuesAreWrittenPrivatelyAndAtomically() throws {
        let root = folder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let storage = try FileACMEStorage(root: root)
        #expect(try storage.load("certificates/ca/a.example/chain.pem") == nil)
        try storage.store("certificates/ca/a.example/chain.pem", Data("one".utf8))
        try storage.store("certificates/ca/a.example/chain.pem", Data("two".utf8))
        #expect(try storage.load("certificates/ca/a.example/chain.pem") == Data("two".utf8))
        let attributes = try FileManager.default.attributesOfItem(atPath: root + "/certificates/ca/a.example/chain.pem")
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let entries = try FileManager.default.contentsOfDirectory(atPath: root + "/certificates/ca/a.example")
        #expect(entries == ["chain.pem"], "no temporary file left behind")
        for bad in ["../x", "a//b", "a/./b", "a b", ""] {
            #expect(throws: (any Error).self, "\(bad)") { try storage.store(bad, Data()) }
        }
    }

    @Test func aLockIsExclusiveUntilReleased() async throws {
        let root = folder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        // Two storages on one folder behave like two processes: flock conflicts between open file descriptions.
        let first = try FileACMEStorage(root: root)
        let second = try FileACMEStorage(root: root)
        let held = try await first.lock("certificate-a.example")
        let waiter = Task { () -> Date in
            let lock = try await second.lock("certificate-a.example")
            defer { lock.unlock() }
            return Date()
        }
        let released = Date().addingTimeInterval(0.6)
        try await Task.sleep(for: .milliseconds(600))
        held.unlock()
        held.unlock()  // a second unlock does nothing
        let acquired = try await waiter.value
        #expect(acquired >= released, "the second holder got the lock only after the first let go")
        let other = try await second.lock("certificate-b.example")  // another name is independent
        other.unlock()
    }
}

@Suite struct ACMEConfigurationTests {
    func parse(_ yaml: String) throws -> ACMEConfiguration {
        let document = try ConfigDocument(yaml: "acme: " + yaml, file: "test.yaml")
        return try ACMEConfiguration(from: try document.root.mapping(keys: ["acme"]).required("acme", expected: "acme"))
    }

    func error(_ yaml: String) -> String {
        do {
            _ = try parse(yaml)
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test func oneLineAndFullForms() throws {
        let short = try parse("{ email: ops@example.com }")
        #expect(short.email == "ops@example.com" && short.directory == ACMEConfiguration.letsEncrypt && short.agreeToTerms)
        #expect(short.storagePath == "data/acme" && short.caIdentifier == "acme-v02.api.letsencrypt.org-directory")
        let full = try parse("""
            { email: a@b.c, directory: "https://127.0.0.1:14000/dir", agree_tos: false,
              eab: { kid: k1, hmac_key: AAECAw }, storage: /tmp/acme, names: [www.example.com],
              renew_remaining: 1/2, retry: { min: 5s, max: 1h } }
            """)
        #expect(full.caIdentifier == "127.0.0.1-14000-dir" && !full.agreeToTerms)
        #expect(full.binding == ExternalAccountBinding(keyID: "k1", macKey: Data([0, 1, 2, 3])))
        #expect(full.extraNames == ["www.example.com"] && full.policy.remainingFraction == 0.5)
        #expect(full.policy.minimumBackoff == 5 && full.policy.maximumBackoff == 3600)
    }

    @Test func mistakesAreExplained() {
        #expect(error("{ email: nobody }").contains("expected an email address"))
        #expect(error("{ directory: \"http://ca.test/dir\" }").contains("https URL of an ACME directory"))
        #expect(error("{ ca_root: /nonexistent.pem }").contains("missing or unreadable"))
        #expect(error("{ names: [\"*.example.com\"] }").contains("HTTP-01"))
        #expect(error("{ renew_remaining: 2 }").contains("fraction"))
        #expect(error("{ emial: a@b.c }").contains("did you mean \"email\""))
    }

    @Test func onDemandNeedsAnAllowListOrAnAskURL() throws {
        let onDemand = try #require(try parse("{ on_demand: { allow: [\"*.shop.test\", exact.test], ask: \"http://127.0.0.1:9/ask\", rate: 5/h, max_names: 100 } }").onDemand)
        #expect(onDemand.rateCount == 5 && onDemand.ratePeriod == 3600 && onDemand.maxNames == 100)
        #expect(onDemand.allows("a.shop.test") && onDemand.allows("a.b.shop.test") && onDemand.allows("exact.test"))
        #expect(!onDemand.allows("shop.test") && !onDemand.allows("evilshop.test") && !onDemand.allows("a.exact.test"))
        #expect(error("{ on_demand: {} }").contains("expected allow"))
        #expect(error("{ on_demand: { allow: [x.test], rate: fast } }").contains("10/m"))
        #expect(error("{ on_demand: { ask: \"ftp://x\" } }").contains("http(s) URL"))
    }

    @Test func onlyNamesACACanValidateOverHTTPAreManaged() {
        #expect(ACMEConfiguration.isManageable("example.com") && ACMEConfiguration.isManageable("a-b.example.test"))
        for name in ["*.example.com", "*", "localhost", "127.0.0.1", "example..com", "exa mple.com", "example.com."] {
            #expect(!ACMEConfiguration.isManageable(name), "\(name)")
        }
    }

    @Test func challengeAnswersAreServedOnlyWhileInPlay() {
        let responder = HTTP01Responder()
        #expect(responder.answer(forPath: "/.well-known/acme-challenge/abc") == nil)
        responder.add(token: "abc", keyAuthorization: "abc.thumb")
        #expect(responder.answer(forPath: "/.well-known/acme-challenge/abc") == "abc.thumb")
        #expect(responder.answer(forPath: "/.well-known/acme-challenge/") == nil)
        #expect(responder.answer(forPath: "/other/abc") == nil)
        responder.remove(token: "abc")
        #expect(responder.answer(forPath: "/.well-known/acme-challenge/abc") == nil)
    }
}

@Suite struct LocalAuthorityTests {
    @Test func theRootIsKeptAndTheCertificateRenewedBeforeItExpires() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-authority-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let now = Date()
        let authority = try LocalAuthority.open(folder: folder, now: now)
        let first = try authority.certificate(for: ["app.test"], now: now)
        let leaf = { try Certificate(pemEncoded: IssuedCertificate.blocks(String(contentsOfFile: first.certificatePath, encoding: .utf8))[0]) }
        let issued = try leaf()
        #expect(issued.notValidAfter.timeIntervalSince(now) > 29 * 86_400)
        #expect(try authority.certificate(for: ["app.test"], now: now.addingTimeInterval(15 * 86_400)) == first)
        #expect(try leaf().serialNumber == issued.serialNumber, "kept while more than 10 days remain")
        _ = try authority.certificate(for: ["app.test"], now: now.addingTimeInterval(25 * 86_400))
        #expect(try leaf().serialNumber != issued.serialNumber, "issued again with fewer than 10 days left")
        let renamed = try leaf().serialNumber
        _ = try authority.certificate(for: ["app.test", "api.test"], now: now.addingTimeInterval(25 * 86_400))
        #expect(try leaf().serialNumber != renamed, "issued again when the names change")
        let reopened = try LocalAuthority.open(folder: folder)
        #expect(try String(contentsOfFile: reopened.rootPath, encoding: .utf8) == String(contentsOfFile: authority.rootPath, encoding: .utf8))
        let mode = try FileManager.default.attributesOfItem(atPath: folder + "/root.key")[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }
}
