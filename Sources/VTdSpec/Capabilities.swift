// CAP and ECAP (VT-d spec 11.4.2, 11.4.3): the layouts. What a unit offers is the model's
// decision (VTdModel/Registers/Capabilities.swift); a host IOMMU's registers, as
// IOMMU_GET_HW_INFO reports them, are read through the same layouts (HostIOMMU).

/// Capability register (CAP_REG, offset 0x08).
public struct Capability: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt64
    @inlinable public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// ND, 2:0: domain-id width is 4 + 2*ND bits.
    public var numberOfDomainsField: UInt64 {
        get { rawValue.bits(2, 0) } set { rawValue.setBits(2, 0, to: newValue) }
    }
    /// CM, 7: caching mode — not-present and erroneous entries may be cached, so software
    /// invalidates after every change (what lets a VMM shadow the guest's tables).
    public var cachingMode: Bool { get { rawValue.bit(7) } set { rawValue.setBit(7, newValue) } }
    /// SAGAW, 12:8: supported second-level widths; bit 1 = 39-bit (3-level), 2 = 48-bit, 3 = 57-bit.
    public var supportedAdjustedGuestAddressWidths: UInt64 {
        get { rawValue.bits(12, 8) } set { rawValue.setBits(12, 8, to: newValue) }
    }
    /// MGAW, 21:16: maximum guest address width minus one.
    public var maximumGuestAddressWidthField: UInt64 {
        get { rawValue.bits(21, 16) } set { rawValue.setBits(21, 16, to: newValue) }
    }
    public var maximumGuestAddressWidth: Int { Int(maximumGuestAddressWidthField) + 1 }
    /// FRO, 33:24: offset of the first fault recording register, in 16-byte units.
    public var faultRecordingOffsetField: UInt64 {
        get { rawValue.bits(33, 24) } set { rawValue.setBits(33, 24, to: newValue) }
    }
    public var faultRecordingOffset: Int { Int(faultRecordingOffsetField) * 16 }
    /// SLLPS, 37:34: second-level large pages; bit 0 = 2 MiB, bit 1 = 1 GiB.
    public var secondLevelLargePages: UInt64 {
        get { rawValue.bits(37, 34) } set { rawValue.setBits(37, 34, to: newValue) }
    }
    /// PSI, 39: page-selective IOTLB invalidation.
    public var pageSelectiveInvalidation: Bool { get { rawValue.bit(39) } set { rawValue.setBit(39, newValue) } }
    /// NFR, 47:40: number of fault recording registers minus one.
    public var numberOfFaultRecordsField: UInt64 {
        get { rawValue.bits(47, 40) } set { rawValue.setBits(47, 40, to: newValue) }
    }
    public var numberOfFaultRecords: Int { Int(numberOfFaultRecordsField) + 1 }
    /// MAMV, 53:48: largest address mask of a page-selective invalidation.
    public var maximumAddressMaskValue: UInt64 {
        get { rawValue.bits(53, 48) } set { rawValue.setBits(53, 48, to: newValue) }
    }
    /// DWD, 54 and DRD, 55: write and read draining.
    public var writeDraining: Bool { get { rawValue.bit(54) } set { rawValue.setBit(54, newValue) } }
    public var readDraining: Bool { get { rawValue.bit(55) } set { rawValue.setBit(55, newValue) } }
    /// FS1GP, 56: first-level 1 GiB pages.
    public var firstLevel1GPages: Bool { get { rawValue.bit(56) } set { rawValue.setBit(56, newValue) } }
    /// FS5LP, 60: first-level five-level paging.
    public var firstLevel5LevelPaging: Bool { get { rawValue.bit(60) } set { rawValue.setBit(60, newValue) } }
}

/// Extended capability register (ECAP_REG, offset 0x10).
public struct ExtendedCapability: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt64
    @inlinable public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// QI, 1: queued invalidation.
    public var queuedInvalidation: Bool { get { rawValue.bit(1) } set { rawValue.setBit(1, newValue) } }
    /// DT, 2: device-TLBs (ATS).
    public var deviceTLB: Bool { get { rawValue.bit(2) } set { rawValue.setBit(2, newValue) } }
    /// IR, 3: interrupt remapping.
    public var interruptRemapping: Bool { get { rawValue.bit(3) } set { rawValue.setBit(3, newValue) } }
    /// EIM, 4: extended interrupt mode (x2APIC destinations).
    public var extendedInterruptMode: Bool { get { rawValue.bit(4) } set { rawValue.setBit(4, newValue) } }
    /// PT, 6: pass-through translation type.
    public var passThrough: Bool { get { rawValue.bit(6) } set { rawValue.setBit(6, newValue) } }
    /// SC, 7: snoop control.
    public var snoopControl: Bool { get { rawValue.bit(7) } set { rawValue.setBit(7, newValue) } }
    /// IRO, 17:8: offset of the IVA register, in 16-byte units (IOTLB register follows at +8).
    public var iotlbRegisterOffsetField: UInt64 {
        get { rawValue.bits(17, 8) } set { rawValue.setBits(17, 8, to: newValue) }
    }
    public var iotlbRegisterOffset: Int { Int(iotlbRegisterOffsetField) * 16 }
    /// MHMV, 23:20: largest handle mask of an interrupt entry cache invalidation.
    public var maximumHandleMaskValue: UInt64 {
        get { rawValue.bits(23, 20) } set { rawValue.setBits(23, 20, to: newValue) }
    }
    /// NEST, 26: nested translation.
    public var nestedTranslation: Bool { get { rawValue.bit(26) } set { rawValue.setBit(26, newValue) } }
    /// PRS, 29: page requests.
    public var pageRequests: Bool { get { rawValue.bit(29) } set { rawValue.setBit(29, newValue) } }
    /// SRS, 31: supervisor requests.
    public var supervisorRequests: Bool { get { rawValue.bit(31) } set { rawValue.setBit(31, newValue) } }
    /// NWFS, 33: no write flag (page requests for read-only access).
    public var noWriteFlag: Bool { get { rawValue.bit(33) } set { rawValue.setBit(33, newValue) } }
    /// EAFS, 34: the extended-accessed flag in first-level entries.
    public var extendedAccessedFlag: Bool { get { rawValue.bit(34) } set { rawValue.setBit(34, newValue) } }
    /// PSS, 39:35: supported PASID width minus one.
    public var pasidSizeField: UInt64 {
        get { rawValue.bits(39, 35) } set { rawValue.setBits(39, 35, to: newValue) }
    }
    /// PASID, 40: requests with PASID.
    public var pasid: Bool { get { rawValue.bit(40) } set { rawValue.setBit(40, newValue) } }
    /// The PASID width offered: PSS + 1 with PASID support, else 0.
    public var pasidWidth: Int { pasid ? Int(pasidSizeField) + 1 : 0 }
    /// PDS, 42: page-request drain.
    public var pageRequestDrain: Bool { get { rawValue.bit(42) } set { rawValue.setBit(42, newValue) } }
    /// SMTS, 43: scalable-mode translation.
    public var scalableMode: Bool { get { rawValue.bit(43) } set { rawValue.setBit(43, newValue) } }
    /// SLTS, 46 and FLTS, 47: second- and first-level translation in scalable mode.
    public var secondLevelTranslation: Bool { get { rawValue.bit(46) } set { rawValue.setBit(46, newValue) } }
    public var firstLevelTranslation: Bool { get { rawValue.bit(47) } set { rawValue.setBit(47, newValue) } }
}
