import Testing

@testable import Tracking

@Suite struct TrafficSourceTests {
    func source(_ referrer: String?, _ query: String = "", own: [String] = ["example.com"]) -> TrafficSource {
        TrafficSource(referrer: referrer, query: query[...], ownHosts: own)
    }

    @Test func referrersFallIntoCategories() {
        #expect(source(nil).category == .direct)
        #expect(source("https://www.google.com/").category == .search)
        #expect(source("https://www.google.co.uk/search?q=x").category == .search)
        #expect(source("https://duckduckgo.com/").referrerHost == "duckduckgo.com")
        #expect(source("https://l.facebook.com/l.php?u=x").category == .social)
        #expect(source("https://t.co/abc").category == .social)
        #expect(source("https://news.ycombinator.com/item?id=1").category == .social)
        #expect(source("https://mail.google.com/mail/u/0/").category == .email)
        #expect(source("https://www.example.com/pricing").category == .internal)
        #expect(source("https://blog.example.com/post").category == .internal)
        #expect(source("https://user:pw@Other.Example.org:8443/x").referrerHost == "other.example.org")
        #expect(source("https://other.example.org/").category == .other)
        #expect(source("not a url").referrerHost == "")
    }

    @Test func campaignTagsAndClickIDsAreRead() {
        let tagged = source(
            "https://www.google.com/",
            "utm_source=news%20letter&utm_medium=email&utm_campaign=black+friday&utm_term=shoes&utm_content=hero&gclid=abc&fbclid=def")
        #expect(tagged.utmSource == "news letter")
        #expect(tagged.utmCampaign == "black friday")
        #expect(tagged.utmTerm == "shoes" && tagged.utmContent == "hero")
        #expect(tagged.category == .email, "utm_medium=email wins over the referrer")
        #expect(tagged.clickID == "gclid=abc")
        #expect(source(nil, "ref=producthunt").utmSource == "producthunt")
        #expect(source(nil, "utm_source=a&ref=b").utmSource == "a")
        #expect(source(nil, "utm_source=%ZZ%4").utmSource == "%ZZ%4", "bad escapes stay")
        #expect(source(nil, "utm_source=" + String(repeating: "x", count: 1000)).utmSource.utf8.count == TrafficSource.maxValueBytes)
    }
}
