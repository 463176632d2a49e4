import Testing
@testable import VTdModel

@Suite("Fault recording and the fault event")
struct FaultRecordingTests {
    let fault = MSIMessage(address: 0xFEE0_0000, data: 0x41)

    func fsts(_ rig: Rig) -> FaultStatus { FaultStatus(rawValue: rig.read32(Reg.faultStatus)) }
    func fectl(_ rig: Rig) -> EventControl { EventControl(rawValue: rig.read32(Reg.faultEventControl)) }

    @Test("a fault fills FRCD0 with QEMU's encoding, sets PPF and FRI, spec 7.2.1 / 11.4.14")
    func firstFault() {
        let rig = Rig()
        rig.recordFault(FaultRecord(sourceID: 0x0108, address: 0x1234_5678, reason: .readDenied, isRead: true))
        #expect(rig.read64(Reg.faultRecordingBase) == 0x1234_5000)
        #expect(rig.read64(Reg.faultRecordingBase + 8) == UInt64(1) << 63 | 1 << 62 | 0x06 << 32 | 0x0108)
        #expect(fsts(rig) == .primaryPendingFault)
        #expect(fsts(rig).faultRecordIndex == 0)
    }

    @Test("a write fault has T = 0, spec 11.4.14")
    func writeFault() {
        let rig = Rig()
        rig.recordFault(FaultRecord(sourceID: 0x10, address: 0x9000, reason: .writeDenied, isRead: false))
        #expect(rig.read64(Reg.faultRecordingBase + 8) == UInt64(1) << 63 | 0x05 << 32 | 0x10)
    }

    @Test("FI keeps the page address below MGAW only: the bits above read as 0, spec 11.4.14")
    func faultInfoBelowMGAW() {
        let rig = Rig()  // aw-bits 48: MGAW 48
        rig.recordFault(FaultRecord(sourceID: 0x10, address: 0xFFFF_8000_1234_5678, reason: .addressBeyondMGAW,
                                    isRead: true))
        #expect(rig.read64(Reg.faultRecordingBase) == 0x8000_1234_5000)
    }

    @Test("a request with PASID records PP, PV, PRIV and EXE, spec 11.4.14")
    func pasidFault() {
        let rig = Rig()
        rig.recordFault(FaultRecord(sourceID: 0x20, pasid: 0xABCDE, address: 0x7000, reason: .flEntryNotPresent,
                                    isRead: true, privileged: true, execute: true))
        let frcd = rig.state { $0.faults.record(0) }
        #expect(frcd.pasidPresent && frcd.pasid == 0xABCDE && frcd.privileged && frcd.execute)
        #expect(frcd.reason == 0x71 && frcd.sourceID == 0x20 && frcd.isRead && frcd.fault)
        #expect(rig.read64(Reg.faultRecordingBase + 8) ==
                UInt64(1) << 63 | 1 << 62 | 0xABCDE << 40 | 0x71 << 32 | 1 << 31 | 1 << 30 | 1 << 29 | 0x20)
    }

    @Test("PRIV and EXE are only meaningful with a PASID: left 0 without, spec 11.4.14")
    func noPASIDNoPrivilege() {
        let rig = Rig()
        rig.recordFault(FaultRecord(sourceID: 0x20, address: 0x7000, reason: .readDenied, isRead: true,
                                    privileged: true, execute: true))
        let frcd = rig.state { $0.faults.record(0) }
        #expect(!frcd.pasidPresent && !frcd.privileged && !frcd.execute)
    }

    @Test("an interrupt-remapping fault records the index in FI 63:48, spec 11.4.14")
    func interruptFault() {
        let rig = Rig()
        rig.recordFault(FaultRecord(sourceID: 0xF0F8, address: 0x1234, reason: .irEntryNotPresent,
                                    isRead: false, isInterruptFault: true))
        #expect(rig.read64(Reg.faultRecordingBase) == 0x1234 << 48)
        #expect(rig.read64(Reg.faultRecordingBase + 8) == UInt64(1) << 63 | 0x22 << 32 | 0xF0F8)
    }

    @Test("unmasked, the fault event goes out at once, spec 7.3")
    func unmaskedEvent() {
        let rig = Rig()
        rig.armFaultEvent()
        rig.recordFault(.dmaRead(from: 1))
        #expect(rig.guest.msis == [fault])
        #expect(fectl(rig).isEmpty)
    }

    @Test("masked, the fault event is pending in IP and goes out on unmask, spec 7.3")
    func maskedEvent() {
        let rig = Rig()
        rig.write32(Reg.faultEventData, 0x41)
        rig.write32(Reg.faultEventAddress, 0xFEE0_0000)
        rig.recordFault(.dmaRead(from: 1))
        #expect(rig.guest.msis.isEmpty)
        #expect(fectl(rig) == [.interruptMask, .interruptPending])
        // IP is read-only: software cannot clear or set it directly.
        rig.write32(Reg.faultEventControl, EventControl([.interruptMask, .interruptPending]).rawValue ^ (1 << 30))
        #expect(fectl(rig) == [.interruptMask, .interruptPending])
        rig.write32(Reg.faultEventControl, 0)
        #expect(rig.guest.msis == [fault])
        #expect(fectl(rig).isEmpty)
        // Unmasking again sends nothing more.
        rig.write32(Reg.faultEventControl, EventControl.interruptMask.rawValue)
        rig.write32(Reg.faultEventControl, 0)
        #expect(rig.guest.msis.count == 1)
    }

    @Test("servicing the faults while masked clears IP: unmasking then sends nothing, spec 7.3")
    func servicedWhileMasked() {
        let rig = Rig()
        rig.recordFault(.dmaRead(from: 1))
        #expect(fectl(rig).contains(.interruptPending))
        rig.write32(Reg.faultRecordingBase + 12, 1 << 31)
        #expect(fsts(rig).isEmpty)
        #expect(fectl(rig) == .interruptMask)
        rig.write32(Reg.faultEventControl, 0)
        #expect(rig.guest.msis.isEmpty)
    }

    @Test("F is write-1-to-clear and the rest of the record read-only, spec 11.4.14")
    func recordIsRW1C() {
        let rig = Rig()
        rig.recordFault(.dmaRead(from: 3))
        let before = rig.read64(Reg.faultRecordingBase + 8)
        rig.write64(Reg.faultRecordingBase + 8, ~(1 << 63))
        rig.write64(Reg.faultRecordingBase, 0)
        #expect(rig.read64(Reg.faultRecordingBase + 8) == before)
        #expect(rig.read64(Reg.faultRecordingBase) == 0x1234_5000)
        #expect(fsts(rig).contains(.primaryPendingFault))
        rig.write64(Reg.faultRecordingBase + 8, 1 << 63)
        #expect(rig.read64(Reg.faultRecordingBase + 8) == before & ~(1 << 63))
        #expect(!fsts(rig).contains(.primaryPendingFault))
    }

    @Test("a second fault from the same source collapses into the pending record, spec 7.2.1")
    func collapse() {
        let rig = Rig { $0.faultRecords = 4 }
        rig.armFaultEvent()
        rig.recordFault(.dmaRead(from: 5, at: 0x1000))
        rig.recordFault(.dmaRead(from: 5, at: 0x2000))
        #expect(rig.state { $0.faults.record(1) }.fault == false)
        #expect(rig.read64(Reg.faultRecordingBase) == 0x1000)
        #expect(fsts(rig) == .primaryPendingFault)
        #expect(rig.guest.msis.count == 1)
    }

    @Test("with the next record busy the fault is lost and PFO set, without a new event, spec 7.2.1")
    func overflow() {
        let rig = Rig()
        rig.armFaultEvent()
        rig.recordFault(.dmaRead(from: 1))
        rig.recordFault(.dmaRead(from: 2))
        #expect(fsts(rig) == [.primaryPendingFault, .primaryFaultOverflow])
        #expect(rig.state { $0.faults.record(0) }.sourceID == 1)
        #expect(rig.guest.msis.count == 1)
        #expect(rig.guest.guestErrors.count == 1)
    }

    @Test("while PFO is set no fault is recorded, even into a free record, spec 11.4.7 PFO")
    func overflowBlocksRecording() {
        let rig = Rig()
        rig.armFaultEvent()
        rig.recordFault(.dmaRead(from: 1))
        rig.recordFault(.dmaRead(from: 2))
        rig.write32(Reg.faultRecordingBase + 12, 1 << 31)
        #expect(fsts(rig) == .primaryFaultOverflow)
        rig.recordFault(.dmaRead(from: 3))
        #expect(!rig.state { $0.faults.record(0) }.fault)
        rig.write32(Reg.faultStatus, FaultStatus.primaryFaultOverflow.rawValue)
        #expect(fsts(rig).isEmpty)
        rig.recordFault(.dmaRead(from: 3))
        #expect(rig.state { $0.faults.record(0) }.sourceID == 3)
        #expect(rig.guest.msis.count == 2)
    }

    @Test("records fill round-robin; FRI names the first pending one; one event per PPF rise, spec 7.2.1")
    func roundRobin() {
        let rig = Rig { $0.faultRecords = 4 }
        rig.armFaultEvent()
        for sid in (1...3).map(RequesterID.init(rawValue:)) { rig.recordFault(.dmaRead(from: sid)) }
        #expect(fsts(rig) == .primaryPendingFault)
        #expect(fsts(rig).faultRecordIndex == 0)
        #expect(rig.guest.msis.count == 1)
        // Software services all three; the next fault goes on to record 3 and raises PPF again.
        for i in 0..<3 { rig.write32(Reg.faultRecordingBase + 16 * i + 12, 1 << 31) }
        #expect(fsts(rig).isEmpty)
        rig.recordFault(.dmaRead(from: 9))
        #expect(rig.state { $0.faults.record(3) }.sourceID == 9)
        #expect(fsts(rig).faultRecordIndex == 3)
        #expect(rig.guest.msis.count == 2)
        // And wraps to record 0.
        rig.recordFault(.dmaRead(from: 10))
        #expect(rig.state { $0.faults.record(0) }.sourceID == 10)
        #expect(fsts(rig).faultRecordIndex == 3)
    }

    @Test("a fault while an invalidation queue error is pending is not a new interrupt condition, spec 7.3")
    func earlierConditionPending() {
        let rig = Rig()
        rig.armFaultEvent()
        rig.withState { state, effects in state.reportInvalidationQueueError(.invalidDescriptorType, effects: &effects) }
        #expect(rig.guest.msis.count == 1)
        rig.recordFault(.dmaRead(from: 1))
        #expect(fsts(rig) == [.primaryPendingFault, .invalidationQueueError])
        #expect(rig.guest.msis.count == 1)
    }

    @Test("PPF and FRI are read-only, PFO IQE ICE ITE write-1-to-clear, spec 11.4.7")
    func faultStatusMasks() {
        let rig = Rig()
        rig.recordFault(.dmaRead(from: 1))
        rig.write32(Reg.faultStatus, 0xFFFF_FFFF)
        #expect(fsts(rig) == .primaryPendingFault)
        rig.withState { state, effects in
            state.reportInvalidationQueueError(.reservedFieldSet, effects: &effects)
            state.reportInvalidationQueueError(.completionError(sourceID: 1), effects: &effects)
            state.reportInvalidationQueueError(.timeout(sourceID: 2), effects: &effects)
        }
        #expect(rig.read32(Reg.faultStatus) == 0x72)
        rig.write32(Reg.faultStatus, 0x10)
        #expect(rig.read32(Reg.faultStatus) == 0x62)
        rig.write32(Reg.faultStatus, 0x60)
        #expect(rig.read32(Reg.faultStatus) == 0x02)
    }

    @Test("with EIM the fault event address includes FEUADDR, spec 5.1.6")
    func upperAddress() {
        let rig = Rig { $0.extendedInterruptMode = true }
        rig.write32(Reg.faultEventUpperAddress, 0x0000_0100)
        rig.armFaultEvent(address: 0xFEE0_0004, data: 0x31)
        rig.recordFault(.dmaRead(from: 1))
        #expect(rig.guest.msis == [MSIMessage(address: 0x100_FEE0_0004, data: 0x31)])
    }
}
