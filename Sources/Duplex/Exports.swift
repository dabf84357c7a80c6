// Most applications import only Duplex: the protocol types come with it.
@_exported public import DuplexCore
