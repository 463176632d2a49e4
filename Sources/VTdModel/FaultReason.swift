// Fault reason codes (VT-d spec chapter 7, "non-recoverable fault reasons"), by raw value.
// Legacy-mode requests use 0x1-0xE; scalable-mode requests use 0x30 and up
// (QEMU 10.0 reuses the legacy codes for scalable root/context faults; we do not).

public enum FaultReason: UInt8, Sendable, CaseIterable {
    // Legacy mode
    case rootEntryNotPresent = 0x01
    case contextEntryNotPresent = 0x02
    case contextEntryInvalid = 0x03
    case addressBeyondMGAW = 0x04
    case writeDenied = 0x05
    case readDenied = 0x06
    case pagingEntryAccessError = 0x07
    case rootTableAccessError = 0x08
    case contextTableAccessError = 0x09
    case rootEntryReserved = 0x0A
    case contextEntryReserved = 0x0B
    case pagingEntryReserved = 0x0C
    case contextEntryBlockedTranslationRequest = 0x0D
    case interruptAddressRange = 0x0E

    // Interrupt remapping
    case irRequestReserved = 0x20
    case irIndexOverflow = 0x21
    case irEntryNotPresent = 0x22
    case irTableAccessError = 0x23
    case irEntryReserved = 0x24
    case irCompatibilityBlocked = 0x25
    case irSourceIDMismatch = 0x26

    // Scalable mode: root table and root entries
    case smRootTableAddressInvalid = 0x30
    case smTTMZeroForPASIDRequest = 0x31
    case smTTMZeroForPageGroupRequest = 0x32
    case smRootEntryAccessError = 0x38
    case smRootEntryNotPresent = 0x39
    case smRootEntryReserved = 0x3A
    // Scalable mode: context entries
    case smContextEntryAccessError = 0x40
    case smContextEntryNotPresent = 0x41
    case smContextEntryReserved = 0x42
    case smContextEntryInvalid = 0x43
    case smContextEntryDTEClear = 0x44
    case smContextEntryPASIDEClear = 0x45
    case smPASIDTooLarge = 0x46
    case smContextEntryPREClear = 0x47
    case smRIDPASIDError = 0x48
    // Scalable mode: PASID directory and table
    case pasidDirectoryAccessError = 0x50
    case pasidDirectoryEntryNotPresent = 0x51
    case pasidDirectoryEntryReserved = 0x52
    case pasidTableAccessError = 0x58
    case pasidEntryNotPresent = 0x59
    case pasidEntryReserved = 0x5A
    case pasidEntryInvalid = 0x5B       // e.g. PGTT not supported
    case pasidEntryEREClear = 0x5C      // execute request, ERE clear
    case pasidEntrySREClear = 0x5D      // supervisor request, SRE clear
    // Scalable mode: first-level and second-level paging
    case flEntryAccessError = 0x70
    case flEntryNotPresent = 0x71
    case flEntryReserved = 0x72
    case flRootAccessError = 0x73       // FL-PML4/PML5 access (FLPTPTR)
    case nestedFLAddressBeyondMGAW = 0x74
    case nestedFLRootReadDenied = 0x75
    case nestedFLEntryReadDenied = 0x76
    case nestedFLEntryWriteDenied = 0x77
    case slEntryAccessError = 0x78
    case slEntryPermissionDenied = 0x79
    case slEntryReserved = 0x7A
    case slRootInvalid = 0x7B
    case slAccessedDirtyNoSnoop = 0x7C
    case flNonCanonical = 0x80
    case flUserSupervisor = 0x81
    case executeDenied = 0x82
    case addressBeyondHardwareMax = 0x83
    case slAddressBeyondMax = 0x84
    case smWriteDenied = 0x85
    case smReadDenied = 0x86
    case smInterruptAddressRange = 0x87
    case flAccessedDirtyNoSnoop = 0x90
    case flAccessedDirtyUpdateFailed = 0x91  // QEMU's code for a failed A/D write
}

extension FaultReason {
    /// Whether an ATS translation request (VT-d 4.2.3) meeting this fault has it recorded.
    /// Faults of the root, context and PASID structures (not present, reserved bits, invalid
    /// programming, access errors, TT blocking 0x0D, DTE clear 0x44) complete the request with
    /// UR or CA and are recorded as for DMA. What well-formed paging structures answer for this
    /// address (not present, no permission, out of range, user/supervisor, execute, interrupt
    /// range) completes successfully with R = W = 0 and is not recorded: the device reports it
    /// or asks for the page with a page request.
    public var isRecordedForTranslationRequests: Bool {
        switch self {
        case .addressBeyondMGAW, .writeDenied, .readDenied, .interruptAddressRange,
             .flEntryNotPresent, .nestedFLAddressBeyondMGAW, .nestedFLRootReadDenied, .nestedFLEntryReadDenied,
             .nestedFLEntryWriteDenied, .slEntryPermissionDenied, .flNonCanonical, .flUserSupervisor,
             .executeDenied, .addressBeyondHardwareMax, .slAddressBeyondMax, .smWriteDenied, .smReadDenied,
             .smInterruptAddressRange:
            return false
        default:
            return true
        }
    }
}
