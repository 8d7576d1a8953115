import Foundation
import Logging
import Synchronization

/// Which sinks have taken which sealed segments, so independent sinks (ClickHouse, NATS) each take every segment
/// at their own pace, and a segment leaves the spool only when it is no longer needed: once ClickHouse (the store)
/// and, when configured, NATS have it. Without ClickHouse the spool is the store and segments stay.
///
/// With one sink nothing is written (ClickHouse's acknowledgement removes the segment at once, as before). With
/// NATS, each sink's acknowledged sequences are appended to `sink-<name>.acks` in the spool folder and synced, so a
/// restart resends nothing a sink already took; the files are rewritten without the sequences of removed segments
/// when they hold mostly those.
public final class SpoolSinks: Sendable {
    public enum Sink: String, Sendable, CaseIterable {
        case clickHouse = "clickhouse"
        case nats
    }

    private struct State {
        var clickHouse: Bool
        var acknowledged: [Sink: Set<UInt64>] = [:]
        var appended: [Sink: Int] = [:]
    }

    private let spool: Spool
    private let nats: Bool
    private let state: Mutex<State>
    private let logger: Logger

    /// `clickHouse`: whether ClickHouse is configured now (a reload may change it); `nats`: whether NATS is.
    public init(spool: Spool, clickHouse: Bool, nats: Bool, logger: Logger) {
        self.spool = spool
        self.nats = nats
        self.logger = logger
        var state = State(clickHouse: clickHouse)
        if nats {
            for sink in Sink.allCases {
                state.acknowledged[sink] = Self.load(Self.path(spool.configuration.directory, sink))
            }
        }
        self.state = Mutex(state)
        if nats { removeFinished() }
    }

    static func path(_ directory: String, _ sink: Sink) -> String { directory + "/sink-\(sink.rawValue).acks" }

    private static func load(_ path: String) -> Set<UInt64> {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return Set(text.split(separator: "\n").compactMap { UInt64($0) })
    }

    /// ClickHouse was added or removed by a reload.
    public func setClickHouse(_ present: Bool) {
        state.withLock { $0.clickHouse = present }
        if present { removeFinished() }
    }

    /// The sealed segments `sink` has not taken yet, oldest first.
    public func pending(for sink: Sink) -> [Spool.Segment] {
        let sealed = spool.sealedSegments
        guard nats else { return sealed }
        let done = state.withLock { $0.acknowledged[sink] ?? [] }
        return sealed.filter { !done.contains($0.sequence) }
    }

    /// `sink` has taken `segments`: recorded (synced) when several sinks share the spool, and every segment no
    /// sink needs any more is removed.
    public func acknowledge(_ segments: [Spool.Segment], by sink: Sink) throws {
        guard nats else {
            // One sink: the segments go now, as they always did.
            for segment in segments { try spool.remove(segment) }
            return
        }
        let path = Self.path(spool.configuration.directory, sink)
        let text = segments.map { "\($0.sequence)\n" }.joined()
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw Spool.SpoolError(description: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        let written = text.utf8CString.withUnsafeBufferPointer { write(descriptor, $0.baseAddress, $0.count - 1) }
        guard written == text.utf8.count, fdatasync(descriptor) == 0 else {
            throw Spool.SpoolError(description: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        state.withLock { state in
            for segment in segments { state.acknowledged[sink, default: []].insert(segment.sequence) }
            state.appended[sink, default: 0] += segments.count
        }
        removeFinished()
    }

    /// Removes the segments every sink has taken (only with ClickHouse: without it the spool is the store), then
    /// rewrites an acknowledgement file that holds mostly sequences of removed segments.
    private func removeFinished() {
        let sealed = spool.sealedSegments
        let (removable, clickHouse) = state.withLock { state -> ([Spool.Segment], Bool) in
            guard state.clickHouse else { return ([], false) }
            let stored = state.acknowledged[.clickHouse] ?? []
            let published = state.acknowledged[.nats] ?? []
            return (sealed.filter { stored.contains($0.sequence) && published.contains($0.sequence) }, true)
        }
        for segment in removable {
            do {
                try spool.remove(segment)
            } catch {
                logger.error("tracking: cannot remove spool segment \(segment.sequence) every sink has taken: \(error)")
            }
        }
        guard clickHouse || !removable.isEmpty else { return }
        let live = Set(spool.sealedSegments.map(\.sequence))
        for sink in Sink.allCases {
            let rewrite = state.withLock { state -> [UInt64]? in
                let done = state.acknowledged[sink] ?? []
                let kept = done.intersection(live)
                guard done.count > 64, kept.count * 2 < done.count else { return nil }
                state.acknowledged[sink] = kept
                state.appended[sink] = 0
                return kept.sorted()
            }
            guard let rewrite else { continue }
            let contents = Array(rewrite.map { "\($0)\n" }.joined().utf8)
            do {
                try FileReplacement.replace(Self.path(spool.configuration.directory, sink), with: contents)
            } catch {
                logger.warning("tracking: cannot compact \(Self.path(spool.configuration.directory, sink)): \(error)")
            }
        }
    }
}
