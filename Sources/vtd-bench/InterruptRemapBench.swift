// Interrupt remapping through the C ABI: the hot case is an MSI whose IRTE is in the
// interrupt entry cache (one lock section, no guest memory read, no allocation).

import CSwiftVTd
import SwiftVTd

private final class BenchGuest {
    var ram = [UInt8](repeating: 0, count: 1 << 20)
}

/// ns per swiftvtd_interrupt_remap of a cached remappable MSI.
func benchInterruptRemapCached(iterations: Int = 2_000_000) -> Double {
    let guest = BenchGuest()
    var cfg = swiftvtd_config()
    swiftvtd_config_init(&cfg)
    var ops = swiftvtd_host_ops()
    ops.size = UInt32(MemoryLayout<swiftvtd_host_ops>.size)
    ops.opaque = Unmanaged.passUnretained(guest).toOpaque()
    ops.dma_read = { opaque, gpa, buffer, length in
        let g = Unmanaged<BenchGuest>.fromOpaque(opaque!).takeUnretainedValue()
        guard gpa <= UInt64(g.ram.count), length <= UInt64(g.ram.count) - gpa else { return -1 }
        g.ram.withUnsafeBytes { buffer!.copyMemory(from: $0.baseAddress! + Int(gpa), byteCount: Int(length)) }
        return 0
    }
    ops.dma_write = { _, _, _, _ in -1 }
    var err = [CChar](repeating: 0, count: 256)
    guard let unit = swiftvtd_create(&cfg, &ops, &err, err.count) else { return .nan }
    defer { swiftvtd_destroy(unit) }

    // IRTE 5 of a 256-entry table at 0x8000: present, vector 0x61, xAPIC destination 3.
    let low: UInt64 = 1 | 0x61 << 16 | 0x0300 << 32
    for i in 0..<8 { guest.ram[0x8000 + 5 * 16 + i] = UInt8(truncatingIfNeeded: low >> UInt64(8 * i)) }
    swiftvtd_mmio_write(unit, 0xB8, 0x8000 | 7, 8)   // IRTA
    swiftvtd_mmio_write(unit, 0x18, 1 << 24, 4)      // GCMD.SIRTP
    swiftvtd_mmio_write(unit, 0x18, 1 << 25, 4)      // GCMD.IRE
    var input = swiftvtd_msi(address: 0xFEE0_0000 | 5 << 5 | 1 << 4, data: 0, reserved: 0)
    var output = swiftvtd_msi()
    guard swiftvtd_interrupt_remap(unit, 0x10, &input, &output, 0) == 0, output.data == 0x4061 else { return .nan }

    let elapsed = ContinuousClock().measure {
        for _ in 0..<iterations { _ = swiftvtd_interrupt_remap(unit, 0x10, &input, &output, 0) }
    }
    let ns = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
    return ns / Double(iterations)
}
