import Testing

@testable import Tracking

@Suite struct MarketingChannelTests {
    /// The channel of a landing with `referrer` and the landing URL's `query`, on example.com.
    func channel(_ referrer: String?, _ query: String = "") -> String {
        let source = TrafficSource(referrer: referrer, query: query[...], ownHosts: ["example.com"])
        return MarketingChannel.classify(source)?.label ?? "(internal)"
    }

    @Test func everyChannelHasItsRule() {
        #expect(channel(nil) == "Direct")
        #expect(channel("https://www.google.com/") == "Organic Search")
        #expect(channel("https://duckduckgo.com/") == "Organic Search")
        #expect(channel(nil, "utm_source=bing&utm_medium=organic") == "Organic Search")
        // Google Ads auto-tagging sends nothing but the click id.
        #expect(channel("https://www.google.com/", "gclid=Cj0KCQ") == "Paid Search")
        #expect(channel(nil, "gbraid=0AAAA") == "Paid Search")
        #expect(channel(nil, "msclkid=abc") == "Paid Search")
        #expect(channel("https://www.google.de/", "utm_source=google&utm_medium=cpc") == "Paid Search")
        #expect(channel("https://t.co/x") == "Organic Social")
        #expect(channel("https://l.facebook.com/l.php", "fbclid=IwAR") == "Organic Social", "fbclid is on every Facebook link")
        #expect(channel(nil, "utm_source=facebook&utm_medium=paid_social") == "Paid Social")
        #expect(channel(nil, "utm_source=meta&utm_medium=cpc") == "Paid Social")
        #expect(channel(nil, "ttclid=E.C.P") == "Paid Social")
        #expect(channel(nil, "li_fat_id=123") == "Paid Social")
        #expect(channel(nil, "utm_source=newsletter&utm_medium=email") == "Email")
        #expect(channel("https://mail.google.com/mail/u/0/") == "Email")
        #expect(channel(nil, "mc_cid=abc") == "Email")
        #expect(channel("https://partner.example.org/", "utm_medium=affiliate&utm_source=partner") == "Affiliates")
        #expect(channel("https://blog.other.org/post") == "Referral")
        #expect(channel(nil, "utm_source=partner&utm_medium=referral") == "Referral")
        #expect(channel(nil, "utm_source=adnet&utm_medium=display") == "Display")
        #expect(channel(nil, "utm_source=adnet&utm_medium=banner") == "Display")
        #expect(channel(nil, "dclid=xyz") == "Display")
        #expect(channel(nil, "utm_source=adnet&utm_medium=cpc") == "Paid Other")
        #expect(channel("https://www.youtube.com/watch?v=1") == "Video")
        #expect(channel(nil, "utm_source=youtube&utm_medium=cpv") == "Video", "a paid medium on a video site")
        #expect(channel("https://chatgpt.com/") == "AI Assistants")
        #expect(channel(nil, "utm_source=chatgpt.com") == "AI Assistants", "ChatGPT tags its links")
        #expect(channel("https://www.perplexity.ai/search") == "AI Assistants")
        #expect(channel("https://gemini.google.com/app") == "AI Assistants", "not Google search")
        #expect(channel(nil, "utm_source=sms&utm_medium=sms") == "SMS")
        #expect(channel(nil, "utm_source=app&utm_medium=push") == "Mobile Push")
        #expect(channel(nil, "utm_source=somewhere&utm_medium=carrier-pigeon") == "Unassigned")
        #expect(channel("https://www.example.com/pricing") == "(internal)", "internal navigation is no new touch")
        #expect(channel("https://www.example.com/pricing", "utm_source=banner&utm_medium=display") == "Display")
    }

    @Test func labelsRoundTripThroughTheirByte() {
        for channel in MarketingChannel.allCases {
            #expect(MarketingChannel(byte: channel.rawValue) == channel)
        }
        #expect(MarketingChannel(byte: 0) == nil)
    }
}
