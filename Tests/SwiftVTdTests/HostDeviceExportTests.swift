import CSwiftVTd
import HostAttachment
import HostIOMMU
import HostIOMMUTesting
import Testing
@testable import SwiftVTd

/// Guest RAM behind the C callbacks (sparse 4 KiB pages), plus the log lines and events the
/// library sent.
private final class HostTestGuest {
    var pages: [UInt64: [UInt8]] = [:]
    var logs: [(Int32, String)] = []
    var events: [swiftvtd_event] = []
    /// Runs inside the log callback: a host that calls back into the library from there.
    var onLog: (() -> Void)?

    func write64(_ address: UInt64, _ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { write(address, $0) }
    }

    func read32(_ address: UInt64) -> UInt32 {
        var value: UInt32 = 0
        withUnsafeMutableBytes(of: &value) { read(address, $0) }
        return UInt32(littleEndian: value)
    }

    func write(_ address: UInt64, _ bytes: UnsafeRawBufferPointer) {
        for (i, byte) in bytes.enumerated() {
            let a = address + UInt64(i)
            pages[a >> 12, default: [UInt8](repeating: 0, count: 4096)][Int(a & 0xFFF)] = byte
        }
    }

    func read(_ address: UInt64, _ bytes: UnsafeMutableRawBufferPointer) {
        for i in 0..<bytes.count {
            let a = address + UInt64(i)
            bytes[i] = pages[a >> 12]?[Int(a & 0xFFF)] ?? 0
        }
    }

    /// A unit behind the C ABI whose memory is this guest.
    func makeUnit(_ configure: (inout swiftvtd_config) -> Void) -> OpaquePointer? {
        createUnit(hostOps: { ops in
            ops.opaque = Unmanaged.passUnretained(self).toOpaque()
            ops.dma_read = { opaque, address, buffer, length in
                let guest = Unmanaged<HostTestGuest>.fromOpaque(opaque!).takeUnretainedValue()
                guest.read(address, UnsafeMutableRawBufferPointer(start: buffer, count: Int(length)))
                return 0
            }
            ops.dma_write = { opaque, address, buffer, length in
                let guest = Unmanaged<HostTestGuest>.fromOpaque(opaque!).takeUnretainedValue()
                guest.write(address, UnsafeRawBufferPointer(start: buffer, count: Int(length)))
                return 0
            }
            ops.log = { opaque, level, message in
                let guest = Unmanaged<HostTestGuest>.fromOpaque(opaque!).takeUnretainedValue()
                guest.logs.append((level, String(cString: message!)))
                guest.onLog?()
            }
            ops.event = { opaque, event in
                let guest = Unmanaged<HostTestGuest>.fromOpaque(opaque!).takeUnretainedValue()
                guest.events.append(event!.pointee)
            }
        }, configure)
    }
}

/// Register offsets and bits (VT-d spec 11.4), written here independently of the model.
private enum HReg {
    static let cap: UInt64 = 0x08, ecap: UInt64 = 0x10, gcmd: UInt64 = 0x18, fsts: UInt64 = 0x34
    static let rtaddr: UInt64 = 0x20, iqh: UInt64 = 0x80, iqt: UInt64 = 0x88, iqa: UInt64 = 0x90, iqercd: UInt64 = 0xB0
    static let te: UInt64 = 1 << 31, srtp: UInt64 = 1 << 30, qie: UInt64 = 1 << 26
}

/// A scalable-mode guest with one device whose RID_PASID (0) entry is first-level, and a 256-bit
/// invalidation queue. Layout: root 0x10000, context table 0x11000, PASID directory 0x12000, PASID
/// table 0x13000, first-level root 0x20000, queue 0x30000, wait status 0x40000.
private struct ScalableGuest {
    let guest: HostTestGuest
    let unit: OpaquePointer
    let sid: UInt16
    var tail = 0

    static let flRoot: UInt64 = 0x20000
    static let status: UInt64 = 0x40000
    static let domain: UInt64 = 5

    func mmio(_ offset: UInt64) -> UInt64 { swiftvtd_mmio_read(unit, offset, 8) }
    func mmio32(_ offset: UInt64) -> UInt64 { swiftvtd_mmio_read(unit, offset, 4) }
    func mmio(_ offset: UInt64, _ value: UInt64, _ size: UInt32 = 8) { swiftvtd_mmio_write(unit, offset, value, size) }

    /// Root, context, PASID directory and a first-level PASID entry (PGTT 001b, DID 5, FLPM 0, WPE).
    func programTables() {
        guest.write64(0x10000, 0x11000 | 1)  // root entry of bus 0: LCTP, present
        let context: UInt64 = 0x11000 + UInt64(sid & 0x7F) * 32
        guest.write64(context, 0x12000 | 1)  // PASID directory, PDTS 0, present; RID_PASID 0
        guest.write64(0x12000, 0x13000 | 1)  // directory entry 0: PASID table, present
        guest.write64(0x13000, 1 << 6 | 2 << 2 | 1)  // PGTT first-level, AW 48-bit, present
        guest.write64(0x13008, Self.domain)
        guest.write64(0x13010, Self.flRoot | 1 << 4)  // FLPTR, WPE
    }

    /// SRTP (scalable), queued invalidation with 256-bit descriptors, then TE.
    func enable() {
        mmio(HReg.rtaddr, 0x10000 | 1 << 10)
        mmio(HReg.gcmd, HReg.srtp, 4)
        mmio(HReg.iqa, 0x30000 | 1 << 11)
        mmio(HReg.iqt, 0)
        mmio(HReg.gcmd, HReg.qie, 4)
        mmio(HReg.gcmd, HReg.qie | HReg.te, 4)
    }

    /// Writes a 256-bit descriptor at the tail (not yet submitted).
    mutating func queue(_ lo: UInt64, _ hi: UInt64 = 0) {
        let address: UInt64 = 0x30000 + UInt64(tail) * 32
        guest.write64(address, lo)
        guest.write64(address + 8, hi)
        guest.write64(address + 16, 0)
        guest.write64(address + 24, 0)
        tail += 1
    }

    mutating func pasidCacheInvalidation() { queue(7 | 1 << 4 | Self.domain << 16) }
    mutating func pasidIOTLB(page: UInt64) { queue(6 | 3 << 4 | Self.domain << 16, page << 12) }
    mutating func wait() { queue(5 | 1 << 5 | 1 << 32, Self.status) }
    func submit() { mmio(HReg.iqt, UInt64(tail) << 5) }
    /// No IQE, and the wait's status write reached memory.
    func expectWaitCompleted(sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(mmio32(HReg.fsts) & 0x10 == 0, "IQE", sourceLocation: sourceLocation)
        #expect(guest.read32(Self.status) == 1, "wait status", sourceLocation: sourceLocation)
    }

    /// IQE with IQH on descriptor 0: the queue stopped at the first descriptor of the ring.
    func expectQueueStoppedAtFirstDescriptor(sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(mmio32(HReg.fsts) & 0x10 != 0, "IQE", sourceLocation: sourceLocation)
        #expect(mmio(HReg.iqh) == 0, "IQH", sourceLocation: sourceLocation)
    }

    /// The guest clears FSTS.IQE (RW1C) and the queue runs again from IQH.
    func clearQueueErrorAndResume() {
        mmio(HReg.fsts, 0x10, 4)
        submit()
    }

    /// What a driver sends once it programmed a PASID entry: a PASID-cache invalidation and a wait.
    mutating func invalidatePASIDCache() {
        pasidCacheInvalidation()
        wait()
        submit()
    }
}

/// Sends the unit's host ioctls to `fake` (before any attach).
private func useFakeKernel(_ unit: OpaquePointer, _ fake: FakeIOMMUFD) {
    withHandle(unit) { $0.hostDevices = HostDevices(unit: $0.unit, reporter: $0.platform, seam: fake.seam) }
}

private func hostDevice(_ device: AssignedDevice) -> swiftvtd_host_device {
    var d = swiftvtd_host_device()
    d.size = UInt32(MemoryLayout<swiftvtd_host_device>.size)
    d.iommufd = device.iommufd
    d.device_fd = device.deviceFD
    d.dev_id = device.deviceID.rawValue
    d.ioas_id = device.ioasID.rawValue
    d.hwpt_id = device.hwptID.rawValue
    return d
}

private func attach(_ unit: OpaquePointer, sid: UInt16, _ dev: swiftvtd_host_device) -> (Int32, String) {
    var dev = dev
    var err = [CChar](repeating: 0, count: 512)
    let rc = swiftvtd_host_device_attach(unit, sid, &dev, &err, err.count)
    return (rc, String(cString: err))
}

private func machineDone(_ unit: OpaquePointer, _ mode: swiftvtd_host_mode = SWIFTVTD_HOST_MODE_AUTO) -> (Int32, String) {
    var text = [CChar](repeating: 0, count: 1024)
    let rc = swiftvtd_machine_done(unit, mode.rawValue, &text, text.count)
    return (rc, String(cString: text))
}

private func dump(_ unit: OpaquePointer) -> String {
    var needed = 0
    _ = swiftvtd_dump_state(unit, nil, 0, &needed)
    var text = [CChar](repeating: 0, count: needed)
    _ = swiftvtd_dump_state(unit, &text, text.count, nil)
    return String(cString: text)
}

private func bit(_ value: UInt64, _ n: Int) -> Bool { value & (1 << UInt64(n)) != 0 }

/// A scalable-mode unit (x-flts, caching-mode left off: the decision sets them) with a fake host
/// device at 00:02.0 attached through the C ABI.
private func nestedSetup(profile: FakeIOMMUFD.HostProfile = .nesting(), pasid: Bool = false,
                         awBits: UInt8 = 48, ioasLast: UInt64 = (1 << 48) - 1) throws
    -> (fake: FakeIOMMUFD, device: AssignedDevice, guest: ScalableGuest)
{
    let fake = FakeIOMMUFD()
    fake.apertureLast = ioasLast
    let iommufd = fake.openIOMMUFD()
    let sid: UInt16 = 0x0010
    let device = try fake.assignDevice(requesterID: RequesterID(rawValue: sid),
                                       profile: FakeIOMMUFD.DeviceProfile(host: profile), iommufd: iommufd)
    let guest = HostTestGuest()
    let unit = try #require(guest.makeUnit { $0.scalable_mode = 1; $0.pasid = pasid ? 1 : 0; $0.aw_bits = awBits })
    useFakeKernel(unit, fake)
    let (rc, err) = attach(unit, sid: sid, hostDevice(device))
    #expect(rc == SWIFTVTD_OK.rawValue, "\(err)")
    return (fake, device, ScalableGuest(guest: guest, unit: unit, sid: sid))
}

/// `nestedSetup` after machine_done decided nesting; `parent` is the nest parent the device is on.
private func decidedNestedSetup() throws
    -> (fake: FakeIOMMUFD, device: AssignedDevice, guest: ScalableGuest, parent: ObjectID)
{
    let (fake, device, guest) = try nestedSetup()
    #expect(machineDone(guest.unit).0 == SWIFTVTD_OK.rawValue)
    return (fake, device, guest, try #require(fake.attachment(deviceFD: device.deviceFD)))
}

@Suite("C ABI host devices: negotiation, nested binding, invalidation forwarding")
struct HostDeviceExportTests {
    @Test("every host device nests: the guest sees FLTS and CM without SLTS; the decision is logged and dumped")
    func nestedDecision() throws {
        let (_, _, g) = try nestedSetup()
        defer { swiftvtd_destroy(g.unit) }
        #expect(swiftvtd_host_decision(g.unit) == SWIFTVTD_ENOENT.rawValue)  // not decided yet
        let (rc, decision) = machineDone(g.unit)
        #expect(rc == SWIFTVTD_OK.rawValue)
        #expect(decision.hasPrefix("host mode: nested first-level"))
        // The glue keeps VFIO devices on guest RAM (the nest parent) by this answer.
        #expect(swiftvtd_host_decision(g.unit) == Int32(SWIFTVTD_HOST_MODE_NESTED.rawValue))
        let cap = g.mmio(HReg.cap), ecap = g.mmio(HReg.ecap)
        #expect(bit(cap, 7))  // CM
        #expect(bit(ecap, 47) && !bit(ecap, 46))  // FLTS, no SLTS
        #expect(g.guest.logs.contains { $0.0 == SWIFTVTD_LOG_INFO.rawValue && $0.1.contains("nested first-level") })
        #expect(dump(g.unit).contains("host: host mode: nested first-level"))
        // Decided once.
        #expect(machineDone(g.unit).0 == SWIFTVTD_EINVAL.rawValue)
    }

    @Test("a first-level PASID entry, a PASID-cache invalidation, two P_IOTLBs and a wait: one HWPT alloc (VTD_S1), attach, one batched invalidate")
    func bindAndBatch() throws {
        var (fake, device, g, parent) = try decidedNestedSetup()
        defer { swiftvtd_destroy(g.unit) }
        #expect(fake.objects(iommufd: device.iommufd)[parent] == .hwptPaging(ioas: device.ioasID, nestParent: true,
                                                                               automatic: false))
        // Translation on before the guest fills the PASID entry: the device is blocked until the
        // PASID-cache invalidation reports the entry.
        g.enable()
        #expect(fake.attachment(deviceFD: device.deviceFD) == nil)
        g.programTables()

        fake.clearCallLog()
        g.pasidCacheInvalidation()
        g.pasidIOTLB(page: 1)
        g.pasidIOTLB(page: 5)
        g.wait()
        g.submit()

        let nested = try #require(fake.attachment(deviceFD: device.deviceFD))
        #expect(nested != parent)
        #expect(fake.objects(iommufd: device.iommufd)[nested] == .hwptNested(parent: parent))
        #expect(fake.nestedTable(iommufd: device.iommufd, hwpt: nested)
            == FirstLevelTable(rootPointer: ScalableGuest.flRoot, addressWidth: .bits48, flags: [.writeProtect]))
        #expect(fake.count(.hwptAlloc) == 1)
        #expect(fake.count(.vfioDeviceAttach) == 1)
        #expect(fake.count(.hwptInvalidate) == 1)
        #expect(fake.invalidations(iommufd: device.iommufd, hwpt: nested) == [
            .init(address: 0x1000, pages: 1, leaf: false), .init(address: 0x5000, pages: 1, leaf: false),
        ])
        #expect(g.guest.read32(ScalableGuest.status) == 1)
        #expect(g.mmio32(HReg.fsts) & 0x10 == 0)
        #expect(g.mmio(HReg.iqh) == UInt64(g.tail) << 5)
    }

    @Test("reset puts the device back on the nest parent; detach destroys every HWPT the library made")
    func resetAndDetach() throws {
        var (fake, device, g, parent) = try decidedNestedSetup()
        defer { swiftvtd_destroy(g.unit) }
        g.programTables()
        g.enable()
        g.invalidatePASIDCache()
        let nested = try #require(fake.attachment(deviceFD: device.deviceFD))
        #expect(nested != parent)
        #expect(dump(g.unit).contains("host device 00:02.0"))

        swiftvtd_reset(g.unit)
        #expect(fake.attachment(deviceFD: device.deviceFD) == parent)
        #expect(fake.objects(iommufd: device.iommufd)[nested] == nil)

        #expect(swiftvtd_host_device_detach(g.unit, g.sid) == SWIFTVTD_OK.rawValue)
        #expect(fake.hwpts(iommufd: device.iommufd) == [device.hwptID])
        #expect(fake.attachment(deviceFD: device.deviceFD) == device.hwptID)
    }

    @Test("hot-plug after the decision: nested adopts at once; a unit decided without devices and without CM refuses")
    func hotPlug() throws {
        let (fake, device, g) = try nestedSetup()
        defer { swiftvtd_destroy(g.unit) }
        #expect(machineDone(g.unit).0 == SWIFTVTD_OK.rawValue)
        let second = try fake.assignDevice(requesterID: RequesterID(rawValue: 0x18), iommufd: device.iommufd,
                                           ioas: device.ioasID)
        #expect(attach(g.unit, sid: 0x18, hostDevice(second)).0 == SWIFTVTD_OK.rawValue)
        let attached = try #require(fake.attachment(deviceFD: second.deviceFD))
        #expect(fake.objects(iommufd: device.iommufd)[attached] == .hwptPaging(ioas: device.ioasID, nestParent: true,
                                                                                 automatic: false))

        let guest = HostTestGuest()
        let bare = try #require(guest.makeUnit { $0.scalable_mode = 1 })
        defer { swiftvtd_destroy(bare) }
        useFakeKernel(bare, fake)
        #expect(machineDone(bare).0 == SWIFTVTD_OK.rawValue)
        let third = try fake.assignDevice(requesterID: RequesterID(rawValue: 0x20), iommufd: device.iommufd)
        let (rc, err) = attach(bare, sid: 0x20, hostDevice(third))
        #expect(rc == SWIFTVTD_EUNSUPPORTED.rawValue)
        #expect(err.contains("caching-mode=on"))
    }

    @Test("the host refuses a P_IOTLB and its full flush: IQE with IQH on that descriptor, the wait not completed")
    func partialFailure() throws {
        var (fake, _, g) = try nestedSetup()
        defer { swiftvtd_destroy(g.unit) }
        #expect(machineDone(g.unit).0 == SWIFTVTD_OK.rawValue)
        g.programTables()
        g.enable()
        g.pasidCacheInvalidation()  // descriptor 0
        g.wait()  // 1
        g.submit()
        #expect(g.guest.read32(ScalableGuest.status) == 1)
        g.guest.write64(ScalableGuest.status, 0)

        g.pasidIOTLB(page: 1)  // 2
        g.pasidIOTLB(page: 2)  // 3: refused
        g.pasidIOTLB(page: 3)  // 4
        g.wait()  // 5
        fake.failInvalidation(atEntry: 1, with: .einval)
        fake.failNext(.hwptInvalidate, with: .eio, skipping: 1)  // the fallback full flush
        g.submit()

        #expect(g.mmio32(HReg.fsts) & 0x10 != 0)  // IQE
        #expect(g.mmio(HReg.iqh) == 3 << 5)
        #expect(g.guest.read32(ScalableGuest.status) == 0)
        #expect(g.guest.logs.contains { $0.1.contains("host invalidation failed") }, "\(g.guest.logs)")
    }

    @Test("a host without nesting: shadow decision, CAP.CM and SLTS without FLTS")
    func shadowDecision() throws {
        let (_, _, g) = try nestedSetup(profile: .withoutNesting)
        defer { swiftvtd_destroy(g.unit) }
        let (rc, decision) = machineDone(g.unit)
        #expect(rc == SWIFTVTD_OK.rawValue)
        #expect(decision.hasPrefix("host mode: shadow second-level"))
        // The glue switches VFIO devices to the IOMMU region by this answer.
        #expect(swiftvtd_host_decision(g.unit) == Int32(SWIFTVTD_HOST_MODE_SHADOW.rawValue))
        let cap = g.mmio(HReg.cap), ecap = g.mmio(HReg.ecap)
        #expect(bit(cap, 7))
        #expect(bit(ecap, 46) && !bit(ecap, 47))
        #expect(dump(g.unit).contains("host: host mode: shadow second-level"))
    }

    @Test("shadowing refuses aw-bits wider than the device's host IOAS (read with IOAS_IOVA_RANGES), and says which fits")
    func shadowRefusesWiderGuest() throws {
        let (_, _, g) = try nestedSetup(profile: .withoutNesting, ioasLast: (1 << 47) - 1)
        defer { swiftvtd_destroy(g.unit) }
        let (rc, message) = machineDone(g.unit)
        #expect(rc != SWIFTVTD_OK.rawValue)
        #expect(message.contains("aw-bits=48") && message.contains("up to 0x7fffffffffff") && message.contains("set aw-bits=39"),
                "\(message)")
        let (fake, _, narrow) = try nestedSetup(profile: .withoutNesting, awBits: 39, ioasLast: (1 << 47) - 1)
        defer { swiftvtd_destroy(narrow.unit) }
        #expect(machineDone(narrow.unit).0 == SWIFTVTD_OK.rawValue)
        // A device hot-plugged later meets the same rule.
        fake.apertureLast = (1 << 30) - 1
        let device = try fake.assignDevice(requesterID: RequesterID(rawValue: 0x18), profile: .init(host: .withoutNesting),
                                           iommufd: fake.openIOMMUFD())
        let (hot, why) = attach(narrow.unit, sid: 0x18, hostDevice(device))
        #expect(hot != SWIFTVTD_OK.rawValue)
        #expect(why.contains("up to 0x3fffffff") && why.contains("use a host that can nest"), "\(why)")
    }

    @Test("forcing nested when a device cannot nest is an error that names the device; nothing changes")
    func forcedNestedFails() throws {
        let (_, _, g) = try nestedSetup(profile: .withoutNesting)
        defer { swiftvtd_destroy(g.unit) }
        let capBefore = g.mmio(HReg.cap), ecapBefore = g.mmio(HReg.ecap)
        let (rc, message) = machineDone(g.unit, SWIFTVTD_HOST_MODE_NESTED)
        #expect(rc == SWIFTVTD_EUNSUPPORTED.rawValue)
        #expect(message.contains("host mode nested needs every assigned device to nest"))
        #expect(g.mmio(HReg.cap) == capBefore && g.mmio(HReg.ecap) == ecapBefore)
    }

    @Test("no host device: the decision line shows what the guest sees, library-only slts and nesting included")
    func emulatedOnlyLineShowsCapabilities() throws {
        let guest = HostTestGuest()
        let unit = try #require(guest.makeUnit {
            $0.scalable_mode = 1; $0.flts = 1; $0.slts = 1; $0.nesting = 1
        })
        defer { swiftvtd_destroy(unit) }
        let ecap = swiftvtd_mmio_read(unit, HReg.ecap, 8)
        #expect(bit(ecap, 47) && bit(ecap, 46) && bit(ecap, 26))  // FLTS, SLTS, NEST
        let (rc, decision) = machineDone(unit)
        #expect(rc == SWIFTVTD_OK.rawValue)
        #expect(decision == "host mode: emulated only (no assigned devices); FLTS=1 SLTS=1 NEST=1 CM=0")
    }

    @Test("no host device: machine_done changes neither CAP nor ECAP")
    func noDevices() throws {
        let guest = HostTestGuest()
        let unit = try #require(guest.makeUnit { $0.scalable_mode = 1 })
        defer { swiftvtd_destroy(unit) }
        let cap = swiftvtd_mmio_read(unit, HReg.cap, 8), ecap = swiftvtd_mmio_read(unit, HReg.ecap, 8)
        let (rc, decision) = machineDone(unit)
        #expect(rc == SWIFTVTD_OK.rawValue)
        #expect(decision.hasPrefix("host mode: emulated only"))
        #expect(swiftvtd_host_decision(unit) == SWIFTVTD_ENOENT.rawValue)
        #expect(swiftvtd_mmio_read(unit, HReg.cap, 8) == cap && swiftvtd_mmio_read(unit, HReg.ecap, 8) == ecap)
    }

    @Test("malformed attach: wrong size, reserved bytes, missing ids, a sid twice; detach of nothing is ENOENT")
    func malformedAttach() throws {
        let (fake, device, g) = try nestedSetup()
        defer { swiftvtd_destroy(g.unit) }
        _ = fake
        var dev = hostDevice(device)
        dev.size = 8
        #expect(attach(g.unit, sid: 0x18, dev).0 == SWIFTVTD_EVERSION.rawValue)
        dev = hostDevice(device); dev.reserved.1 = 1
        #expect(attach(g.unit, sid: 0x18, dev).0 == SWIFTVTD_EINVAL.rawValue)
        dev = hostDevice(device); dev.ioas_id = 0
        #expect(attach(g.unit, sid: 0x18, dev).0 == SWIFTVTD_EINVAL.rawValue)
        let (rc, err) = attach(g.unit, sid: g.sid, hostDevice(device))
        #expect(rc == SWIFTVTD_EINVAL.rawValue && err.contains("already attached"))
        #expect(swiftvtd_host_device_detach(g.unit, 0x18) == SWIFTVTD_ENOENT.rawValue)
        #expect(swiftvtd_host_device_detach(g.unit, g.sid) == SWIFTVTD_OK.rawValue)
    }

    @Test("a legacy VFIO container device forces shadowing (it cannot nest)")
    func legacyContainer() throws {
        let guest = HostTestGuest()
        let unit = try #require(guest.makeUnit { $0.scalable_mode = 1 })
        defer { swiftvtd_destroy(unit) }
        var dev = swiftvtd_host_device()
        dev.size = UInt32(MemoryLayout<swiftvtd_host_device>.size)
        dev.flags = SWIFTVTD_HOST_DEVICE_LEGACY_CONTAINER
        dev.iommufd = -1
        dev.device_fd = -1
        #expect(attach(unit, sid: 0x10, dev).0 == SWIFTVTD_OK.rawValue)
        let (rc, decision) = machineDone(unit)
        #expect(rc == SWIFTVTD_OK.rawValue)
        #expect(decision.contains("shadow") && decision.contains("legacy VFIO container"))
        #expect(bit(swiftvtd_mmio_read(unit, HReg.cap, 8), 7))
    }

    @Test("a legacy container's IOVA width (iova_bits, 1.4) is checked like an IOAS's: a wider shadowing guest is refused")
    func legacyContainerWidth() throws {
        func legacy(iovaBits: UInt8) -> swiftvtd_host_device {
            var dev = swiftvtd_host_device()
            dev.size = UInt32(MemoryLayout<swiftvtd_host_device>.size)
            dev.flags = SWIFTVTD_HOST_DEVICE_LEGACY_CONTAINER
            dev.iommufd = -1
            dev.device_fd = -1
            dev.iova_bits = iovaBits
            return dev
        }
        let guest = HostTestGuest()
        // aw-bits 48 over a 39-bit container: refused, naming the width that fits.
        let wide = try #require(guest.makeUnit { $0.scalable_mode = 1; $0.aw_bits = 48 })
        defer { swiftvtd_destroy(wide) }
        #expect(attach(wide, sid: 0x10, legacy(iovaBits: 39)).0 == SWIFTVTD_OK.rawValue)
        let (rc, message) = machineDone(wide)
        #expect(rc != SWIFTVTD_OK.rawValue)
        #expect(message.contains("up to 0x7fffffffff") && message.contains("set aw-bits=39"), "\(message)")
        // aw-bits 39 fits; so does an unknown width (0), as before 1.4.
        for (awBits, iovaBits) in [(UInt8(39), UInt8(39)), (48, 0)] {
            let unit = try #require(guest.makeUnit { $0.scalable_mode = 1; $0.aw_bits = awBits })
            defer { swiftvtd_destroy(unit) }
            #expect(attach(unit, sid: 0x10, legacy(iovaBits: iovaBits)).0 == SWIFTVTD_OK.rawValue)
            #expect(machineDone(unit).0 == SWIFTVTD_OK.rawValue)
        }
        // More than 64 bits is malformed.
        let unit = try #require(guest.makeUnit { $0.scalable_mode = 1 })
        defer { swiftvtd_destroy(unit) }
        #expect(attach(unit, sid: 0x10, legacy(iovaBits: 65)).0 == SWIFTVTD_EINVAL.rawValue)
    }
}

@Suite("C ABI host devices across migration")
struct HostDeviceMigrationTests {
    @Test("a migrated guest's first-level binding exists again on the destination right after swiftvtd_load_state, before the guest runs")
    func nestedBindingAfterLoadState() throws {
        var (fake, device, g) = try nestedSetup(pasid: true)
        defer { swiftvtd_destroy(g.unit) }
        #expect(machineDone(g.unit).0 == SWIFTVTD_OK.rawValue)
        g.programTables()
        // PASIDE, and PASID 5 on a first-level table of its own (SVA-style, bound by the guest).
        let context: UInt64 = 0x11000 + UInt64(g.sid & 0x7F) * 32
        g.guest.write64(context, 0x12000 | 1 << 3 | 1)
        g.guest.write64(0x13000 + 5 * 64, 1 << 6 | 2 << 2 | 1)
        g.guest.write64(0x13000 + 5 * 64 + 8, ScalableGuest.domain)
        g.guest.write64(0x13000 + 5 * 64 + 16, 0x21000)
        g.enable()
        g.pasidCacheInvalidation()
        g.queue(7 | 1 << 4 | ScalableGuest.domain << 16 | 5 << 32)  // PASID-selective, PASID 5
        g.wait()
        g.submit()
        let sourceNested = try #require(fake.attachment(deviceFD: device.deviceFD))
        #expect(fake.objects(iommufd: device.iommufd)[sourceNested] != nil)
        #expect(fake.attachment(deviceFD: device.deviceFD, .pasid(PASID(rawValue: 5))) != nil)
        var needed = 0
        _ = swiftvtd_save_state(g.unit, nil, 0, &needed)
        var blob = [UInt8](repeating: 0, count: needed)
        #expect(swiftvtd_save_state(g.unit, &blob, blob.count, nil) == SWIFTVTD_OK.rawValue)

        // The destination: another process, its own iommufd and device, the guest's RAM copied.
        let (destinationFake, destinationDevice, d) = try nestedSetup(pasid: true)
        defer { swiftvtd_destroy(d.unit) }
        d.guest.pages = g.guest.pages
        #expect(machineDone(d.unit).0 == SWIFTVTD_OK.rawValue)
        let parent = try #require(destinationFake.attachment(deviceFD: destinationDevice.deviceFD))
        var err = [CChar](repeating: 0, count: 256)
        #expect(swiftvtd_load_state(d.unit, blob, blob.count, &err, err.count) == SWIFTVTD_OK.rawValue,
                "\(String(cString: err))")

        let nested = try #require(destinationFake.attachment(deviceFD: destinationDevice.deviceFD))
        #expect(nested != parent)
        #expect(destinationFake.objects(iommufd: destinationDevice.iommufd)[nested] == .hwptNested(parent: parent))
        #expect(destinationFake.nestedTable(iommufd: destinationDevice.iommufd, hwpt: nested)
            == FirstLevelTable(rootPointer: ScalableGuest.flRoot, addressWidth: .bits48, flags: [.writeProtect]))
        // The PASID the guest bound on the source is bound again too.
        let pasidHWPT = try #require(destinationFake.attachment(deviceFD: destinationDevice.deviceFD,
                                                               .pasid(PASID(rawValue: 5))))
        #expect(destinationFake.nestedTable(iommufd: destinationDevice.iommufd, hwpt: pasidHWPT)
            == FirstLevelTable(rootPointer: 0x21000, addressWidth: .bits48, flags: []))
    }
}

/// The errnos the kernel documents for each ioctl the host-device path makes (iommufd main.c,
/// hw_pagetable.c, device.c, VT-d nested.c; VFIO device_cdev.c), plus ENOMEM everywhere.
private let documentedErrnos: [IoctlRequest: [Errno]] = [
    .getHWInfo: [.enoent, .eopnotsupp, .efault, .enomem],
    .hwptAlloc: [.einval, .eopnotsupp, .enoent, .efault, .e2big, .enomem],
    .vfioDeviceAttach: [.einval, .enodev, .eopnotsupp, .ebusy, .enomem],
    .vfioDeviceDetach: [.einval, .enoent],
    .destroy: [.enoent, .ebusy],
    .hwptInvalidate: [.einval, .eopnotsupp, .enoent, .efault, .e2big, .enomem],
]

/// The whole life of one assigned device through the C ABI: attach, machine_done, the guest's
/// tables, TE, a PASID-cache invalidation for RID_PASID and PASID 5 with P_IOTLBs and a wait,
/// a new first-level root with another batch, detach. Returns what each wait looked like.
private struct HostDeviceLifeOutcome {
    var attached = false
    var decided = false
    /// Per batch: the wait's status reached memory / FSTS.IQE was set.
    var batches: [(completed: Bool, queueError: Bool)] = []
    /// Per batch: the indices in the fake's call log of the ioctls its submission made.
    var batchCalls: [Range<Int>] = []
}

private func runHostDeviceLife(_ fake: FakeIOMMUFD, _ device: AssignedDevice) -> HostDeviceLifeOutcome {
    var outcome = HostDeviceLifeOutcome()
    let guest = HostTestGuest()
    guard let unit = guest.makeUnit({ $0.scalable_mode = 1; $0.pasid = 1 }) else { return outcome }
    defer { swiftvtd_destroy(unit) }
    useFakeKernel(unit, fake)
    var g = ScalableGuest(guest: guest, unit: unit, sid: device.requesterID.rawValue)
    outcome.attached = attach(unit, sid: g.sid, hostDevice(device)).0 == SWIFTVTD_OK.rawValue
    guard outcome.attached else { return outcome }
    outcome.decided = machineDone(unit).0 == SWIFTVTD_OK.rawValue
    g.programTables()
    let context: UInt64 = 0x11000 + UInt64(g.sid & 0x7F) * 32
    guest.write64(context, 0x12000 | 1 << 3 | 1)
    guest.write64(0x13000 + 5 * 64, 1 << 6 | 2 << 2 | 1)
    guest.write64(0x13000 + 5 * 64 + 8, ScalableGuest.domain)
    guest.write64(0x13000 + 5 * 64 + 16, 0x21000)
    g.enable()
    for (batch, root) in [UInt64(ScalableGuest.flRoot), 0x22000].enumerated() {
        guest.write64(0x13010, root | 1 << 4)
        guest.write64(ScalableGuest.status, 0)
        g.pasidCacheInvalidation()
        g.queue(7 | 1 << 4 | ScalableGuest.domain << 16 | 5 << 32)
        g.pasidIOTLB(page: UInt64(batch) + 1)
        g.queue(6 | 3 << 4 | ScalableGuest.domain << 16 | 5 << 32, 0x3000)
        g.wait()
        let callsBefore = fake.calls.count
        g.submit()
        outcome.batchCalls.append(callsBefore..<fake.calls.count)
        let queueError = g.mmio32(HReg.fsts) & 0x10 != 0
        outcome.batches.append((g.guest.read32(ScalableGuest.status) == 1, queueError))
        if queueError { break }
    }
    _ = swiftvtd_host_device_detach(unit, g.sid)
    return outcome
}

@Suite("C ABI host devices against a failing kernel (robustness, issue 11 item 9)")
struct HostDeviceInjectedFailureTests {
    @Test("every documented errno at every ioctl of a device's life: no crash, no HWPT left once detached, an invalidation or a binding the host could not do is IQE, never a completed wait")
    func everyErrnoAtEveryIoctl() throws {
        // The life without failures: how many ioctls, and that it ends clean.
        let clean = FakeIOMMUFD()
        let cleanDevice = try clean.assignDevice(requesterID: RequesterID(rawValue: 0x0010),
                                                 iommufd: clean.openIOMMUFD())
        clean.clearCallLog()
        let reference = runHostDeviceLife(clean, cleanDevice)
        #expect(reference.decided && reference.batches.count == 2 && reference.batches.allSatisfy { $0.completed })
        #expect(clean.hwpts(iommufd: cleanDevice.iommufd) == [cleanDevice.hwptID])
        let calls = clean.calls
        #expect(calls.count > 10)
        // The second batch moves RID_PASID to a new first-level root: a new nested HWPT, attached.
        let bindingCalls = reference.batchCalls.map { range in range.filter { [.hwptAlloc, .vfioDeviceAttach].contains(calls[$0]) } }
        #expect(bindingCalls.count == 2 && !bindingCalls[1].isEmpty, "\(bindingCalls)")

        var runs = 0
        for (index, request) in calls.enumerated() {
            for errno in documentedErrnos[request] ?? [.enomem] {
                let fake = FakeIOMMUFD()
                let device = try fake.assignDevice(requesterID: RequesterID(rawValue: 0x0010),
                                                   iommufd: fake.openIOMMUFD())
                fake.clearCallLog()
                fake.failCall(at: index, with: errno)
                let outcome = runHostDeviceLife(fake, device)
                runs += 1
                let what = "\(request) #\(index) failing with \(errno)"
                // Nothing of ours outlives the device: only VFIO's own HWPT is left, attached.
                #expect(fake.hwpts(iommufd: device.iommufd) == [device.hwptID], "\(what)")
                #expect(fake.attachment(deviceFD: device.deviceFD) == device.hwptID, "\(what)")
                // A wait completes only after what the host had to do: a refused invalidation
                // the host could not recover from stops the queue with IQE instead.
                for batch in outcome.batches {
                    #expect(batch.completed != batch.queueError, "\(what): completed \(batch.completed), IQE \(batch.queueError)")
                }
                if request == .hwptInvalidate, outcome.decided {
                    #expect(outcome.batches.allSatisfy { $0.completed || $0.queueError }, "\(what)")
                }
                // A binding a batch asked for and the kernel refused: that batch ends with IQE
                // (calls before the failing one are the clean run's, so its index places it).
                if let batch = bindingCalls.firstIndex(where: { $0.contains(index) }) {
                    #expect(outcome.batches.count > batch && outcome.batches[batch].queueError, "\(what)")
                }
            }
        }
        #expect(runs > calls.count)
    }

    @Test("the kernel refuses the binding a PASID-cache invalidation asks for: IQE with IQH on that descriptor, the wait's status not written; the guest's resubmission binds")
    func refusedBindingIsQueueError() throws {
        var (fake, device, g) = try nestedSetup()
        defer { swiftvtd_destroy(g.unit) }
        #expect(machineDone(g.unit).0 == SWIFTVTD_OK.rawValue)
        // TE on with an empty PASID table: blocked until the PASID-cache invalidation reports the entry.
        g.enable()
        g.programTables()
        fake.failNext(.hwptAlloc, with: .enomem)
        g.pasidCacheInvalidation()  // descriptor 0: its binding is refused
        g.pasidIOTLB(page: 1)  // 1
        g.wait()  // 2
        g.submit()

        g.expectQueueStoppedAtFirstDescriptor()
        #expect(g.mmio(HReg.iqercd) & 0xF == 0)  // IQEI: no detail
        #expect(g.guest.read32(ScalableGuest.status) == 0)
        #expect(fake.attachment(deviceFD: device.deviceFD) == nil)  // still blocked
        #expect(g.guest.logs.contains { $0.0 == SWIFTVTD_LOG_GUEST_ERROR.rawValue && $0.1.contains("host binding refused for descriptor 0") },
                "\(g.guest.logs)")

        // The guest clears IQE and the queue runs again from IQH: this time the kernel agrees.
        g.clearQueueErrorAndResume()
        g.expectWaitCompleted()
        let nested = try #require(fake.attachment(deviceFD: device.deviceFD))
        #expect(fake.objects(iommufd: device.iommufd)[nested] != nil)
    }

    @Test("a binding refused at TE (a register write) has no descriptor to stop at: logged, no IQE, the device blocked (not left on its nest parent); the next PASID-cache invalidation binds")
    func refusedBindingAtTranslationEnable() throws {
        var (fake, device, g, parent) = try decidedNestedSetup()
        defer { swiftvtd_destroy(g.unit) }
        g.programTables()
        // TE applies every binding, then the same event re-reads RID_PASID: refuse both.
        fake.failNext(.hwptAlloc, with: .enomem)
        fake.failNext(.hwptAlloc, with: .enomem)
        g.enable()
        #expect(g.mmio32(HReg.fsts) & 0x10 == 0)
        // Not the nest parent (guest-physical DMA while the guest believes translation is on):
        // detached, so the host IOMMU blocks the device's DMA. Nothing of ours is left but the parent.
        #expect(fake.attachment(deviceFD: device.deviceFD) == nil)
        #expect(fake.hwpts(iommufd: device.iommufd) == [device.hwptID, parent])
        #expect(g.guest.logs.contains { $0.0 == SWIFTVTD_LOG_GUEST_ERROR.rawValue && $0.1.contains("host binding") && $0.1.contains("blocked") },
                "\(g.guest.logs)")

        g.invalidatePASIDCache()
        g.expectWaitCompleted()
        let nested = try #require(fake.attachment(deviceFD: device.deviceFD))
        #expect(nested != parent)
        #expect(fake.objects(iommufd: device.iommufd)[nested] == .hwptNested(parent: parent))
        #expect(fake.nestedTable(iommufd: device.iommufd, hwpt: nested)?.rootPointer == ScalableGuest.flRoot)
    }

    @Test("a host whose log callback calls back into the library (the state dump) while a refused binding and a refused release are reported: no deadlock",
          .timeLimit(.minutes(1)))
    func logCallbackMayReenter() throws {
        let (fake, device, g, _) = try decidedNestedSetup()
        defer { swiftvtd_destroy(g.unit) }
        var dumps: [String] = []
        let logsBefore = g.guest.logs.count
        g.guest.onLog = { dumps.append(dump(g.unit)) }
        g.programTables()
        fake.failNext(.hwptAlloc, with: .enomem)
        g.enable()
        #expect(!dumps.isEmpty && dumps.allSatisfy { $0.contains("nested backend") }, "\(dumps)")
        fake.failNext(.vfioDeviceAttach, with: .eio)
        #expect(swiftvtd_host_device_detach(g.unit, 0x0010) == SWIFTVTD_OK.rawValue)
        #expect(g.guest.logs.contains { $0.1.contains("detached with an error") }, "\(g.guest.logs)")
        #expect(fake.attachment(deviceFD: device.deviceFD) == device.hwptID)
        #expect(dumps.count == g.guest.logs.count - logsBefore)
    }

    @Test("a re-bind the kernel refuses (new first-level root) blocks the device: the old nested HWPT, now stale, is detached and destroyed; IQE at that descriptor; the resubmission binds the new root")
    func refusedRebindBlocksInsteadOfKeepingTheStaleTable() throws {
        var (fake, device, g, parent) = try decidedNestedSetup()
        defer { swiftvtd_destroy(g.unit) }
        g.programTables()
        g.enable()
        let old = try #require(fake.attachment(deviceFD: device.deviceFD))
        #expect(fake.objects(iommufd: device.iommufd)[old] == .hwptNested(parent: parent))

        // The guest moves RID_PASID to another first-level root; the kernel refuses the new HWPT.
        let newRoot: UInt64 = 0x21000
        g.guest.write64(0x13010, newRoot | 1 << 4)
        fake.failNext(.hwptAlloc, with: .enomem)
        g.pasidCacheInvalidation()  // descriptor 0: refused
        g.wait()  // 1
        g.submit()
        g.expectQueueStoppedAtFirstDescriptor()
        #expect(g.guest.read32(ScalableGuest.status) == 0)
        // Blocked, not left on the table the guest replaced (nor on the parent).
        #expect(fake.attachment(deviceFD: device.deviceFD) == nil)
        #expect(fake.objects(iommufd: device.iommufd)[old] == nil)
        #expect(g.guest.logs.contains { $0.0 == SWIFTVTD_LOG_GUEST_ERROR.rawValue && $0.1.contains("is blocked") },
                "\(g.guest.logs)")

        g.clearQueueErrorAndResume()
        g.expectWaitCompleted()
        let nested = try #require(fake.attachment(deviceFD: device.deviceFD))
        #expect(fake.objects(iommufd: device.iommufd)[nested] == .hwptNested(parent: parent))
        #expect(fake.nestedTable(iommufd: device.iommufd, hwpt: nested)?.rootPointer == newRoot)
    }
}

/// A legacy-mode guest with caching mode and a MAP/UNMAP notifier on 00:02.0, driven as Linux
/// drives a caching-mode unit: change a second-level table, invalidate through the IOTLB register.
/// Layout: root 0x10000, context table 0x11000, second-level PML4/PDPT/PD/PT 0x20000-0x23000;
/// DID 1; 16 pages at IOVA 1 MiB onto contiguous guest memory at 0x4010_0000.
private struct CachingModeGuest {
    let guest: HostTestGuest
    let unit: OpaquePointer
    let sid: UInt16 = 0x0010
    static let iova: UInt64 = 0x10_0000
    static let output: UInt64 = 0x4010_0000

    func mmio(_ offset: UInt64) -> UInt64 { swiftvtd_mmio_read(unit, offset, 8) }
    func mmio(_ offset: UInt64, _ value: UInt64, _ size: UInt32 = 8) { swiftvtd_mmio_write(unit, offset, value, size) }

    /// Tables with nothing mapped, SRTP, TE; then the notifier.
    func enable() {
        guest.write64(0x10000, 0x11000 | 1)
        let context: UInt64 = 0x11000 + UInt64(sid & 0xFF) * 16
        guest.write64(context, 0x20000 | 1)  // second-level only (TT 00), present
        guest.write64(context + 8, 1 << 8 | 2)  // DID 1, AW 48-bit
        guest.write64(0x20000, 0x21000 | 3)
        guest.write64(0x21000, 0x22000 | 3)
        guest.write64(0x22000, 0x23000 | 3)
        mmio(HReg.rtaddr, 0x10000)
        mmio(HReg.gcmd, HReg.srtp, 4)
        mmio(HReg.gcmd, HReg.te, 4)
        #expect(swiftvtd_set_notifier(unit, sid, SWIFTVTD_NO_PASID, SWIFTVTD_NOTIFY_MAP | SWIFTVTD_NOTIFY_UNMAP)
                    == SWIFTVTD_OK.rawValue)
    }

    /// Maps (or unmaps) the 16 pages and invalidates domain 1 through the IOTLB register (at
    /// ECAP.IRO * 16 + 8). Returns the events that produced.
    func change(mapped: Bool) -> [swiftvtd_event] {
        for i in UInt64(0)..<16 {
            guest.write64(0x23000 + (Self.iova >> 12 + i) * 8, mapped ? (Self.output + i << 12) | 3 : 0)
        }
        let iotlb = (mmio(HReg.ecap) >> 8 & 0x3FF) * 16 + 8
        let before = guest.events.count
        mmio(iotlb, 1 << 63 | 2 << 60 | 1 << 32)
        return Array(guest.events[before...])
    }
}

private func shadowEvents(_ events: [swiftvtd_event]) -> [String] {
    events.compactMap { e in
        switch e.kind {
        case SWIFTVTD_EVENT_MAP.rawValue:
            "map 0x\(String(e.addr, radix: 16)) +0x\(String(e.size_bytes, radix: 16)) -> 0x\(String(e.translated, radix: 16))"
        case SWIFTVTD_EVENT_UNMAP.rawValue: "unmap 0x\(String(e.addr, radix: 16)) +0x\(String(e.size_bytes, radix: 16))"
        default: nil
        }
    }
}

@Suite("C ABI host devices: the shadow events each host kind gets (issue 15)")
struct HostDeviceShadowKindTests {
    static let perLeafMaps = (UInt64(0)..<16).map {
        "map 0x\(String(CachingModeGuest.iova + $0 << 12, radix: 16)) +0x1000 -> 0x\(String(CachingModeGuest.output + $0 << 12, radix: 16))"
    }
    static let perLeafUnmaps = (UInt64(0)..<16).map { "unmap 0x\(String(CachingModeGuest.iova + $0 << 12, radix: 16)) +0x1000" }

    /// A caching-mode unit (shadow decision) with `device` attached through swiftvtd_host_device_attach.
    fileprivate func setup(_ device: swiftvtd_host_device, fake: FakeIOMMUFD? = nil) throws -> CachingModeGuest {
        let guest = HostTestGuest()
        let unit = try #require(guest.makeUnit { $0.caching_mode = 1 })
        if let fake { useFakeKernel(unit, fake) }
        let g = CachingModeGuest(guest: guest, unit: unit)
        let (rc, err) = attach(unit, sid: g.sid, device)
        #expect(rc == SWIFTVTD_OK.rawValue, "\(err)")
        let (decided, line) = machineDone(unit)
        #expect(decided == SWIFTVTD_OK.rawValue && line.contains("shadow"), "\(line)")
        g.enable()
        return g
    }

    @Test("an iommufd device: one coalesced MAP and one UNMAP for 16 contiguous pages; after detach, per leaf again")
    func iommufdCoalescesUntilDetach() throws {
        let fake = FakeIOMMUFD()
        let device = try fake.assignDevice(requesterID: RequesterID(rawValue: 0x0010),
                                           profile: FakeIOMMUFD.DeviceProfile(host: .withoutNesting),
                                           iommufd: fake.openIOMMUFD())
        let g = try setup(hostDevice(device), fake: fake)
        defer { swiftvtd_destroy(g.unit) }
        #expect(shadowEvents(g.change(mapped: true)) == ["map 0x100000 +0x10000 -> 0x40100000"])
        #expect(shadowEvents(g.change(mapped: false)) == ["unmap 0x100000 +0x10000"])

        #expect(swiftvtd_host_device_detach(g.unit, g.sid) == SWIFTVTD_OK.rawValue)
        #expect(shadowEvents(g.change(mapped: true)) == Self.perLeafMaps)
        #expect(shadowEvents(g.change(mapped: false)) == Self.perLeafUnmaps)
    }

    @Test("a legacy VFIO container device (SWIFTVTD_HOST_DEVICE_LEGACY_CONTAINER): one MAP and one UNMAP per leaf")
    func legacyContainerPerLeaf() throws {
        var dev = swiftvtd_host_device()
        dev.size = UInt32(MemoryLayout<swiftvtd_host_device>.size)
        dev.flags = SWIFTVTD_HOST_DEVICE_LEGACY_CONTAINER
        dev.iommufd = -1
        dev.device_fd = -1
        let g = try setup(dev)
        defer { swiftvtd_destroy(g.unit) }
        #expect(shadowEvents(g.change(mapped: true)) == Self.perLeafMaps)
        #expect(shadowEvents(g.change(mapped: false)) == Self.perLeafUnmaps)
        #expect(swiftvtd_host_device_detach(g.unit, g.sid) == SWIFTVTD_OK.rawValue)
        #expect(shadowEvents(g.change(mapped: true)) == Self.perLeafMaps)
    }
}
