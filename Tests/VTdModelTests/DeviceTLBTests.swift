// Device-TLB (ATS) coordination: invalidation ranges for every size encoding, and which faults
// of translation requests are recorded.

import Testing
@testable import VTdModel

@Suite("Device-TLB and ATS translation requests (PCIe ATS, VT-d spec 4.2)")
struct DeviceTLBTests {
    @Test("S = 0 invalidates the one 4 KiB page addressed")
    func singlePage() {
        #expect(atsInvalidationRange(address: 0x1234_5000, sizeBit: false) == (0x1234_5000, 0x1000))
    }

    @Test("with S = 1, n address bits set from bit 12 up mean 2^(n+13) bytes, for every n",
          arguments: 0...50)
    func everySizeEncoding(ones: Int) {
        // n set bits from 12, then a clear bit, then a recognisable page above it.
        let setBits: UInt64 = ones == 0 ? 0 : ((1 << UInt64(ones)) - 1) << 12
        let shift = UInt64(13 + ones)
        let above: UInt64 = shift < 63 ? 1 << 63 : 0
        let range = atsInvalidationRange(address: above | setBits, sizeBit: true)
        #expect(range.size == 1 << shift)
        #expect(range.address == above)
    }

    @Test("with S = 1 and address bits 62:12 or 63:12 set, the whole space is invalidated")
    func everything() {
        for address: UInt64 in [0x7FFF_FFFF_FFFF_F000, 0xFFFF_FFFF_FFFF_F000] {
            let range = atsInvalidationRange(address: address, sizeBit: true)
            #expect(range.address == 0 && range.size == .max)
        }
    }

    @Test("an ATS translation request meeting a root/context fault has it recorded, as a DMA would (UR, spec 4.2.3)")
    func translationRequestStructureFaultRecorded() {
        let rig = Rig()
        rig.write64(Reg.rootTableAddress, 0x10000)  // an empty root table: every device faults
        rig.command(.setRootTablePointer)
        rig.command(.translationEnable)
        var ats = TranslationRequest(sourceID: 0x0308, address: 0x1000, access: .read)
        ats.isTranslationRequest = true
        #expect(rig.unit.translate(ats) == .fault(.rootEntryNotPresent))
        #expect(rig.read32(Reg.faultStatus) & 2 == 2)
        let record = rig.state { $0.faults.record(0) }
        #expect(record.fault && record.reason == FaultReason.rootEntryNotPresent.rawValue && record.sourceID == 0x0308)
    }

    @Test("an ATS translation request for a page the tables do not map answers R=W=0 and records nothing (spec 4.2.3)")
    func translationRequestPageFaultNotRecorded() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.legacy.with { $0.deviceIOTLB = true })
        let root = guest.legacyRoot()
        root.device(translationType: 0b01).map(iova: 0x1000, to: 0x3000, permissions: .read)
        unit.enableTranslation(root)
        var ats = TranslationRequest.write(0x5000)
        ats.isTranslationRequest = true
        #expect(unit.translate(ats).faultReason == .writeDenied)
        ats.address = 0x1000
        #expect(unit.translate(ats).faultReason == .writeDenied)
        #expect(!unit.faultRecord(0).fault)
        #expect(!unit.faultStatus.contains(.primaryPendingFault))
    }
}
