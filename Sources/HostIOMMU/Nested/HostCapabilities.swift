import VTdSpec

/// Everything IOMMU_GET_HW_INFO says about the IOMMU behind one assigned device.
public struct HostIOMMUInfo: Hashable, Sendable {
    /// `out_data_type`: 1 for Intel VT-d.
    public var type: UInt32
    /// The host IOMMU's CAP and ECAP, read through the spec's layouts.
    public var cap: Capability
    public var ecap: ExtendedCapability
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
        self.cap = Capability(rawValue: cap)
        self.ecap = ExtendedCapability(rawValue: ecap)
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
