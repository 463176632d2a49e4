import CSwiftVTd
import Testing
import VTdModel
@testable import SwiftVTd

@Suite("C ABI save, load and dump")
struct StateExportTests {
    @Test("the header's SWIFTVTD_STATE_VERSION is the format version the library writes")
    func versionMatches() throws {
        #expect(SWIFTVTD_STATE_VERSION == StateBlob.version)
        let handle = try #require(makeHandle())
        defer { swiftvtd_destroy(handle) }
        var needed = 0
        #expect(swiftvtd_save_state(handle, nil, 0, &needed) == SWIFTVTD_ENOSPC.rawValue)
        var blob = [UInt8](repeating: 0, count: needed)
        #expect(swiftvtd_save_state(handle, &blob, blob.count, nil) == SWIFTVTD_OK.rawValue)
        #expect(blob[8] == UInt8(SWIFTVTD_STATE_VERSION))
    }

    @Test("NULL units and buffers are SWIFTVTD_EINVAL, with a message")
    func nullArguments() throws {
        let handle = try #require(makeHandle())
        defer { swiftvtd_destroy(handle) }
        var err = [CChar](repeating: 0, count: 64)
        #expect(swiftvtd_load_state(handle, nil, 10, &err, err.count) == SWIFTVTD_EINVAL.rawValue)
        #expect(String(cString: err).contains("NULL"))
        let blob = [UInt8](repeating: 0, count: 8)
        #expect(swiftvtd_load_state(handle, blob, -1, &err, err.count) == SWIFTVTD_EINVAL.rawValue)
        #expect(String(cString: err).contains("not a blob"))
        #expect(swiftvtd_save_state(nil, nil, 0, nil) == SWIFTVTD_EINVAL.rawValue)
        #expect(swiftvtd_dump_state(nil, nil, 0, nil) == SWIFTVTD_EINVAL.rawValue)
    }

    @Test("a message buffer too small for the reason gets its start, NUL-terminated")
    func shortErrorBuffer() throws {
        let handle = try #require(makeHandle())
        defer { swiftvtd_destroy(handle) }
        var err = [CChar](repeating: 0x7F, count: 8)
        let junk = [UInt8](repeating: 0xAB, count: 100)
        #expect(swiftvtd_load_state(handle, junk, junk.count, &err, err.count) == SWIFTVTD_EINVAL.rawValue)
        #expect(err[7] == 0 && String(cString: err) == "swiftvt")
    }
}
