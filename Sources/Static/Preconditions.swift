import NIOHTTP1

/// The validators of one representation: what conditional requests are compared against.
public struct Validators: Sendable, Equatable {
    /// The strong entity tag, quotes included (`"5f3a-400"`).
    public var etag: String
    /// Last modification, seconds since the epoch.
    public var lastModified: Int

    /// Creates validators.
    public init(etag: String, lastModified: Int) {
        self.etag = etag
        self.lastModified = lastModified
    }
}

/// What evaluating the conditional headers of a request decided (RFC 9110 §13.2.2).
public enum PreconditionOutcome: Equatable, Sendable {
    /// Serve the representation (fully or by range).
    case proceed
    /// 304 Not Modified.
    case notModified
    /// 412 Precondition Failed.
    case preconditionFailed
}

/// Evaluation of If-Match, If-Unmodified-Since, If-None-Match and If-Modified-Since in the order RFC 9110 requires.
public enum Preconditions {
    /// Evaluates the conditional request headers against `validators`.
    ///
    /// `variantTags` lists the other entity tags the same resource is served under (compressed variants), so a
    /// client that cached the gzip form still gets a 304.
    public static func evaluate(
        method: HTTPMethod, headers: RequestHeaderSummary, validators: Validators, variantTags: [String] = []
    ) -> PreconditionOutcome {
        if headers.ifMatch == nil && headers.ifNoneMatch == nil && headers.ifModifiedSince == nil
            && headers.ifUnmodifiedSince == nil
        {
            return .proceed
        }
        let isGetOrHead = switch method { case .GET, .HEAD: true; default: false }
        if let ifMatch = headers.ifMatch {
            if !matches(ifMatch, validators.etag, weak: false) { return .preconditionFailed }
        } else if let ifUnmodified = headers.ifUnmodifiedSince,
            let date = HTTPDate.parse(Substring(ifUnmodified)), validators.lastModified > date
        {
            return .preconditionFailed
        }
        if let ifNoneMatch = headers.ifNoneMatch {
            let hit = matches(ifNoneMatch, validators.etag, weak: true)
                || variantTags.contains { matches(ifNoneMatch, $0, weak: true) }
            if hit { return isGetOrHead ? .notModified : .preconditionFailed }
        } else if isGetOrHead, let ifModified = headers.ifModifiedSince,
            let date = HTTPDate.parse(Substring(ifModified)), validators.lastModified <= date
        {
            return .notModified
        }
        return .proceed
    }

    /// Whether a Range request may be honoured under its If-Range header (absent, or naming the current
    /// representation with a strong validator).
    public static func ifRangeAllowsPartial(headers: RequestHeaderSummary, validators: Validators) -> Bool {
        guard let ifRange = headers.ifRange else { return true }
        let trimmed = ifRange.trimmingSpaces
        if trimmed.hasPrefix("\"") { return trimmed == validators.etag }
        if trimmed.hasPrefix("W/") { return false }
        guard let date = HTTPDate.parse(Substring(trimmed)) else { return false }
        return date == validators.lastModified
    }

    /// Matches a header list of entity tags against one tag; `*` matches anything.
    static func matches(_ header: String, _ tag: String, weak: Bool) -> Bool {
        let opaque = weak ? strippingWeak(Substring(tag)) : Substring(tag)
        for candidate in header.split(separator: ",") {
            let item = candidate.trimmingSpacesSubstring
            if item == "*" { return true }
            if weak {
                if strippingWeak(item) == opaque { return true }
            } else if !item.hasPrefix("W/") && item == opaque {
                return true
            }
        }
        return false
    }

    private static func strippingWeak(_ tag: Substring) -> Substring {
        tag.hasPrefix("W/") ? tag.dropFirst(2) : tag
    }
}

extension String {
    var trimmingSpaces: String { String(Substring(self).trimmingSpacesSubstring) }
}

extension Substring {
    var trimmingSpacesSubstring: Substring {
        var slice = self
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return slice
    }
}
