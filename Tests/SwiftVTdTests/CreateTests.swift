import CSwiftVTd
import Testing
@testable import SwiftVTd

@Suite("C ABI create")
struct CreateTests {
    @Test("a wrong ABI version gets a message, not a handle")
    func wrongVersion() {
        var cfg = swiftvtd_config()
        swiftvtd_config_init(&cfg)
        cfg.abi_version = 99
        var ops = swiftvtd_host_ops()
        ops.size = UInt32(MemoryLayout<swiftvtd_host_ops>.size)
        var buffer = [CChar](repeating: 0, count: 200)
        let handle = swiftvtd_create(&cfg, &ops, &buffer, buffer.count)
        #expect(handle == nil)
        let message = String(cString: buffer)
        #expect(message.contains("ABI version 99"))
    }
}
