import Testing

@testable import Tracking

@Suite struct VisitorTests {
    /// The reference test vectors of the SipHash paper: key 00 01 … 0f, message 00 01 … (n−1).
    @Test func sipHashMatchesTheReferenceVectors() {
        func hash(length: Int) -> UInt64 {
            var hasher = SipHash24(key0: 0x0706_0504_0302_0100, key1: 0x0f0e_0d0c_0b0a_0908)
            hasher.combine((0..<length).map { UInt8($0) })
            return hasher.finalize()
        }
        #expect(hash(length: 0) == 0x726f_db47_dd0e_0e31)
        #expect(hash(length: 1) == 0x74f8_39c5_93dc_67fd)
        #expect(hash(length: 15) == 0xa129_ca61_49be_45e5)
    }

    @Test func aVisitorIsStableWithinADayAndNewTheNext() {
        var salts = VisitorSalts()
        let day = Int64(1_795_600_000_000)
        let first = salts.visitorID(site: "example.com", clientAddress: "203.0.113.7", userAgent: "UA", unixMilliseconds: day)
        #expect(salts.visitorID(site: "example.com", clientAddress: "203.0.113.7", userAgent: "UA", unixMilliseconds: day + 60_000) == first)
        #expect(salts.visitorID(site: "example.com", clientAddress: "203.0.113.8", userAgent: "UA", unixMilliseconds: day) != first)
        #expect(salts.visitorID(site: "other.com", clientAddress: "203.0.113.7", userAgent: "UA", unixMilliseconds: day) != first)
        #expect(salts.visitorID(site: "example.com", clientAddress: "203.0.113.7", userAgent: "UA", unixMilliseconds: day + 86_400_000) != first)
    }
}
