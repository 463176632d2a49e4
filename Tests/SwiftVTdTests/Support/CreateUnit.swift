import CSwiftVTd
@testable import SwiftVTd

/// A unit behind the C ABI from `configure`d defaults, with the host callbacks `hostOps` sets
/// (`size` is set already). nil when the library refuses it; `error` gets the library's message
/// (empty when created).
func createUnit(error: inout String, hostOps: (inout swiftvtd_host_ops) -> Void,
                _ configure: (inout swiftvtd_config) -> Void = { _ in }) -> OpaquePointer? {
    var cfg = swiftvtd_config()
    swiftvtd_config_init(&cfg)
    configure(&cfg)
    var ops = swiftvtd_host_ops()
    ops.size = UInt32(MemoryLayout<swiftvtd_host_ops>.size)
    hostOps(&ops)
    var buffer = [CChar](repeating: 0, count: 256)
    let unit = swiftvtd_create(&cfg, &ops, &buffer, buffer.count)
    error = String(cString: buffer)
    return unit
}

/// As above, for a host that expects the unit to be created.
func createUnit(hostOps: (inout swiftvtd_host_ops) -> Void,
                _ configure: (inout swiftvtd_config) -> Void = { _ in }) -> OpaquePointer? {
    var ignored = ""
    return createUnit(error: &ignored, hostOps: hostOps, configure)
}

/// A unit whose guest memory reads as zeros and takes every write.
func makeHandle(error: inout String, _ configure: (inout swiftvtd_config) -> Void = { _ in }) -> OpaquePointer? {
    createUnit(error: &error, hostOps: { ops in
        ops.dma_read = { _, _, buf, len in
            buf?.initializeMemory(as: UInt8.self, repeating: 0, count: Int(len))
            return 0
        }
        ops.dma_write = { _, _, _, _ in 0 }
    }, configure)
}

func makeHandle(_ configure: (inout swiftvtd_config) -> Void = { _ in }) -> OpaquePointer? {
    var ignored = ""
    return makeHandle(error: &ignored, configure)
}
