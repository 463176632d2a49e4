// Root-table entry (VT-d 9.1 legacy, 9.2 scalable): 16 bytes, one per bus, indexed by bus.
// Legacy: lo.P + lo.CTP. Scalable: the lower half (lo) points at the context table of
// devfn 0-127, the upper half (hi) at devfn 128-255; each half has its own present bit.

struct RootEntry: Equatable, Sendable {
    var lo: UInt64
    var hi: UInt64

    static let size: UInt64 = 16

    init(lo: UInt64, hi: UInt64) { self.lo = lo; self.hi = hi }

    /// The half that serves `devfn`: legacy entries only have the lower one.
    struct Half: Equatable, Sendable {
        var raw: UInt64
        var isPresent: Bool { raw & 1 != 0 }
        var contextTablePointer: UInt64 { raw & ~0xFFF }
    }

    var lower: Half { Half(raw: lo) }
    var upper: Half { Half(raw: hi) }

    /// Scalable mode: devfn 128-255 use the upper context table, indexed by devfn & 0x7F.
    func half(forDevfn devfn: UInt8, scalable: Bool) -> Half {
        scalable && devfn >= 0x80 ? upper : lower
    }

    /// Reserved bits for one unit: 11:1 and the pointer bits above HAW in each used half;
    /// in legacy mode the whole upper half is reserved.
    struct ReservedBits: Sendable {
        let half: UInt64
        init(_ limits: TranslationLimits) { half = 0xFFE | limits.aboveHostAddressWidth }
    }

    func hasReservedBits(in half: Half, _ reserved: ReservedBits, scalable: Bool) -> Bool {
        if !scalable && hi != 0 { return true }
        return half.raw & reserved.half != 0
    }
}
