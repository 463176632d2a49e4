// Fault processing disable (VT-d 7.1.3): an FPD bit in the context entry, the PASID
// directory entry or the PASID entry suppresses recording of *qualified* faults, those
// detected once that entry has been fetched. Faults before any FPD-bearing entry (root
// table, table access errors) are never suppressed. An entry with reserved bits set is
// malformed, so its own FPD bit is not trusted; FPD bits of entries before it still apply.

extension FaultReason {
    /// Whether an FPD bit can suppress recording of this fault (QEMU's `vtd_qualified_faults`
    /// for the legacy codes, the same rule applied to the scalable-mode codes).
    public var isQualified: Bool {
        switch self {
        case .rootEntryNotPresent, .rootTableAccessError, .contextTableAccessError, .rootEntryReserved:
            return false
        case .contextEntryNotPresent, .contextEntryInvalid, .addressBeyondMGAW, .writeDenied, .readDenied,
             .pagingEntryAccessError, .contextEntryReserved, .pagingEntryReserved,
             .contextEntryBlockedTranslationRequest, .interruptAddressRange:
            return true
        // Interrupt remapping: the IRTE's FPD applies once the IRTE was fetched.
        case .irRequestReserved, .irIndexOverflow, .irTableAccessError, .irCompatibilityBlocked:
            return false
        case .irEntryNotPresent, .irEntryReserved, .irSourceIDMismatch:
            return true
        case .smRootTableAddressInvalid, .smTTMZeroForPASIDRequest, .smTTMZeroForPageGroupRequest,
             .smRootEntryAccessError, .smRootEntryNotPresent, .smRootEntryReserved,
             .smContextEntryAccessError, .pasidDirectoryAccessError, .pasidTableAccessError:
            return false
        case .smContextEntryNotPresent, .smContextEntryReserved, .smContextEntryInvalid, .smContextEntryDTEClear,
             .smContextEntryPASIDEClear, .smPASIDTooLarge, .smContextEntryPREClear, .smRIDPASIDError,
             .pasidDirectoryEntryNotPresent, .pasidDirectoryEntryReserved, .pasidEntryNotPresent,
             .pasidEntryReserved, .pasidEntryInvalid, .pasidEntryEREClear, .pasidEntrySREClear:
            return true
        case .flEntryAccessError, .flEntryNotPresent, .flEntryReserved, .flRootAccessError,
             .nestedFLAddressBeyondMGAW, .nestedFLRootReadDenied, .nestedFLEntryReadDenied,
             .nestedFLEntryWriteDenied, .slEntryAccessError, .slEntryPermissionDenied, .slEntryReserved,
             .slRootInvalid, .slAccessedDirtyNoSnoop, .flNonCanonical, .flUserSupervisor, .executeDenied,
             .addressBeyondHardwareMax, .slAddressBeyondMax, .smWriteDenied, .smReadDenied,
             .smInterruptAddressRange, .flAccessedDirtyNoSnoop, .flAccessedDirtyUpdateFailed:
            return true
        }
    }
}
