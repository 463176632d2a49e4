import Testing
@testable import VTdModel

@Suite("Translation: scalable mode, first level")
struct FirstLevelTranslationTests {
    /// A unit with x-flts, a device on RID_PASID 0 with a fresh first-level table.
    static func setUp(_ configuration: VTdConfiguration = .scalableFirstLevel, levels: Int = 4,
                      options: PASIDOptions = .linux, pasid: PASID = 0)
        -> (GuestMemory, VTdUnit, FirstLevelTables) {
        let guest = GuestMemory()
        let unit = guest.makeUnit(configuration)
        let root = guest.scalableRoot()
        let tables = root.device().firstLevel(pasid: pasid.rawValue, levels: levels, options: options)
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

@Suite("Translation: first-level access rights (VT-d 3.6.2)")
struct FirstLevelAccessRightsTests {
    typealias F = FirstLevelTables

    @Test("user requests to supervisor pages fault with 0x81")
    func userToSupervisorPage() {
        let (_, unit, tables) = FirstLevelTranslationTests.setUp()
        tables.map(iova: 0x1000, to: 0x2000, user: false)
        #expect(unit.translate(.read(0x1000)).faultReason == .flUserSupervisor)
    }

    @Test("U/S clear in a non-leaf entry makes the whole range supervisor-only")
    func userBitStacks() {
        let (_, unit, tables) = FirstLevelTranslationTests.setUp()
        tables.map(iova: 0x1000, to: 0x2000)
        tables.update(iova: 0x1000, level: 3) { $0 & ~F.user }
        #expect(unit.translate(.read(0x1000)).faultReason == .flUserSupervisor)
    }

    @Test("supervisor requests need SRE (0x5D), then reach supervisor pages")
    func supervisorRequests() {
        let (_, refused, refusedTables) = FirstLevelTranslationTests.setUp(options: .linux, pasid: 3)
        refusedTables.map(iova: 0x1000, to: 0x2000, user: false)
        #expect(refused.translate(.read(0x1000, pasid: 3, privileged: true)).faultReason == .pasidEntrySREClear)

        let (_, unit, tables) = FirstLevelTranslationTests.setUp(options: [.noExecute, .supervisorRequests], pasid: 3)
        tables.map(iova: 0x1000, to: 0x2000, user: false)
        #expect(unit.translate(.read(0x1000, pasid: 3, privileged: true)).address == 0x2000)
    }

    @Test("supervisor writes to read-only pages succeed without WPE and fault (0x85) with it")
    func writeProtect() {
        for wpe in [false, true] {
            var options: PASIDOptions = [.supervisorRequests]
            if wpe { options.insert(.writeProtect) }
            let (_, unit, tables) = FirstLevelTranslationTests.setUp(options: options, pasid: 1)
            tables.map(iova: 0x1000, to: 0x2000, writable: false)
            let t = unit.translate(.write(0x1000, pasid: 1, privileged: true))
            #expect(t.faultReason == (wpe ? .smWriteDenied : nil))
            // User writes honour R/W either way.
            #expect(unit.translate(.write(0x1000, pasid: 1)).faultReason == .smWriteDenied)
        }
    }

    @Test("R/W clear at any level denies user writes with 0x85 and still allows reads")
    func readOnly() {
        let (_, unit, tables) = FirstLevelTranslationTests.setUp()
        tables.map(iova: 0x1000, to: 0x2000)
        tables.update(iova: 0x1000, level: 2) { $0 & ~F.writable }
        #expect(unit.translate(.write(0x1000)).faultReason == .smWriteDenied)
        #expect(unit.translate(.read(0x1000)).translation?.permissions == [.read])
    }

    @Test("execute requests need ERE (0x5C); with NXE, XD anywhere denies them (0x82)")
    func execute() {
        let (_, noERE, noERETables) = FirstLevelTranslationTests.setUp(options: .linux, pasid: 2)
        noERETables.map(iova: 0x1000, to: 0x2000)
        #expect(noERE.translate(.execute(0x1000, pasid: 2)).faultReason == .pasidEntryEREClear)

        let (_, unit, tables) = FirstLevelTranslationTests.setUp(options: [.noExecute, .executeRequests], pasid: 2)
        tables.map(iova: 0x1000, to: 0x2000)
        tables.map(iova: 0x3000, to: 0x4000, executeDisable: true)
        // Write is not granted yet: the page is not dirty.
        #expect(unit.translate(.execute(0x1000, pasid: 2)).translation?.permissions == [.read, .execute])
        #expect(unit.translate(.execute(0x3000, pasid: 2)).faultReason == .executeDenied)
        // XD in the PML4E covers every page below it (0x5000 shares it, and is not cached yet).
        tables.map(iova: 0x5000, to: 0x6000)
        tables.update(iova: 0x5000, level: 4) { $0 | F.executeDisable }
        #expect(unit.translate(.execute(0x5000, pasid: 2)).faultReason == .executeDenied)
    }

    @Test("without NXE, XD is ignored rather than reserved (guests that never set NXE still work)")
    func executeDisableWithoutNXE() {
        let (_, unit, tables) = FirstLevelTranslationTests.setUp(options: [.executeRequests], pasid: 2)
        tables.map(iova: 0x3000, to: 0x4000, executeDisable: true)
        #expect(unit.translate(.read(0x3000, pasid: 2)).address == 0x4000)
        #expect(unit.translate(.execute(0x3000, pasid: 2)).address == 0x4000)
    }

    @Test("with SMEP, supervisor execute requests to user pages fault (0x82)")
    func supervisorExecuteProtect() {
        let options: PASIDOptions = [.noExecute, .executeRequests, .supervisorRequests, .supervisorExecuteProtect]
        let (_, unit, tables) = FirstLevelTranslationTests.setUp(options: options, pasid: 4)
        tables.map(iova: 0x1000, to: 0x2000, user: true)
        tables.map(iova: 0x3000, to: 0x4000, user: false)
        #expect(unit.translate(.execute(0x1000, pasid: 4, privileged: true)).faultReason == .executeDenied)
        #expect(unit.translate(.execute(0x3000, pasid: 4, privileged: true)).address == 0x4000)
        #expect(unit.translate(.execute(0x1000, pasid: 4)).address == 0x2000)
    }

    @Test("requests without PASID take their privilege from RID_PRIV (VT-d 9.4)")
    func ridPrivilege() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel)
        let root = guest.scalableRoot()
        let tables = root.device(ridPrivileged: true).firstLevel(options: [.noExecute, .supervisorRequests])
        tables.map(iova: 0x1000, to: 0x2000, user: false)
        unit.enableTranslation(root)
        #expect(unit.translate(.read(0x1000)).address == 0x2000)
    }
}

@Suite("Translation: first-level pages and reserved bits")
struct FirstLevelPagesTests {
    typealias F = FirstLevelTables

    @Test("2 MiB pages map at the PDE; 1 GiB pages at the PDPTE with CAP.FS1GP")
    func largePages() {
        let (_, unit, tables) = FirstLevelTranslationTests.setUp()
        tables.map(iova: 0x20_0000, to: 0x1_0040_0000, pageSize: .size2M)
        tables.map(iova: 0x4000_0000, to: 0x2_0000_0000, pageSize: .size1G)
        let medium = unit.translate(.read(0x3F_FFF0)).translation
        #expect(medium?.translated == 0x1_005F_FFF0)
        #expect(medium?.pageMask == ~UInt64(0x1F_FFFF))
        let big = unit.translate(.read(0x7FFF_FFF0)).translation
        #expect(big?.translated == 0x2_3FFF_FFF0)
        #expect(big?.pageMask == ~UInt64(0x3FFF_FFFF))
    }

    @Test("a 1 GiB page without CAP.FS1GP is a reserved-bit fault (0x72)")
    func oneGigabyteNeedsCapability() {
        let (_, unit, tables) = FirstLevelTranslationTests.setUp(.scalableFirstLevel.with { $0.firstLevel1GPages = false })
        tables.map(iova: 0x4000_0000, to: 0x2_0000_0000, pageSize: .size1G)
        #expect(unit.translate(.read(0x4000_0000)).faultReason == .flEntryReserved)
    }

    @Test("reserved bits fault with 0x72: PS in a PML4E, address bits above HAW, a misaligned 2 MiB frame")
    func reservedBits() {
        let (_, unit, tables) = FirstLevelTranslationTests.setUp()
        tables.map(iova: 0x1000, to: 0x2000)
        tables.update(iova: 0x1000, level: 4) { $0 | F.pageSize }
        #expect(unit.translate(.read(0x1000)).faultReason == .flEntryReserved)

        tables.map(iova: 0x1_0000_1000, to: 1 << 48)
        #expect(unit.translate(.read(0x1_0000_1000)).faultReason == .flEntryReserved)

        tables.map(iova: 0x2_0000_0000, to: 0x40_2000, pageSize: .size2M)
        #expect(unit.translate(.read(0x2_0000_0000)).faultReason == .flEntryReserved)
    }

    @Test("bits 62:52 are ignored, as x86 ignores them")
    func ignoredBits() {
        let (_, unit, tables) = FirstLevelTranslationTests.setUp()
        tables.map(iova: 0x1000, to: 0x2000, extraBits: 0x7FF0_0000_0000_0000)
        #expect(unit.translate(.read(0x1000)).address == 0x2000)
    }

    @Test("a first-level table that points at itself ends after four reads")
    func selfReferencingTable() {
        let (guest, unit, tables) = FirstLevelTranslationTests.setUp()
        for i in 0..<UInt64(512) { guest.write64(tables.rootHost + i * 8, tables.rootHost | 0x7) }
        let reads = guest.readCount
        #expect(unit.translate(.read(0x1000)).address == tables.rootHost)
        // Root entry, context entry, PASID directory entry, PASID entry, four table entries.
        #expect(guest.readCount - reads == 8)
    }
}

@Suite("Translation: first-level accessed and dirty bits (VT-d 3.6.3)")
struct AccessedDirtyTests {
    typealias F = FirstLevelTables

    @Test("a read sets A at every level and D nowhere")
    func readSetsAccessed() {
        let (_, unit, tables) = FirstLevelTranslationTests.setUp()
        tables.map(iova: 0x1000, to: 0x2000)
        _ = unit.translate(.read(0x1000))
        for level in 1...4 {
            #expect(tables.entry(iova: 0x1000, level: level) & F.accessed != 0, "level \(level)")
            #expect(tables.entry(iova: 0x1000, level: level) & F.dirty == 0, "level \(level)")
        }
    }

    @Test("a write sets D at the leaf only")
    func writeSetsDirty() {
        let (_, unit, tables) = FirstLevelTranslationTests.setUp()
        tables.map(iova: 0x1000, to: 0x2000)
        _ = unit.translate(.write(0x1000))
        #expect(tables.entry(iova: 0x1000, level: 1) & (F.accessed | F.dirty) == F.accessed | F.dirty)
        for level in 2...4 { #expect(tables.entry(iova: 0x1000, level: level) & F.dirty == 0) }
    }

    @Test("write is granted only once the leaf is dirty, so the first write walks and sets D")
    func writeNeedsDirty() {
        let (_, unit, tables) = FirstLevelTranslationTests.setUp()
        tables.map(iova: 0x1000, to: 0x2000)
        #expect(unit.translate(.read(0x1000)).translation?.permissions == [.read])
        #expect(unit.translate(.write(0x1000)).translation?.permissions == [.read, .write])
        #expect(tables.entry(iova: 0x1000, level: 1) & F.dirty != 0)
        #expect(unit.translate(.read(0x1000)).translation?.permissions == [.read, .write])
    }

    @Test("EAFE without ECAP.EAFS is a reserved bit (0x5A): no walk, no extended-accessed bit written (spec 9.6)")
    func extendedAccessed() {
        let (_, unit, tables) = FirstLevelTranslationTests.setUp(options: [.noExecute, .extendedAccessed])
        #expect(unit.mmioRead(offset: Reg.extendedCapability, width: 8) & (1 << 34) == 0)
        tables.map(iova: 0x1000, to: 0x2000)
        #expect(unit.translate(.read(0x1000)).faultReason == .pasidEntryReserved)
        for level in 1...4 { #expect(tables.entry(iova: 0x1000, level: level) & F.extendedAccessed == 0) }
    }

    @Test("entries already accessed and dirty are not written at all")
    func noNeedlessWrites() {
        let (guest, unit, tables) = FirstLevelTranslationTests.setUp()
        tables.mapLikeLinux(iova: 0x1000, to: 0x2000)
        for level in 2...4 { tables.update(iova: 0x1000, level: level) { $0 | F.accessed } }
        _ = unit.translate(.write(0x1000))
        #expect(guest.compareExchangeCount == 0)
    }

    @Test("a concurrent A/D change by a CPU makes the exchange fail; the walk merges and retries")
    func concurrentAccessedDirty() {
        let (guest, unit, tables) = FirstLevelTranslationTests.setUp()
        tables.map(iova: 0x1000, to: 0x2000)
        for level in 2...4 { tables.update(iova: 0x1000, level: level) { $0 | F.accessed } }
        // The CPU sets A on the leaf just before our exchange: ours fails, then adds D.
        guest.interfereWithNextCompareExchanges { $0 | F.accessed }
        #expect(unit.translate(.write(0x1000)).address == 0x2000)
        #expect(guest.compareExchangeCount == 2)
        #expect(tables.entry(iova: 0x1000, level: 1) & (F.accessed | F.dirty) == F.accessed | F.dirty)
    }

    @Test("an entry rewritten under the walk restarts it: the new mapping is used and updated")
    func entryRewrittenDuringUpdate() {
        let (guest, unit, tables) = FirstLevelTranslationTests.setUp()
        tables.map(iova: 0x1000, to: 0x2000)
        for level in 2...4 { tables.update(iova: 0x1000, level: level) { $0 | F.accessed } }
        guest.interfereWithNextCompareExchanges { $0 & ~0x000F_FFFF_FFFF_F000 | 0x9000 }
        #expect(unit.translate(.read(0x1000)).address == 0x9000)
        #expect(tables.entry(iova: 0x1000, level: 1) == 0x9000 | F.present | F.writable | F.user | F.accessed)
    }

    @Test("when the exchange itself fails the request faults with 0x91")
    func updateFails() {
        let (guest, unit, tables) = FirstLevelTranslationTests.setUp()
        tables.map(iova: 0x1000, to: 0x2000)
        guest.failCompareExchanges()
        #expect(unit.translate(.read(0x1000)).faultReason == .flAccessedDirtyUpdateFailed)
    }

    @Test("a CPU that rewrites the entry forever cannot hang the walk (bounded restarts, 0x91)")
    func endlessRewrites() {
        let (guest, unit, tables) = FirstLevelTranslationTests.setUp()
        tables.map(iova: 0x1000, to: 0x2000)
        // Bit 52 is ignored by the walk but is not an A/D bit: every exchange finds a rewritten entry.
        guest.interfereWithNextCompareExchanges(1000) { $0 ^ (1 << 52) }
        #expect(unit.translate(.read(0x1000)).faultReason == .flAccessedDirtyUpdateFailed)
        #expect(guest.compareExchangeCount < 100)
    }
}
