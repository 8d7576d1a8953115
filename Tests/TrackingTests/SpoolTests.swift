import Foundation
import Logging
import NIOCore
import Testing

@testable import Tracking

@Suite struct SpoolTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("spool-\(UUID().uuidString)").path
    let logger = Logger(label: "test")

    func open(segmentSize: Int = 1 << 20, quota: Int = 1 << 30) throws -> Spool {
        try Spool(configuration: .init(directory: directory, segmentSize: segmentSize, quota: quota), logger: logger)
    }

    /// Records of one size (numbers padded to five digits), so quota arithmetic is exact.
    func payloads(_ range: Range<Int>) -> [ByteBuffer] {
        range.map { number in
            let digits = String(number)
            let padded = String(repeating: "0", count: 5 - digits.count) + digits
            return ByteBuffer(string: "{\"event\":\"\(padded)\",\"path\":\"/p/\(padded)\"}")
        }
    }

    func strings(_ spool: Spool) throws -> [String] {
        try spool.sealedSegments.flatMap { try spool.records(of: $0) }.map { String(buffer: $0) }
    }

    @Test func appendedRecordsSurviveAReopenAndLeaveOnlyWhenRemoved() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let spool = try open()
            #expect(try spool.append(payloads(0..<100)) == Spool.AppendResult(written: 100, refused: 0))
            #expect(try spool.append(payloads(100..<150)).written == 50)
        }
        let reopened = try open()
        #expect(reopened.recovery.records == 150)
        #expect(reopened.recovery.truncatedBytes == 0)
        #expect(try strings(reopened) == payloads(0..<150).map { String(buffer: $0) })
        for segment in reopened.sealedSegments { try reopened.remove(segment) }
        #expect(try open().recovery.records == 0)
    }

    @Test func fullSegmentsAreSealedInOrder() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let spool = try open(segmentSize: 512)
        for start in stride(from: 0, to: 200, by: 20) { _ = try spool.append(payloads(start..<start + 20)) }
        try spool.sealActive()
        #expect(spool.sealedSegments.count > 5)
        #expect(spool.sealedSegments == spool.sealedSegments.sorted())
        #expect(try strings(spool) == payloads(0..<200).map { String(buffer: $0) })
    }

    @Test func aTornTailIsCutAtTheLastGoodRecord() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do { _ = try open().append(payloads(0..<10)) }
        let path = try #require(try FileManager.default.contentsOfDirectory(atPath: directory).first).withDirectory(directory)
        // A crash in the middle of a record: its header promises more bytes than follow.
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data([40, 0, 0, 0, 1, 2, 3, 4]) + Data("{\"event\":".utf8))
        try handle.close()
        let recovered = try open()
        #expect(recovered.recovery.records == 10)
        #expect(recovered.recovery.truncatedBytes == 17)
        #expect(recovered.recovery.problems.first?.contains("torn record") == true)
        #expect(try strings(recovered).count == 10)
        #expect(try open().recovery.truncatedBytes == 0, "the cut is permanent")
    }

    @Test func aCorruptRecordEndsTheGoodPart() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do { _ = try open().append(payloads(0..<10)) }
        let path = try #require(try FileManager.default.contentsOfDirectory(atPath: directory).first).withDirectory(directory)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count - 3] ^= 0xFF  // flip a byte inside the last record's payload
        try bytes.write(to: URL(fileURLWithPath: path))
        let recovered = try open()
        #expect(recovered.recovery.records == 9)
        #expect(recovered.recovery.problems.first?.contains("checksum mismatch") == true)
    }

    @Test func theQuotaRefusesExactlyWhatDoesNotFit() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let record = SpoolRecordFormat.framedSize(payloads(0..<1)[0].readableBytes)
        let spool = try open(quota: SpoolRecordFormat.magic.count + record * 25 + 5)
        let first = try spool.append(payloads(0..<20))
        let second = try spool.append(payloads(20..<40))
        #expect(first == Spool.AppendResult(written: 20, refused: 0))
        #expect(second.written + second.refused == 20)
        #expect(second.written == 5)
        #expect(spool.usedBytes <= spool.configuration.quota)
    }

    @Test func scanningRejectsForeignFiles() {
        #expect(SpoolRecordFormat.scan(ByteBuffer(string: "not a segment at all")).problem?.contains("bad magic") == true)
        var buffer = ByteBuffer(bytes: SpoolRecordFormat.magic)
        SpoolRecordFormat.append(ByteBuffer(string: "x"), to: &buffer)
        let scan = SpoolRecordFormat.scan(buffer)
        #expect(scan.problem == nil && scan.records.count == 1 && scan.validEnd == buffer.readableBytes)
    }
}

extension String {
    func withDirectory(_ directory: String) -> String { directory + "/" + self }
}
