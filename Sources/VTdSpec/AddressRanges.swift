// Addresses the architecture fixes.

public enum AddressRanges {
    /// The interrupt address range (VT-d 3.15, 5.1): writes there are interrupt requests, not
    /// DMA, and DMA without PASID may not be remapped into it.
    public static let interrupt: ClosedRange<UInt64> = 0xFEE0_0000...0xFEEF_FFFF
}
