// Reading remapping structures from guest memory. Each entry is fetched with one read of
// its full size, as the spec says hardware fetches it (no torn entries within one call).

extension Platform {
    /// Reads `T` (a tuple of UInt64 words) at `address`; nil when the range is not accessible.
    @inline(__always)
    func readGuestWords<T>(_ address: UInt64, as zero: T) -> T? {
        var value = zero
        let ok = withUnsafeMutableBytes(of: &value) { readGuest(address, into: $0) }
        guard ok else { return nil }
        // Guest memory is little-endian; convert each word in place (a no-op on x86 and arm64).
        withUnsafeMutableBytes(of: &value) { bytes in
            for offset in stride(from: 0, to: bytes.count, by: 8) {
                let word = bytes.load(fromByteOffset: offset, as: UInt64.self)
                bytes.storeBytes(of: UInt64(littleEndian: word), toByteOffset: offset, as: UInt64.self)
            }
        }
        return value
    }

    func readRootEntry(_ address: UInt64) -> RootEntry? {
        readGuestWords(address, as: (UInt64(0), UInt64(0))).map { RootEntry(lo: $0.0, hi: $0.1) }
    }

    func readContextEntry(_ address: UInt64) -> ContextEntry? {
        readGuestWords(address, as: (UInt64(0), UInt64(0))).map { ContextEntry(lo: $0.0, hi: $0.1) }
    }

    func readScalableContextEntry(_ address: UInt64) -> ScalableContextEntry? {
        readGuestWords(address, as: (UInt64(0), UInt64(0), UInt64(0), UInt64(0)))
            .map { ScalableContextEntry($0.0, $0.1, $0.2, $0.3) }
    }

    func readPASIDDirectoryEntry(_ address: UInt64) -> PASIDDirectoryEntry? {
        readGuest64(address).map(PASIDDirectoryEntry.init)
    }

    func readPASIDEntry(_ address: UInt64) -> PASIDEntry? {
        readGuestWords(address, as: PASIDEntry(0).words).map { w in
            PASIDEntry(w.0, w.1, w.2, w.3, w.4, w.5, w.6, w.7)
        }
    }
}
