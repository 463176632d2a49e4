import CSwiftVTd
import Testing
@testable import SwiftVTd
@testable import VTdModel

private func resolved(_ unit: OpaquePointer) -> swiftvtd_config {
    var cfg = swiftvtd_config()
    cfg.size = UInt32(MemoryLayout<swiftvtd_config>.size)
    #expect(swiftvtd_get_config(unit, &cfg) == SWIFTVTD_OK.rawValue)
    return cfg
}

// The C callback cannot capture; the one test that uses it runs alone in its suite.
nonisolated(unsafe) private var eventsSeen: [swiftvtd_event] = []

@Suite("C ABI 1.2: the host passes facts, the library decides", .serialized)
struct HostFactsExportTests {
    @Test("eim=auto resolves as intel-iommu's realize: on with remapping and a KVM irqchip or x-buggy-eim")
    func eimAuto() {
        for (irqchip, buggy, intremap, expected) in [(1, 0, 1, 1), (0, 0, 1, 0), (0, 1, 1, 1), (1, 0, 0, 0)] {
            var err = ""
            let unit = makeHandle(error: &err) {
                $0.eim_auto = 1; $0.kvm_irqchip = UInt8(irqchip); $0.buggy_eim = UInt8(buggy); $0.intremap = UInt8(intremap)
            }
            #expect(unit != nil, "\(err)")
            guard let unit else { continue }
            #expect(resolved(unit).eim == UInt8(expected))
            swiftvtd_destroy(unit)
        }
    }

    @Test("eim=on without intremap, and svm without what it needs, are refused in QEMU's words")
    func refusals() {
        let cases: [((inout swiftvtd_config) -> Void, String)] = [
            ({ $0.eim = 1; $0.intremap = 0 }, "eim=on cannot be selected without intremap=on"),
            ({ $0.eim = 1; $0.eim_auto = 1 }, "eim_auto with eim set"),
            ({ $0.svm = 1 }, "svm=on needs device-iotlb=on"),
            ({ $0.svm = 1; $0.device_iotlb = 1 }, "svm=on needs fsts=on"),
            ({ $0.svm = 1; $0.device_iotlb = 1; $0.scalable_mode = 1; $0.flts = 1 }, "svm=on needs PASID support"),
            ({ $0.reserved3 = 1 }, "reserved"),
        ]
        for (configure, message) in cases {
            var err = ""
            let unit = makeHandle(error: &err, configure)
            #expect(unit == nil)
            #expect(err.contains(message), "\(err)")
        }
    }

    @Test("svm with its requirements turns page requests on; a 1.1 caller gets the 1.1 fields only")
    func svmAndOlderCallers() {
        var err = ""
        let unit = makeHandle(error: &err) {
            $0.svm = 1; $0.device_iotlb = 1; $0.scalable_mode = 1; $0.flts = 1; $0.pasid = 1
        }
        #expect(unit != nil, "\(err)")
        guard let unit else { return }
        #expect(resolved(unit).page_requests == 1)
        var old = swiftvtd_config()
        _ = withUnsafeMutableBytes(of: &old) { $0.initializeMemory(as: UInt8.self, repeating: 0xAA) }
        old.size = UInt32(SizedStruct.configMinimum)
        #expect(swiftvtd_get_config(unit, &old) == SWIFTVTD_OK.rawValue)
        #expect(old.flts == 1 && old.size == UInt32(SizedStruct.configMinimum))
        #expect(old.eim_auto == 0xAA, "bytes past the caller's size are not written")
        swiftvtd_destroy(unit)
    }

    @Test("a refused notifier says why, in the library's words")
    func notifierReason() {
        guard let unit = makeHandle() else { Issue.record("no unit"); return }
        defer { swiftvtd_destroy(unit) }
        var err = [CChar](repeating: 0, count: 256)
        #expect(swiftvtd_set_notifications(unit, 0x18, SWIFTVTD_NO_PASID, SWIFTVTD_NOTIFY_MAP, &err, err.count)
            == SWIFTVTD_EUNSUPPORTED.rawValue)
        #expect(String(cString: err).contains("caching-mode"))
        #expect(swiftvtd_set_notifications(unit, 0x18, SWIFTVTD_NO_PASID, SWIFTVTD_NOTIFY_UNMAP, &err, err.count)
            == SWIFTVTD_OK.rawValue)
        #expect(String(cString: err).isEmpty)
    }

    @Test("the interrupt window is the architecture's 0xFEEx_xxxx")
    func interruptWindow() {
        var base: UInt64 = 0, size: UInt64 = 0
        swiftvtd_interrupt_window(nil, &base, &size)
        #expect(base == 0xFEE0_0000 && size == 0x10_0000)
    }

    @Test("host views: guest RAM before the decision, a nest parent unless shadowing is forced; then the decision's")
    func hostViews() {
        guard let unit = makeHandle() else { Issue.record("no unit"); return }
        defer { swiftvtd_destroy(unit) }
        let both = SWIFTVTD_VIEW_GUEST_RAM | SWIFTVTD_VIEW_NEST_PARENT
        #expect(swiftvtd_host_view(unit, SWIFTVTD_HOST_MODE_AUTO.rawValue) == both)
        #expect(swiftvtd_host_view(unit, SWIFTVTD_HOST_MODE_NESTED.rawValue) == both)
        #expect(swiftvtd_host_view(unit, SWIFTVTD_HOST_MODE_SHADOW.rawValue) == SWIFTVTD_VIEW_GUEST_RAM)
        #expect(swiftvtd_machine_done(unit, SWIFTVTD_HOST_MODE_AUTO.rawValue, nil, 0) == SWIFTVTD_OK.rawValue)
        // No host device was decided for: one hot-plugged later is shown the IOMMU.
        #expect(swiftvtd_host_view(unit, SWIFTVTD_HOST_MODE_AUTO.rawValue) == 0)
    }

    @Test("event ranges reach the host inside [0, 2^aw-bits); nothing of a range above it")
    func eventRangesClamped() {
        var ops = swiftvtd_host_ops()
        ops.size = UInt32(MemoryLayout<swiftvtd_host_ops>.size)
        ops.event = { _, event in eventsSeen.append(event!.pointee) }
        eventsSeen = []
        let platform = HostPlatform(ops: ops, addressWidth: 39)
        platform.notify(.unmap(sid: 0x18, pasid: nil, address: 0, size: .max))
        platform.notify(.deviceTLBInvalidate(sid: 0x18, pasid: 3, address: 1 << 38, size: 1 << 40))
        platform.notify(.unmap(sid: 0x18, pasid: nil, address: 1 << 39, size: 0x1000))
        platform.notify(.map(sid: 0x18, pasid: nil, address: 0x1000, size: 0x1000, translated: 0x5000,
                             permissions: .read))
        #expect(eventsSeen.map(\.size_bytes) == [1 << 39, 1 << 38, 0x1000])
        #expect(eventsSeen.map(\.addr) == [0, 1 << 38, 0x1000])
    }
}
