// Echo server on Hummingbird WebSocket, as its README shows: an HTTP/1 server with the WebSocket
// upgrade, a handler that iterates the inbound messages and writes each back. permessage-deflate with
// --deflate (HummingbirdWSCompression).
import Hummingbird
import HummingbirdWSCompression
import HummingbirdWebSocket
import NIOPosix
import PeerSupport

let arguments = PeerArguments()
let maxSize = 1 << 24
let webSocket = WebSocketServerConfiguration(
    maxFrameSize: maxSize,
    extensions: arguments.deflate ? [.perMessageDeflate(maxDecompressedFrameSize: maxSize)] : [],
    autoPing: .disabled
)
let app = Application(
    router: Router(),
    server: .http1WebSocketUpgrade(configuration: .init(ws: webSocket)) { _, _, _ in
        .upgrade([:]) { inbound, outbound, _ in
            for try await message in inbound.messages(maxSize: maxSize) {
                switch message {
                case .text(let text): try await outbound.write(.text(text))
                case .binary(let bytes): try await outbound.write(.binary(bytes))
                }
            }
        }
    },
    configuration: .init(address: .hostname("127.0.0.1", port: arguments.port), backlog: 4096),
    eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup(numberOfThreads: 1))
)
print("PORT \(arguments.port)")
try await app.runService()
