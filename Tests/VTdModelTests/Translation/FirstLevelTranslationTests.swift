import Testing
@testable import VTdModel

@Suite("Translation: scalable mode, first level")
struct FirstLevelTranslationTests {
    /// A unit with x-flts, a device on RID_PASID 0 with a fresh first-level table.
    static func setUp(_ configuration: VTdConfiguration = .scalableFirstLevel, levels: Int = 4,
                      options: PASIDOptions = .linux, pasid: UInt32 = 0)
        -> (GuestMemory, VTdUnit, FirstLevelTables) {
        let guest = GuestMemory()
        let unit = guest.makeUnit(configuration)
        let root = guest.scalableRoot()
        let tables = root.device().firstLevel(pasid: pasid, levels: levels, options: options)
        unit.enableTranslation(root)
        return (guest, unit, tables)
    }

    @Test("requests without PASID walk the RID_PASID entry's first-level table (VT-d 3.6)")
    func ridPASID() {
        let (_, unit, tables) = Self.setUp()
        tables.map(iova: 0x7F_0000_1000, to: 0x4_5678_9000)
        let t = unit.translate(.write(0x7F_0000_1ABC))
        #expect(t.translation == Translation(translated: 0x4_5678_9ABC, pageMask: ~0xFFF, permissions: [.read, .write]))
    }

    @Test("Linux's leaves (XD set, NXE set in the PASID entry) translate (VTD-FACTS, Linux 6.1)")
    func linuxLeaves() {
        let (_, unit, tables) = Self.setUp(options: .linux)
        tables.mapLikeLinux(iova: 0xFFFF_F000, to: 0x1_2345_6000)
        #expect(unit.translate(.read(0xFFFF_F008)).address == 0x1_2345_6008)
        #expect(unit.translate(.write(0xFFFF_F008)).address == 0x1_2345_6008)
    }

    @Test("an unmapped address gives reason 0x71, as the Linux guest saw under QEMU")
    func notPresent() {
        let (_, unit, tables) = Self.setUp()
        tables.map(iova: 0x1000, to: 0x2000)
        #expect(unit.translate(.read(0x5000)).faultReason == .flEntryNotPresent)
    }

    @Test("five-level tables (FLPM 1) need CAP.FS5LP; with it 57-bit addresses translate")
    func fiveLevels() {
        let (_, refused, _) = Self.setUp(levels: 5)
        #expect(refused.translate(.read(0x1000)).faultReason == .pasidEntryInvalid)

        let config = VTdConfiguration.scalableFirstLevel.with { $0.firstLevel5Level = true; $0.addressWidth = 57 }
        let (_, unit, tables) = Self.setUp(config, levels: 5)
        tables.map(iova: 0x00FF_0000_0000_1000, to: 0x3000)
        #expect(unit.translate(.read(0x00FF_0000_0000_1010)).address == 0x3010)
        // 57-bit canonical: bit 56 set needs bits 63:57 set.
        #expect(unit.translate(.read(0x0100_0000_0000_0000)).faultReason == .flNonCanonical)
    }

    @Test("non-canonical addresses fault with 0x80 before any table is read")
    func nonCanonical() {
        let (_, unit, tables) = Self.setUp()
        tables.map(iova: 0xFFFF_8000_0000_0000, to: 0x3000)
        #expect(unit.translate(.read(0x0000_8000_0000_0000)).faultReason == .flNonCanonical)
        #expect(unit.translate(.read(0xFFFF_8000_0000_0000)).address == 0x3000)
    }
}
