import Testing
@testable import VTdModel

@Suite("IRTE fields (VT-d spec 9.10)")
struct IRTEFieldTests {
    @Test("each field of a remapped-format IRTE reads from its own bits (spec 9.10)")
    func fieldsFromRawBits() {
        // P, FPD, DM, RH, TM, DLM=101 (INIT), AVAIL=0xA, V=0x5C, DST=0x0000_2A00,
        // SID=0x1234, SQ=10, SVT=01.
        let low: UInt64 = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | (0b101 << 5) | (0xA << 8) | (0x5C << 16) | (0x2A00 << 32)
        let high: UInt64 = 0x1234 | (0b10 << 16) | (0b01 << 18)
        let entry = IRTE(low: low, high: high)
        #expect(entry.present)
        #expect(entry.faultProcessingDisabled)
        #expect(entry.destinationModeLogical)
        #expect(entry.redirectionHint)
        #expect(entry.levelTriggered)
        #expect(entry.deliveryMode == .initialize)
        #expect(entry.available == 0xA)
        #expect(!entry.postedFormat)
        #expect(entry.vector == 0x5C)
        #expect(entry.destinationField == 0x2A00)
        #expect(entry.destination(extended: false) == 0x2A)
        #expect(entry.destination(extended: true) == 0x2A00)
        #expect(entry.sourceID == 0x1234)
        #expect(entry.sourceQualifier == 0b10)
        #expect(entry.sourceValidation == .requesterID)
        #expect(!entry.hasReservedBitsSet(extended: false))
        #expect(entry.low == low && entry.high == high)
    }

    @Test("the field-wise initializer and the raw view agree (spec 9.10)")
    func builderRoundTrips() {
        let entry = IRTE(faultProcessingDisabled: true, levelTriggered: true, deliveryMode: .nmi, vector: 2,
                         destinationField: 0xFFFF_FFFF, sourceID: 0xFF00, sourceQualifier: 3, sourceValidation: .busRange)
        #expect(entry.present && entry.faultProcessingDisabled && entry.levelTriggered)
        #expect(entry.deliveryMode == .nmi && entry.vector == 2)
        #expect(entry.destination(extended: true) == 0xFFFF_FFFF)
        #expect(entry.sourceID == 0xFF00 && entry.sourceQualifier == 3 && entry.sourceValidation == .busRange)
        #expect(IRTE(low: entry.low, high: entry.high) == entry)
    }

    @Test("reserved bits: 14:12, 31:24, 127:84 always; DST 7:0 and 31:16 only in xAPIC mode (spec 9.10)")
    func reservedBits() {
        let clean = IRTE.xAPIC(vector: 0x30, apic: 1)
        for bit in [12, 13, 14, 24, 31, 84, 100, 127] {
            let dirty = IRTE(rawValue: clean.rawValue | UInt128(1) << UInt128(bit))
            #expect(dirty.hasReservedBitsSet(extended: false), "bit \(bit)")
            #expect(dirty.hasReservedBitsSet(extended: true), "bit \(bit)")
        }
        for bit in [32, 39, 48, 63] {
            let wide = IRTE(rawValue: clean.rawValue | UInt128(1) << UInt128(bit))
            #expect(wide.hasReservedBitsSet(extended: false), "bit \(bit)")
            #expect(!wide.hasReservedBitsSet(extended: true), "bit \(bit)")
        }
        // AVAIL belongs to software.
        #expect(!IRTE(rawValue: clean.rawValue | 0xF00).hasReservedBitsSet(extended: false))
    }
}

@Suite("Interrupt request formats (VT-d spec 5.1)")
struct InterruptRequestFormatTests {
    @Test("the handle is address bits 19:5 plus bit 2 as handle[15]; SHV is bit 3 (spec 5.1)")
    func handleBits() {
        let request = InterruptRequestAddress(rawValue: 0xFEE0_0000 | (0x1234 << 5) | 1 << 4 | 1 << 3 | 1 << 2)
        #expect(request.isWellFormed && request.isRemappable && request.subhandleValid)
        #expect(request.handle == 0x9234)
        #expect(InterruptRequestAddress.remappable(handle: 0x9234, subhandleValid: true) == request)
        #expect(!InterruptRequestAddress(rawValue: 0x1_FEE0_0010).isWellFormed)
        #expect(!InterruptRequestAddress(rawValue: 0xFED0_0010).isWellFormed)
    }

    @Test("the delivered MSI carries destination, DM, RH in the address and vector, DLM, TM in the data")
    func compatibilityEncoding() {
        let msi = CompatibilityMSI(destination: 0x7, logicalDestination: true, redirectionHint: true, vector: 0x41,
                                   deliveryMode: .lowestPriority, levelTriggered: true)
        #expect(msi.address == 0xFEE0_700C)
        #expect(msi.data == 0x41 | 0x100 | 0x4000 | 0x8000)
        let x2 = CompatibilityMSI(destination: 0x0001_2345, vector: 0x20)
        #expect(x2.address == 0x0001_2300_FEE4_5000)
        #expect(x2.data == 0x4020)
    }
}

@Suite("Interrupt remapping (VT-d spec 5.1)")
struct InterruptRemappingTests {
    @Test("with remapping disabled every request passes through untranslated (spec 5.1)")
    func disabledPassesThrough() {
        let s = InterruptRemappingScenario()
        s.install(.xAPIC(vector: 0x30, apic: 1), at: 0)
        s.unit.disableInterruptRemapping()
        #expect(s.remap(handle: 0) == .passThrough)
        #expect(s.remapCompatibilityFormat() == .passThrough)
        #expect(s.guest.reads == 0)
    }

    @Test("a remappable MSI becomes the IRTE's vector and xAPIC destination (spec 9.10)")
    func remapsXAPIC() {
        let s = InterruptRemappingScenario()
        s.install(IRTE(destinationModeLogical: true, redirectionHint: true, levelTriggered: true,
                       deliveryMode: .lowestPriority, vector: 0x31, destinationField: 0x0500), at: 9)
        let expected = CompatibilityMSI(destination: 5, logicalDestination: true, redirectionHint: true, vector: 0x31,
                                        deliveryMode: .lowestPriority, levelTriggered: true).message
        #expect(s.remap(handle: 9) == .remapped(expected))
        #expect(expected.address == 0xFEE0_500C && expected.data == 0xC131)
    }

    @Test("in x2APIC mode the 32-bit destination goes to address bits 19:12 and 63:40 (spec 9.10, EIME)")
    func remapsX2APIC() {
        let s = InterruptRemappingScenario(x2APIC: true)
        s.install(IRTE(vector: 0x55, destinationField: 0x0001_0203), at: 3)
        #expect(s.remap(handle: 3) == .remapped(MSIMessage(address: 0x0001_0200_FEE0_3000, data: 0x4055)))
    }

    @Test("without ECAP.EIM the IRTA EIME bit is ignored: destinations stay xAPIC (spec IRTA.EIME)")
    func eimeIgnoredWithoutEIM() {
        let s = InterruptRemappingScenario(x2APIC: false,
                                           table: InterruptRemappingTableAddress(base: 0x10000, sizeField: 7,
                                                                                 extendedInterruptMode: true))
        s.install(.xAPIC(vector: 0x30, apic: 4), at: 0)
        #expect(s.remap(handle: 0) == .remapped(CompatibilityMSI(destination: 4, vector: 0x30).message))
    }

    @Test("the sub-handle in data 15:0 is added to the handle when SHV is set (spec 5.1)")
    func subhandleAdds() {
        let s = InterruptRemappingScenario(table: InterruptRemappingTableAddress(base: 0x10000, sizeField: 15))
        s.install(.xAPIC(vector: 0x70, apic: 2), at: 0x8003)
        #expect(s.remap(handle: 0x8001, subhandle: 2) == .remapped(CompatibilityMSI(destination: 2, vector: 0x70).message))
        // Without SHV the data is not an index.
        s.install(.xAPIC(vector: 0x71, apic: 2), at: 0x8001)
        #expect(s.remap(handle: 0x8001, data: 2) == .remapped(CompatibilityMSI(destination: 2, vector: 0x71).message))
    }

    @Test("SHV with data bits 31:16 set is a reserved-field request: fault 0x20 (spec 5.1, ch. 7)")
    func subhandleUpperBitsFault() {
        let s = InterruptRemappingScenario()
        s.install(.xAPIC(vector: 0x30, apic: 1), at: 1)
        #expect(s.remap(handle: 0, subhandle: 1, data: 0x0001_0001) == .blocked(.irRequestReserved))
        #expect(s.recordedFaultLogs.count == 1)
    }

    @Test("a request with address bits 63:32 set or outside 0xFEEx_xxxx faults 0x20 (spec ch. 7)")
    func malformedAddressFaults() {
        let s = InterruptRemappingScenario()
        #expect(s.unit.remapInterrupt(sourceID: 0x10, address: 0x1_FEE0_0010, data: 0) == .blocked(.irRequestReserved))
        #expect(s.unit.remapInterrupt(sourceID: 0x10, address: 0xFEF0_0010, data: 0) == .blocked(.irRequestReserved))
        #expect(s.guest.reads == 0)
    }

    @Test("an index at or beyond 2^(S+1) entries faults 0x21 without reading the table (spec IRTA.S)")
    func indexOverflow() {
        let s = InterruptRemappingScenario(table: InterruptRemappingTableAddress(base: 0x10000, sizeField: 0))
        s.install(.xAPIC(vector: 0x30, apic: 1), at: 1)
        #expect(s.remap(handle: 1) == .remapped(CompatibilityMSI(destination: 1, vector: 0x30).message))
        let reads = s.guest.reads
        #expect(s.remap(handle: 2) == .blocked(.irIndexOverflow))
        #expect(s.remap(handle: 1, subhandle: 1) == .blocked(.irIndexOverflow))
        #expect(s.remap(handle: 0xFFFF, subhandle: 0xFFFF) == .blocked(.irIndexOverflow))
        #expect(s.guest.reads == reads)
    }

    @Test("an IRTE that cannot be read faults 0x23 (spec ch. 7)")
    func tableAccessError() {
        let s = InterruptRemappingScenario(table: InterruptRemappingTableAddress(base: 0xFFFF_F000, sizeField: 7))
        #expect(s.remap(handle: 5) == .blocked(.irTableAccessError))
        #expect(s.recordedFaultLogs.count == 1)
    }

    @Test("a not-present IRTE faults 0x22; with FPD set the fault is not recorded (spec 9.10 FPD, ch. 7)")
    func notPresentAndFPD() {
        let s = InterruptRemappingScenario()
        s.install(IRTE(present: false, vector: 0x30, destinationField: 0x100), at: 1)
        s.install(IRTE(present: false, faultProcessingDisabled: true, vector: 0x30, destinationField: 0x100), at: 2)
        #expect(s.remap(handle: 1) == .blocked(.irEntryNotPresent))
        #expect(s.recordedFaultLogs.count == 1)
        #expect(s.remap(handle: 2) == .blocked(.irEntryNotPresent))
        #expect(s.recordedFaultLogs.count == 1)
        #expect(s.guest.logs(.trace).contains { $0.contains("not recorded") })
    }

    @Test("reserved bits in the IRTE fault 0x24, and FPD silences it (spec 9.10, ch. 7)")
    func reservedEntryFaults() {
        let s = InterruptRemappingScenario()
        let clean = IRTE.xAPIC(vector: 0x30, apic: 1)
        s.install(IRTE(rawValue: clean.rawValue | 1 << 12), at: 1)
        s.install(IRTE(rawValue: clean.rawValue | UInt128(1) << 90), at: 2)
        s.install(IRTE(rawValue: clean.rawValue | UInt128(1) << 33), at: 3)  // DST bit 1: reserved in xAPIC mode
        s.install(IRTE(rawValue: clean.rawValue | 1 << 12 | 1 << 1), at: 4)  // with FPD
        for handle: UInt16 in 1...4 {
            #expect(s.remap(handle: handle) == .blocked(.irEntryReserved), "entry \(handle)")
        }
        #expect(s.recordedFaultLogs.count == 3)
    }

    @Test("the same DST bits are a valid x2APIC destination (spec 9.10)")
    func x2APICUsesWholeDestination() {
        let s = InterruptRemappingScenario(x2APIC: true)
        s.install(IRTE(vector: 0x30, destinationField: 0x0000_0102), at: 1)
        #expect(s.remap(handle: 1) == .remapped(CompatibilityMSI(destination: 0x102, vector: 0x30).message))
    }

    @Test("reserved delivery modes 011b and 110b fault 0x24 instead of reaching the APIC (spec 9.10 DLM)")
    func reservedDeliveryMode() {
        let s = InterruptRemappingScenario()
        s.install(IRTE(deliveryMode: DeliveryMode(rawValue: 0b011), vector: 0x30, destinationField: 0x100), at: 1)
        s.install(IRTE(deliveryMode: DeliveryMode(rawValue: 0b110), vector: 0x30, destinationField: 0x100), at: 2)
        s.install(IRTE(deliveryMode: .extINT, vector: 0x30, destinationField: 0x100), at: 3)
        #expect(s.remap(handle: 1) == .blocked(.irEntryReserved))
        #expect(s.remap(handle: 2) == .blocked(.irEntryReserved))
        #expect(s.remap(handle: 3) == .remapped(CompatibilityMSI(destination: 1, vector: 0x30, deliveryMode: .extINT).message))
    }

    @Test("a posted-format IRTE is refused with 0x24 and a guest-error log: CAP.PI is not offered (spec 9.11)")
    func postedFormatRefused() {
        let s = InterruptRemappingScenario()
        s.install(IRTE(rawValue: IRTE.xAPIC(vector: 0x30, apic: 1).rawValue | 1 << 15), at: 1)
        #expect(s.remap(handle: 1) == .blocked(.irEntryReserved))
        #expect(s.recordedFaultLogs.contains { $0.contains("posted format") })
    }

    @Test("compatibility format is blocked with 0x25 while GSTS.CFIS is clear (spec 5.1, GSTS.CFIS)")
    func compatibilityBlockedWithoutCFIS() {
        let s = InterruptRemappingScenario(compatibilityFormat: false)
        #expect(s.remapCompatibilityFormat() == .blocked(.irCompatibilityBlocked))
        #expect(s.recordedFaultLogs.count == 1)
    }

    @Test("compatibility format passes through untranslated when GSTS.CFIS is set (spec 5.1, GSTS.CFIS)")
    func compatibilityAllowedWithCFIS() {
        let s = InterruptRemappingScenario(compatibilityFormat: true)
        #expect(s.remapCompatibilityFormat() == .passThrough)
        #expect(s.guest.reads == 0)
    }

    @Test("in x2APIC mode compatibility format is blocked even with CFIS set (spec GSTS.CFIS)")
    func compatibilityBlockedInX2APICMode() {
        let s = InterruptRemappingScenario(x2APIC: true, compatibilityFormat: true)
        #expect(s.remapCompatibilityFormat() == .blocked(.irCompatibilityBlocked))
    }

    @Test("a probe (route pre-computation) faults but records nothing")
    func probeRecordsNothing() {
        let s = InterruptRemappingScenario()
        #expect(s.remap(handle: 1, recordsFaults: false) == .blocked(.irEntryNotPresent))
        #expect(s.recordedFaultLogs.isEmpty)
        #expect(!s.firstFaultRecord.fault)
    }

    @Test("a recorded fault holds reason, requester and the interrupt index in FI 63:48 (spec 7.2)")
    func faultRecordContents() {
        let s = InterruptRemappingScenario()
        #expect(s.remap(sid: 0x0308, handle: 5) == .blocked(.irEntryNotPresent))
        let record = s.firstFaultRecord
        #expect(record.fault)
        #expect(record.reason == FaultReason.irEntryNotPresent.rawValue)
        #expect(record.sourceID == 0x0308)
        #expect(record.interruptIndex == 5)
        // Interrupt requests are writes (T = 0) without PASID.
        #expect(!record.isRead && !record.pasidPresent)
    }

    @Test("with FPD set in the IRTE the fault recording registers stay empty (spec 9.10 FPD)")
    func fpdLeavesRecordsEmpty() {
        let s = InterruptRemappingScenario()
        s.install(IRTE(present: false, faultProcessingDisabled: true, vector: 0x30, destinationField: 0x100), at: 2)
        #expect(s.remap(handle: 2) == .blocked(.irEntryNotPresent))
        #expect(!s.firstFaultRecord.fault)
    }

    @Test("faults that precede the IRTE (0x20, 0x21, 0x23, 0x25) are recorded with their reason (spec 7.1)",
          arguments: [FaultReason.irRequestReserved, .irIndexOverflow, .irTableAccessError, .irCompatibilityBlocked])
    func unqualifiedFaultsRecorded(_ reason: FaultReason) {
        let s = InterruptRemappingScenario(
            table: InterruptRemappingTableAddress(base: reason == .irTableAccessError ? 0xFFFF_F000 : 0x10000, sizeField: 0))
        let outcome: InterruptRemapOutcome
        switch reason {
        case .irRequestReserved: outcome = s.remap(handle: 0, subhandle: 0, data: 0x1_0000)
        case .irIndexOverflow: outcome = s.remap(handle: 2)
        case .irTableAccessError: outcome = s.remap(handle: 1)
        default: outcome = s.remapCompatibilityFormat()
        }
        #expect(outcome == .blocked(reason))
        #expect(s.firstFaultRecord.fault && s.firstFaultRecord.reason == reason.rawValue)
    }
}

@Suite("Source-id verification (VT-d spec 9.10 SVT/SQ/SID)")
struct SourceIDVerificationTests {
    func entry(_ svt: SourceValidationType, sq: UInt8 = 0, sid: RequesterID) -> IRTE {
        IRTE(vector: 0x30, destinationField: 0x100, sourceID: sid, sourceQualifier: sq, sourceValidation: svt)
    }

    @Test("SVT 00: any requester may use the entry")
    func noVerification() {
        let s = InterruptRemappingScenario()
        s.install(entry(.none, sid: 0x0808), at: 1)
        #expect(s.remap(sid: 0x1234, handle: 1) != .blocked(.irSourceIDMismatch))
    }

    struct QualifierCase: Sendable, CustomTestStringConvertible {
        let sq: UInt8
        let allowed: [UInt16]
        let refused: [UInt16]
        var testDescription: String { "SQ \(sq)" }
    }
    static let qualifierCases = [
        QualifierCase(sq: 0, allowed: [0x0808], refused: [0x0809, 0x080C, 0x0908]),
        QualifierCase(sq: 1, allowed: [0x0808, 0x080C], refused: [0x0809, 0x080A]),
        QualifierCase(sq: 2, allowed: [0x0808, 0x080A, 0x080C, 0x080E], refused: [0x0809, 0x0810]),
        QualifierCase(sq: 3, allowed: [0x0808, 0x0809, 0x080F], refused: [0x0810, 0x0908]),
    ]

    @Test("SVT 01 with SQ 00..11 compares SID ignoring none, bit 2, bits 2:1, bits 2:0 of the function",
          arguments: qualifierCases)
    func requesterIDWithQualifier(_ c: QualifierCase) {
        let s = InterruptRemappingScenario()
        s.install(entry(.requesterID, sq: c.sq, sid: 0x0808), at: 1)
        for sid in c.allowed {
            #expect(s.remap(sid: RequesterID(rawValue: sid), handle: 1) == .remapped(CompatibilityMSI(destination: 1, vector: 0x30).message),
                    "0x\(String(sid, radix: 16))")
        }
        for sid in c.refused {
            #expect(s.remap(sid: RequesterID(rawValue: sid), handle: 1) == .blocked(.irSourceIDMismatch), "0x\(String(sid, radix: 16))")
        }
    }

    @Test("SVT 10: the requester's bus must lie between SID[15:8] and SID[7:0]")
    func busRange() {
        let s = InterruptRemappingScenario()
        s.install(entry(.busRange, sid: 0x0305), at: 1)
        #expect(s.remap(sid: 0x0300, handle: 1) != .blocked(.irSourceIDMismatch))
        #expect(s.remap(sid: 0x05FF, handle: 1) != .blocked(.irSourceIDMismatch))
        #expect(s.remap(sid: 0x02FF, handle: 1) == .blocked(.irSourceIDMismatch))
        #expect(s.remap(sid: 0x0600, handle: 1) == .blocked(.irSourceIDMismatch))
    }

    @Test("SVT 11 is a reserved encoding: fault 0x24 for every requester")
    func reservedValidationType() {
        let s = InterruptRemappingScenario()
        s.install(entry(.reserved, sid: 0x0010), at: 1)
        #expect(s.remap(sid: 0x0010, handle: 1) == .blocked(.irEntryReserved))
    }

    @Test("an IOAPIC's message, with the IOAPIC's own source-id, is verified like any other")
    func ioapicSourceID() {
        let s = InterruptRemappingScenario()
        // What Linux programs for an IOAPIC pin: SVT 01, SQ 00, SID of the IOAPIC (QEMU's is 0xFF:00.0).
        s.install(IRTE(levelTriggered: true, vector: 0x21, destinationField: 0x0200, sourceID: 0xFF00,
                       sourceValidation: .requesterID), at: 4)
        // An IOAPIC RTE in remappable format carries the vector and trigger mode in the data, no SHV.
        #expect(s.remap(sid: 0xFF00, handle: 4, data: 0x8021)
                    == .remapped(CompatibilityMSI(destination: 2, vector: 0x21, levelTriggered: true).message))
        #expect(s.remap(sid: 0x0010, handle: 4, data: 0x8021) == .blocked(.irSourceIDMismatch))
    }

    @Test("FPD also silences source-id verification faults")
    func fpdSilencesSIDFault() {
        let s = InterruptRemappingScenario()
        s.install(IRTE(faultProcessingDisabled: true, vector: 0x30, destinationField: 0x100, sourceID: 0x0808,
                       sourceValidation: .requesterID), at: 1)
        #expect(s.remap(sid: 0x0809, handle: 1) == .blocked(.irSourceIDMismatch))
        #expect(s.recordedFaultLogs.isEmpty)
    }
}

@Suite("Interrupt entry cache (VT-d spec: interrupt entry cache invalidation)")
struct InterruptEntryCacheTests {
    @Test("a validated IRTE is served from the cache without reading guest memory again")
    func hitsAvoidGuestReads() {
        let s = InterruptRemappingScenario()
        s.install(.xAPIC(vector: 0x30, apic: 1), at: 1)
        _ = s.remap(handle: 1)
        let reads = s.guest.reads
        for _ in 0..<10 { _ = s.remap(handle: 1) }
        #expect(s.guest.reads == reads)
    }

    @Test("a hit delivers what the entry's first remap delivered, in xAPIC and x2APIC mode, with SHV",
          arguments: [false, true])
    func hitsDeliverTheSameMessage(x2APIC: Bool) {
        let s = InterruptRemappingScenario(x2APIC: x2APIC)
        s.install(IRTE(destinationModeLogical: true, redirectionHint: true, levelTriggered: true,
                       deliveryMode: .lowestPriority, vector: 0x31, destinationField: x2APIC ? 0x0001_0203 : 0x0500),
                  at: 9)
        let first = s.remap(handle: 8, subhandle: 1)
        guard case .remapped = first else { Issue.record("first remap: \(first)"); return }
        let reads = s.guest.reads
        #expect(s.remap(handle: 8, subhandle: 1) == first)
        #expect(s.remap(handle: 9) == first)
        #expect(s.guest.reads == reads)
    }

    @Test("a cached entry still verifies each requester: a mismatch faults 0x26, the owner is served")
    func hitsVerifyTheRequester() {
        let s = InterruptRemappingScenario()
        let owner: RequesterID = 0x0018
        s.install(IRTE(vector: 0x44, destinationField: 0x0100, sourceID: owner, sourceValidation: .requesterID), at: 2)
        let delivered = CompatibilityMSI(destination: 1, vector: 0x44).message
        #expect(s.remap(sid: owner, handle: 2) == .remapped(delivered))
        #expect(s.remap(sid: 0x0020, handle: 2) == .blocked(.irSourceIDMismatch))
        #expect(s.remap(sid: owner, handle: 2) == .remapped(delivered))
    }

    @Test("until invalidated the cached entry is used; after a global IEC the new entry is")
    func globalInvalidation() {
        let s = InterruptRemappingScenario()
        s.install(.xAPIC(vector: 0x30, apic: 1), at: 1)
        _ = s.remap(handle: 1)
        s.install(.xAPIC(vector: 0x31, apic: 2), at: 1)
        #expect(s.remap(handle: 1) == .remapped(CompatibilityMSI(destination: 1, vector: 0x30).message))
        s.unit.state.withLock { $0.interruptRemapping.entryCache.invalidateAll() }
        #expect(s.remap(handle: 1) == .remapped(CompatibilityMSI(destination: 2, vector: 0x31).message))
    }

    @Test("index-selective IEC drops the 2^IM entries of its aligned block and nothing else")
    func indexSelectiveInvalidation() {
        let s = InterruptRemappingScenario()
        for i: UInt32 in 0..<16 { s.install(.xAPIC(vector: UInt8(0x40 + i), apic: 1), at: i) }
        for i: UInt16 in 0..<16 { _ = s.remap(handle: i) }
        for i: UInt32 in 0..<16 { s.install(.xAPIC(vector: UInt8(0x80 + i), apic: 1), at: i) }
        // IIDX 5 with IM 2 covers entries 4..7.
        s.unit.state.withLock { $0.interruptRemapping.entryCache.invalidate(index: 5, mask: 2) }
        for i: UInt16 in 0..<16 {
            let vector = (4...7).contains(i) ? 0x80 + i : 0x40 + i
            #expect(s.remap(handle: i) == .remapped(CompatibilityMSI(destination: 1, vector: UInt8(vector)).message),
                    "entry \(i)")
        }
    }

    @Test("an IRTE read before an invalidation completed is never cached after it")
    func invalidationDuringReadIsNotCached() {
        let s = InterruptRemappingScenario()
        s.install(.xAPIC(vector: 0x30, apic: 1), at: 1)
        var effects = Effects()
        let step = s.unit.state.withLock {
            $0.beginInterruptRemap(sourceID: 0x10, address: InterruptRequestAddress.remappable(handle: 1).rawValue,
                                   data: 0, recordsFaults: true, effects: &effects)
        }
        guard case let .readEntry(table, index, generation) = step else {
            Issue.record("expected a table read, got \(step)")
            return
        }
        let staleEntry = IRTE.xAPIC(vector: 0x30, apic: 1)
        // The guest rewrites the entry and invalidates while the unit is reading it.
        s.install(.xAPIC(vector: 0x31, apic: 2), at: 1)
        s.unit.state.withLock { $0.interruptRemapping.entryCache.invalidate(index: 1, mask: 0) }
        _ = s.unit.state.withLock {
            $0.finishInterruptRemap(sourceID: 0x10, table: table, index: index, cacheGeneration: generation,
                                    entry: staleEntry, recordsFaults: true, effects: &effects)
        }
        #expect(s.remap(handle: 1) == .remapped(CompatibilityMSI(destination: 2, vector: 0x31).message))
    }

    @Test("a newly latched table never serves the old table's entries")
    func newTableMisses() {
        let s = InterruptRemappingScenario()
        s.install(.xAPIC(vector: 0x30, apic: 1), at: 1)
        _ = s.remap(handle: 1)
        let other = InterruptRemappingTableAddress(base: 0x20000, sizeField: 7)
        s.guest.write64(other.entryAddress(1), IRTE.xAPIC(vector: 0x99, apic: 3).low)
        // Latch the new table without any invalidation.
        s.unit.mmioWrite(offset: Reg.interruptRemappingTableAddress, value: other.rawValue, width: 8)
        let command: GlobalCommand = [.setInterruptRemappingTablePointer, .interruptRemappingEnable]
        s.unit.mmioWrite(offset: Reg.globalCommand, value: UInt64(command.rawValue), width: 4)
        #expect(s.remap(handle: 1) == .remapped(CompatibilityMSI(destination: 3, vector: 0x99).message))
    }

    @Test("faulting entries are not cached: the next request reads the fixed entry")
    func faultsAreNotCached() {
        let s = InterruptRemappingScenario()
        #expect(s.remap(handle: 1) == .blocked(.irEntryNotPresent))
        s.install(.xAPIC(vector: 0x30, apic: 1), at: 1)
        #expect(s.remap(handle: 1) == .remapped(CompatibilityMSI(destination: 1, vector: 0x30).message))
    }

    @Test("reset empties the cache")
    func resetEmpties() {
        let s = InterruptRemappingScenario()
        s.install(.xAPIC(vector: 0x30, apic: 1), at: 1)
        _ = s.remap(handle: 1)
        #expect(s.unit.state.withLock { $0.interruptRemapping.entryCache.validEntryCount } == 1)
        s.unit.reset()
        #expect(s.unit.state.withLock { $0.interruptRemapping.entryCache.validEntryCount } == 0)
    }
}

@Suite("Interrupt remapping under concurrency")
struct InterruptRemappingConcurrencyTests {
    @Test("remaps racing on other threads do not keep a replaced IRTE alive: after each IEC the new entry is served")
    func invalidationRacesWithRemaps() async {
        let s = InterruptRemappingScenario()
        s.install(.xAPIC(vector: 0x20, apic: 1), at: 7)
        let unit = s.unit
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    for _ in 0..<3000 {
                        let outcome = unit.remapInterrupt(sourceID: 0x10,
                                                          address: InterruptRequestAddress.remappable(handle: 7).rawValue,
                                                          data: 0)
                        guard case .remapped(let m) = outcome else {
                            Issue.record("unexpected \(outcome)")
                            return
                        }
                        #expect((0x20...0x7F).contains(m.data & 0xFF))
                    }
                }
            }
            for round in 1..<96 {
                let vector = UInt8(0x20 + round)
                s.install(.xAPIC(vector: vector, apic: 1), at: 7)
                unit.state.withLock { $0.interruptRemapping.entryCache.invalidate(index: 7, mask: 0) }
                #expect(s.remap(handle: 7) == .remapped(CompatibilityMSI(destination: 1, vector: vector).message),
                        "round \(round)")
            }
        }
    }
}

@Suite("Interrupt remapping not offered (intremap=off)")
struct InterruptRemappingOffTests {
    @Test("with intremap off GCMD.IRE does nothing and every interrupt passes through (ECAP.IR clear)")
    func intremapOffPassesThrough() {
        let guest = FakeGuest()
        var configuration = VTdConfiguration()
        configuration.interruptRemapping = false
        let unit = try! VTdUnit(configuration: configuration, platform: guest)
        unit.enableInterruptRemapping(table: InterruptRemappingTableAddress(base: 0x10000, sizeField: 7))
        #expect(unit.mmioRead(offset: Reg.globalStatus, width: 4) & UInt64(GlobalCommand.interruptRemappingEnable.rawValue) == 0)
        #expect(unit.remapInterrupt(sourceID: 0x10, address: InterruptRequestAddress.remappable(handle: 1).rawValue,
                                    data: 0) == .passThrough)
        #expect(unit.remapInterrupt(sourceID: 0x10, address: 0xFEE0_1000, data: 0x40) == .passThrough)
    }
}
