extension StringProtocol {
    /// The index of the first `byte` (an ASCII byte: `?`, `#`, `/`) in the string's UTF-8, searched over its
    /// contiguous storage. The generic `utf8.firstIndex(of:)` walks the view index by index, about 4 ns a byte; a
    /// request's target is searched for its `?` five or six times between routing, recording and the access log.
    @inlinable
    public func firstIndex(ofASCII byte: UInt8) -> Index? {
        let offset = utf8.withContiguousStorageIfAvailable { bytes in bytes.firstIndex(of: byte) }
        guard let offset else { return utf8.firstIndex(of: byte) }  // a bridged or otherwise foreign string
        return offset.map { utf8.index(utf8.startIndex, offsetBy: $0) }
    }
}
