// Echo server on Vapor (websocket-kit), as its docs show: a `webSocket` route whose onText/onBinary
// callbacks send each message back. websocket-kit has no permessage-deflate, so --deflate is refused.
import PeerSupport
import Vapor

let arguments = PeerArguments()
if arguments.deflate {
    print("vapor-echo: websocket-kit does not support permessage-deflate")
    exit(2)
}
// Vapor reads its own command line; ours (the port) is not one, so it gets `serve` alone.
let environment = Environment(name: "production", arguments: ["vapor-echo", "serve"])
let app = try await Application.make(environment, .shared(MultiThreadedEventLoopGroup(numberOfThreads: 1)))
app.logger.logLevel = .error
app.http.server.configuration.hostname = "127.0.0.1"
app.http.server.configuration.port = arguments.port
app.http.server.configuration.backlog = 4096
app.webSocket(maxFrameSize: WebSocketMaxFrameSize(integerLiteral: 1 << 24)) { _, ws in
    ws.onText { ws, text in ws.send(text) }
    ws.onBinary { ws, bytes in ws.send(bytes) }
}
print("PORT \(arguments.port)")
try await app.execute()
try await app.asyncShutdown()
