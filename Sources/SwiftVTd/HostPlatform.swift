// The Platform the model sees when it runs behind the C ABI: the host's callbacks.

import CSwiftVTd
import VTdModel

final class HostPlatform: Platform {
    private let ops: swiftvtd_host_ops

    init(ops: swiftvtd_host_ops) { self.ops = ops }

    func readGuest(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        guard let read = ops.dma_read, let base = buffer.baseAddress else { return false }
        return read(ops.opaque, address, base, UInt64(buffer.count)) == 0
    }

    func writeGuest(_ address: UInt64, from bytes: UnsafeRawBufferPointer) -> Bool {
        guard let write = ops.dma_write, let base = bytes.baseAddress else { return false }
        return write(ops.opaque, address, base, UInt64(bytes.count)) == 0
    }

    func compareExchangeGuest64(_ address: UInt64, expected: UInt64, desired: UInt64) -> UInt64? {
        guard let cmpxchg = ops.dma_cmpxchg64 else { return nil }
        var found: UInt64 = 0
        return cmpxchg(ops.opaque, address, expected, desired, &found) == 0 ? found : nil
    }

    func sendMSI(address: UInt64, data: UInt32) {
        ops.send_msi?(ops.opaque, address, data)
    }

    func notify(_ event: PlatformEvent) {
        guard let deliver = ops.event else { return }
        var e = swiftvtd_event()
        e.size = UInt32(MemoryLayout<swiftvtd_event>.size)
        e.pasid = SWIFTVTD_NO_PASID
        switch event {
        case let .unmap(sid, pasid, address, size):
            e.kind = SWIFTVTD_EVENT_UNMAP.rawValue
            e.sid = sid; e.pasid = pasid ?? SWIFTVTD_NO_PASID; e.addr = address; e.size_bytes = size
        case let .map(sid, pasid, address, size, translated, permissions):
            e.kind = SWIFTVTD_EVENT_MAP.rawValue
            e.sid = sid; e.pasid = pasid ?? SWIFTVTD_NO_PASID; e.addr = address; e.size_bytes = size
            e.translated = translated; e.perm = UInt32(permissions.rawValue)
        case let .contextChanged(sid, pasid):
            e.kind = SWIFTVTD_EVENT_CONTEXT_CHANGED.rawValue
            // sid 0xFFFF with NO_PASID: every device.
            e.sid = sid ?? 0xFFFF; e.pasid = pasid ?? SWIFTVTD_NO_PASID
            e.data = sid == nil ? 1 : 0
        case let .deviceTLBInvalidate(sid, pasid, address, size):
            e.kind = SWIFTVTD_EVENT_DEVICE_TLB_INVALIDATE.rawValue
            e.sid = sid; e.pasid = pasid ?? SWIFTVTD_NO_PASID; e.addr = address; e.size_bytes = size
        case let .interruptCacheInvalidate(index, count):
            e.kind = SWIFTVTD_EVENT_INTERRUPT_CACHE_INVALIDATE.rawValue
            e.addr = UInt64(index); e.size_bytes = UInt64(count)
        case let .pageGroupResponse(sid, pasid, groupIndex, responseCode):
            e.kind = SWIFTVTD_EVENT_PAGE_GROUP_RESPONSE.rawValue
            e.sid = sid; e.pasid = pasid ?? SWIFTVTD_NO_PASID
            e.data = UInt32(groupIndex); e.perm = UInt32(responseCode)
        }
        withUnsafePointer(to: &e) { deliver(ops.opaque, $0) }
    }

    func log(_ level: LogLevel, _ message: String) {
        guard let log = ops.log else { return }
        message.withCString { log(ops.opaque, level.rawValue, $0) }
    }
}
