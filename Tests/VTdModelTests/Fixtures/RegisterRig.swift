// A unit over a FakeGuest, with the register accesses the register tests use.

@testable import VTdModel

extension FakeGuest {
    var guestErrors: [String] { logs(.guestError) }
    func forgetEvents() { record.withLock { $0.events.removeAll() } }
}

/// A unit and its guest, with the register accesses tests use.
struct Rig {
    let unit: VTdUnit
    let guest: FakeGuest

    init(_ configure: (inout VTdConfiguration) -> Void = { _ in }) {
        var c = VTdConfiguration()
        configure(&c)
        guest = FakeGuest()
        unit = try! VTdUnit(configuration: c, platform: guest)
    }

    func read32(_ offset: Int) -> UInt32 { UInt32(truncatingIfNeeded: unit.mmioRead(offset: offset, width: 4)) }
    func read64(_ offset: Int) -> UInt64 { unit.mmioRead(offset: offset, width: 8) }
    func write32(_ offset: Int, _ value: UInt32) { unit.mmioWrite(offset: offset, value: UInt64(value), width: 4) }
    func write64(_ offset: Int, _ value: UInt64) { unit.mmioWrite(offset: offset, value: value, width: 8) }

    /// Runs `body` on the unit's state under its lock, then performs what it decided.
    @discardableResult
    func withState<R>(_ body: (inout UnitState, inout Effects) -> R) -> R {
        var effects = Effects()
        let result = unit.state.withLock { body(&$0, &effects) }
        unit.perform(&effects)
        return result
    }

    func state<R>(_ body: (UnitState) -> R) -> R { unit.state.withLock { body($0) } }

    var image: [UInt8] { unit.state.withLock { $0.registerWindow.guestImage } }

    /// GCMD as Linux writes it: the current status plus `command`.
    func command(_ command: GlobalCommand) {
        let status = GlobalCommand(rawValue: read32(Reg.globalStatus))
        let persistent = status.subtracting([.setRootTablePointer, .setInterruptRemappingTablePointer])
        write32(Reg.globalCommand, persistent.union(command).rawValue)
    }

    func clearCommand(_ bit: GlobalCommand) {
        let status = GlobalCommand(rawValue: read32(Reg.globalStatus))
        let persistent = status.subtracting([.setRootTablePointer, .setInterruptRemappingTablePointer, bit])
        write32(Reg.globalCommand, persistent.rawValue)
    }

    /// Unmasks the fault event and points it at a recognisable message.
    func armFaultEvent(address: UInt32 = 0xFEE0_0000, data: UInt32 = 0x41) {
        write32(Reg.faultEventData, data)
        write32(Reg.faultEventAddress, address)
        write32(Reg.faultEventControl, 0)
    }

    func recordFault(_ record: FaultRecord) {
        withState { state, effects in state.recordFault(record, effects: &effects) }
    }
}

extension FaultRecord {
    static func dmaRead(from sid: RequesterID, at address: UInt64 = 0x1234_5000, reason: FaultReason = .readDenied) -> FaultRecord {
        FaultRecord(sourceID: sid, address: address, reason: reason, isRead: true)
    }
}
