// Addresses the architecture fixes.

public enum AddressRanges {
    /// The interrupt address range (VT-d 3.15, 5.1): writes there are interrupt requests, not
    /// DMA, and DMA without PASID may not be remapped into it.
    public static let interrupt: ClosedRange<UInt64> = 0xFEE0_0000...0xFEEF_FFFF

    /// The narrowest input width of first-level translation (4-level paging, VT-d 3.6): a unit
    /// whose aw-bits are below it cannot offer first-level tables, nor nest them. Computed, not
    /// stored: a stored static here is a lazy global in every module that reads it.
    @inlinable public static var firstLevelMinimumWidth: Int { 48 }
}
