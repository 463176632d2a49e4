// What this unit's translation hardware supports, decided once from the configuration
// (the same rules that set CAP/ECAP). Table entries take their reserved-bit masks from
// here, so two units with different address widths never share a mask.

struct TranslationLimits: Sendable {
    /// Host address width (HAW): table pointers and output addresses above it are reserved.
    let hostAddressWidth: Int
    /// Maximum guest address width (CAP.MGAW + 1).
    let maximumGuestAddressWidth: Int
    /// CAP.SAGAW: bit n set = second-level tables of n + 2 levels.
    let supportedAdjustedWidths: UInt8
    /// CAP.SLLPS: second-level 2 MiB (bit 0) and 1 GiB (bit 1) pages.
    let secondLevel2MPages: Bool
    let secondLevel1GPages: Bool
    /// CAP.FS1GP, CAP.FS5LP.
    let firstLevel1GPages: Bool
    let firstLevel5Level: Bool
    /// ECAP.PT, ECAP.DT, ECAP.SC.
    let passThrough: Bool
    let deviceTLB: Bool
    let snoopControl: Bool
    /// Second-level TM (bit 62) is a field, not reserved (QEMU: device-iotlb && stale-tm).
    let transientMapping: Bool
    /// Scalable-mode PGTT values this unit implements (ECAP.FLTS, SLTS, NEST, PT).
    let firstLevel: Bool
    let secondLevel: Bool
    let nested: Bool
    /// RTADDR.TTM = 01 is honoured (ECAP.SMTS).
    let scalableMode: Bool
    /// ECAP.SLADS (second-stage accessed/dirty) and ECAP.EAFS (extended-accessed flag): never
    /// advertised (QEMU 10.0 has neither), so the PASID entry fields that enable them, SSADE
    /// and EAFE, are reserved (spec 9.6: fields of unsupported features are reserved).
    let secondStageAccessedDirty = false
    let extendedAccessedFlag = false

    init(configuration c: VTdConfiguration) {
        hostAddressWidth = c.addressWidth
        maximumGuestAddressWidth = c.addressWidth
        var sagaw: UInt8 = 0
        if c.dmaTranslation {
            if c.addressWidth >= 39 { sagaw |= 1 << 1 }
            if c.addressWidth >= 48 { sagaw |= 1 << 2 }
            if c.addressWidth >= 57 { sagaw |= 1 << 3 }
        }
        supportedAdjustedWidths = sagaw
        secondLevel2MPages = true
        secondLevel1GPages = true
        firstLevel1GPages = c.firstLevel && c.firstLevel1GPages
        firstLevel5Level = c.firstLevel && c.firstLevel5Level
        passThrough = c.passThrough
        deviceTLB = c.deviceIOTLB
        snoopControl = c.snoopControl
        transientMapping = c.deviceIOTLB && c.staleTM
        scalableMode = c.scalableMode
        firstLevel = c.scalableMode && c.firstLevel
        secondLevel = c.scalableMode && (!c.firstLevel || c.secondLevelWithFirstLevel || c.nesting)
        nested = c.scalableMode && c.nesting
    }

    /// Bits 63:HAW: a table pointer or output address with any of them set is malformed.
    var aboveHostAddressWidth: UInt64 { ~0 << UInt64(hostAddressWidth) }

    /// Second-level tables of `levels` levels are supported (SAGAW).
    func supportsSecondLevel(levels: Int) -> Bool {
        (2...6).contains(levels) && supportedAdjustedWidths & (1 << UInt8(levels - 2)) != 0
    }
}
