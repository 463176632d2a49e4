/// The host IOMMU's capability register, as IOMMU_GET_HW_INFO reports it. Only the fields the host
/// layer checks are named here; the VT-d model has its own full view of the guest's registers.
public struct HostCapabilityRegister: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// Maximum guest address width (MGAW 21:16, stored as width - 1).
    public var maximumAddressWidth: Int { Int((rawValue >> 16) & 0x3f) + 1 }
    /// First-stage 1 GiB pages (bit 56).
    public var firstStage1GPages: Bool { rawValue & (1 << 56) != 0 }
    /// First-stage 5-level paging (bit 60).
    public var firstStage5Level: Bool { rawValue & (1 << 60) != 0 }
}

/// The host IOMMU's extended capability register.
public struct HostExtendedCapabilityRegister: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    private func bit(_ n: UInt64) -> Bool { rawValue & (1 << n) != 0 }

    public var passThrough: Bool { bit(6) }
    /// Nested translation (bit 26).
    public var nested: Bool { bit(26) }
    /// Supervisor requests (bit 31).
    public var supervisorRequests: Bool { bit(31) }
    /// Extended accessed flag (bit 34).
    public var extendedAccessed: Bool { bit(34) }
    /// PASID size supported: PSS 39:35 holds width - 1.
    public var pasidWidth: Int { pasid ? Int((rawValue >> 35) & 0x1f) + 1 : 0 }
    /// PASID support (bit 40).
    public var pasid: Bool { bit(40) }
    /// Scalable mode (bit 43).
    public var scalableMode: Bool { bit(43) }
    /// Second-stage translation (bit 46).
    public var secondStage: Bool { bit(46) }
    /// First-stage translation (bit 47).
    public var firstStage: Bool { bit(47) }
}

/// Everything IOMMU_GET_HW_INFO says about the IOMMU behind one assigned device.
public struct HostIOMMUInfo: Hashable, Sendable {
    /// `out_data_type`: 1 for Intel VT-d.
    public var type: UInt32
    public var cap: HostCapabilityRegister
    public var ecap: HostExtendedCapabilityRegister
    /// IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17: no read-only mappings on a nest-parent domain.
    public var readOnlyNestParentErratum: Bool
    /// `out_capabilities` (dirty tracking, …).
    public var capabilities: UInt64
    /// `out_max_pasid_log2` where the kernel reports it (0 on older kernels).
    public var maxPASIDLog2: UInt8

    public static let intelVTd: UInt32 = 1

    public init(
        type: UInt32 = HostIOMMUInfo.intelVTd, cap: UInt64, ecap: UInt64, readOnlyNestParentErratum: Bool = true,
        capabilities: UInt64 = 0, maxPASIDLog2: UInt8 = 0
    ) {
        self.type = type
        self.cap = HostCapabilityRegister(rawValue: cap)
        self.ecap = HostExtendedCapabilityRegister(rawValue: ecap)
        self.readOnlyNestParentErratum = readOnlyNestParentErratum
        self.capabilities = capabilities
        self.maxPASIDLog2 = maxPASIDLog2
    }
}

/// What the guest is shown (or is about to be shown) that a nesting host must honour. Built by the
/// ABI layer from the device properties before capabilities are frozen.
public struct GuestCapabilityProfile: Hashable, Sendable {
    /// aw-bits: the guest's IOVA width.
    public var addressWidth: Int
    /// CAP.FS1GP offered.
    public var firstStage1GPages: Bool
    /// CAP.FL5LP offered (guest may use 57-bit first-stage tables).
    public var firstStage5Level: Bool
    /// ECAP.SRS offered.
    public var supervisorRequests: Bool
    /// ECAP.EAFS offered.
    public var extendedAccessed: Bool
    /// PASID width offered (0: no ECAP.PASID; only RID_PASID is bound).
    public var pasidWidth: Int

    public init(
        addressWidth: Int = 48, firstStage1GPages: Bool = true, firstStage5Level: Bool = false,
        supervisorRequests: Bool = false, extendedAccessed: Bool = false, pasidWidth: Int = 0
    ) {
        self.addressWidth = addressWidth
        self.firstStage1GPages = firstStage1GPages
        self.firstStage5Level = firstStage5Level
        self.supervisorRequests = supervisorRequests
        self.extendedAccessed = extendedAccessed
        self.pasidWidth = pasidWidth
    }
}
