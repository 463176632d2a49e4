import Testing
@testable import VTdModel

/// A register, its width and what reads back after writing all ones (no side effects involved).
struct MaskCase: CustomTestStringConvertible, Sendable {
    let name: String
    let offset: Int
    let width: Int
    let readsAfterOnes: UInt64
    var testDescription: String { name }
}

let defaultConfigurationMasks: [MaskCase] = [
    .init(name: "VER is read-only", offset: Reg.version, width: 4, readsAfterOnes: 0x10),
    .init(name: "GSTS is read-only", offset: Reg.globalStatus, width: 4, readsAfterOnes: 0),
    .init(name: "RTADDR without scalable mode: address only", offset: Reg.rootTableAddress, width: 8,
          readsAfterOnes: 0xFFFF_FFFF_FFFF_F000),
    .init(name: "FEDATA 15:0", offset: Reg.faultEventData, width: 4, readsAfterOnes: 0xFFFF),
    .init(name: "FEADDR 31:2", offset: Reg.faultEventAddress, width: 4, readsAfterOnes: 0xFFFF_FFFC),
    .init(name: "FEUADDR reserved without EIM", offset: Reg.faultEventUpperAddress, width: 4, readsAfterOnes: 0),
    .init(name: "AFLOG (no advanced fault logging)", offset: Reg.advancedFaultLog, width: 8, readsAfterOnes: 0),
    .init(name: "PMEN (no protected memory)", offset: Reg.protectedMemoryEnable, width: 4, readsAfterOnes: 0),
    .init(name: "PLMBASE", offset: Reg.protectedLowBase, width: 4, readsAfterOnes: 0),
    .init(name: "PLMLIMIT", offset: Reg.protectedLowLimit, width: 4, readsAfterOnes: 0),
    .init(name: "PHMBASE", offset: Reg.protectedHighBase, width: 8, readsAfterOnes: 0),
    .init(name: "PHMLIMIT", offset: Reg.protectedHighLimit, width: 8, readsAfterOnes: 0),
    .init(name: "IQH is read-only", offset: Reg.invalidationQueueHead, width: 8, readsAfterOnes: 0),
    .init(name: "IQT 18:4 (QI off: no processing)", offset: Reg.invalidationQueueTail, width: 8, readsAfterOnes: 0x7FFF0),
    .init(name: "IQA without scalable mode: no DW", offset: Reg.invalidationQueueAddress, width: 8,
          readsAfterOnes: 0xFFFF_FFFF_FFFF_F007),
    .init(name: "IEDATA 15:0", offset: Reg.invalidationEventData, width: 4, readsAfterOnes: 0xFFFF),
    .init(name: "IEADDR 31:2", offset: Reg.invalidationEventAddress, width: 4, readsAfterOnes: 0xFFFF_FFFC),
    .init(name: "IEUADDR reserved without EIM", offset: Reg.invalidationEventUpperAddress, width: 4, readsAfterOnes: 0),
    .init(name: "IQERCD is read-only", offset: Reg.invalidationQueueErrorRecord, width: 8, readsAfterOnes: 0),
    .init(name: "IRTA without EIM: no EIME", offset: Reg.interruptRemappingTableAddress, width: 8,
          readsAfterOnes: 0xFFFF_FFFF_FFFF_F00F),
    .init(name: "PQH absent without page-requests", offset: Reg.pageRequestQueueHead, width: 8, readsAfterOnes: 0),
    .init(name: "PQT absent without page-requests", offset: Reg.pageRequestQueueTail, width: 8, readsAfterOnes: 0),
    .init(name: "PQA absent without page-requests", offset: Reg.pageRequestQueueAddress, width: 8, readsAfterOnes: 0),
    .init(name: "PRS absent without page-requests", offset: Reg.pageRequestStatus, width: 4, readsAfterOnes: 0),
    .init(name: "PECTL absent without page-requests", offset: Reg.pageRequestEventControl, width: 4, readsAfterOnes: 0),
    .init(name: "PEDATA absent without page-requests", offset: Reg.pageRequestEventData, width: 4, readsAfterOnes: 0),
    .init(name: "PEADDR absent without page-requests", offset: Reg.pageRequestEventAddress, width: 4, readsAfterOnes: 0),
    .init(name: "PEUADDR absent without page-requests", offset: Reg.pageRequestEventUpperAddress, width: 4, readsAfterOnes: 0),
    .init(name: "IVA is write-only", offset: Reg.invalidateAddress, width: 8, readsAfterOnes: 0),
    .init(name: "FRCD low half is read-only", offset: Reg.faultRecordingBase, width: 8, readsAfterOnes: 0),
    .init(name: "MTRRCAP is not implemented", offset: 0x100, width: 8, readsAfterOnes: 0),
    .init(name: "a hole between registers", offset: 0x48, width: 8, readsAfterOnes: 0),
]

@Suite("Register window")
struct RegisterWindowTests {
    @Test("every register has its reset value, spec 11.4 / QEMU 10.0")
    func resetValues() {
        let rig = Rig()
        let expected: [(Int, Int, UInt64)] = [
            (Reg.version, 4, 0x10), (Reg.globalCommand, 4, 0), (Reg.globalStatus, 4, 0),
            (Reg.rootTableAddress, 8, 0), (Reg.contextCommand, 8, 0), (Reg.faultStatus, 4, 0),
            (Reg.faultEventControl, 4, 0x8000_0000), (Reg.faultEventData, 4, 0), (Reg.faultEventAddress, 4, 0),
            (Reg.faultEventUpperAddress, 4, 0), (Reg.advancedFaultLog, 8, 0), (Reg.protectedMemoryEnable, 4, 0),
            (Reg.protectedLowBase, 4, 0), (Reg.protectedLowLimit, 4, 0), (Reg.protectedHighBase, 8, 0),
            (Reg.protectedHighLimit, 8, 0), (Reg.invalidationQueueHead, 8, 0), (Reg.invalidationQueueTail, 8, 0),
            (Reg.invalidationQueueAddress, 8, 0), (Reg.invalidationCompletionStatus, 4, 0),
            (Reg.invalidationEventControl, 4, 0x8000_0000), (Reg.invalidationEventData, 4, 0),
            (Reg.invalidationEventAddress, 4, 0), (Reg.invalidationEventUpperAddress, 4, 0),
            (Reg.invalidationQueueErrorRecord, 8, 0), (Reg.interruptRemappingTableAddress, 8, 0),
            (Reg.pageRequestEventControl, 4, 0), (Reg.invalidateAddress, 8, 0), (Reg.iotlbInvalidate, 8, 0),
            (Reg.faultRecordingBase, 8, 0), (Reg.faultRecordingBase + 8, 8, 0),
        ]
        for (offset, width, value) in expected {
            #expect(rig.unit.mmioRead(offset: offset, width: width) == value, "offset 0x\(String(offset, radix: 16))")
        }
        #expect(rig.unit.windowSize == Reg.defaultWindowSize)
    }

    @Test("with page-requests, PECTL resets masked like FECTL, spec 11.4.10", arguments: [false, true])
    func pageRequestControlReset(_ enabled: Bool) {
        let rig = Rig { $0.scalableMode = true; $0.pasid = true; $0.pageRequests = enabled }
        #expect(rig.read32(Reg.pageRequestEventControl) == (enabled ? 0x8000_0000 : 0))
    }

    @Test("writable, read-only, reserved and write-only bits, spec 11.4", arguments: defaultConfigurationMasks)
    func writeAllOnes(_ c: MaskCase) {
        let rig = Rig()
        rig.unit.mmioWrite(offset: c.offset, value: ~0, width: c.width)
        #expect(rig.unit.mmioRead(offset: c.offset, width: c.width) == c.readsAfterOnes)
        rig.unit.mmioWrite(offset: c.offset, value: 0, width: c.width)
        #expect(rig.unit.mmioRead(offset: c.offset, width: c.width) == c.readsAfterOnes & (c.offset == Reg.version ? ~0 : 0))
    }

    @Test("scalable mode makes RTADDR.TTM and IQA.DW writable, spec 11.4.6 / 11.4.9.3")
    func scalableModeFields() {
        let rig = Rig { $0.scalableMode = true }
        rig.write64(Reg.rootTableAddress, ~0)
        #expect(rig.read64(Reg.rootTableAddress) == 0xFFFF_FFFF_FFFF_FC00)
        rig.write64(Reg.invalidationQueueAddress, ~0)
        #expect(rig.read64(Reg.invalidationQueueAddress) == 0xFFFF_FFFF_FFFF_F807)
    }

    @Test("EIM makes the upper event addresses and IRTA.EIME writable, spec 11.4.4.x")
    func extendedInterruptModeFields() {
        let rig = Rig { $0.extendedInterruptMode = true }
        for offset in [Reg.faultEventUpperAddress, Reg.invalidationEventUpperAddress] {
            rig.write32(offset, 0xFFFF_FFFF)
            #expect(rig.read32(offset) == 0xFFFF_FFFF)
        }
        rig.write64(Reg.interruptRemappingTableAddress, ~0)
        #expect(rig.read64(Reg.interruptRemappingTableAddress) == 0xFFFF_FFFF_FFFF_F80F)
    }

    @Test("without interrupt remapping IRTA is reserved, spec 11.4.8")
    func noInterruptRemapping() {
        let rig = Rig { $0.interruptRemapping = false }
        rig.write64(Reg.interruptRemappingTableAddress, ~0)
        #expect(rig.read64(Reg.interruptRemappingTableAddress) == 0)
    }

    @Test("page request registers with page-requests, spec 11.4.10")
    func pageRequestRegisters() {
        let rig = Rig { $0.scalableMode = true; $0.pasid = true; $0.pageRequests = true; $0.extendedInterruptMode = true }
        let cases: [(Int, Int, UInt64)] = [
            (Reg.pageRequestQueueHead, 8, 0x7FFE0), (Reg.pageRequestQueueTail, 8, 0x7FFE0),
            (Reg.pageRequestQueueAddress, 8, 0xFFFF_FFFF_FFFF_F007), (Reg.pageRequestStatus, 4, 0),
            (Reg.pageRequestEventControl, 4, 0x8000_0000), (Reg.pageRequestEventData, 4, 0xFFFF),
            (Reg.pageRequestEventAddress, 4, 0xFFFF_FFFC), (Reg.pageRequestEventUpperAddress, 4, 0xFFFF_FFFF),
        ]
        for (offset, width, expected) in cases {
            rig.unit.mmioWrite(offset: offset, value: ~0, width: width)
            #expect(rig.unit.mmioRead(offset: offset, width: width) == expected, "offset 0x\(String(offset, radix: 16))")
        }
    }

    @Test("GCMD reads 0 whatever was written, spec 11.4.4")
    func globalCommandReadsZero() {
        let rig = Rig()
        rig.write32(Reg.globalCommand, GlobalCommand.writeBufferFlush.rawValue)
        #expect(rig.read32(Reg.globalCommand) == 0)
    }

    @Test("a 64-bit register is the two 32-bit halves, spec 10.2")
    func halves() {
        let rig = Rig()
        rig.write32(Reg.rootTableAddress, 0x1234_5FFF)
        rig.write32(Reg.rootTableAddress + 4, 0x0000_00AB)
        #expect(rig.read64(Reg.rootTableAddress) == 0x0000_00AB_1234_5000)
        rig.write64(Reg.invalidationQueueAddress, 0x0000_0012_3456_7003)
        #expect(rig.read32(Reg.invalidationQueueAddress) == 0x3456_7003)
        #expect(rig.read32(Reg.invalidationQueueAddress + 4) == 0x12)
        // Two 32-bit registers read together with one 64-bit access.
        rig.write32(Reg.faultEventData, 0x55)
        #expect(rig.read64(Reg.faultEventControl) == 0x0000_0055_8000_0000)
    }

    @Test("a 64-bit write at FEADDR also writes FEUADDR (Xen does this), spec 10.2")
    func wideWriteOverTwoRegisters() {
        let rig = Rig { $0.extendedInterruptMode = true }
        rig.write64(Reg.faultEventAddress, 0x0000_0001_FEE0_1003)
        #expect(rig.read32(Reg.faultEventAddress) == 0xFEE0_1000)
        #expect(rig.read32(Reg.faultEventUpperAddress) == 1)
    }

    @Test("accesses of other sizes, misaligned or outside the window are ignored, read 0 and are logged, spec 10.2",
          arguments: [(0x00, 1), (0x00, 2), (0x00, 3), (0x00, 16), (0x02, 4), (0x1C, 8), (0x230, 4), (0x230, 8),
                      (0x1000, 4), (-8, 8), (Int.max, 4), (Int.max - 7, 8)])
    func rejectedAccesses(_ access: (offset: Int, width: Int)) {
        let rig = Rig()
        let before = rig.image
        #expect(rig.unit.mmioRead(offset: access.offset, width: access.width) == 0)
        rig.unit.mmioWrite(offset: access.offset, value: ~0, width: access.width)
        #expect(rig.image == before)
        #expect(rig.guest.guestErrors.count == 2)
    }

    @Test("the last fault record is inside the window, one past it is not, spec 10.4.14")
    func windowEnd() {
        let rig = Rig { $0.faultRecords = 3 }
        #expect(rig.unit.windowSize == 0x250)
        rig.recordFault(.dmaRead(from: 1))
        rig.recordFault(.dmaRead(from: 2))
        rig.recordFault(.dmaRead(from: 3))
        #expect(rig.read64(0x248) >> 63 == 1)
        #expect(rig.read32(0x24C) >> 31 == 1)
        #expect(rig.read32(0x250) == 0)
        #expect(rig.guest.guestErrors.count == 1)
    }

    @Test("reset restores every register: two resets give byte-identical images, spec 11.4 / QEMU qtest")
    func resetIsIdempotent() {
        let rig = Rig { $0.scalableMode = true; $0.pasid = true; $0.pageRequests = true; $0.faultRecords = 4 }
        let fresh = rig.image
        // Scribble over the whole window, then run every kind of side effect.
        for offset in stride(from: 0, to: rig.unit.windowSize, by: 4) where offset != Reg.globalCommand {
            rig.write32(offset, 0xFFFF_FFFF)
        }
        rig.write64(Reg.rootTableAddress, 0x10_0400)
        rig.command([.setRootTablePointer])
        rig.command([.translationEnable, .queuedInvalidationEnable, .setInterruptRemappingTablePointer])
        rig.recordFault(.dmaRead(from: 7))
        rig.withState { state, effects in
            state.reportInvalidationQueueError(.timeout(sourceID: 9), effects: &effects)
            state.invalidationQueue.signalWaitCompletion(effects: &effects)
            state.pageRequests.signal(effects: &effects)
        }
        #expect(rig.image != fresh)

        rig.unit.reset()
        let first = rig.image
        rig.unit.reset()
        #expect(rig.image == first)
        #expect(first == fresh)
        #expect(rig.state(\.latchedRootTable) == nil)
        #expect(rig.state(\.interruptRemapping.latchedTable.rawValue) == 0)
        #expect(rig.state(\.faults.nextRecord) == 0)
    }
}

@Suite("Reset")
struct ResetTests {
    @Test("reset turns translation off and tells the host to re-query every device, spec 11.4.5 TES")
    func resetNotifiesHost() {
        let rig = Rig()
        rig.command(.translationEnable)
        rig.guest.forgetEvents()
        rig.unit.reset()
        #expect(rig.read32(Reg.globalStatus) == 0)
        #expect(rig.guest.events == [.contextChanged(sid: nil, pasid: nil)])
    }
}
