import CSwiftVTd
import Testing
@testable import SwiftVTd
@testable import VTdModel

/// Records what the library hands the host's `trace` and `log` callbacks.
final class TraceLog {
    var records: [swiftvtd_trace] = []
    var logs: [(Int32, String)] = []
    func of(_ kind: swiftvtd_trace_kind) -> [swiftvtd_trace] { records.filter { $0.kind == kind.rawValue } }
}

/// Zero-filled guest RAM, `bytes` of host ops (the caller's struct size), optionally a trace log.
private func create(opsSize: Int, tail: UInt8 = 0, trace: TraceLog? = nil,
                    ram: UnsafeMutableRawBufferPointer) -> (OpaquePointer?, String) {
    var cfg = swiftvtd_config()
    swiftvtd_config_init(&cfg)
    // Room for a host built against a newer header: this library's struct plus 16 more bytes.
    let storage = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 8)
    defer { storage.deallocate() }
    storage.initializeMemory(as: UInt8.self, repeating: tail, count: 128)
    var ops = swiftvtd_host_ops()
    ops.size = UInt32(opsSize)
    ops.opaque = UnsafeMutableRawPointer(ram.baseAddress!)
    ops.dma_read = { opaque, gpa, buffer, length in
        guard gpa + length <= 1 << 16 else { return -1 }
        buffer!.copyMemory(from: opaque! + Int(gpa), byteCount: Int(length))
        return 0
    }
    ops.dma_write = { opaque, gpa, buffer, length in
        guard gpa + length <= 1 << 16 else { return -1 }
        (opaque! + Int(gpa)).copyMemory(from: buffer!, byteCount: Int(length))
        return 0
    }
    if let trace {
        traceTarget = trace
        ops.trace = { _, record in traceTarget?.records.append(record!.pointee) }
        ops.log = { _, level, message in traceTarget?.logs.append((level, String(cString: message!))) }
    }
    // Only the first opsSize bytes are the caller's; the rest is whatever follows in memory.
    withUnsafeBytes(of: &ops) { storage.copyMemory(from: $0.baseAddress!, byteCount: min(opsSize, $0.count)) }
    var err = [CChar](repeating: 0, count: 256)
    let unit = swiftvtd_create(&cfg, storage.assumingMemoryBound(to: swiftvtd_host_ops.self), &err, err.count)
    return (unit, String(cString: err))
}

// The C callback cannot capture; tests in this suite run one at a time.
nonisolated(unsafe) private var traceTarget: TraceLog?

/// A unit of this library's host-ops size with a trace log, over 64 KiB of zeroed guest RAM.
private func withTracedUnit(_ body: (OpaquePointer, TraceLog, UnsafeMutableRawBufferPointer) -> Void) {
    let ram = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 4096)
    defer { ram.deallocate() }
    ram.initializeMemory(as: UInt8.self, repeating: 0)
    let log = TraceLog()
    let (created, err) = create(opsSize: MemoryLayout<swiftvtd_host_ops>.size, trace: log, ram: ram)
    guard let unit = created else { Issue.record("\(err)"); return }
    defer { swiftvtd_destroy(unit); traceTarget = nil }
    body(unit, log, ram)
}

/// A global IOTLB invalidation (type 2, granularity 1) in slot `slot` of a 128-bit queue at 0x1000.
private func placeGlobalIOTLBInvalidation(_ ram: UnsafeMutableRawBufferPointer, slot: Int) {
    ram.storeBytes(of: (2 | 1 << 4 as UInt64).littleEndian, toByteOffset: 0x1000 + slot * 16, as: UInt64.self)
}

/// Queued invalidation on, its 128-bit queue at 0x1000.
private func enableQueue(_ unit: OpaquePointer) {
    swiftvtd_mmio_write(unit, UInt64(Reg.invalidationQueueAddress), 0x1000, 8)
    swiftvtd_mmio_write(unit, UInt64(Reg.globalCommand), UInt64(GlobalCommand.queuedInvalidationEnable.rawValue), 4)
}

/// Interrupt remapping on (queued invalidation staying on), over an empty table at 0x8000: every
/// remappable interrupt faults (0x25, entry not present).
private func enableEmptyInterruptRemapping(_ unit: OpaquePointer) {
    swiftvtd_mmio_write(unit, UInt64(Reg.interruptRemappingTableAddress), 0x8000 | 3, 8)
    swiftvtd_mmio_write(unit, UInt64(Reg.globalCommand), UInt64(GlobalCommand([.queuedInvalidationEnable,
        .setInterruptRemappingTablePointer]).rawValue), 4)
    swiftvtd_mmio_write(unit, UInt64(Reg.globalCommand), UInt64(GlobalCommand([.queuedInvalidationEnable,
        .interruptRemappingEnable]).rawValue), 4)
}

@Suite("C ABI versioning: sizes, and the trace callback added in 1.1", .serialized)
struct ABIVersionTests {
    @Test("1.0 host ops (64 bytes, no trace member) still create a working unit")
    func olderHostOps() {
        let ram = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 4096)
        defer { ram.deallocate() }
        let (unit, err) = create(opsSize: SizedStruct.hostOpsMinimum, tail: 0xAA, ram: ram)
        #expect(unit != nil, "\(err)")
        if let unit {
            #expect(swiftvtd_mmio_read(unit, 0, 4) == 0x10)
            swiftvtd_destroy(unit)
        }
    }

    @Test("newer, larger host ops are taken when the bytes this library does not know are zero")
    func newerHostOps() {
        let ram = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 4096)
        defer { ram.deallocate() }
        let size = MemoryLayout<swiftvtd_host_ops>.size + 16
        let (unit, _) = create(opsSize: size, tail: 0, ram: ram)
        #expect(unit != nil)
        if let unit { swiftvtd_destroy(unit) }
        let (refused, err) = create(opsSize: size, tail: 0xAA, ram: ram)
        #expect(refused == nil)
        #expect(err.contains("does not know set"))
        let (tooSmall, small) = create(opsSize: 32, ram: ram)
        #expect(tooSmall == nil)
        #expect(small.contains("host ops size 32"))
    }

    @Test("trace records: a queued IOTLB invalidation, its descriptor, a recorded fault, an interrupt remap")
    func traceRecords() {
        withTracedUnit { unit, log, ram in
            placeGlobalIOTLBInvalidation(ram, slot: 0)
            enableQueue(unit)
            swiftvtd_mmio_write(unit, UInt64(Reg.invalidationQueueTail), 1 << 4, 8)
            let descriptors = log.of(SWIFTVTD_TRACE_DESCRIPTOR)
            #expect(descriptors.count == 1)
            #expect(descriptors.first?.code == 2 && descriptors.first?.scope == 1 && descriptors.first?.words.0 == 0x12)
            let iotlb = log.of(SWIFTVTD_TRACE_IOTLB_INVALIDATE)
            #expect(iotlb.count == 1 && iotlb.first?.scope == SWIFTVTD_SCOPE_GLOBAL.rawValue)

            // Handle 5 faults in the empty table.
            enableEmptyInterruptRemapping(unit)
            var input = swiftvtd_msi(address: InterruptRequestAddress.remappable(handle: 5).rawValue, data: 0, reserved: 0)
            var output = swiftvtd_msi()
            let result = swiftvtd_interrupt_remap(unit, 0x18, &input, &output, 0)
            let remaps = log.of(SWIFTVTD_TRACE_INTERRUPT_REMAP)
            #expect(remaps.count == 1)
            #expect(remaps.first.map { Int32(bitPattern: $0.code) } == result && remaps.first?.data == 5
                    && remaps.first?.sid == 0x18)
            let faults = log.of(SWIFTVTD_TRACE_FAULT)
            #expect(faults.count == 1)
            #expect(faults.first.map { Int32($0.code) } == result && faults.first?.sid == 0x18 && faults.first?.data == 0)
        }
    }

    @Test("swiftvtd_set_trace_kinds: records of a kind the host does not want are not handed over")
    func traceKinds() {
        #expect(swiftvtd_set_trace_kinds(nil, 0) == SWIFTVTD_EINVAL.rawValue)
        withTracedUnit { unit, log, ram in
            // Two global IOTLB invalidations, run one at a time.
            for slot in 0..<2 { placeGlobalIOTLBInvalidation(ram, slot: slot) }
            enableQueue(unit)
            #expect(swiftvtd_set_trace_kinds(unit, 1 << SWIFTVTD_TRACE_IOTLB_INVALIDATE.rawValue) == SWIFTVTD_OK.rawValue)
            swiftvtd_mmio_write(unit, UInt64(Reg.invalidationQueueTail), 1 << 4, 8)
            #expect(log.of(SWIFTVTD_TRACE_DESCRIPTOR).isEmpty)
            #expect(log.of(SWIFTVTD_TRACE_IOTLB_INVALIDATE).count == 1)

            #expect(swiftvtd_set_trace_kinds(unit, 1 << SWIFTVTD_TRACE_DESCRIPTOR.rawValue) == SWIFTVTD_OK.rawValue)
            swiftvtd_mmio_write(unit, UInt64(Reg.invalidationQueueTail), 2 << 4, 8)
            #expect(swiftvtd_mmio_read(unit, UInt64(Reg.invalidationQueueHead), 8) == 2 << 4)
            #expect(log.of(SWIFTVTD_TRACE_DESCRIPTOR).count == 1)
            #expect(log.of(SWIFTVTD_TRACE_IOTLB_INVALIDATE).count == 1)

            // None wanted: an interrupt that faults is still blocked and its fault recorded, untraced.
            #expect(swiftvtd_set_trace_kinds(unit, 0) == SWIFTVTD_OK.rawValue)
            enableEmptyInterruptRemapping(unit)
            var input = swiftvtd_msi(address: InterruptRequestAddress.remappable(handle: 5).rawValue, data: 0, reserved: 0)
            var output = swiftvtd_msi()
            #expect(swiftvtd_interrupt_remap(unit, 0x18, &input, &output, 0) > 0)
            #expect(swiftvtd_mmio_read(unit, UInt64(Reg.faultStatus), 4) & 2 != 0)  // FSTS.PPF
            #expect(log.of(SWIFTVTD_TRACE_INTERRUPT_REMAP).isEmpty && log.of(SWIFTVTD_TRACE_FAULT).isEmpty)

            // Wanted again: the next one is traced.
            #expect(swiftvtd_set_trace_kinds(unit, 1 << SWIFTVTD_TRACE_INTERRUPT_REMAP.rawValue) == SWIFTVTD_OK.rawValue)
            #expect(swiftvtd_interrupt_remap(unit, 0x18, &input, &output, 0) > 0)
            #expect(log.of(SWIFTVTD_TRACE_INTERRUPT_REMAP).count == 1)
        }
    }

    @Test("without assigned devices the host-mode line is a trace line, not an info line on every run's stderr")
    func emulatedOnlyIsTrace() {
        withTracedUnit { unit, log, _ in
            var text = [CChar](repeating: 0, count: 256)
            #expect(swiftvtd_machine_done(unit, SWIFTVTD_HOST_MODE_AUTO.rawValue, &text, text.count) == SWIFTVTD_OK.rawValue)
            let lines = log.logs.filter { $0.1.hasPrefix("host mode: emulated only") }
            #expect(lines.count == 1)
            #expect(lines.first?.0 == Int32(SWIFTVTD_LOG_TRACE.rawValue))
        }
    }
}

