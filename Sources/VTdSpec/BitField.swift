// The one way to name a bit field of a register, table entry or descriptor word: as the spec
// writes it, `bits(63, 12)` for "63:12". Every layout in this module and the model is declared
// with these, so a field's position is written once, in the property that names it.
// Inlinable: the model's hot paths (translate, MMIO) decode fields across the module boundary.

extension FixedWidthInteger where Self: UnsignedInteger {
    /// The mask of bits high...low.
    @inlinable @inline(__always)
    public static func mask(_ high: Int, _ low: Int) -> Self {
        let width = high - low + 1
        let ones: Self = width >= Self.bitWidth ? ~0 : (1 << Self(width)) - 1
        return ones << Self(low)
    }

    /// Bits high...low, shifted down to bit 0.
    @inlinable @inline(__always)
    public func bits(_ high: Int, _ low: Int) -> Self {
        (self & Self.mask(high, low)) >> Self(low)
    }

    /// Replaces bits high...low with `value` (extra high bits of `value` are dropped).
    @inlinable @inline(__always)
    public mutating func setBits(_ high: Int, _ low: Int, to value: Self) {
        let m = Self.mask(high, low)
        self = (self & ~m) | ((value << Self(low)) & m)
    }

    @inlinable @inline(__always)
    public func bit(_ n: Int) -> Bool { self & (1 << Self(n)) != 0 }

    @inlinable @inline(__always)
    public mutating func setBit(_ n: Int, _ on: Bool) {
        if on { self |= 1 << Self(n) } else { self &= ~(1 << Self(n)) }
    }
}
