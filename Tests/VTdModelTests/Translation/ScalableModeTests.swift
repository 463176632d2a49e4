import Testing
@testable import VTdModel

@Suite("Translation: scalable-mode root, context and PASID structures (VT-d 9.2, 9.4-9.6)")
struct ScalableModeTests {
    @Test("devfn 128-255 use the upper half of the root entry, indexed by devfn & 0x7F")
    func upperHalf() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel)
        let root = guest.scalableRoot()
        root.device(0x0181).firstLevel().map(iova: 0x1000, to: 0xA000)
        root.device(0x0101).firstLevel().map(iova: 0x1000, to: 0xB000)
        unit.enableTranslation(root)
        #expect(unit.translate(.read(0x1000, sid: 0x0181)).address == 0xA000)
        #expect(unit.translate(.read(0x1000, sid: 0x0101)).address == 0xB000)
        #expect(root.contextTable(bus: 1, upper: true) != root.contextTable(bus: 1, upper: false))
    }

    @Test("requests with a PASID use that PASID's entry; without one PASID 0's, RID_PASID ignored as ECAP.RPS (bit 49) is clear (spec 9.4)")
    func pasidSelectsEntry() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel)
        #expect(unit.mmioRead(offset: Reg.extendedCapability, width: 8) & (1 << 49) == 0)
        let root = guest.scalableRoot()
        let device = root.device(ridPASID: 7)
        device.firstLevel(pasid: 0).map(iova: 0x1000, to: 0x6000)
        device.firstLevel(pasid: 7).map(iova: 0x1000, to: 0x7000)
        device.firstLevel(pasid: 0x1234).map(iova: 0x1000, to: 0x8000)
        unit.enableTranslation(root)
        #expect(unit.translate(.read(0x1000)).address == 0x6000)
        #expect(unit.translate(.read(0x1000, pasid: 0x1234)).address == 0x8000)
        #expect(unit.translate(.read(0x1000, pasid: 7)).address == 0x7000)
    }

    @Test("requests with a PASID need PASIDE in the context entry (0x45)")
    func pasidEnable() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel)
        let root = guest.scalableRoot()
        let device = root.device(pasidEnabled: false)
        device.firstLevel(pasid: 0).map(iova: 0x1000, to: 0x7000)
        device.firstLevel(pasid: 5).map(iova: 0x1000, to: 0x8000)
        unit.enableTranslation(root)
        #expect(unit.translate(.read(0x1000)).address == 0x7000)
        #expect(unit.translate(.read(0x1000, pasid: 5)).faultReason == .smContextEntryPASIDEClear)
    }

    @Test("PDTS bounds the PASID directory: PASIDs past it fault (0x46); requests without PASID use PASID 0")
    func directorySize() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel)
        let root = guest.scalableRoot()
        // PDTS 0: 128 directory entries, PASIDs 0 ... 8191.
        let device = root.device(pasidDirectorySize: 0)
        device.firstLevel(pasid: 8191).map(iova: 0x1000, to: 0x7000)
        unit.enableTranslation(root)
        #expect(unit.translate(.read(0x1000, pasid: 8191)).address == 0x7000)
        // Guest memory right after the directory is what QEMU would read as directory entry 128.
        device.firstLevel(pasid: 8192).map(iova: 0x1000, to: 0x8000)
        #expect(unit.translate(.read(0x1000, pasid: 8192)).faultReason == .smPASIDTooLarge)

        // RID_PASID is ignored without ECAP.RPS: requests without PASID use PASID 0, which every
        // directory holds, whatever the field says.
        let other = root.device(0x0020, pasidDirectorySize: 0, ridPASID: 9000)
        other.firstLevel(pasid: 0).map(iova: 0x1000, to: 0x9000)
        #expect(unit.translate(.read(0x1000, sid: 0x0020)).address == 0x9000)
    }

    @Test("translation requests need DTE in the context entry (0x44)")
    func deviceTLBEnable() {
        for dte in [false, true] {
            let guest = GuestMemory()
            let unit = guest.makeUnit(.scalableFirstLevel)
            let root = guest.scalableRoot()
            root.device(deviceTLB: dte).firstLevel().map(iova: 0x1000, to: 0x7000)
            unit.enableTranslation(root)
            var ats = TranslationRequest.read(0x1000)
            ats.isTranslationRequest = true
            #expect(unit.translate(ats).faultReason == (dte ? nil : .smContextEntryDTEClear))
        }
    }

    @Test("Linux's PASID entry (bit 133 NXE set, PWSNP, AW 2, one DID per device) is accepted")
    func linuxPASIDEntry() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel)
        let root = guest.scalableRoot()
        let device = root.device()
        let tables = FirstLevelTables(guest: guest, levels: 4)
        device.writePASIDEntry(0, [1 | 2 << 2 | 1 << 6, 42 | 1 << 23, tables.root | 1 << 5])
        tables.mapLikeLinux(iova: 0xFFFF_E000, to: 0x3000)
        unit.enableTranslation(root)
        #expect(unit.translate(.write(0xFFFF_E010)).address == 0x3010)
    }

    @Test("reserved PASID entry bits fault with 0x5A (SSADE without ECAP.SLADS, EAFE without ECAP.EAFS too, spec 9.6); reserved PGTT encodings with 0x5B")
    func pasidEntryValidity() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel)
        let root = guest.scalableRoot()
        let device = root.device()
        let tables = FirstLevelTables(guest: guest, levels: 4)
        tables.map(iova: 0x1000, to: 0x7000)
        unit.enableTranslation(root)
        let good: [UInt64] = [1 | 2 << 2 | 1 << 6, 1, tables.root | 1 << 5]
        for (pasid, words, reason) in [
            (UInt32(1), [good[0] | 1 << 10, good[1], good[2]], FaultReason.pasidEntryReserved),
            (2, [good[0], good[1] | 1 << 16, good[2]], .pasidEntryReserved),
            (3, [good[0], good[1], good[2] | 1 << 8], .pasidEntryReserved),
            (4, [good[0], good[1], good[2], 1], .pasidEntryReserved),
            (5, [good[0], good[1], good[2] | 1 << 50], .pasidEntryReserved),
            (6, [good[0] & ~(0b111 << 6) | 0b101 << 6, good[1], good[2]], .pasidEntryInvalid),
            (7, [good[0] & ~(0b111 << 6), good[1], good[2]], .pasidEntryInvalid),
            (8, [good[0], good[1], good[2] | 2 << 2], .pasidEntryInvalid),
            (10, [good[0] | 1 << 9, good[1], good[2]], .pasidEntryReserved),   // SSADE
            (11, [good[0], good[1], good[2] | 1 << 7], .pasidEntryReserved),   // EAFE
        ] as [(UInt32, [UInt64], FaultReason)] {
            device.writePASIDEntry(pasid, words)
            #expect(unit.translate(.read(0x1000, pasid: PASID(rawValue: pasid))).faultReason == reason, "PASID \(pasid)")
        }
        device.writePASIDEntry(9, good)
        #expect(unit.translate(.read(0x1000, pasid: 9)).address == 0x7000)
    }

    @Test("second level: with SLEE (PASID entry bit 5) clear an execute request needs only R; with it set, X (spec 3.7, 3.8.2)")
    func secondLevelExecuteEnable() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableSecondLevel)
        let root = guest.scalableRoot()
        let device = root.device()
        let readOnly = device.secondLevel(pasid: 1, options: [.executeRequests])
        readOnly.map(iova: 0x1000, to: 0x7000, permissions: .read)
        let enabled = device.secondLevel(pasid: 2, options: [.executeRequests])
        enabled.map(iova: 0x1000, to: 0x7000, permissions: .read)
        enabled.map(iova: 0x2000, to: 0x8000, permissions: [.read, .execute])
        let entry = device.pasidEntryAddress(2)
        guest.write64(entry, guest.read64(entry) | 1 << 5)
        unit.enableTranslation(root)
        #expect(unit.translate(.execute(0x1000, pasid: 1)).address == 0x7000)
        #expect(unit.translate(.execute(0x1000, pasid: 2)).faultReason == .executeDenied)
        #expect(unit.translate(.execute(0x2000, pasid: 2)).address == 0x8000)
    }

    @Test("nested: with SLEE clear the second stage lets an instruction fetch through with R only (spec 3.8.2)")
    func nestedSecondStageExecute() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableNested)
        let root = guest.scalableRoot()
        let tables = root.device().nested(pasid: 3, options: [.noExecute, .executeRequests])
        tables.map(iova: 0x1000, guestPhysical: 0x8_0000, host: 0x3_0000)  // second level R/W, no X
        unit.enableTranslation(root)
        #expect(unit.translate(.execute(0x1000, pasid: 3)).address == 0x3_0000)
    }

    @Test("each PGTT is accepted only where the unit offers it (ECAP.FLTS/SLTS/NEST/PT), per entry")
    func pgttPerEntry() {
        let first = VTdConfiguration.scalableFirstLevel
        let second = VTdConfiguration.scalableSecondLevel
        let nested = VTdConfiguration.scalableNested
        let noPT = VTdConfiguration.scalableSecondLevel.with { $0.passThrough = false }
        for (config, accepts) in [
            (first, ["first": true, "second": false, "nested": false, "pt": true]),
            (second, ["first": false, "second": true, "nested": false, "pt": true]),
            (nested, ["first": true, "second": true, "nested": true, "pt": true]),
            (noPT, ["first": false, "second": true, "nested": false, "pt": false]),
        ] {
            let guest = GuestMemory()
            let unit = guest.makeUnit(config)
            let root = guest.scalableRoot()
            let device = root.device()
            device.firstLevel(pasid: 1).map(iova: 0x1000, to: 0x7000)
            device.secondLevel(pasid: 2).map(iova: 0x1000, to: 0x7000)
            let n = device.nested(pasid: 3)
            n.map(iova: 0x1000, guestPhysical: 0x5000, host: 0x7000)
            device.passThrough(pasid: 4)
            unit.enableTranslation(root)
            for (name, pasid) in [("first", UInt32(1)), ("second", 2), ("nested", 3), ("pt", 4)] {
                let fault = unit.translate(.read(0x1000, pasid: PASID(rawValue: pasid))).faultReason
                #expect(fault == (accepts[name]! ? nil : .pasidEntryInvalid), "\(name) under \(config)")
            }
        }
    }

    @Test("output in the interrupt range faults (0x87) for requests without PASID only")
    func interruptRange() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel)
        let root = guest.scalableRoot()
        let device = root.device()
        device.firstLevel(pasid: 0).map(iova: 0x1000, to: 0xFEE0_1000)
        unit.enableTranslation(root)
        #expect(unit.translate(.write(0x1000, pasid: 0)).address == 0xFEE0_1000)
        // The same translation, now cached under PASID 0, is still refused without PASID.
        #expect(unit.translate(.write(0x1000)).faultReason == .smInterruptAddressRange)
    }

    @Test("a reserved TTM in RTADDR blocks every request (0x30)")
    func reservedTTM() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel)
        unit.mmioWrite(offset: Reg.rootTableAddress, value: guest.allocatePage() | 0b11 << 10, width: 8)
        unit.mmioWrite(offset: Reg.globalCommand, value: UInt64(GlobalCommand.setRootTablePointer.rawValue), width: 4)
        unit.mmioWrite(offset: Reg.globalCommand, value: UInt64(GlobalCommand.translationEnable.rawValue), width: 4)
        #expect(unit.translate(.read(0x1000)).faultReason == .smRootTableAddressInvalid)
    }
}

@Suite("Translation: scalable second level, pass-through and nested")
struct ScalableWalkTests {
    static func secondLevel(levels: Int = 4, _ configuration: VTdConfiguration = .scalableSecondLevel)
        -> (GuestMemory, VTdUnit, SecondLevelTables) {
        let guest = GuestMemory()
        let unit = guest.makeUnit(configuration)
        let root = guest.scalableRoot()
        let tables = root.device().secondLevel(levels: levels)
        unit.enableTranslation(root)
        return (guest, unit, tables)
    }

    @Test("PGTT 010 walks the second level from the PASID entry, AW giving the levels")
    func secondLevelWalk() {
        let (_, unit, tables) = Self.secondLevel(levels: 3)
        tables.map(iova: 0x7F_FFFF_F000, to: 0x1234_5000, permissions: .read)
        tables.map(iova: 0x20_0000, to: 0x40_0000, pageSize: .size2M)
        #expect(unit.translate(.read(0x7F_FFFF_F123)).translation
                == Translation(translated: 0x1234_5123, pageMask: ~0xFFF, permissions: [.read]))
        #expect(unit.translate(.write(0x2F_0000)).address == 0x4F_0000)
    }

    @Test("second-level faults use the scalable codes: 0x79 not present, 0x85/0x86 permissions")
    func secondLevelPermissions() {
        let (_, unit, tables) = Self.secondLevel()
        tables.map(iova: 0x1000, to: 0x2000, permissions: .read)
        tables.map(iova: 0x3000, to: 0x4000, permissions: .write)
        #expect(unit.translate(.write(0x1000)).faultReason == .smWriteDenied)
        #expect(unit.translate(.read(0x3000)).faultReason == .smReadDenied)
        #expect(unit.translate(.read(0x5000)).faultReason == .slEntryPermissionDenied)
    }

    @Test("addresses past MGAW fault with 0x83, past the table's own width with 0x84")
    func secondLevelWidth() {
        let (_, unit, _) = Self.secondLevel(levels: 3)
        #expect(unit.translate(.read(1 << 48)).faultReason == .addressBeyondHardwareMax)
        #expect(unit.translate(.read(1 << 39)).faultReason == .slAddressBeyondMax)
    }

    @Test("SNP is reserved in leaves without snoop control (0x7A), a field with it")
    func snoopBit() {
        for snoop in [false, true] {
            let (_, unit, tables) = Self.secondLevel(.scalableSecondLevel.with { $0.snoopControl = snoop })
            tables.map(iova: 0x1000, to: 0x2000, extraBits: SecondLevelTables.snoop)
            #expect(unit.translate(.read(0x1000)).faultReason == (snoop ? nil : .slEntryReserved))
        }
    }

    @Test("TM (bit 62) is reserved unless device-iotlb and stale-tm are both on")
    func transientMapping() {
        for (deviceIOTLB, staleTM) in [(false, false), (true, false), (true, true)] {
            let config = VTdConfiguration.scalableSecondLevel.with { $0.deviceIOTLB = deviceIOTLB; $0.staleTM = staleTM }
            let (_, unit, tables) = Self.secondLevel(config)
            tables.map(iova: 0x1000, to: 0x2000, extraBits: SecondLevelTables.transientMapping)
            #expect(unit.translate(.read(0x1000)).faultReason == (deviceIOTLB && staleTM ? nil : .slEntryReserved))
        }
    }

    @Test("PGTT 100 passes requests through untranslated")
    func passThrough() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel)
        let root = guest.scalableRoot()
        root.device().passThrough(pasid: 0)
        unit.enableTranslation(root)
        let t = unit.translate(.write(0x1234_5678)).translation
        #expect(t?.translated == 0x1234_5678)
        #expect(t?.identity == true)
    }

    static func nested(secondLevels: Int = 4) -> (GuestMemory, VTdUnit, NestedTables) {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableNested)
        let root = guest.scalableRoot()
        let tables = root.device().nested(secondLevels: secondLevels)
        unit.enableTranslation(root)
        return (guest, unit, tables)
    }

    @Test("nested: IOVA -> GPA through the first level, GPA -> host through the second (VT-d 3.8)")
    func nestedWalk() {
        let (_, unit, tables) = Self.nested()
        tables.map(iova: 0x1000, guestPhysical: 0x8_0000, host: 0x3_0000)
        let t = unit.translate(.write(0x1ABC)).translation
        #expect(t?.translated == 0x3_0ABC)
        #expect(t?.permissions == [.read, .write])
    }

    @Test("nested: every first-level table is read through the second level")
    func nestedTablesTranslated() {
        let (_, unit, tables) = Self.nested()
        tables.map(iova: 0x1000, guestPhysical: 0x8_0000, host: 0x3_0000)
        // Unmap the GPA of the level-2 table: the walk can no longer reach level 1 (0x76).
        let tableGPA = tables.firstLevel.entry(iova: 0x1000, level: 3) & 0x000F_FFFF_FFFF_F000
        tables.secondLevel.update(iova: tableGPA, level: 1) { _ in 0 }
        #expect(unit.translate(.read(0x1000)).faultReason == .nestedFLEntryReadDenied)
    }

    @Test("nested: the first-level root unreadable at the second level is 0x75")
    func nestedRootDenied() {
        let (_, unit, tables) = Self.nested()
        tables.map(iova: 0x1000, guestPhysical: 0x8_0000, host: 0x3_0000)
        tables.secondLevel.update(iova: tables.firstLevel.root, level: 1) { $0 & ~SecondLevelTables.read }
        #expect(unit.translate(.read(0x1000)).faultReason == .nestedFLRootReadDenied)
    }

    @Test("nested: accessed/dirty updates need second-level write permission on the table (0x77)")
    func nestedAccessedNeedsWrite() {
        let (_, unit, tables) = Self.nested()
        tables.map(iova: 0x1000, guestPhysical: 0x8_0000, host: 0x3_0000)
        let leafTableGPA = tables.firstLevel.entry(iova: 0x1000, level: 2) & 0x000F_FFFF_FFFF_F000
        tables.secondLevel.update(iova: leafTableGPA, level: 1) { $0 & ~SecondLevelTables.write }
        #expect(unit.translate(.read(0x1000)).faultReason == .nestedFLEntryWriteDenied)
    }

    @Test("nested: a first-level address beyond the second level's width is 0x74")
    func nestedBeyondWidth() {
        // A 3-level second level translates 39-bit guest-physical addresses.
        let (_, unit, tables) = Self.nested(secondLevels: 3)
        tables.firstLevel.map(iova: 0x1000, to: 1 << 40)
        #expect(unit.translate(.read(0x1000)).faultReason == .nestedFLAddressBeyondMGAW)
    }

    @Test("nested: the final access is checked at the second level too (0x85, 0x79)")
    func nestedFinalPermissions() {
        let (_, unit, tables) = Self.nested()
        tables.firstLevel.map(iova: 0x1000, to: 0x8_0000)
        tables.secondLevel.map(iova: 0x8_0000, to: 0x3_0000, permissions: .read)
        tables.firstLevel.map(iova: 0x2000, to: 0x9_0000)
        #expect(unit.translate(.write(0x1000)).faultReason == .smWriteDenied)
        #expect(unit.translate(.read(0x2000)).faultReason == .slEntryPermissionDenied)
    }

    @Test("nested: the output page is the smaller of the two stages' pages")
    func nestedPageSize() {
        let (_, unit, tables) = Self.nested()
        tables.firstLevel.map(iova: 0x20_0000, to: 0x40_0000, pageSize: .size2M)
        tables.secondLevel.map(iova: 0x40_0000, to: 0x80_0000, pageSize: .size2M)
        tables.firstLevel.map(iova: 0x60_0000, to: 0xA0_0000, pageSize: .size2M)
        tables.secondLevel.map(iova: 0xA0_5000, to: 0x7000)
        let big = unit.translate(.read(0x21_2345)).translation
        #expect(big?.translated == 0x81_2345)
        #expect(big?.pageMask == ~UInt64(0x1F_FFFF))
        let small = unit.translate(.read(0x60_5010)).translation
        #expect(small?.translated == 0x7010)
        #expect(small?.pageMask == ~UInt64(0xFFF))
    }

    @Test("nested needs the nesting configuration: otherwise PGTT 011 is invalid (0x5B)")
    func nestedNeedsConfiguration() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableFirstLevel.with { $0.secondLevelWithFirstLevel = true })
        let root = guest.scalableRoot()
        root.device().nested().map(iova: 0x1000, guestPhysical: 0x8_0000, host: 0x3_0000)
        unit.enableTranslation(root)
        #expect(unit.translate(.read(0x1000)).faultReason == .pasidEntryInvalid)
    }

    @Test("a second-level table pointing at itself ends after its levels, in nested walks too")
    func selfReferencing() {
        let (guest, unit, tables) = Self.secondLevel()
        for i in 0..<UInt64(512) { guest.write64(tables.root + i * 8, tables.root | 0b11) }
        #expect(unit.translate(.read(0x1000)).address == tables.root)

        let (nestedGuest, nestedUnit, nestedTables) = Self.nested()
        let sl = nestedTables.secondLevel.root
        for i in 0..<UInt64(512) { nestedGuest.write64(sl + i * 8, sl | 0b11) }
        // Every GPA now maps onto the second-level root page: the first-level walk reads
        // garbage from there and faults, but terminates.
        #expect(nestedUnit.translate(.read(0x1000)).faultReason != nil)
    }
}
