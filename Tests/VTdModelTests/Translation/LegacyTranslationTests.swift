import Testing
@testable import VTdModel

@Suite("Translation: legacy root and context tables")
struct LegacyTranslationTests {
    @Test("with remapping disabled every request is identity-mapped (VT-d 3.1, GSTS.TES = 0)")
    func disabledIsIdentity() {
        let guest = GuestMemory()
        let unit = guest.makeUnit()
        let t = unit.translate(.write(0x1234_5678))
        #expect(t.translation == Translation(translated: 0x1234_5678, pageMask: ~0xFFF,
                                             permissions: [.read, .write, .execute], identity: true))
    }

    @Test("a multi-level context entry walks the second level (VT-d 3.7, TT 00)")
    func multiLevelWalk() {
        let guest = GuestMemory()
        let unit = guest.makeUnit()
        let root = guest.legacyRoot()
        let device = root.device(domain: 7, levels: 4)
        device.map(iova: 0x12_3000, to: 0xABC_D000, permissions: .readWrite)
        unit.enableTranslation(root)

        let t = unit.translate(.read(0x12_3456))
        #expect(t.translation == Translation(translated: 0xABC_D456, pageMask: ~0xFFF, permissions: [.read, .write]))
        #expect(unit.translate(.write(0x12_3FFF)).address == 0xABC_DFFF)
    }

    @Test("three-level tables (AW 1) translate 39-bit addresses (VT-d 3.7, SAGAW bit 1)")
    func threeLevels() {
        let guest = GuestMemory()
        let unit = guest.makeUnit()
        let root = guest.legacyRoot()
        root.device(levels: 3).map(iova: 0x40_0000_0000 - 0x1000, to: 0x7000)
        unit.enableTranslation(root)
        #expect(unit.translate(.read(0x3F_FFFF_F010)).address == 0x7010)
        // Bit 39 is beyond a 3-level table.
        #expect(unit.translate(.read(0x80_0000_0000)).faultReason == .addressBeyondMGAW)
    }

    @Test("read-only mappings deny writes with reason 5, unmapped reads give 6 (VT-d 7.1.3)")
    func permissions() {
        let guest = GuestMemory()
        let unit = guest.makeUnit()
        let root = guest.legacyRoot()
        root.device().map(iova: 0x1000, to: 0x9000, permissions: .read)
        unit.enableTranslation(root)
        #expect(unit.translate(.read(0x1000)).translation?.permissions == [.read])
        #expect(unit.translate(.write(0x1000)).faultReason == .writeDenied)
        #expect(unit.translate(.read(0x2000)).faultReason == .readDenied)
    }

    @Test("2 MiB and 1 GiB second-level pages (CAP.SLLPS)")
    func largePages() {
        let guest = GuestMemory()
        let unit = guest.makeUnit()
        let root = guest.legacyRoot()
        let device = root.device()
        device.map(iova: 0x4000_0000, to: 0x8000_0000, pageSize: .size1G)
        device.map(iova: 0x20_0000, to: 0x60_0000, pageSize: .size2M)
        unit.enableTranslation(root)
        let big = unit.translate(.read(0x4123_4567)).translation
        #expect(big?.translated == 0x8123_4567)
        #expect(big?.pageMask == ~(UInt64(1 << 30) - 1))
        let medium = unit.translate(.read(0x2F_FFFF)).translation
        #expect(medium?.translated == 0x6F_FFFF)
        #expect(medium?.pageMask == ~(UInt64(1 << 21) - 1))
    }

    @Test("pass-through context entries are identity (TT 10, ECAP.PT)")
    func passThrough() {
        let guest = GuestMemory()
        let unit = guest.makeUnit()
        let root = guest.legacyRoot()
        root.device(translationType: 0b10)
        unit.enableTranslation(root)
        #expect(unit.translate(.write(0xDEAD_B000)).translation?.identity == true)
        #expect(unit.translate(.write(0xDEAD_B000)).address == 0xDEAD_B000)
    }

    @Test("pass-through without ECAP.PT is an invalid context entry (reason 3)")
    func passThroughNeedsCapability() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.legacy.with { $0.passThrough = false })
        let root = guest.legacyRoot()
        root.device(translationType: 0b10)
        unit.enableTranslation(root)
        #expect(unit.translate(.read(0x1000)).faultReason == .contextEntryInvalid)
    }

    @Test("device-TLB context entries need ECAP.DT and then answer translation requests (TT 01)")
    func deviceTLB() {
        for deviceIOTLB in [false, true] {
            let guest = GuestMemory()
            let unit = guest.makeUnit(.legacy.with { $0.deviceIOTLB = deviceIOTLB })
            let root = guest.legacyRoot()
            root.device(translationType: 0b01).map(iova: 0x1000, to: 0x3000)
            unit.enableTranslation(root)
            var ats = TranslationRequest.read(0x1000)
            ats.isTranslationRequest = true
            #expect(unit.translate(ats).faultReason == (deviceIOTLB ? nil : .contextEntryInvalid))
        }
    }

    @Test("translation requests to a multi-level-only context are blocked (reason 0xD)")
    func translationRequestBlocked() {
        let guest = GuestMemory()
        let unit = guest.makeUnit()
        let root = guest.legacyRoot()
        root.device().map(iova: 0x1000, to: 0x3000)
        unit.enableTranslation(root)
        var ats = TranslationRequest.read(0x1000)
        ats.isTranslationRequest = true
        #expect(unit.translate(ats).faultReason == .contextEntryBlockedTranslationRequest)
    }

    @Test("TT 10b (pass-through) blocks translation requests with 0xD and records it; DMA passes through (spec 9.3 TT, 4.2.3)")
    func passThroughBlocksTranslationRequests() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.legacy.with { $0.deviceIOTLB = true })
        let root = guest.legacyRoot()
        root.device(translationType: 0b10)
        unit.enableTranslation(root)
        #expect(unit.translate(.read(0x1234_5000)).translation?.identity == true)
        var ats = TranslationRequest.read(0x1234_5000)
        ats.isTranslationRequest = true
        #expect(unit.translate(ats).faultReason == .contextEntryBlockedTranslationRequest)
        let record = unit.faultRecord(0)
        #expect(record.fault && record.reason == FaultReason.contextEntryBlockedTranslationRequest.rawValue)
    }

    @Test("TT 10b with an AW value SAGAW lacks is an invalid context entry (0x3), not pass-through (spec 9.3 AW; QEMU)")
    func passThroughNeedsSupportedWidth() {
        for (aw, supported) in [(0, false), (1, true), (2, true), (3, false), (4, false), (7, false)] as [(UInt64, Bool)] {
            let guest = GuestMemory()
            let unit = guest.makeUnit()  // aw-bits 48: SAGAW offers 3 and 4 levels (AW 1, 2)
            let root = guest.legacyRoot()
            let device = root.device(translationType: 0b10)
            guest.write64(device.contextEntry + 8, guest.read64(device.contextEntry + 8) & ~0b111 | aw)
            unit.enableTranslation(root)
            let outcome = unit.translate(.read(0x5000))
            if supported {
                #expect(outcome.translation?.identity == true, "AW \(aw)")
            } else {
                #expect(outcome.faultReason == .contextEntryInvalid, "AW \(aw)")
            }
        }
    }

    @Test("output pages in the interrupt range fault (reason 0xE, VT-d 3.15)")
    func interruptRange() {
        let guest = GuestMemory()
        let unit = guest.makeUnit()
        let root = guest.legacyRoot()
        root.device().map(iova: 0x1000, to: 0xFEE0_0000)
        unit.enableTranslation(root)
        #expect(unit.translate(.write(0x1000)).faultReason == .interruptAddressRange)
    }

    @Test("a table that points at itself ends after the table's levels (bounded walk)")
    func selfReferencingTable() {
        let guest = GuestMemory()
        let unit = guest.makeUnit()
        let root = guest.legacyRoot()
        let device = root.device(levels: 4)
        // Every entry of the top table points back at the top table, R/W set.
        for i in 0..<UInt64(512) { guest.write64(device.secondLevel.root + i * 8, device.secondLevel.root | 0b11) }
        unit.enableTranslation(root)
        // Level 1 then maps the top table itself as a 4 KiB page: the walk ends, it does not loop.
        #expect(unit.translate(.read(0x1000)).address == device.secondLevel.root)
    }

    @Test("requests with a PASID need scalable-mode tables (reason 0x31)")
    func pasidInLegacyMode() {
        let guest = GuestMemory()
        let unit = guest.makeUnit()
        let root = guest.legacyRoot()
        root.device().map(iova: 0x1000, to: 0x3000)
        unit.enableTranslation(root)
        #expect(unit.translate(.read(0x1000, pasid: 5)).faultReason == .smTTMZeroForPASIDRequest)
    }
}
