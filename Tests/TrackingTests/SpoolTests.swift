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
    func payload(_ number: Int) -> String {
        let digits = String(number)
        return "{\"event\":\"\(String(repeating: "0", count: 5 - digits.count) + digits)\"}"
    }

    /// Appends records `range` and returns how many were written.
    @discardableResult
    func append(_ range: Range<Int>, to appender: SpoolAppender) -> Int {
        range.filter { number in appender.append(nowMilliseconds: 0) { $0.writeString(payload(number)) } == .written }.count
    }

    /// Closes the appender and the spool (pending seals done, folder lock released).
    func finish(_ appender: SpoolAppender, _ spool: Spool) {
        appender.close()
        spool.close()
    }

    /// Writes records 0..<10 through a spool that is then closed; returns the one segment's path.
    func sealedSegmentOfTenRecords() throws -> String {
        let spool = try open()
        let appender = SpoolAppender(spool: spool)
        append(0..<10, to: appender)
        finish(appender, spool)
        return try #require(try segmentFiles().first)
    }

    func strings(_ spool: Spool) throws -> [String] {
        var strings: [String] = []
        for segment in spool.sealedSegments {
            try spool.forEachRecord(of: segment) { strings.append(String(decoding: $0, as: UTF8.self)) }
        }
        return strings
    }

    func segmentFiles() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".vspool") }.sorted()
            .map { directory + "/" + $0 }
    }

    @Test func aRemovedLockFileCannotHandTheFolderToASecondProcess() throws {
        let spool = try open()
        let appender = SpoolAppender(spool: spool)
        #expect(append(0..<3, to: appender) == 3)
        // A cleanup removes the lock file: the folder itself stays locked, so a second spool cannot open it...
        unlink(directory + "/spool.lock")
        #expect(throws: Spool.SpoolError.self) { try open() }
        // ...and the running one notices and stops writing there.
        spool.checkOwnership()
        let deadline = Date().addingTimeInterval(5)
        while spool.isOwned && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(!spool.isOwned && spool.ownershipProblem?.contains("spool.lock was removed or replaced") == true)
        #expect(appender.append(nowMilliseconds: 0) { $0.writeString(payload(3)) } == .droppedFolderLost)
        finish(appender, spool)
        // Once it is closed the folder is free again.
        let reopened = try open()
        reopened.close()
    }

    @Test func folderLocksAreExclusiveAndSeeReplacement() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let first = try FolderLock(directory: directory, fileName: "x.lock")
        #expect(first.isIntact())
        #expect(throws: FolderLock.Failure.busy) { try FolderLock(directory: directory, fileName: "x.lock") }
        unlink(directory + "/x.lock")
        _ = FileManager.default.createFile(atPath: directory + "/x.lock", contents: nil)
        #expect(!first.isIntact())
        first.release()
        let second = try FolderLock(directory: directory, fileName: "x.lock")
        #expect(second.isIntact())
    }

    @Test func appendedRecordsSurviveAReopenAndLeaveOnlyWhenRemoved() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let spool = try open()
            let appender = SpoolAppender(spool: spool)
            #expect(append(0..<100, to: appender) == 100)
            appender.sealIfPending()
            #expect(append(100..<150, to: appender) == 50)
            finish(appender, spool)
            #expect(spool.sealedSegments.count == 2)
            #expect(spool.sealedRecords == 150)
        }
        let reopened = try open()
        #expect(reopened.recovery.records == 150)
        #expect(reopened.recovery.truncatedBytes == 0)
        #expect(try strings(reopened) == (0..<150).map(payload))
        for segment in reopened.sealedSegments { try reopened.remove(segment) }
        #expect(reopened.usedBytes == 0)
        #expect(try segmentFiles().isEmpty)
    }

    @Test func recordsInAnUnsealedSegmentSurviveACrash() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let spool = try open()
            let appender = SpoolAppender(spool: spool)
            append(0..<42, to: appender)
            // No seal: the process "dies" with a preallocated segment mapped and half empty.
            spool.close()
            _ = appender
        }
        let reopened = try open()
        #expect(reopened.recovery.records == 42)
        #expect(reopened.recovery.problems.isEmpty, "the zero rest of a preallocated segment is not damage")
        #expect(try strings(reopened) == (0..<42).map(payload))
        let sizes = try segmentFiles().map { try FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int }
        #expect(sizes == [reopened.sealedSegments[0].bytes], "recovery trims the zero rest")
    }

    @Test func fullSegmentsRollOverInOrder() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let spool = try open(segmentSize: 512)
        let appender = SpoolAppender(spool: spool)
        #expect(append(0..<200, to: appender) == 200)
        finish(appender, spool)
        #expect(spool.sealedSegments.count > 5)
        #expect(spool.sealedSegments.allSatisfy { $0.bytes <= 512 })
        #expect(try strings(spool) == (0..<200).map(payload))
    }

    @Test func aTornTailIsCutAtTheLastGoodRecord() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = try sealedSegmentOfTenRecords()
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
    }

    @Test func aCorruptRecordEndsTheGoodPart() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = try sealedSegmentOfTenRecords()
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count - 3] ^= 0xFF  // flip a byte inside the last record's payload
        try bytes.write(to: URL(fileURLWithPath: path))
        let recovered = try open()
        #expect(recovered.recovery.records == 9)
        #expect(recovered.recovery.problems.first?.contains("checksum mismatch") == true)
    }

    @Test func theQuotaRefusesExactlyWhatDoesNotFit() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let record = SpoolRecordFormat.framedSize(payload(0).utf8.count)
        let spool = try open(quota: SpoolRecordFormat.magic.count + record * 25 + 5)
        let appender = SpoolAppender(spool: spool)
        #expect(append(0..<20, to: appender) == 20)
        #expect(append(20..<40, to: appender) == 5)
        #expect(spool.usedBytes <= spool.configuration.quota)
        finish(appender, spool)
        #expect(spool.sealedRecords == 25)
        // Shipping frees the quota again.
        for segment in spool.sealedSegments { try spool.remove(segment) }
        #expect(spool.usedBytes == 0)
        let again = SpoolAppender(spool: spool)
        #expect(append(40..<50, to: again) == 10)
    }

    @Test func oneProcessPerSpoolFolder() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try open()
        #expect(throws: Spool.SpoolError.self) { try open() }
        first.close()
        try open().close()
    }

    @Test func scanningRejectsForeignFilesAndAcceptsAZeroRest() {
        #expect(SpoolRecordFormat.scan(ByteBuffer(string: "not a segment at all")).problem?.contains("bad magic") == true)
        var buffer = ByteBuffer(bytes: SpoolRecordFormat.magic)
        SpoolRecordFormat.append(ByteBuffer(string: "x"), to: &buffer)
        let end = buffer.readableBytes
        let scan = SpoolRecordFormat.scan(buffer)
        #expect(scan.problem == nil && scan.records.count == 1 && scan.validEnd == end)
        buffer.writeRepeatingByte(0, count: 100)
        let zeroRest = SpoolRecordFormat.scan(buffer)
        #expect(zeroRest.problem == nil && zeroRest.zeroTail && zeroRest.validEnd == end)
        buffer.writeString("junk")
        #expect(SpoolRecordFormat.scan(buffer).problem?.contains("zero record header followed by data") == true)
    }
}
