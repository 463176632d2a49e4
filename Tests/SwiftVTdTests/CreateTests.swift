import CSwiftVTd
import Testing
@testable import SwiftVTd

@Suite("C ABI create")
struct CreateTests {
    @Test("a wrong ABI version gets a message, not a handle")
    func wrongVersion() {
        var message = ""
        let handle = makeHandle(error: &message) { $0.abi_version = 99 }
        #expect(handle == nil)
        #expect(message.contains("ABI version 99"))
    }
}
