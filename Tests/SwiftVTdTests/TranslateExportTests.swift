import CSwiftVTd
import Testing
@testable import SwiftVTd

@Suite("C ABI translate")
struct TranslateExportTests {
    @Test("with remapping off, swiftvtd_translate answers identity for the whole page")
    func identity() throws {
        let handle = try #require(makeHandle())
        defer { swiftvtd_destroy(handle) }
        var req = swiftvtd_translate_request(sid: 0x10, access: UInt8(SWIFTVTD_ACCESS_WRITE.rawValue), flags: 0,
                                             pasid: SWIFTVTD_NO_PASID, addr: 0x1234_5678)
        var out = swiftvtd_translation()
        #expect(swiftvtd_translate(handle, &req, &out) == SWIFTVTD_OK.rawValue)
        #expect(out.kind == UInt8(SWIFTVTD_XLATE_OK.rawValue))
        #expect(out.translated == 0x1234_5678)
        #expect(out.page_mask == ~UInt64(0xFFF))
        #expect(out.identity == 1)
        #expect(out.perm & SWIFTVTD_PERM_WRITE != 0)
    }

    @Test("malformed requests are SWIFTVTD_EINVAL: NULLs, no access, unknown bits, PASID over 20 bits")
    func malformed() throws {
        let handle = try #require(makeHandle())
        defer { swiftvtd_destroy(handle) }
        var out = swiftvtd_translation()
        let good = swiftvtd_translate_request(sid: 0x10, access: UInt8(SWIFTVTD_ACCESS_READ.rawValue), flags: 0,
                                              pasid: SWIFTVTD_NO_PASID, addr: 0x1000)
        var req = good
        #expect(swiftvtd_translate(nil, &req, &out) == SWIFTVTD_EINVAL.rawValue)
        #expect(swiftvtd_translate(handle, nil, &out) == SWIFTVTD_EINVAL.rawValue)
        #expect(swiftvtd_translate(handle, &req, nil) == SWIFTVTD_EINVAL.rawValue)
        req.access = 0
        #expect(swiftvtd_translate(handle, &req, &out) == SWIFTVTD_EINVAL.rawValue)
        req = good; req.access = 8
        #expect(swiftvtd_translate(handle, &req, &out) == SWIFTVTD_EINVAL.rawValue)
        req = good; req.flags = 0x80
        #expect(swiftvtd_translate(handle, &req, &out) == SWIFTVTD_EINVAL.rawValue)
        req = good; req.pasid = 0x10_0000
        #expect(swiftvtd_translate(handle, &req, &out) == SWIFTVTD_EINVAL.rawValue)
    }
}

@Suite("C ABI notifiers")
struct NotifierExportTests {
    @Test("swiftvtd_set_notifier: UNMAP accepted, MAP refused without caching mode, bad flags EINVAL")
    func setNotifier() throws {
        let handle = try #require(makeHandle())
        defer { swiftvtd_destroy(handle) }
        #expect(swiftvtd_set_notifier(handle, 0x10, SWIFTVTD_NO_PASID, SWIFTVTD_NOTIFY_UNMAP) == SWIFTVTD_OK.rawValue)
        #expect(swiftvtd_set_notifier(handle, 0x10, SWIFTVTD_NO_PASID, SWIFTVTD_NOTIFY_MAP) == SWIFTVTD_EUNSUPPORTED.rawValue)
        #expect(swiftvtd_set_notifier(handle, 0x10, SWIFTVTD_NO_PASID, 8) == SWIFTVTD_EINVAL.rawValue)
        #expect(swiftvtd_set_notifier(handle, 0x10, 0x10_0000, SWIFTVTD_NOTIFY_UNMAP) == SWIFTVTD_EINVAL.rawValue)
        #expect(swiftvtd_set_notifier(nil, 0x10, SWIFTVTD_NO_PASID, 0) == SWIFTVTD_EINVAL.rawValue)
        // Remapping is off: nothing to replay.
        #expect(swiftvtd_replay(handle, 0x10, SWIFTVTD_NO_PASID) == 0)
    }
}
