// Migration: the saved architectural state reproduces the unit on the destination; caches are
// rebuilt, not carried; a blob that is truncated, corrupted, from another format version or from
// a unit with other capabilities is refused with a reason and changes nothing.

import Testing
@testable import VTdModel

/// A source unit with something in every part of its state: translation on over a legacy table
/// (IOVA 0x1000 -> 0x5000, cached), a pending fault, interrupt remapping on, queued invalidation
/// on with one wait descriptor done, fault and invalidation events unmasked.
private struct MigrationScenario {
    static var configuration: VTdConfiguration { .legacy.with { $0.faultRecords = 4 } }

    let guest = GuestMemory()
    let source: VTdUnit
    let queue: UInt64
    let status: UInt64

    init() {
        source = guest.makeUnit(Self.configuration)
        let root = guest.legacyRoot()
        root.device(domain: 1).map(iova: 0x1000, to: 0x5000)
        source.enableTranslation(root)
        source.armFaultEvent()
        #expect(source.translate(.read(0x1000)).address == 0x5000)
        #expect(source.translate(.read(0x9000)).faultReason == .readDenied)

        let irt = guest.allocatePage()
        guest.write64(irt + 2 * 16, 1 | 0x61 << 16 | 0x0300 << 32)
        source.mmioWrite(offset: Reg.interruptRemappingTableAddress, value: irt | 3, width: 8)
        source.mmioWrite(offset: Reg.globalCommand, value: UInt64(GlobalCommand.setInterruptRemappingTablePointer.rawValue
                                                                   | GlobalCommand.translationEnable.rawValue), width: 4)
        source.mmioWrite(offset: Reg.globalCommand, value: UInt64(GlobalCommand.interruptRemappingEnable.rawValue
                                                                   | GlobalCommand.translationEnable.rawValue), width: 4)

        queue = guest.allocatePage()
        status = guest.allocatePage()
        source.mmioWrite(offset: Reg.invalidationQueueAddress, value: queue, width: 8)
        source.mmioWrite(offset: Reg.globalCommand, value: UInt64(GlobalCommand.interruptRemappingEnable.rawValue
                                                                   | GlobalCommand.translationEnable.rawValue
                                                                   | GlobalCommand.queuedInvalidationEnable.rawValue), width: 4)
        source.mmioWrite(offset: Reg.invalidationEventControl, value: 0, width: 4)
        place(Desc.wait(status: 1, at: status), at: 0)
        source.mmioWrite(offset: Reg.invalidationQueueTail, value: 1 << 4, width: 8)
        #expect(source.mmioRead(offset: Reg.invalidationQueueHead, width: 8) == 1 << 4)
    }

    func place(_ d: InvalidationDescriptor, at index: Int) {
        guest.write64(queue + UInt64(index) * 16, d.words.0)
        guest.write64(queue + UInt64(index) * 16 + 8, d.words.1)
    }

    func destination(_ configuration: VTdConfiguration = Self.configuration) -> VTdUnit {
        guest.makeUnit(configuration)
    }
}

/// Every register as the guest reads it, 32 bits at a time.
private func guestView(_ unit: VTdUnit) -> [UInt64] {
    stride(from: 0, to: unit.windowSize, by: 4).map { unit.mmioRead(offset: $0, width: 4) }
}

private func load(_ blob: [UInt8], into unit: VTdUnit) -> StateBlobError? {
    blob.withUnsafeBytes { bytes in
        do throws(StateBlobError) {
            try unit.loadState(bytes)
            return nil
        } catch {
            return error
        }
    }
}

/// The blob with its checksum made right again, for blobs edited on purpose.
private func resealed(_ blob: [UInt8]) -> [UInt8] {
    var b = blob
    let crc = b.withUnsafeBytes { CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[24...])) }
    for i in 0..<4 { b[16 + i] = UInt8(truncatingIfNeeded: crc >> UInt32(8 * i)) }
    return b
}

@Suite("Migration: save and load of the architectural state")
struct MigrationTests {
    @Test("a loaded unit has the source's register image, latched pointers and next fault record")
    func roundTripReproducesTheState() {
        let s = MigrationScenario()
        let destination = s.destination()
        #expect(load(s.source.saveState(), into: destination) == nil)
        #expect(guestView(destination) == guestView(s.source))
        let (a, b) = (s.source.state.withLock { $0.savedState() }, destination.state.withLock { $0.savedState() })
        #expect(a == b)
        #expect(b.latchedRootTable != nil && b.nextFaultRecord == 1)
        // Saving the destination gives the same blob back.
        #expect(destination.saveState() == s.source.saveState())
    }

    @Test("the loaded unit behaves as the source: translation, interrupt remapping, faults, the queue")
    func loadedUnitBehavesAsTheSource() {
        let s = MigrationScenario()
        let destination = s.destination()
        #expect(load(s.source.saveState(), into: destination) == nil)
        #expect(destination.translate(.read(0x1008)).address == 0x5008)
        let msi = InterruptRequestAddress.remappable(handle: 2, subhandleValid: false).rawValue
        let remapped = destination.remapInterrupt(sourceID: 0x10, address: msi, data: 0)
        guard case .remapped = remapped else {
            Issue.record("IRTE 2 should remap, got \(remapped)")
            return
        }
        #expect(remapped == s.source.remapInterrupt(sourceID: 0x10, address: msi, data: 0))
        // The next fault, from another device, lands in record 1 on both: FRI and the pending
        // record came along.
        for unit in [s.source, destination] { _ = unit.translate(.read(0x1000, sid: 0x0018)) }
        #expect(destination.faultRecord(1) == s.source.faultRecord(1))
        #expect(destination.faultRecord(1).fault && destination.faultRecord(0).fault)
        // The queue goes on from the head the source left.
        s.place(Desc.wait(status: 2, at: s.status), at: 1)
        destination.mmioWrite(offset: Reg.invalidationQueueTail, value: 2 << 4, width: 8)
        #expect(destination.mmioRead(offset: Reg.invalidationQueueHead, width: 8) == 2 << 4)
        #expect(s.guest.read64(s.status) & 0xFFFF_FFFF == 2)
    }

    @Test("caches are rebuilt, not carried: the destination starts empty and walks again")
    func cachesAreNotMigrated() {
        let s = MigrationScenario()
        #expect(s.source.state.withLock { $0.caches.iotlb.count } == 1)
        let destination = s.destination()
        #expect(load(s.source.saveState(), into: destination) == nil)
        #expect(destination.state.withLock { $0.caches.iotlb.count + $0.caches.context.count + $0.interruptRemapping.entryCache.validEntryCount } == 0)
        #expect(destination.translate(.read(0x1000)).address == 0x5000)
        #expect(destination.state.withLock { $0.statistics.walks } == 1)
    }

    @Test("loading asks the host to re-query every device and interrupt route")
    func loadNotifiesTheHost() {
        let s = MigrationScenario()
        let platform = GuestMemory()
        let destination = platform.makeUnit(MigrationScenario.configuration)
        #expect(load(s.source.saveState(), into: destination) == nil)
        #expect(platform.events == [.contextChanged(sid: nil, pasid: nil), .interruptCacheInvalidate(index: 0, count: 0)])
    }

    @Test("a unit with other capabilities refuses the blob and keeps its own state")
    func configurationMismatchIsRefused() {
        let s = MigrationScenario()
        let other = s.destination(MigrationScenario.configuration.with { $0.cachingMode = true })
        let before = guestView(other)
        let error = load(s.source.saveState(), into: other)
        guard case .configurationMismatch? = error else {
            Issue.record("expected a configuration mismatch, got \(String(describing: error))")
            return
        }
        #expect(error!.description.contains("CAP 0x"))
        #expect(guestView(other) == before)
        // Fewer fault records: CAP.NFR differs too.
        #expect(load(s.source.saveState(), into: s.destination(.legacy)) != nil)
    }

    @Test("a blob of another format version is refused as such")
    func otherVersionIsRefused() {
        let s = MigrationScenario()
        var blob = s.source.saveState()
        blob[8] = 2
        #expect(load(blob, into: s.destination()) == .unsupportedVersion(2))
        #expect(load(resealed(blob), into: s.destination()) == .unsupportedVersion(2))
    }

    @Test("every truncation is refused as truncated")
    func truncatedBlobsAreRefused() {
        let s = MigrationScenario()
        let blob = s.source.saveState()
        let destination = s.destination()
        let before = guestView(destination)
        for length in 0..<blob.count {
            let error = load(Array(blob.prefix(length)), into: destination)
            guard case .truncated? = error else {
                Issue.record("length \(length): \(String(describing: error))")
                continue
            }
        }
        #expect(guestView(destination) == before)
    }

    @Test("every single-bit corruption is refused, and the checksum catches it in the body")
    func corruptedBlobsAreRefused() {
        let s = MigrationScenario()
        let blob = s.source.saveState()
        let destination = s.destination()
        let before = guestView(destination)
        for index in blob.indices {
            for bit in [0, 5] {
                var bad = blob
                bad[index] ^= 1 << bit
                let error = load(bad, into: destination)
                #expect(error != nil, "byte \(index) bit \(bit)")
                if index >= 24, case .checksumMismatch? = error {} else if index >= 24 {
                    Issue.record("byte \(index) bit \(bit): \(String(describing: error))")
                }
            }
        }
        #expect(guestView(destination) == before)
        #expect(load(blob, into: destination) == nil)
    }

    @Test("fields that pass the checksum but make no sense are refused with a reason, never a trap: next fault record, FSTS.FRI out of range (QEMU #4174), root mode, flags")
    func invalidFieldsAreRefused() {
        let s = MigrationScenario()
        let blob = s.source.saveState()
        let edits: [(offset: Int, value: UInt8, words: String)] = [
            (60, 9, "next fault record 9 of 4"),
            // FSTS (0x34) byte 1 is FRI: QEMU 11.1 aborted the destination on such a stream (#4174).
            (72 + Reg.faultStatus + 1, 9, "fault record index (FSTS.FRI) 9 of 4"),
            (56, 7, "root table mode 7"),
            (44, 3, "unknown flags"),
            (20, 1, "reserved header word"),
            (0x08 + 72, 0xFF, "read-only register at 0x8"),
        ]
        for edit in edits {
            var bad = blob
            bad[edit.offset] = edit.value
            let error = load(resealed(bad), into: s.destination())
            guard case .invalidField(let what)? = error else {
                Issue.record("\(edit.words): \(String(describing: error))")
                continue
            }
            #expect(what.contains(edit.words))
        }
        #expect(load(blob + [0], into: s.destination()) != nil)
    }
}
