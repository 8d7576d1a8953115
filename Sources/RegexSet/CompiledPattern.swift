import CPCRE2

/// One regular expression compiled by PCRE2 (JIT-compiled where the platform allows), matched over bytes (no UTF
/// check, so any header can be tried). A compiled pattern is read-only and shared by every thread; each thread
/// matches with its own ``MatchScratch``.
public final class CompiledPattern: @unchecked Sendable {
    let code: OpaquePointer
    /// The pattern as written (for messages).
    public let source: String
    /// Capturing groups.
    public let groupCount: Int

    /// Why a pattern does not compile, in PCRE2's words, with the offset it stopped at.
    public struct SyntaxError: Error, CustomStringConvertible {
        public var pattern: String
        public var offset: Int
        public var message: String
        public var description: String { "cannot compile /\(pattern)/ at offset \(offset): \(message)" }
    }

    public init(_ pattern: String, caseInsensitive: Bool = false) throws(SyntaxError) {
        source = pattern
        var errorCode: Int32 = 0
        var errorOffset = 0
        var bytes = Array(pattern.utf8)
        let options = caseInsensitive ? UInt32(PCRE2_CASELESS) : 0
        let compiled = bytes.withUnsafeMutableBufferPointer { buffer in
            pcre2_compile_8(buffer.baseAddress, buffer.count, options, &errorCode, &errorOffset, nil)
        }
        guard let compiled else {
            var message = [UInt8](repeating: 0, count: 256)
            let length = pcre2_get_error_message_8(errorCode, &message, message.count)
            throw SyntaxError(
                pattern: pattern, offset: errorOffset,
                message: String(decoding: message.prefix(max(0, Int(length))), as: UTF8.self))
        }
        code = compiled
        // Without JIT (an unsupported platform) the interpreter matches the same way, only slower.
        _ = pcre2_jit_compile_8(code, UInt32(PCRE2_JIT_COMPLETE))
        var captures: UInt32 = 0
        pcre2_pattern_info_8(code, UInt32(PCRE2_INFO_CAPTURECOUNT), &captures)
        groupCount = Int(captures)
    }

    deinit { pcre2_code_free_8(code) }

    /// Whether the pattern matches `subject`; the groups are then in `scratch`.
    public func matches(_ subject: UnsafeRawBufferPointer, scratch: MatchScratch) -> Bool {
        let result = pcre2_match_8(
            code, subject.baseAddress?.assumingMemoryBound(to: UInt8.self), subject.count, 0, 0, scratch.data,
            scratch.context)
        scratch.subject = subject
        scratch.groups = result > 0 ? Int(result) - 1 : -1
        return result > 0
    }
}

/// What one thread needs to match: PCRE2's match data (the group offsets of the last match) and a match context
/// whose limit bounds the work any subject can cause, however the pattern and subject combine.
public final class MatchScratch {
    let data: OpaquePointer
    let context: OpaquePointer
    fileprivate var subject = UnsafeRawBufferPointer(start: nil, count: 0)
    /// Groups set by the last match (-1: no match).
    fileprivate var groups = -1

    /// `matchLimit`: PCRE2's match limit (backtracking steps) for one attempt.
    public init(maximumGroups: Int = 16, matchLimit: UInt32 = 20_000) {
        data = pcre2_match_data_create_8(UInt32(maximumGroups + 1), nil)
        context = pcre2_match_context_create_8(nil)
        pcre2_set_match_limit_8(context, matchLimit)
    }

    deinit {
        pcre2_match_data_free_8(data)
        pcre2_match_context_free_8(context)
    }

    /// Group `index` of the last match (0: the whole match) as a string; nil when it did not take part.
    public func group(_ index: Int) -> String? {
        guard index <= groups, index >= 0 else { return nil }
        let vector = pcre2_get_ovector_pointer_8(data)!
        let start = vector[2 * index], end = vector[2 * index + 1]
        guard start >= 0, end >= start, end <= subject.count else { return nil }
        return String(decoding: UnsafeRawBufferPointer(rebasing: subject[start..<end]), as: UTF8.self)
    }
}
