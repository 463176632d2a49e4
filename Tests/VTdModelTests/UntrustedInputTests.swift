// The guest is untrusted: any IRTE, any MSI, any queue register value gets the spec's answer,
// never a trap, a hang or an access outside what the guest pointed at.

#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import VTdModel

/// Whether `a` and `b` hold the same bytes in `range` (memcmp: fast even in debug builds).
func sameBytes(_ a: [UInt8], _ b: [UInt8], _ range: Range<Int>) -> Bool {
    a.withUnsafeBytes { pa in b.withUnsafeBytes { pb in
        memcmp(pa.baseAddress! + range.lowerBound, pb.baseAddress! + range.lowerBound, range.count) == 0
    } }
}

@Suite("Untrusted guest input: interrupt remapping and page requests")
struct UntrustedInputTests {
    @Test("random IRTEs, tables and requests always give remapped, pass-through or an IR fault 0x20-0x26")
    func randomInterrupts() {
        var bits = SplitMix64(state: 0x9E37_79B9_7F4A_7C15)
        for round in 0..<40 {
            let x2APIC = round % 2 == 1
            let table = InterruptRemappingTableAddress(rawValue: bits.next() & 0xF_F000 | bits.next() & 0x80F)
            let s = InterruptRemappingScenario(x2APIC: x2APIC, compatibilityFormat: round % 3 == 0, table: table)
            for i in 0..<64 {
                let index = UInt32(bits.next() & 0xFF)
                if table.entryAddress(index) + 16 <= 1 << 20 {
                    // Mostly present entries, so the deeper checks run too.
                    s.install(IRTE(low: bits.next() | (i % 4 == 0 ? 0 : 1), high: bits.next() >> UInt64(i % 64)),
                              at: index)
                }
                let address = i % 5 == 0 ? bits.next() : 0xFEE0_0000 | bits.next() & 0xF_FFFF
                let outcome = s.unit.remapInterrupt(sourceID: RequesterID(rawValue: UInt16(truncatingIfNeeded: bits.next())), address: address,
                                                    data: UInt32(truncatingIfNeeded: bits.next() >> UInt64(i % 33)))
                switch outcome {
                case .remapped(let m): #expect(m.address >> 20 & 0xFFF == 0xFEE)
                case .passThrough: break
                case .blocked(let reason): #expect((0x20...0x26).contains(reason.rawValue))
                }
            }
        }
    }

    @Test("random PQA, PQH and PQT values never write outside the queue the guest named")
    func randomPageRequestQueues() {
        var bits = SplitMix64(state: 0x2545_F491_4F6C_DD1D)
        for _ in 0..<40 {
            let pqa = PageRequestQueueAddress(rawValue: 0x40000 | bits.next() & 0x7)
            let s = PageRequestScenario(queue: pqa)
            s.head = bits.next()
            s.tail = bits.next()
            let before = s.guest.record.withLock { $0.ram }
            for i in 0..<300 {
                if i % 50 == 0 { s.head = bits.next() }
                if i % 70 == 0 { s.clearStatus([.pendingPageRequest, .pageRequestOverflow]) }
                _ = s.unit.pageRequest(PageRequest(sourceID: RequesterID(rawValue: UInt16(truncatingIfNeeded: bits.next())),
                                                   pasid: i % 2 == 0 ? nil : PASID(rawValue: UInt32(bits.next() & 0xF_FFFF)),
                                                   address: bits.next(), groupIndex: UInt16(bits.next() & 0x1FF)))
            }
            let after = s.guest.record.withLock { $0.ram }
            let queue = 0x40000..<(0x40000 + pqa.entryCount * 32)
            #expect(sameBytes(after, before, 0..<queue.lowerBound))
            #expect(sameBytes(after, before, queue.upperBound..<after.count))
            #expect(s.tail % 32 == 0 && s.tail < UInt64(pqa.entryCount * 32))
        }
    }
}
