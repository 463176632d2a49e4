// The register window (VT-d spec 10.4, QEMU 10.0's offsets): every register with its reset
// value and its read-write, write-1-to-clear and write-only bits, and which writes have side
// effects. Masks come from the register types in this folder; this file only places them.
//
// Registers of features the configuration lacks stay undefined: they read 0 and ignore
// writes (the spec's reserved-zero), e.g. the page request registers without page-requests
// and the upper event addresses without EIM.
//
// MMIO-hot: a write is the generic masked store plus one switch over the 32-bit slots it
// covered; nothing here allocates.

extension UnitState {
    /// Declares every register with its reset value and masks.
    mutating func defineRegisters() {
        let c = configuration
        let r = Reg.self

        registers.define(r.version, width: 4, reset: 0x10)  // 1.0, as QEMU reports
        registers.define(r.capability, width: 8, reset: Capability(c).rawValue)
        registers.define(r.extendedCapability, width: 8, reset: ExtendedCapability(c).rawValue)
        registers.define(r.globalCommand, width: 4, writable: UInt64(GlobalCommand.writable),
                         writeOnly: UInt64(GlobalCommand.writable))
        registers.define(r.globalStatus, width: 4)
        registers.define(r.rootTableAddress, width: 8,
                         writable: RootTableAddress.writable(scalableMode: c.scalableMode))
        registers.define(r.contextCommand, width: 8, writable: ContextCommand.writable)

        // AFLOG, PMEN, PLMBASE/LIMIT, PHMBASE/LIMIT: no advanced fault logging and no protected
        // memory regions (CAP.AFL, PLMR, PHMR = 0), so all read 0.
        registers.define(r.advancedFaultLog, width: 8)
        registers.define(r.protectedMemoryEnable, width: 4)
        registers.define(r.protectedLowBase, width: 4)
        registers.define(r.protectedLowLimit, width: 4)
        registers.define(r.protectedHighBase, width: 8)
        registers.define(r.protectedHighLimit, width: 8)

        registers.define(r.invalidateAddress, width: 8, writable: InvalidateAddress.writable,
                         writeOnly: InvalidateAddress.writable)
        registers.define(r.iotlbInvalidate, width: 8, writable: IOTLBInvalidate.writable)

        // The rest belongs to the sub-states, which define their own: FSTS, the fault event and
        // the fault records (FaultRecordingState), IQH..IQERCD (InvalidationQueueState), IRTA
        // (InterruptRemappingState), PQH..PEUADDR (PageRequestQueueState).
    }

    /// Runs the side effects of a guest write that covered [offset, offset + width).
    /// Each register acts on the 32-bit half that holds its command or status bits, so a
    /// 64-bit write and a write of just that half behave the same.
    mutating func registerWritten(offset: Int, width: Int, effects: inout Effects) {
        var slot = offset
        while slot < offset + width {
            slotWritten(slot, effects: &effects)
            slot += 4
        }
    }

    @inline(__always)
    private mutating func slotWritten(_ slot: Int, effects: inout Effects) {
        switch slot {
        case Reg.globalCommand: globalCommandWritten(effects: &effects)
        case Reg.contextCommand + 4: contextCommandWritten(effects: &effects)
        case Reg.faultStatus: faultStatusWritten(effects: &effects)
        case Reg.faultEventControl: faults.eventControlWritten(effects: &effects)
        case Reg.invalidationQueueTail: invalidationQueueTailWritten(effects: &effects)
        case Reg.invalidationCompletionStatus: invalidationQueue.completionStatusWritten()
        case Reg.invalidationEventControl: invalidationQueue.eventControlWritten(effects: &effects)
        case Reg.pageRequestStatus where configuration.pageRequests: pageRequests.statusWritten()
        case Reg.pageRequestEventControl where configuration.pageRequests:
            pageRequests.eventControlWritten(effects: &effects)
        case Reg.iotlbInvalidate + 4: iotlbInvalidateWritten(effects: &effects)
        case Reg.faultRecordingBase...:
            // F is bit 127: the last dword of each 16-byte record.
            if (slot - Reg.faultRecordingBase) % Reg.faultRecordingSize == 12 {
                faults.recordWritten()
            }
        default: break
        }
    }
}

extension UnitState {
    /// The guest-error line for an access of a size, alignment or offset the window refuses.
    static func rejectedAccess(_ kind: String, offset: Int, width: Int) -> String {
        "register \(kind) of \(width) bytes at 0x\(String(offset, radix: 16)) ignored: "
            + "only naturally aligned 4- and 8-byte accesses inside the window are allowed"
    }
}
