import CSwiftVTd
@testable import SwiftVTd

/// A unit behind the C ABI with default configuration and guest memory that reads as zeros.
func makeHandle() -> OpaquePointer? {
    var cfg = swiftvtd_config()
    swiftvtd_config_init(&cfg)
    var ops = swiftvtd_host_ops()
    ops.size = UInt32(MemoryLayout<swiftvtd_host_ops>.size)
    ops.dma_read = { _, _, buf, len in
        buf?.initializeMemory(as: UInt8.self, repeating: 0, count: Int(len))
        return 0
    }
    ops.dma_write = { _, _, _, _ in 0 }
    return swiftvtd_create(&cfg, &ops, nil, 0)
}
