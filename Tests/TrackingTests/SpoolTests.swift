import Foundation
import Logging
import NIOCore
import Testing

import CCRC32C
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

    @Test func pagesAheadOfTheWriterAreFaultedInOnTheSpoolsThread() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let window = MappedSegment.prefaultWindow
        let spool = try open(segmentSize: 16 * window)
        let appender = SpoolAppender(spool: spool)
        #expect(append(0..<1, to: appender) == 1)
        let segment = try #require(appender.segment)
        try await spool.afterPendingSeals {}
        // The lead ahead of the first record is in the page cache before the loop gets there; the rest is not
        // (unless the folder is on tmpfs, where preallocating a file puts all of it in memory).
        let preallocatedInMemory = segment.residentBytes(in: 15 * window..<16 * window) > 0
        #expect(segment.residentBytes(in: 0..<MappedSegment.prefaultLead) == MappedSegment.prefaultLead)
        if !preallocatedInMemory { #expect(segment.residentBytes(in: 8 * window..<16 * window) == 0) }
        // Writing on, the faulted-in part moves ahead of the writer.
        let record = SpoolRecordFormat.framedSize(payload(0).utf8.count)
        let count = 5 * window / record
        #expect(append(1..<count, to: appender) == count - 1)
        try await spool.afterPendingSeals {}
        let nextWindow = (segment.length / window + 1) * window
        #expect(segment.residentBytes(in: nextWindow..<nextWindow + window) == window)
        if !preallocatedInMemory { #expect(segment.residentBytes(in: 12 * window..<16 * window) == 0) }
        finish(appender, spool)
        #expect(try strings(spool) == (0..<count).map(payload), "prefaulting never changes what was written")
    }

    #if os(Linux)
    /// Minor page faults taken by the calling thread so far.
    func minorFaultsOfThisThread() -> Int {
        var usage = rusage()
        // RUSAGE_THREAD (1): glibc defines it only with _GNU_SOURCE, so Swift does not import it.
        getrusage(__rusage_who_t(1), &usage)
        return usage.ru_minflt
    }

    @Test func pagesAheadOfTheWriterStayWritableAcrossASync() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let window = MappedSegment.prefaultWindow
        let spool = try open(segmentSize: 16 * window)
        let appender = SpoolAppender(spool: spool)
        let perWindow = window / SpoolRecordFormat.framedSize(payload(0).utf8.count)
        #expect(append(0..<perWindow, to: appender) == perWindow)
        try await spool.afterPendingSeals {}
        // The sync writes back the zero pages faulted in ahead of the writer too, which write-protects them. A
        // window is 32 pages: each would fault once were they not faulted back in after the sync. The kernel's own
        // writeback (a busy machine past its dirty-memory threshold) can write-protect them again between the sync
        // and the stores, so up to three windows are tried: a spool that does not fault back in faults on each.
        var faultsPerWindow: [Int] = []
        var next = perWindow
        for _ in 0..<3 {
            spool.syncActive()
            try await spool.afterPendingSeals {}
            // Nothing allocated while counting (a heap growing into fresh pages faults too): the records are made
            // before, and the appender copies them through its own buffer.
            let records = (next..<next + perWindow).map(payload)
            var written = 0
            let before = minorFaultsOfThisThread()
            for record in records where appender.append(nowMilliseconds: 0, { $0.writeString(record) }) == .written {
                written += 1
            }
            let faults = minorFaultsOfThisThread() - before
            #expect(written == perWindow)
            next += perWindow
            faultsPerWindow.append(faults)
            if faults < 8 { break }
        }
        #expect(faultsPerWindow.last! < 8, "the writer's stores into the windows after a sync faulted \(faultsPerWindow) times")
        finish(appender, spool)
        #expect(try strings(spool) == (0..<next).map(payload))
    }
    #endif

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

    @Test func crc32cIsTheSameByInstructionAndByTable() {
        let check = Array("123456789".utf8)
        #expect(vantage_crc32c(0, check, check.count) == 0xE306_9283, "the CRC-32C check value")
        #expect(vantage_crc32c_portable(0, check, check.count) == 0xE306_9283)
        var generator = SystemRandomNumberGenerator()
        for length in [0, 1, 7, 8, 9, 63, 64, 65, 350, 4097] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let whole = vantage_crc32c(0, bytes, bytes.count)
            #expect(whole == vantage_crc32c_portable(0, bytes, bytes.count), "length \(length)")
            // Continued over a split, as zlib's crc32 continues.
            let split = length / 3
            let continued = bytes.withUnsafeBytes { raw in
                vantage_crc32c(vantage_crc32c(0, raw.baseAddress, split), raw.baseAddress.map { $0 + split }, length - split)
            }
            #expect(continued == whole, "length \(length) split at \(split)")
        }
    }

    /// A folder written by an earlier version (`VSPOOL1`, zlib's CRC-32) is recovered, read, erased in and shipped
    /// as it is; what is written after it is `VSPOOL2`.
    @Test func segmentsOfTheFirstVersionAreStillRead() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var old = ByteBuffer(bytes: SpoolRecordFormat.magicVersion1)
        for number in 0..<5 { SpoolRecordFormat.append(ByteBuffer(string: payload(number)), to: &old, checksum: .crc32) }
        let oldPath = Spool.path(directory, 1)
        #expect(FileManager.default.createFile(atPath: oldPath, contents: Data(old.readableBytesView)))
        // With the other checksum the same records read as damage: the magic really decides.
        var mislabelled = ByteBuffer(bytes: SpoolRecordFormat.magic)
        mislabelled.writeImmutableBuffer(old.getSlice(at: 8, length: old.readableBytes - 8)!)
        #expect(SpoolRecordFormat.scan(mislabelled).problem?.contains("checksum mismatch") == true)

        var cursorRecords: [String] = []
        var reader = SpoolReader(directory: directory)
        try reader.readNew { cursorRecords.append(String(buffer: $0)) }
        #expect(cursorRecords == (0..<5).map(payload))

        do {
            let spool = try open()
            #expect(spool.recovery.records == 5 && spool.recovery.truncatedBytes == 0)
            #expect(try strings(spool) == (0..<5).map(payload))
            #expect(try spool.eraseRecords { String(decoding: $0, as: UTF8.self) == payload(2) } == 1)
            let appender = SpoolAppender(spool: spool)
            append(5..<8, to: appender)
            finish(appender, spool)
        }
        let files = try segmentFiles()
        #expect(files.count == 2)
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: files[0])).prefix(8)) == SpoolRecordFormat.magicVersion1, "an erasure keeps the version")
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: files[1])).prefix(8)) == SpoolRecordFormat.magic)
        let reopened = try open()
        defer { reopened.close() }
        #expect(reopened.recovery.records == 7 && reopened.recovery.truncatedBytes == 0)
        #expect(try strings(reopened) == [0, 1, 3, 4, 5, 6, 7].map(payload))
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
