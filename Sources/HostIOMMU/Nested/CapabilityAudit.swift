import VTdSpec

/// Checks one host IOMMU against what the guest will be shown, before anything is exposed, so a
/// mismatch is a clear message at machine-init-done instead of an EINVAL at the guest's first attach.
/// (QEMU's upstream check covers only the info type and FS1GP; the kernel checks SRE/EAFE/5-level only
/// when the nested HWPT is attached.)
public enum CapabilityAudit {
    /// Every reason `info` cannot nest a guest with `guest`'s capabilities; empty when it can.
    public static func nestingProblems(_ info: HostIOMMUInfo, guest: GuestCapabilityProfile) -> [String] {
        guard info.type == HostIOMMUInfo.intelVTd else {
            return ["host IOMMU is not Intel VT-d (IOMMU_GET_HW_INFO type \(info.type))"]
        }
        var problems: [String] = []
        let cap = info.cap
        let ecap = info.ecap
        if !ecap.scalableMode { problems.append("host IOMMU has no scalable mode (ECAP.SMTS, bit 43)") }
        if !ecap.nestedTranslation { problems.append("host IOMMU has no nested translation (ECAP.NEST, bit 26)") }
        if !ecap.firstLevelTranslation {
            problems.append("host IOMMU has no first-stage translation (ECAP.FLTS, bit 47)")
        }
        if cap.maximumGuestAddressWidth < guest.addressWidth {
            problems.append(
                "host IOMMU address width \(cap.maximumGuestAddressWidth) (CAP.MGAW) is below the guest's aw-bits "
                    + "\(guest.addressWidth)")
        }
        if guest.firstStage1GPages && !cap.firstLevel1GPages {
            problems.append(
                "guest is offered 1 GiB first-stage pages (fs1gp) but the host lacks CAP.FS1GP (bit 56)")
        }
        if guest.firstStage5Level && !cap.firstLevel5LevelPaging {
            problems.append(
                "guest is offered 5-level first-stage tables but the host lacks CAP.FL5LP (bit 60)")
        }
        if guest.supervisorRequests && !ecap.supervisorRequests {
            problems.append("guest is offered supervisor requests (ECAP.SRS) but the host lacks ECAP.SRS (bit 31)")
        }
        if guest.extendedAccessed && !ecap.extendedAccessedFlag {
            problems.append(
                "guest is offered the extended-accessed flag (ECAP.EAFS) but the host lacks ECAP.EAFS (bit 34)")
        }
        if guest.pasidWidth > 0 && guest.pasidWidth > ecap.pasidWidth {
            problems.append(
                ecap.pasid
                    ? "guest PASID width \(guest.pasidWidth) exceeds the host's \(ecap.pasidWidth) (ECAP.PSS)"
                    : "guest is offered PASIDs but the host IOMMU has no PASID support (ECAP.PASID, bit 40)")
        }
        // Newer kernels also report the device's own PASID width (0: not reported, or no PASID cap).
        if guest.pasidWidth > 0 && info.maxPASIDLog2 > 0 && Int(info.maxPASIDLog2) < guest.pasidWidth {
            problems.append(
                "guest PASID width \(guest.pasidWidth) exceeds the device's \(info.maxPASIDLog2) (out_max_pasid_log2)")
        }
        return problems
    }

    /// Why one first-level table cannot be bound on this host, or nil. The kernel would say EINVAL at
    /// VFIO_DEVICE_ATTACH_IOMMUFD_PT time; this says which bit.
    static func bindingProblem(_ table: FirstLevelTable, info: HostIOMMUInfo) -> String? {
        if table.addressWidth == .bits57 && !info.cap.firstLevel5LevelPaging {
            return "5-level first-stage table but the host lacks CAP.FL5LP"
        }
        if table.flags.contains(.supervisorRequests) && !info.ecap.supervisorRequests {
            return "SRE set but the host lacks ECAP.SRS"
        }
        if table.flags.contains(.extendedAccessed) && !info.ecap.extendedAccessedFlag {
            return "EAFE set but the host lacks ECAP.EAFS"
        }
        if table.rootPointer & 0xfff != 0 {
            return "first-stage root 0x\(String(table.rootPointer, radix: 16)) is not 4 KiB aligned"
        }
        return nil
    }
}
