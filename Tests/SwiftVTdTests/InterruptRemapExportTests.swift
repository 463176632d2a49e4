import CSwiftVTd
import Testing
@testable import SwiftVTd
@testable import VTdModel

/// Guest RAM behind C callbacks, for driving the exported functions as a host would.
final class CGuest {
    var ram = [UInt8](repeating: 0, count: 1 << 20)
    var msis: [(UInt64, UInt32)] = []
    var events: [swiftvtd_event] = []

    func write64(_ address: Int, _ value: UInt64) {
        for i in 0..<8 { ram[address + i] = UInt8(truncatingIfNeeded: value >> UInt64(8 * i)) }
    }

    /// Creates a unit whose callbacks reach this guest.
    func makeUnit(_ configure: (inout swiftvtd_config) -> Void = { _ in }) -> OpaquePointer {
        createUnit(hostOps: { ops in
            ops.opaque = Unmanaged.passUnretained(self).toOpaque()
            ops.dma_read = { opaque, gpa, buffer, length in
                let guest = Unmanaged<CGuest>.fromOpaque(opaque!).takeUnretainedValue()
                guard gpa <= UInt64(guest.ram.count), length <= UInt64(guest.ram.count) - gpa else { return -1 }
                guest.ram.withUnsafeBytes { buffer!.copyMemory(from: $0.baseAddress! + Int(gpa), byteCount: Int(length)) }
                return 0
            }
            ops.dma_write = { opaque, gpa, buffer, length in
                let guest = Unmanaged<CGuest>.fromOpaque(opaque!).takeUnretainedValue()
                guard gpa <= UInt64(guest.ram.count), length <= UInt64(guest.ram.count) - gpa else { return -1 }
                guest.ram.withUnsafeMutableBytes { ($0.baseAddress! + Int(gpa)).copyMemory(from: buffer!, byteCount: Int(length)) }
                return 0
            }
            ops.send_msi = { opaque, address, data in
                Unmanaged<CGuest>.fromOpaque(opaque!).takeUnretainedValue().msis.append((address, data))
            }
            ops.event = { opaque, event in
                Unmanaged<CGuest>.fromOpaque(opaque!).takeUnretainedValue().events.append(event!.pointee)
            }
        }, configure)!
    }
}

@Suite("C ABI interrupt remapping")
struct InterruptRemapExportTests {
    @Test("swiftvtd_interrupt_remap returns OK with the remapped MSI, the fault code, or pass-through")
    func resultsThroughTheABI() {
        let guest = CGuest()
        let handle = guest.makeUnit()
        defer { swiftvtd_destroy(handle) }
        let table = InterruptRemappingTableAddress(base: 0x8000, sizeField: 3)
        let entry = IRTE(vector: 0x61, destinationField: 0x0300)
        guest.write64(0x8000 + 2 * 16, entry.low)
        guest.write64(0x8000 + 2 * 16 + 8, entry.high)
        swiftvtd_mmio_write(handle, UInt64(Reg.interruptRemappingTableAddress), table.rawValue, 8)
        swiftvtd_mmio_write(handle, UInt64(Reg.globalCommand), UInt64(GlobalCommand.setInterruptRemappingTablePointer.rawValue), 4)
        swiftvtd_mmio_write(handle, UInt64(Reg.globalCommand), UInt64(GlobalCommand.interruptRemappingEnable.rawValue), 4)

        var input = swiftvtd_msi(address: InterruptRequestAddress.remappable(handle: 2).rawValue, data: 0, reserved: 0)
        var output = swiftvtd_msi()
        #expect(swiftvtd_interrupt_remap(handle, 0x10, &input, &output, 0) == Int32(SWIFTVTD_IRQ_REMAPPED.rawValue))
        #expect(output.address == 0xFEE0_3000 && output.data == 0x4061)

        input.address = InterruptRequestAddress.remappable(handle: 3).rawValue
        #expect(swiftvtd_interrupt_remap(handle, 0x10, &input, &output, 0) == Int32(FaultReason.irEntryNotPresent.rawValue))

        input.address = 0xFEE0_1000
        #expect(swiftvtd_interrupt_remap(handle, 0x10, &input, &output, 0)
                    == Int32(FaultReason.irCompatibilityBlocked.rawValue))
    }
}

@Suite("C ABI ATS translation requests")
struct ATSTranslationExportTests {
    @Test("SWIFTVTD_REQ_ATS returns the fault in the result; a root-entry fault is recorded as for DMA (spec 4.2.3)")
    func atsStructureFaultsAreRecorded() {
        let guest = CGuest()
        let handle = guest.makeUnit { $0.device_iotlb = 1 }
        defer { swiftvtd_destroy(handle) }
        // An empty root table at 0x10000, latched (SRTP) then enabled (TE), as a driver does.
        swiftvtd_mmio_write(handle, UInt64(Reg.rootTableAddress), 0x10000, 8)
        swiftvtd_mmio_write(handle, UInt64(Reg.globalCommand), 1 << 30, 4)
        swiftvtd_mmio_write(handle, UInt64(Reg.globalCommand), 1 << 31, 4)

        var request = swiftvtd_translate_request(sid: 0x0308, access: UInt8(SWIFTVTD_ACCESS_READ.rawValue),
                                                 flags: UInt8(SWIFTVTD_REQ_ATS), pasid: SWIFTVTD_NO_PASID, addr: 0x1000)
        var result = swiftvtd_translation()
        #expect(swiftvtd_translate(handle, &request, &result) == SWIFTVTD_OK.rawValue)
        #expect(result.kind == UInt8(SWIFTVTD_XLATE_FAULT.rawValue))
        #expect(result.fault_reason == FaultReason.rootEntryNotPresent.rawValue)
        #expect(swiftvtd_mmio_read(handle, UInt64(Reg.faultStatus), 4) & 2 == 2)
        let high = swiftvtd_mmio_read(handle, UInt64(Reg.faultRecordingBase + 8), 8)
        #expect(high >> 63 == 1 && (high >> 32) & 0xFF == UInt64(FaultReason.rootEntryNotPresent.rawValue))
        #expect(high & 0xFFFF == 0x0308)
    }
}
