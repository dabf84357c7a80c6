@testable import DuplexCore
import Testing

@Suite struct OriginPolicyTests {
    func allows(_ policy: OriginPolicy, _ origin: String?, host: String = "chat.example.com") -> Bool {
        (try? policy.check(origin: origin, host: host)) != nil
    }

    @Test func sameOriginDefault() {
        let policy = OriginPolicy.sameOrigin
        #expect(allows(policy, nil))
        #expect(allows(policy, "https://chat.example.com"))
        #expect(allows(policy, "HTTPS://Chat.Example.COM"))
        #expect(allows(policy, "http://chat.example.com"))
        #expect(allows(policy, "http://localhost:8080", host: "localhost:8080"))
        #expect(allows(policy, "http://[::1]:8080", host: "[::1]:8080"))
        #expect(allows(policy, "https://chat.example.com", host: "chat.example.com:443"))
        #expect(!allows(policy, "https://evil.example"))
        #expect(!allows(policy, "https://chat.example.com.evil.example"))
        #expect(!allows(policy, "http://localhost:3000", host: "localhost:8080"))
        #expect(!allows(policy, "https://chat.example.com", host: "chat.example.com:8443"))
        #expect(!allows(policy, "null"))
        #expect(!allows(policy, "not an origin"))
        #expect(!allows(policy, "https://user@chat.example.com"))
    }

    @Test func allowListExactAndWildcard() {
        let policy = OriginPolicy(allowed: ["https://app.example.com", "https://*.example.org", "http://localhost:3000", "null"])
        #expect(allows(policy, "https://app.example.com"))
        #expect(allows(policy, "https://app.example.com:443"))
        #expect(!allows(policy, "http://app.example.com"))
        #expect(!allows(policy, "https://app.example.com:8443"))
        #expect(allows(policy, "https://a.example.org"))
        #expect(allows(policy, "https://a.b.example.org"))
        #expect(!allows(policy, "https://example.org"))
        #expect(!allows(policy, "https://evilexample.org"))
        #expect(!allows(policy, "http://a.example.org"))
        #expect(allows(policy, "http://localhost:3000"))
        #expect(!allows(policy, "http://localhost:3001"))
        #expect(allows(policy, "null"))
        #expect(allows(policy, "https://chat.example.com"))  // still same-origin
    }

    @Test func strictAndAny() {
        let strict = OriginPolicy(allowed: ["https://app.example.com"], allowsSameOrigin: false, allowsMissingOrigin: false)
        #expect(!allows(strict, nil))
        #expect(!allows(strict, "https://chat.example.com"))
        #expect(allows(strict, "https://app.example.com"))
        #expect(allows(.any, "https://evil.example"))
        #expect(allows(.any, "null"))
        #expect(allows(.any, nil))
    }

    @Test func refusalSaysWhy() {
        #expect(throws: OriginPolicy.Refusal(origin: "https://evil.example")) {
            try OriginPolicy.sameOrigin.check(origin: "https://evil.example", host: "chat.example.com")
        }
        #expect(OriginPolicy.Refusal(origin: "https://evil.example").description == "origin https://evil.example is not allowed")
        #expect(OriginPolicy.Refusal(origin: nil).description == "a request without Origin is not allowed")
    }
}
