import Tracking

/// What rows of a report are grouped by, and what filters test.
///
/// Two kinds, as in Plausible: a *visit* dimension is a property of the whole visit, read from its first event (its
/// landing: source, campaign, entry page, location, device), so a visit counts once whatever it did; an *event*
/// dimension belongs to each event (the page of a pageview, the name of a custom event).
public enum Dimension: String, Sendable, CaseIterable, Equatable {
    case page
    case event
    case entryPage = "entry_page"
    case exitPage = "exit_page"
    case channel
    /// The landing's referrer host (`Direct / None` without one).
    case source
    case utmSource = "utm_source"
    case utmMedium = "utm_medium"
    case utmCampaign = "utm_campaign"
    case utmTerm = "utm_term"
    case utmContent = "utm_content"
    case country
    case region
    case city
    case device
    case browser
    case browserVersion = "browser_version"
    case os
    case osVersion = "os_version"

    /// The visit's value is its first event's.
    public var isVisitLevel: Bool { self != .page && self != .event }

    /// The dimension's name in a table's header.
    public var title: String {
        switch self {
        case .page: "Page"
        case .event: "Event"
        case .entryPage: "Entry page"
        case .exitPage: "Exit page"
        case .channel: "Channel"
        case .source: "Source"
        case .utmSource: "UTM source"
        case .utmMedium: "UTM medium"
        case .utmCampaign: "Campaign"
        case .utmTerm: "UTM term"
        case .utmContent: "UTM content"
        case .country: "Country"
        case .region: "Region"
        case .city: "City"
        case .device: "Device"
        case .browser: "Browser"
        case .browserVersion: "Browser version"
        case .os: "OS"
        case .osVersion: "OS version"
        }
    }

    /// What a visit or event without a value shows (Plausible's wording).
    var emptyLabel: String {
        switch self {
        case .source, .channel: "Direct / None"
        case .utmSource, .utmMedium, .utmCampaign, .utmTerm, .utmContent: "(none)"
        default: "(not set)"
        }
    }

    /// The dimension's value of `event` (its stored field; the empty label when it has none).
    func value(of event: TrackingEvent) -> String {
        let raw: String
        switch self {
        case .page, .entryPage, .exitPage: raw = Self.path(of: event.target)
        case .event: raw = event.eventName
        case .channel: raw = event.sessionChannel.isEmpty ? event.channel : event.sessionChannel
        case .source: raw = event.sourceCategory == "internal" ? "" : event.referrerHost
        case .utmSource: raw = event.utmSource
        case .utmMedium: raw = event.utmMedium
        case .utmCampaign: raw = event.utmCampaign
        case .utmTerm: raw = event.utmTerm
        case .utmContent: raw = event.utmContent
        case .country: raw = event.country
        case .region: raw = event.region
        case .city: raw = event.city
        case .device: raw = event.device
        case .browser: raw = event.browser
        case .browserVersion: raw = event.browserVersion.isEmpty ? "" : event.browser + " " + event.browserVersion
        case .os: raw = event.os
        case .osVersion: raw = event.osVersion.isEmpty ? "" : event.os + " " + event.osVersion
        }
        return raw.isEmpty ? emptyLabel : raw
    }

    /// A request target's path (what pages are counted by: the query string is left out).
    static func path(of target: String) -> String {
        guard let question = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return target.isEmpty ? "/" : target }
        let path = String(target[..<question])
        return path.isEmpty ? "/" : path
    }
}
