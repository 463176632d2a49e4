// The state dump: decoded registers, cache statistics, and one greppable line per device that
// translations walked for, with the translation type the walk found.

import Testing
@testable import VTdModel

private func lines(_ dump: String, startingWith prefix: String) -> [Substring] {
    dump.split(separator: "\n").filter { $0.hasPrefix(prefix) }
}

@Suite("State dump")
struct StateDumpTests {
    @Test("legacy mode: the device line names the context entry's TT and domain, then the entries it uses")
    func legacyDevice() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.legacy)
        let root = guest.legacyRoot()
        let device = root.device(domain: 7)
        device.map(iova: 0x1000, to: 0x5000)
        unit.enableTranslation(root)
        #expect(unit.translate(.read(0x1000)).address == 0x5000)

        let dump = unit.dumpState()
        #expect(lines(dump, startingWith: "device ") == ["device 00:02.0 pasid none tt multi-level did 7 walks 1"])
        #expect(dump.contains("  root entry \(hex(root.rootEntryAddress(bus: 0))): "))
        #expect(dump.contains("  context entry \(hex(device.contextEntry)): "))
        #expect(dump.contains("GSTS 0x" ) && lines(dump, startingWith: "GSTS")[0].hasSuffix("TES RTPS; DMA remapping on"))
        #expect(dump.contains("root table: \(hex(root.address)) legacy mode"))
    }

    @Test("scalable mode: one line per (device, PASID) with its PGTT, RID_PASID requests as pasid none")
    func scalableDevices() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.scalableNested)
        let root = guest.scalableRoot()
        let device = root.device()
        device.firstLevel(pasid: 0, domain: 1).map(iova: 0x1000, to: 0x5000)
        device.secondLevel(pasid: 5, domain: 2).map(iova: 0x2000, to: 0x6000)
        device.passThrough(pasid: 6, domain: 3)
        unit.enableTranslation(root)
        #expect(unit.translate(.read(0x1000)).address == 0x5000)
        #expect(unit.translate(.read(0x2000, pasid: 5)).address == 0x6000)
        #expect(unit.translate(.read(0x3000, pasid: 6)).address == 0x3000)

        let dump = unit.dumpState()
        #expect(lines(dump, startingWith: "device ") == [
            "device 00:02.0 pasid none pgtt first-level did 1 walks 1",
            "device 00:02.0 pasid 5 pgtt second-level did 2 walks 1",
            "device 00:02.0 pasid 6 pgtt pass-through did 3 walks 1",
        ])
        #expect(dump.contains("  pasid entry \(hex(device.pasidEntryAddress(5))) (pasid 5): "))
        #expect(dump.contains("  pasid directory entry \(hex(device.directoryEntryAddress(0))): "))
    }

    @Test("a walk that faults before any translation type shows the fault; the hit path leaves the table alone")
    func faultsAndHits() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.legacy)
        let root = guest.legacyRoot()
        root.device().map(iova: 0x1000, to: 0x5000)
        unit.enableTranslation(root)
        for _ in 0..<3 { _ = unit.translate(.read(0x1000)) }
        _ = unit.translate(.read(0x1000, sid: 0x0018))

        let dump = unit.dumpState()
        #expect(lines(dump, startingWith: "device ") == [
            "device 00:02.0 pasid none tt multi-level did 1 walks 1",
            "device 00:03.0 pasid none type unknown walks 1 fault 0x02 (contextEntryNotPresent)",
        ])
        #expect(dump.contains("hits 2 misses 2 faults 1 untranslated 0"))
        #expect(dump.contains("fault record 0: sid 00:03.0 pasid none reason 0x02 read 0x1000"))
        #expect(lines(dump, startingWith: "fault status: FSTS 0x00000002 PPF").count == 1)
    }

    @Test("registers decoded: queue, interrupt remapping and events")
    func registersDecoded() {
        let scenario = InvalidationQueueScenario()
        scenario.submit(Desc.iotlbGlobal())
        let dump = scenario.unit.dumpState()
        #expect(dump.contains("invalidation queue: enabled, base 0x20000, 256 x 128-bit descriptors, head 1 tail 1"))
        #expect(dump.contains("interrupt remapping: disabled"))
        #expect(dump.contains("fault event: unmasked, address 0xfee00000 data 0x0031"))
        #expect(dump.contains("root table: none latched"))
        #expect(lines(dump, startingWith: "GSTS")[0].hasSuffix("QIES; DMA remapping off"))
    }

    @Test("the devices table is bounded: the device walked least recently gives way")
    func devicesTableIsBounded() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.legacy)
        unit.enableTranslation(guest.legacyRoot())
        for sid in 0..<UInt16(DevicesSeen.capacity + 10) {
            _ = unit.translate(TranslationRequest(sourceID: RequesterID(rawValue: sid), address: 0, access: .read, recordsFaults: false))
        }
        let devices = lines(unit.dumpState(), startingWith: "device ")
        #expect(devices.count == DevicesSeen.capacity)
        #expect(!devices.contains { $0.hasPrefix("device 00:00.0 ") })
        let newest = UInt16(DevicesSeen.capacity + 9)
        #expect(devices.contains { $0.hasPrefix("device \(RequesterID(rawValue: newest)) ") })
    }

    @Test("reset forgets the devices seen: their tables may be gone")
    func resetForgetsDevices() {
        let guest = GuestMemory()
        let unit = guest.makeUnit(.legacy)
        unit.enableTranslation(guest.legacyRoot())
        _ = unit.translate(.read(0x1000))
        #expect(lines(unit.dumpState(), startingWith: "device ").count == 1)
        unit.reset()
        #expect(lines(unit.dumpState(), startingWith: "device ").isEmpty)
    }
}
