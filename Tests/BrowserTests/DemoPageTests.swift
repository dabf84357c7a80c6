import Duplex
import DuplexTestSupport
import Foundation
import Testing

/// The demo page of `duplex serve --chat` in a real browser (headless Chromium): it joins the lobby
/// over the browser's own WebSocket, chats with a Swift client through the server, and keeps the
/// JSON heartbeat going.
@Suite(.timeLimit(.minutes(2))) struct DemoPageTests {
    @Test func thePageChatsThroughTheServerAndAnswersTheHeartbeat() async throws {
        let (server, port) = try await ServeProcess.start(["--chat"])
        defer { server.terminate() }
        let browser = try await HeadlessChromium.open("http://127.0.0.1:\(port)/")
        do {
            try await browser.waitUntil(#"document.getElementById("state")?.textContent === "open""#)
            #expect(try await browser.evaluate("document.title") as? String == "Duplex demo")

            // The page's own heartbeat: a ping at open, answered with {"pong":"N"} and shown as a latency.
            try await browser.waitUntil("window.duplexPongs.length >= 1")
            let pong = try await browser.evaluate("window.duplexPongs[0]") as? String ?? ""
            #expect(pong.wholeMatch(of: /\{"pong":"\d+"\}/) != nil, "\(pong)")
            try await browser.waitUntil(#"/^\d+ ms$/.test(document.getElementById("latency").textContent)"#)
            // And one of our own, through the page's socket: the value comes back as a string, not echoed.
            _ = try await browser.evaluate(#"ws.send(JSON.stringify({ type: "ping", value: 4242 })), true"#)
            try await browser.waitUntil(#"window.duplexPongs.includes('{"pong":"4242"}')"#)

            // A Swift member of the lobby, and the page typing and clicking Send.
            let swift = try await WebSocketClient.connect(to: "ws://127.0.0.1:\(port)/chat/lobby")
            var fromRoom = swift.inbound.makeAsyncIterator()
            try await browser.waitUntil(#"fetch("/stats").then(r => r.json()).then(s => s.rooms.lobby === 2)"#)
            _ = try await browser.evaluate("""
                document.getElementById("text").value = "hello from chromium";
                document.querySelector("#form button").click();
                true
                """)
            #expect(await fromRoom.next() == .text("hello from chromium"))
            try await swift.outbound.write(.text("hello from swift"))
            try await swift.outbound.write(.binary([1, 2, 3, 4, 5]))
            #expect(await fromRoom.next() == .text("hello from swift"), "the sender is a member too")
            #expect(await fromRoom.next() == .binary([1, 2, 3, 4, 5]))
            try await browser.waitUntil("window.duplexReceived.length >= 3")
            let received = try await browser.evaluate(
                #"window.duplexReceived.map(d => typeof d === "string" ? d : "binary " + d.size)"#) as? [String]
            #expect(received == ["hello from chromium", "hello from swift", "binary 5"])
            let log = try await browser.evaluate(#"document.getElementById("log").innerText"#) as? String ?? ""
            #expect(log.contains("joined room lobby") && log.contains("hello from swift") && log.contains("[binary]"), "\(log)")
            #expect(try await browser.evaluate(#"document.getElementById("text").value"#) as? String == "", "the input is cleared")
            _ = try await swift.outbound.close()
        } catch {
            await browser.close()
            throw error
        }
        await browser.close()
    }
}
