// Most applications import only Duplex: the protocol types and permessage-deflate come with it.
@_exported public import DuplexCore
@_exported public import DuplexCompression
