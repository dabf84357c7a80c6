public import NIOCore

/// A negotiated per-message compression extension (such as permessage-deflate, RFC 7692), as the
/// protocol core sees it: something that compresses a whole outbound message and inflates an inbound
/// one frame by frame, within a size limit. It claims RSV1.
///
/// An instance belongs to one connection and one event loop; it holds codec state (a compression
/// window carried across messages), so it is a class and not `Sendable`.
public protocol MessageCompression: AnyObject {
    /// Compresses the payload of one outbound message.
    /// - Returns: the compressed payload to send with RSV1 set, or `nil` to send the message
    ///   uncompressed (for instance below a size threshold, or when compressing would not help).
    /// - Throws: ``ProtocolError/extensionFailure(_:)`` when the codec fails.
    func compress(_ payload: ByteBuffer) throws(ProtocolError) -> ByteBuffer?

    /// Inflates the payload of one frame of a compressed inbound message, appending to `output`.
    /// - Parameters:
    ///   - piece: the frame's payload, as received.
    ///   - isFinal: whether this is the message's last frame (the codec then ends the message).
    ///   - output: the message inflated so far.
    ///   - limit: the largest `output.readableBytes` allowed; the codec stops as soon as inflating
    ///     would pass it, without inflating the rest.
    /// - Throws: ``ProtocolError/messageTooLarge(limit:)`` past `limit`, or
    ///   ``ProtocolError/extensionFailure(_:)`` for corrupt data.
    func decompress(_ piece: ByteBuffer, isFinal: Bool, into output: inout ByteBuffer, limit: Int) throws(ProtocolError)
}
