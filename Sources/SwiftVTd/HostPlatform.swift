// The Platform the model sees when it runs behind the C ABI: the host's callbacks.

import CSwiftVTd
import HostAttachment
import Synchronization
import VTdModel

// Unchecked: the C callback table is immutable after create and swiftvtd.h makes it callable from any thread.
final class HostPlatform: Platform, @unchecked Sendable {
    private let ops: swiftvtd_host_ops
    /// aw-bits: the C ABI promises event ranges inside the guest's address width.
    private let addressWidth: Int
    /// The kinds of swiftvtd_trace the host wants (bit 1 << kind; swiftvtd_set_trace_kinds).
    private let wantedTraceKinds = Atomic<UInt32>(~0)

    init(ops: swiftvtd_host_ops, addressWidth: Int) {
        self.ops = ops
        self.addressWidth = addressWidth
    }

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
        guard let deliver = ops.event, let event = event.clamped(toAddressWidth: addressWidth) else { return }
        var e = swiftvtd_event()
        e.size = UInt32(MemoryLayout<swiftvtd_event>.size)
        e.pasid = SWIFTVTD_NO_PASID
        switch event {
        case let .unmap(sid, pasid, address, size):
            e.kind = SWIFTVTD_EVENT_UNMAP.rawValue
            e.sid = sid.rawValue; e.pasid = pasid.abiWord; e.addr = address; e.size_bytes = size
        case let .map(sid, pasid, address, size, translated, permissions):
            e.kind = SWIFTVTD_EVENT_MAP.rawValue
            e.sid = sid.rawValue; e.pasid = pasid.abiWord; e.addr = address; e.size_bytes = size
            e.translated = translated; e.perm = UInt32(permissions.rawValue)
        case let .contextChanged(sid, pasid):
            e.kind = SWIFTVTD_EVENT_CONTEXT_CHANGED.rawValue
            // sid 0xFFFF with NO_PASID: every device.
            e.sid = sid?.rawValue ?? 0xFFFF; e.pasid = pasid.abiWord
            e.data = sid == nil ? 1 : 0
        case let .deviceTLBInvalidate(sid, pasid, address, size):
            e.kind = SWIFTVTD_EVENT_DEVICE_TLB_INVALIDATE.rawValue
            e.sid = sid.rawValue; e.pasid = pasid.abiWord; e.addr = address; e.size_bytes = size
        case let .interruptCacheInvalidate(index, count):
            e.kind = SWIFTVTD_EVENT_INTERRUPT_CACHE_INVALIDATE.rawValue
            e.addr = UInt64(index); e.size_bytes = UInt64(count)
        case let .pageGroupResponse(sid, pasid, groupIndex, responseCode):
            e.kind = SWIFTVTD_EVENT_PAGE_GROUP_RESPONSE.rawValue
            e.sid = sid.rawValue; e.pasid = pasid.abiWord
            e.data = UInt32(groupIndex); e.perm = UInt32(responseCode)
        }
        withUnsafePointer(to: &e) { deliver(ops.opaque, $0) }
    }

    func log(_ level: LogLevel, _ message: String) {
        guard let log = ops.log else { return }
        message.withCString { log(ops.opaque, level.rawValue, $0) }
    }
}

// MARK: Trace records (swiftvtd_trace)

extension HostPlatform: TraceSink {
    var tracing: Bool { ops.trace != nil }

    /// Which kinds of record to build from now on: `kinds` has bit 1 << kind set for each.
    func setWantedTraceKinds(_ kinds: UInt32) {
        wantedTraceKinds.store(kinds, ordering: .relaxed)
    }

    /// Hands one record to the host; builds nothing when the host has no trace callback or does
    /// not want the kind.
    @inline(__always)
    func trace(_ kind: swiftvtd_trace_kind, _ fill: (inout swiftvtd_trace) -> Void) {
        guard let deliver = ops.trace, kind.rawValue < 32,
              wantedTraceKinds.load(ordering: .relaxed) & (1 << kind.rawValue) != 0 else { return }
        var t = swiftvtd_trace()
        t.size = UInt32(MemoryLayout<swiftvtd_trace>.size)
        t.kind = kind.rawValue
        t.pasid = SWIFTVTD_NO_PASID
        fill(&t)
        withUnsafePointer(to: &t) { deliver(ops.opaque, $0) }
    }

    func trace(_ record: TraceRecord) {
        switch record {
        case let .descriptor(d, wide, outcome):
            trace(SWIFTVTD_TRACE_DESCRIPTOR) { t in
                t.code = UInt32(d.typeCode)
                t.words = wide ? d.words : (d.words.0, d.words.1, 0, 0)
                switch outcome {
                case .done: t.scope = 1
                case .statusWrite: t.scope = 2
                case .refused(let error):
                    t.scope = 3
                    t.data = error.traceCode
                }
            }
        case let .fault(f, index):
            trace(SWIFTVTD_TRACE_FAULT) { t in
                t.code = UInt32(f.reason.rawValue)
                t.sid = f.sourceID.rawValue
                t.pasid = f.pasid.abiWord
                t.addr = f.address
                t.data = UInt64(index)
                t.scope = f.isRead ? 1 : 2
            }
        case .contextInvalidation(let scope):
            trace(SWIFTVTD_TRACE_CONTEXT_INVALIDATE) { t in
                switch scope {
                case .global: t.scope = SWIFTVTD_SCOPE_GLOBAL.rawValue
                case .domain(let did): t.scope = SWIFTVTD_SCOPE_DOMAIN.rawValue; t.did = did.rawValue
                case let .device(sid, mask, did):
                    t.scope = SWIFTVTD_SCOPE_DEVICE.rawValue; t.sid = sid.rawValue; t.did = did.rawValue; t.data = UInt64(mask)
                }
            }
        case .pasidCacheInvalidation(let scope):
            trace(SWIFTVTD_TRACE_PASID_INVALIDATE) { t in
                switch scope {
                case .global: t.scope = SWIFTVTD_SCOPE_GLOBAL.rawValue
                case .domain(let did): t.scope = SWIFTVTD_SCOPE_DOMAIN.rawValue; t.did = did.rawValue
                case let .pasid(did, pasid): t.scope = SWIFTVTD_SCOPE_PASID.rawValue; t.did = did.rawValue; t.pasid = pasid.rawValue
                }
            }
        case .iotlbInvalidation(let scope):
            trace(SWIFTVTD_TRACE_IOTLB_INVALIDATE) { t in
                switch scope {
                case .global: t.scope = SWIFTVTD_SCOPE_GLOBAL.rawValue
                case .domain(let did): t.scope = SWIFTVTD_SCOPE_DOMAIN.rawValue; t.did = did.rawValue
                case let .pasid(did, pasid): t.scope = SWIFTVTD_SCOPE_PASID.rawValue; t.did = did.rawValue; t.pasid = pasid.rawValue
                case let .pages(did, address, mask, leafOnly):
                    t.scope = SWIFTVTD_SCOPE_PAGES.rawValue; t.did = did.rawValue; t.addr = address
                    t.data = UInt64(mask); t.code = leafOnly ? 1 : 0
                case let .pasidPages(did, pasid, address, mask, leafOnly):
                    t.scope = SWIFTVTD_SCOPE_PASID_PAGES.rawValue; t.did = did.rawValue; t.pasid = pasid.rawValue; t.addr = address
                    t.data = UInt64(mask); t.code = leafOnly ? 1 : 0
                }
            }
        }
    }
}

extension TraceKinds {
    /// The model's kinds among swiftvtd_set_trace_kinds' bits (1 << swiftvtd_trace_kind).
    init(abiBits bits: UInt32) {
        let pairs: [(swiftvtd_trace_kind, TraceKinds)] = [
            (SWIFTVTD_TRACE_DESCRIPTOR, .descriptor), (SWIFTVTD_TRACE_FAULT, .fault),
            (SWIFTVTD_TRACE_CONTEXT_INVALIDATE, .contextInvalidation),
            (SWIFTVTD_TRACE_PASID_INVALIDATE, .pasidCacheInvalidation),
            (SWIFTVTD_TRACE_IOTLB_INVALIDATE, .iotlbInvalidation),
        ]
        self = []
        for (kind, model) in pairs where bits & (1 << kind.rawValue) != 0 { insert(model) }
    }
}

// MARK: Host trace records (SWIFTVTD_TRACE_HOST_*)

extension HostPlatform: HostReporter {
    func trace(_ record: HostTraceRecord) {
        switch record {
        case let .bind(requester, pasid, domainID, table, result):
            trace(SWIFTVTD_TRACE_HOST_BIND) { t in
                t.sid = requester.rawValue; t.pasid = pasid; t.did = domainID; t.addr = table
                t.code = UInt32(bitPattern: result)
            }
        case let .unbind(requester, pasid, domainID, result):
            trace(SWIFTVTD_TRACE_HOST_UNBIND) { t in
                t.sid = requester.rawValue; t.pasid = pasid; t.did = domainID; t.code = UInt32(bitPattern: result)
            }
        case let .invalidate(domainID, pasid, address, addressMask):
            trace(SWIFTVTD_TRACE_HOST_INVALIDATE) { t in
                t.did = domainID; t.pasid = pasid; t.addr = address ?? 0; t.data = UInt64(addressMask)
                t.scope = (address == nil ? SWIFTVTD_SCOPE_PASID : SWIFTVTD_SCOPE_PASID_PAGES).rawValue
            }
        case .invalidationFailed:
            trace(SWIFTVTD_TRACE_HOST_INVALIDATE) { t in t.code = UInt32(bitPattern: -1) }
        }
    }
}

extension InvalidationQueueError {
    /// IQERCD's detail code for the trace (ICE/ITE as 0x10/0x20 with the source-id above).
    var traceCode: UInt64 {
        switch self {
        case .completionError(let sid): 0x10 | UInt64(sid.rawValue) << 16
        case .timeout(let sid): 0x20 | UInt64(sid.rawValue) << 16
        default: queueErrorInfo ?? 0
        }
    }
}
