// Primary fault logging (VT-d spec 7.2): fault recording registers (FRCD), the fault status
// register (FSTS) and the fault event.
// The translation and interrupt-remapping paths call `recordFault`; they have already applied
// fault processing disable (FPD) and the qualified-fault rules.

public struct FaultRecord: Equatable, Sendable {
    public var sourceID: UInt16
    public var pasid: UInt32?
    /// Faulting page address (bits 63:12 kept), or the interrupt index for remapping faults.
    public var address: UInt64
    public var reason: FaultReason
    /// Request kind: true for reads (FRCD.T = 1 in QEMU's encoding), false for writes.
    public var isRead: Bool
    public var privileged: Bool
    public var execute: Bool
    /// Interrupt-remapping fault: `address` holds the interrupt index (FRCD FI bits 63:48).
    public var isInterruptFault: Bool

    public init(sourceID: UInt16, pasid: UInt32? = nil, address: UInt64, reason: FaultReason,
                isRead: Bool, privileged: Bool = false, execute: Bool = false, isInterruptFault: Bool = false) {
        self.sourceID = sourceID
        self.pasid = pasid
        self.address = address
        self.reason = reason
        self.isRead = isRead
        self.privileged = privileged
        self.execute = execute
        self.isInterruptFault = isInterruptFault
    }
}

/// FSTS (offset 0x34).
public struct FaultStatus: OptionSet, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// PFO, 0: a fault was lost because the next fault recording register was busy.
    public static let primaryFaultOverflow = FaultStatus(rawValue: 1 << 0)
    /// PPF, 1: some FRCD has F set (hardware keeps it equal to the OR of all F bits).
    public static let primaryPendingFault = FaultStatus(rawValue: 1 << 1)
    /// IQE, 4: invalidation queue error (details in IQERCD).
    public static let invalidationQueueError = FaultStatus(rawValue: 1 << 4)
    /// ICE, 5: invalid device-TLB invalidation completion.
    public static let invalidationCompletionError = FaultStatus(rawValue: 1 << 5)
    /// ITE, 6: device-TLB invalidation timed out.
    public static let invalidationTimeoutError = FaultStatus(rawValue: 1 << 6)

    /// FRI, 15:8: the FRCD that held the first pending fault when PPF was set.
    public var faultRecordIndex: Int {
        get { Int(rawValue.bits(15, 8)) } set { rawValue.setBits(15, 8, to: UInt32(newValue)) }
    }

    /// Status bits whose setting is a fault-event interrupt condition (spec 7.3): a condition
    /// is new only when none of them was set before.
    static let interruptConditions: FaultStatus = [
        .primaryFaultOverflow, .primaryPendingFault, .invalidationQueueError,
        .invalidationCompletionError, .invalidationTimeoutError,
    ]
    /// RW1C bits; PPF and FRI are read-only.
    static let writeOneToClear: FaultStatus = [
        .primaryFaultOverflow, .invalidationQueueError, .invalidationCompletionError, .invalidationTimeoutError,
    ]
}

/// One 128-bit fault recording register, as two 64-bit words (low at +0, high at +8).
/// Layout as QEMU encodes it, plus the spec's PRIV and EXE bits of requests with PASID.
public struct FaultRecordingRegister: Equatable, Sendable {
    public var low: UInt64
    public var high: UInt64
    public init(low: UInt64, high: UInt64) { self.low = low; self.high = high }

    /// FI, 63:12: faulting page address (DMA faults).
    public var faultInfo: UInt64 { get { low & UInt64.mask(63, 12) } set { low.setBits(63, 12, to: newValue >> 12) } }
    /// FI 63:48 for interrupt-remapping faults: the interrupt index (47:12 clear).
    public var interruptIndex: UInt16 {
        get { UInt16(low.bits(63, 48)) } set { low = UInt64(newValue) << 48 }
    }
    /// SID, 79:64.
    public var sourceID: UInt16 { get { UInt16(high.bits(15, 0)) } set { high.setBits(15, 0, to: UInt64(newValue)) } }
    /// PRIV, 93: supervisor request (meaningful with PP).
    public var privileged: Bool { get { high.bit(29) } set { high.setBit(29, newValue) } }
    /// EXE, 94: execute request (meaningful with PP).
    public var execute: Bool { get { high.bit(30) } set { high.setBit(30, newValue) } }
    /// PP, 95: the request carried a PASID.
    public var pasidPresent: Bool { get { high.bit(31) } set { high.setBit(31, newValue) } }
    /// FR, 103:96: fault reason code.
    public var reason: UInt8 { get { UInt8(high.bits(39, 32)) } set { high.setBits(39, 32, to: UInt64(newValue)) } }
    /// PV, 123:104: the PASID (meaningful with PP).
    public var pasid: UInt32 { get { UInt32(high.bits(59, 40)) } set { high.setBits(59, 40, to: UInt64(newValue)) } }
    /// T, 126: 1 = read (or atomic), 0 = write; meaningful for DMA faults only.
    public var isRead: Bool { get { high.bit(62) } set { high.setBit(62, newValue) } }
    /// F, 127: the record is valid; RW1C.
    public var fault: Bool { get { high.bit(63) } set { high.setBit(63, newValue) } }

    static let highWriteOneToClear: UInt64 = 1 << 63

    init(_ record: FaultRecord) {
        self.init(low: 0, high: 0)
        if record.isInterruptFault {
            interruptIndex = UInt16(truncatingIfNeeded: record.address)
        } else {
            faultInfo = record.address
            isRead = record.isRead
        }
        sourceID = record.sourceID
        reason = record.reason.rawValue
        if let p = record.pasid {
            pasidPresent = true
            pasid = p & PASID.maximum
            privileged = record.privileged
            execute = record.execute
        }
        fault = true
    }
}

extension UnitState {
    var faultStatus: FaultStatus {
        get { FaultStatus(rawValue: registers.get32(Reg.faultStatus)) }
        set { registers.set32(Reg.faultStatus, newValue.rawValue) }
    }

    var faultRecordCount: Int { configuration.faultRecords }

    func faultRecordOffset(_ index: Int) -> Int {
        Reg.faultRecordingBase + Reg.faultRecordingSize * index
    }

    func faultRecord(_ index: Int) -> FaultRecordingRegister {
        let offset = faultRecordOffset(index)
        return FaultRecordingRegister(low: registers.get64(offset), high: registers.get64(offset + 8))
    }

    private mutating func setFaultRecord(_ index: Int, _ record: FaultRecordingRegister) {
        let offset = faultRecordOffset(index)
        registers.set64(offset, record.low)
        registers.set64(offset + 8, record.high)
    }

    private func anyFaultPending(from sourceID: UInt16? = nil) -> Bool {
        for index in 0..<faultRecordCount {
            let r = faultRecord(index)
            if r.fault && (sourceID == nil || r.sourceID == sourceID) { return true }
        }
        return false
    }

    /// Records a fault in the next fault recording register and raises the fault event when
    /// that is a new interrupt condition (spec 7.2.1, 7.3). A fault from a source that already
    /// has a pending record is collapsed into it; with the next register busy the fault is lost
    /// and PFO is set; with PFO set nothing is recorded until software clears it.
    mutating func recordFault(_ record: FaultRecord, effects: inout Effects) {
        let before = faultStatus
        if before.contains(.primaryFaultOverflow) { return }
        if anyFaultPending(from: record.sourceID) { return }
        let index = nextFaultRecord
        if faultRecord(index).fault {
            faultStatus.insert(.primaryFaultOverflow)
            effects.log(.guestError, "fault recording registers full: fault reason 0x\(String(record.reason.rawValue, radix: 16)) from source 0x\(String(record.sourceID, radix: 16)) lost (FSTS.PFO set)")
            // PPF is set (the busy record), so this is never a new interrupt condition.
            return
        }
        var register = FaultRecordingRegister(record)
        // FI holds the page address bits below MGAW; the bits above read as 0 (spec 11.4.14),
        // even for a request that faulted for being beyond MGAW.
        if !record.isInterruptFault && configuration.addressWidth < 64 {
            register.faultInfo &= (1 << UInt64(configuration.addressWidth)) - 1
        }
        setFaultRecord(index, register)
        tracer?.trace(.fault(record, index: index))
        nextFaultRecord = (index + 1) % faultRecordCount
        if !before.contains(.primaryPendingFault) {
            var status = before
            status.insert(.primaryPendingFault)
            status.faultRecordIndex = index
            faultStatus = status
            raiseFaultEvent(statusBefore: before, effects: &effects)
        }
    }

    /// A fault-event interrupt condition (new fault, IQE, ICE, ITE) just appeared: it interrupts
    /// only if no earlier condition is still waiting for software.
    mutating func raiseFaultEvent(statusBefore: FaultStatus, effects: inout Effects) {
        guard statusBefore.isDisjoint(with: FaultStatus.interruptConditions) else { return }
        raiseEvent(.fault, effects: &effects)
    }

    /// After software wrote FSTS (RW1C).
    mutating func faultStatusWritten(effects: inout Effects) {
        if faultStatus.isDisjoint(with: FaultStatus.interruptConditions) { eventServiced(.fault) }
        resumeInvalidationQueueAfterError(effects: &effects)
    }

    /// After software wrote the high half of a fault recording register (F is RW1C):
    /// PPF follows the F bits.
    mutating func faultRecordWritten() {
        if anyFaultPending() { return }
        var status = faultStatus
        status.remove(.primaryPendingFault)
        faultStatus = status
        if status.isDisjoint(with: FaultStatus.interruptConditions) { eventServiced(.fault) }
    }
}
