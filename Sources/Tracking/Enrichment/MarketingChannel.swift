/// The marketing channel a visit came through, grouped the way Google Analytics 4's default channel grouping does
/// (so numbers read the same as in the tool a site owner left), with AI assistants as a channel of their own.
///
/// Decided from the landing's campaign tags (`utm_source`, `utm_medium`, `utm_campaign`), its ad click id and the
/// referrer, in GA4's order: the first rule that matches wins.
///
/// | Channel | Rule |
/// |---|---|
/// | Direct | no referrer, no `utm_source`/`utm_medium`, no click id |
/// | Paid Search | a search engine as source (or Google/Microsoft/Yandex ads click id) with a paid medium |
/// | Paid Social | a social network as source with a paid medium, or a social ads click id (ttclid, li_fat_id, …) |
/// | Video | a video site as source with a paid medium |
/// | Display | medium `display`, `banner`, `cpm`, `expandable`, `interstitial`, or a `dclid` |
/// | Paid Other | any other paid medium (`cpc`, `ppc`, `paid…`, `retargeting`, anything containing `cp`) |
/// | AI Assistants | ChatGPT, Perplexity, Gemini, Copilot, Claude and the like as source |
/// | Organic Social | a social network as source, or a social medium (`social`, `sm`, `social-media`, …) |
/// | Video | a video site as source, or a medium containing `video` |
/// | Organic Search | a search engine as source, or medium `organic` |
/// | Email | a webmail referrer, source or medium `email`/`e-mail`/`newsletter`, or a Mailchimp `mc_cid` |
/// | Affiliates | medium `affiliate` |
/// | Referral | medium `referral`/`app`/`link`, or any other referring site |
/// | SMS | source or medium `sms` |
/// | Mobile Push | a medium ending in `push` or containing `mobile` or `notification` |
/// | Unassigned | campaign tags that match none of the above |
///
/// A paid medium is GA4's `^(.*cp.*|ppc|retargeting|paid.*)$`. A referral from the site itself (internal
/// navigation) is no new touch: ``classify(_:)`` answers nil and the visit keeps the channel of its session.
public enum MarketingChannel: UInt8, Sendable, CaseIterable {
    case direct = 1
    case organicSearch
    case paidSearch
    case organicSocial
    case paidSocial
    case email
    case referral
    case display
    case affiliates
    case video
    case aiAssistants
    case sms
    case mobilePush
    case paidOther
    case unassigned

    /// The name stored with events and shown in reports (GA4's spelling).
    public var label: String {
        switch self {
        case .direct: "Direct"
        case .organicSearch: "Organic Search"
        case .paidSearch: "Paid Search"
        case .organicSocial: "Organic Social"
        case .paidSocial: "Paid Social"
        case .email: "Email"
        case .referral: "Referral"
        case .display: "Display"
        case .affiliates: "Affiliates"
        case .video: "Video"
        case .aiAssistants: "AI Assistants"
        case .sms: "SMS"
        case .mobilePush: "Mobile Push"
        case .paidOther: "Paid Other"
        case .unassigned: "Unassigned"
        }
    }

    /// The channel stored as `byte` (0: none known yet).
    public init?(byte: UInt8) { self.init(rawValue: byte) }

    /// The channel of a landing: nil for internal navigation without campaign tags (no new touch).
    public static func classify(_ source: TrafficSource) -> MarketingChannel? {
        var sourceName = source.utmSource.lowercased()
        var medium = source.utmMedium.lowercased()
        let campaign = source.utmCampaign.lowercased()
        // What an ad click id says when the tags do not (auto-tagging: Google Ads adds only `gclid`).
        if !source.clickID.isEmpty, let implied = impliedByClickID[String(source.clickID.prefix { $0 != "=" })] {
            if sourceName.isEmpty { sourceName = implied.source }
            if medium.isEmpty { medium = implied.medium }
        }
        let tagged = !sourceName.isEmpty || !medium.isEmpty
        if !tagged {
            switch source.category {
            case .direct: return .direct
            case .internal: return nil
            default: break
            }
        }
        // The source's kind: the tag's name or host when tagged, else the referrer's category.
        let kind = sourceName.isEmpty ? source.category : TrafficSource.category(ofSourceName: sourceName)
        let paid = isPaid(medium)
        if paid {
            switch kind {
            case .search: return .paidSearch
            case .social: return .paidSocial
            case .video: return .video
            default: break
            }
        }
        if displayMedia.contains(medium) { return .display }
        if paid { return .paidOther }
        if campaign.contains("cross-network") { return .paidOther }
        if kind == .ai { return .aiAssistants }
        if kind == .social || socialMedia.contains(medium) {
            return .organicSocial
        }
        if kind == .video || medium.contains("video") { return .video }
        if kind == .search || medium == "organic" { return .organicSearch }
        if kind == .email || emailNames.contains(sourceName) || emailNames.contains(medium) { return .email }
        if medium == "affiliate" || medium == "affiliates" { return .affiliates }
        if referralMedia.contains(medium) || (!tagged && !source.referrerHost.isEmpty) { return .referral }
        if sourceName == "sms" || medium == "sms" { return .sms }
        if medium.hasSuffix("push") || medium.contains("mobile") || medium.contains("notification") { return .mobilePush }
        return tagged ? .unassigned : .referral
    }

    /// Media and source names by channel (sets made once, not per landing).
    static let displayMedia: Set = ["display", "banner", "expandable", "interstitial", "cpm"]
    static let socialMedia: Set = ["social", "social-network", "social-media", "sm", "social network", "social media"]
    static let emailNames: Set = ["email", "e-mail", "e_mail", "e mail", "newsletter"]
    static let referralMedia: Set = ["referral", "app", "link"]

    /// GA4's paid medium: `^(.*cp.*|ppc|retargeting|paid.*)$`.
    static func isPaid(_ medium: String) -> Bool {
        medium.contains("cp") || medium == "ppc" || medium == "retargeting" || medium.hasPrefix("paid")
    }

    /// Source and medium that ad click ids stand for.
    static let impliedByClickID: [String: (source: String, medium: String)] = [
        "gclid": ("google", "cpc"), "gbraid": ("google", "cpc"), "wbraid": ("google", "cpc"),
        "msclkid": ("bing", "cpc"), "yclid": ("yandex", "cpc"), "dclid": ("", "display"),
        "ttclid": ("tiktok", "paid"), "li_fat_id": ("linkedin", "paid"), "twclid": ("twitter", "paid"),
        "rdt_cid": ("reddit", "paid"), "sccid": ("snapchat", "paid"), "epik": ("pinterest", "paid"),
        "fbclid": ("facebook", ""), "igshid": ("instagram", ""), "mc_cid": ("", "email"),
    ]
}
