// CAP and ECAP (VT-d spec 11.4.2, 11.4.3): what the unit tells the guest it can do. The
// layouts are VTdSpec's; the values are decided here.
//
// Computed once from the configuration, the way QEMU 10.0's intel-iommu computes them for the
// same property values (VTD-FACTS Part B 1.3), so a guest sees the same bits whichever device
// it runs on. The library's own properties (nesting, page-requests, fs5lp, slts, fault-records)
// only ever add their own bits.

extension Capability {
    /// QEMU's constants: 16-bit domain ids, FRCDs at 0x220, address masks up to 2^18 pages.
    static let domainIDField: UInt64 = 6
    static let qemuFaultRecordingOffsetField = UInt64(Reg.faultRecordingBase / 16)
    static let qemuMaximumAddressMask: UInt64 = 18

    public init(_ c: VTdConfiguration) {
        self.init(rawValue: 0)
        numberOfDomainsField = Self.domainIDField
        cachingMode = c.cachingMode
        // dma-translation=off makes an interrupt-remapping-only unit: no table format at all.
        if c.dmaTranslation {
            var widths: UInt64 = 0
            if c.addressWidth >= 39 { widths |= 1 << 1 }
            if c.addressWidth >= 48 { widths |= 1 << 2 }
            if c.addressWidth >= 57 { widths |= 1 << 3 }
            supportedAdjustedGuestAddressWidths = widths
        }
        maximumGuestAddressWidthField = UInt64(c.addressWidth - 1)
        faultRecordingOffsetField = Self.qemuFaultRecordingOffsetField
        secondLevelLargePages = 0b11
        pageSelectiveInvalidation = true
        numberOfFaultRecordsField = UInt64(c.faultRecords - 1)
        maximumAddressMaskValue = Self.qemuMaximumAddressMask
        writeDraining = c.dmaDrain
        readDraining = c.dmaDrain
        firstLevel1GPages = c.firstLevel && c.firstLevel1GPages
        firstLevel5LevelPaging = c.firstLevel5Level
    }
}

extension ExtendedCapability {
    /// QEMU's constants: IVA at 0xF0, interrupt entry cache handle masks up to 2^15.
    static let qemuIOTLBRegisterOffsetField = UInt64(Reg.invalidateAddress / 16)
    static let qemuMaximumHandleMask: UInt64 = 15

    public init(_ c: VTdConfiguration) {
        self.init(rawValue: 0)
        queuedInvalidation = true
        deviceTLB = c.deviceIOTLB
        interruptRemapping = c.interruptRemapping
        extendedInterruptMode = c.extendedInterruptMode
        passThrough = c.passThrough
        snoopControl = c.snoopControl
        iotlbRegisterOffsetField = Self.qemuIOTLBRegisterOffsetField
        if c.interruptRemapping { maximumHandleMaskValue = Self.qemuMaximumHandleMask }
        scalableMode = c.scalableMode
        // QEMU offers exactly one level in scalable mode: second level (with supervisor
        // requests), or first level with x-flts. slts and nesting add the second level back.
        supervisorRequests = c.scalableMode && !c.firstLevel
        secondLevelTranslation = c.scalableMode && (!c.firstLevel || c.secondLevelWithFirstLevel || c.nesting)
        firstLevelTranslation = c.firstLevel
        nestedTranslation = c.nesting
        pasid = c.pasid
        pageRequests = c.pageRequests
        pageRequestDrain = c.pageRequests
        noWriteFlag = c.pageRequests
        // QEMU's x-pasid-mode leaves PSS at 0 (a 1-bit PASID space). Guests that bind PASIDs of
        // their own (SVA with page requests, nesting) need the real width, so the library
        // advertises pasid-bits only when one of those features is on; the ten QEMU
        // configurations keep QEMU's value.
        if c.pasid && (c.pageRequests || c.nesting) { pasidSizeField = UInt64(c.pasidBits - 1) }
    }
}

extension UnitState {
    /// The advertised capabilities, as the guest reads them.
    var capability: Capability { Capability(rawValue: registers.get64(Reg.capability)) }
    var extendedCapability: ExtendedCapability {
        ExtendedCapability(rawValue: registers.get64(Reg.extendedCapability))
    }
}
