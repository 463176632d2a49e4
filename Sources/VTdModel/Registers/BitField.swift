// Bit fields of register and table words, named the way the spec writes them: `bits(63, 12)`
// is the spec's "63:12". Every typed register view in Registers/ is built from these, so a
// field's position is written once, in the property that names it.

extension FixedWidthInteger where Self: UnsignedInteger {
    /// The mask of bits high...low.
    @inline(__always)
    static func mask(_ high: Int, _ low: Int) -> Self {
        let width = high - low + 1
        let ones: Self = width >= Self.bitWidth ? ~0 : (1 << Self(width)) - 1
        return ones << Self(low)
    }

    /// Bits high...low, shifted down to bit 0.
    @inline(__always)
    func bits(_ high: Int, _ low: Int) -> Self {
        (self & Self.mask(high, low)) >> Self(low)
    }

    /// Replaces bits high...low with `value` (extra high bits of `value` are dropped).
    @inline(__always)
    mutating func setBits(_ high: Int, _ low: Int, to value: Self) {
        let m = Self.mask(high, low)
        self = (self & ~m) | ((value << Self(low)) & m)
    }

    @inline(__always)
    func bit(_ n: Int) -> Bool { self & (1 << Self(n)) != 0 }

    @inline(__always)
    mutating func setBit(_ n: Int, _ on: Bool) {
        if on { self |= 1 << Self(n) } else { self &= ~(1 << Self(n)) }
    }
}
