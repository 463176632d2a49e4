import Testing
@testable import HostIOMMU
@Test func placeholder() { #expect(IoctlRequest.destroy.rawValue == 0x3B80) }
