// Primary fault logging (VT-d spec 7.2): fault recording registers (FRCD), the fault status
// register (FSTS) and the fault event.
// The translation and interrupt-remapping paths call `recordFault`; they have already applied
// fault processing disable (FPD) and the qualified-fault rules.

public struct FaultRecord: Equatable, Sendable {
    public var sourceID: RequesterID
    public var pasid: PASID?
    /// Faulting page address (bits 63:12 kept), or the interrupt index for remapping faults.
    public var address: UInt64
    public var reason: FaultReason
    /// Request kind: true for reads (FRCD.T = 1 in QEMU's encoding), false for writes.
    public var isRead: Bool
    public var privileged: Bool
    public var execute: Bool
    /// Interrupt-remapping fault: `address` holds the interrupt index (FRCD FI bits 63:48).
    public var isInterruptFault: Bool

    public init(sourceID: RequesterID, pasid: PASID? = nil, address: UInt64, reason: FaultReason,
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
    public var sourceID: RequesterID {
        get { RequesterID(rawValue: UInt16(high.bits(15, 0))) } set { high.setBits(15, 0, to: UInt64(newValue.rawValue)) }
    }
    /// PRIV, 93: supervisor request (meaningful with PP).
    public var privileged: Bool { get { high.bit(29) } set { high.setBit(29, newValue) } }
    /// EXE, 94: execute request (meaningful with PP).
    public var execute: Bool { get { high.bit(30) } set { high.setBit(30, newValue) } }
    /// PP, 95: the request carried a PASID.
    public var pasidPresent: Bool { get { high.bit(31) } set { high.setBit(31, newValue) } }
    /// FR, 103:96: fault reason code.
    public var reason: UInt8 { get { UInt8(high.bits(39, 32)) } set { high.setBits(39, 32, to: UInt64(newValue)) } }
    /// PV, 123:104: the PASID (meaningful with PP).
    public var pasid: PASID {
        get { PASID(field: high >> 40) } set { high.setBits(59, 40, to: UInt64(newValue.rawValue)) }
    }
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
            pasid = PASID(rawValue: p.rawValue & PASID.maximum)
            privileged = record.privileged
            execute = record.execute
        }
        fault = true
    }
}

/// Primary fault logging as a part of the unit's state: it owns FSTS with the fault event
/// registers (0x30..0x47, 0x30 being reserved) and the fault recording registers, and which
/// record the next fault goes to. Its invariants: PPF is the OR of the records' F bits, FRI
/// names the first pending record, a fault-event condition interrupts only when no earlier one
/// still waits for software.
struct FaultRecordingState: Sendable {
    /// FSTS and the fault event registers; the records start at `Reg.faultRecordingBase`.
    static let statusOffsets = 0x30..<0x48

    private(set) var statusRegisters: RegisterFile
    private(set) var recordRegisters: RegisterFile
    /// The fault recording register the next fault goes to (they fill round-robin).
    private(set) var nextRecord = 0
    let count: Int
    /// FI keeps the page address bits below MGAW.
    private let addressWidth: Int

    init(configuration c: VTdConfiguration) {
        count = c.faultRecords
        addressWidth = c.addressWidth
        statusRegisters = RegisterFile(base: Self.statusOffsets.lowerBound, size: Self.statusOffsets.count)
        statusRegisters.define(Reg.faultStatus, width: 4, writeOneToClear: UInt64(FaultStatus.writeOneToClear.rawValue))
        statusRegisters.defineEventRegisters(.fault, extendedInterruptMode: c.extendedInterruptMode)
        recordRegisters = RegisterFile(base: Reg.faultRecordingBase, size: Reg.faultRecordingSize * c.faultRecords)
        for index in 0..<c.faultRecords {
            let offset = Self.offset(ofRecord: index)
            recordRegisters.define(offset, width: 8)
            recordRegisters.define(offset + 8, width: 8, writeOneToClear: FaultRecordingRegister.highWriteOneToClear)
        }
    }

    static func offset(ofRecord index: Int) -> Int { Reg.faultRecordingBase + Reg.faultRecordingSize * index }

    /// Whether `offset` is in one of this part's register files.
    static func owns(_ offset: Int) -> Bool { statusOffsets.contains(offset) || offset >= Reg.faultRecordingBase }

    mutating func reset() {
        statusRegisters.reset()
        recordRegisters.reset()
        nextRecord = 0
    }

    func read(_ offset: Int, width: Int) -> UInt64 {
        offset >= Reg.faultRecordingBase ? recordRegisters.read(offset, width: width)
            : statusRegisters.read(offset, width: width)
    }

    /// A guest write through the registers' masks; the unit then calls the `...Written` hook.
    mutating func guestWrite(_ offset: Int, _ value: UInt64, width: Int) {
        if offset >= Reg.faultRecordingBase {
            recordRegisters.write(offset, value, width: width)
        } else {
            statusRegisters.write(offset, value, width: width)
        }
    }

    /// Puts back this part of a migrated state (`nextRecord` checked against `count`).
    mutating func restore(window words: [UInt32], nextRecord: Int) {
        statusRegisters.restore(rawWords: words[statusRegisters.wordRange])
        recordRegisters.restore(rawWords: words[recordRegisters.wordRange])
        self.nextRecord = nextRecord
    }

    var status: FaultStatus { FaultStatus(rawValue: statusRegisters.get32(Reg.faultStatus)) }

    private mutating func setStatus(_ status: FaultStatus) { statusRegisters.set32(Reg.faultStatus, status.rawValue) }

    func record(_ index: Int) -> FaultRecordingRegister {
        let offset = Self.offset(ofRecord: index)
        return FaultRecordingRegister(low: recordRegisters.get64(offset), high: recordRegisters.get64(offset + 8))
    }

    private mutating func setRecord(_ index: Int, _ record: FaultRecordingRegister) {
        let offset = Self.offset(ofRecord: index)
        recordRegisters.set64(offset, record.low)
        recordRegisters.set64(offset + 8, record.high)
    }

    private func anyFaultPending(from sourceID: RequesterID? = nil) -> Bool {
        for index in 0..<count {
            let r = record(index)
            if r.fault && (sourceID == nil || r.sourceID == sourceID) { return true }
        }
        return false
    }

    /// Records a fault in the next fault recording register and raises the fault event when
    /// that is a new interrupt condition (spec 7.2.1, 7.3). A fault from a source that already
    /// has a pending record is collapsed into it; with the next register busy the fault is lost
    /// and PFO is set; with PFO set nothing is recorded until software clears it. Returns the
    /// register it went to, or nil.
    mutating func record(_ fault: FaultRecord, effects: inout Effects) -> Int? {
        let before = status
        if before.contains(.primaryFaultOverflow) { return nil }
        if anyFaultPending(from: fault.sourceID) { return nil }
        let index = nextRecord
        if record(index).fault {
            setStatus(before.union(.primaryFaultOverflow))
            effects.log(.guestError, "fault recording registers full: fault reason 0x\(String(fault.reason.rawValue, radix: 16)) from source 0x\(String(fault.sourceID.rawValue, radix: 16)) lost (FSTS.PFO set)")
            // PPF is set (the busy record), so this is never a new interrupt condition.
            return nil
        }
        var register = FaultRecordingRegister(fault)
        // FI holds the page address bits below MGAW; the bits above read as 0 (spec 11.4.14),
        // even for a request that faulted for being beyond MGAW.
        if !fault.isInterruptFault && addressWidth < 64 {
            register.faultInfo &= (1 << UInt64(addressWidth)) - 1
        }
        setRecord(index, register)
        nextRecord = (index + 1) % count
        if !before.contains(.primaryPendingFault) {
            var status = before
            status.insert(.primaryPendingFault)
            status.faultRecordIndex = index
            setStatus(status)
            raiseEvent(statusBefore: before, effects: &effects)
        }
        return index
    }

    /// Sets a status bit another part reports (IQE, ICE, ITE) and raises the fault event when
    /// that is a new interrupt condition.
    mutating func report(_ bit: FaultStatus, effects: inout Effects) {
        let before = status
        setStatus(before.union(bit))
        raiseEvent(statusBefore: before, effects: &effects)
    }

    /// A fault-event interrupt condition just appeared: it interrupts only if no earlier
    /// condition is still waiting for software.
    private mutating func raiseEvent(statusBefore: FaultStatus, effects: inout Effects) {
        guard statusBefore.isDisjoint(with: FaultStatus.interruptConditions) else { return }
        statusRegisters.raiseEvent(.fault, effects: &effects)
    }

    /// After software wrote FSTS (RW1C).
    mutating func statusWritten() {
        if status.isDisjoint(with: FaultStatus.interruptConditions) { statusRegisters.eventServiced(.fault) }
    }

    /// After software wrote the high half of a fault recording register (F is RW1C):
    /// PPF follows the F bits.
    mutating func recordWritten() {
        if anyFaultPending() { return }
        var status = status
        status.remove(.primaryPendingFault)
        setStatus(status)
        if status.isDisjoint(with: FaultStatus.interruptConditions) { statusRegisters.eventServiced(.fault) }
    }

    /// After software wrote FECTL: unmasking delivers what was pending.
    mutating func eventControlWritten(effects: inout Effects) {
        statusRegisters.eventControlWritten(.fault, effects: &effects)
    }
}

extension UnitState {
    /// Records `record` (FaultRecordingState.record) and traces where it went.
    mutating func recordFault(_ record: FaultRecord, effects: inout Effects) {
        if let index = faults.record(record, effects: &effects) { tracer?.trace(.fault, .fault(record, index: index)) }
    }

    /// After software wrote FSTS: clearing IQE lets the invalidation queue run again.
    mutating func faultStatusWritten(effects: inout Effects) {
        faults.statusWritten()
        resumeInvalidationQueueAfterError(effects: &effects)
    }
}
