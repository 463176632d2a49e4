import CSwiftVTd
@testable import SwiftVTd

/// A unit behind the C ABI from `configure`d defaults, with guest memory that reads as zeros. nil
/// when the library refuses it; `error` gets the library's message (empty when created).
func makeHandle(error: inout String, _ configure: (inout swiftvtd_config) -> Void = { _ in }) -> OpaquePointer? {
    var cfg = swiftvtd_config()
    swiftvtd_config_init(&cfg)
    configure(&cfg)
    var ops = swiftvtd_host_ops()
    ops.size = UInt32(MemoryLayout<swiftvtd_host_ops>.size)
    ops.dma_read = { _, _, buf, len in
        buf?.initializeMemory(as: UInt8.self, repeating: 0, count: Int(len))
        return 0
    }
    ops.dma_write = { _, _, _, _ in 0 }
    var buffer = [CChar](repeating: 0, count: 256)
    let unit = swiftvtd_create(&cfg, &ops, &buffer, buffer.count)
    error = String(cString: buffer)
    return unit
}

/// As above, for tests that expect the unit to be created.
func makeHandle(_ configure: (inout swiftvtd_config) -> Void = { _ in }) -> OpaquePointer? {
    var ignored = ""
    return makeHandle(error: &ignored, configure)
}
