// Primary fault logging (VT-d spec 7.2): fault recording registers, FSTS, the fault event.
// OWNER: registers work (issue 2). The translation engine calls `recordFault`.

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

extension UnitState {
    /// Records a fault in the next free FRCD (collapse, overflow, FRI, PPF) and raises the fault
    /// event into `effects` when the spec says so. The caller has already applied FPD.
    mutating func recordFault(_ record: FaultRecord, effects: inout Effects) {
        // Stub until the register work lands.
    }
}
