// swiftvtd_page_request: the C face of VTdUnit.pageRequest. Thin: check, convert, call.

import CSwiftVTd
import VTdModel

@_cdecl("swiftvtd_page_request")
public func swiftvtd_page_request(_ unit: OpaquePointer?, _ request: UnsafePointer<swiftvtd_pri_request>?) -> Int32 {
    guard let unit, let request else { return SWIFTVTD_EINVAL.rawValue }
    var r = swiftvtd_pri_request()
    guard SizedStruct.read(request, into: &r, minimum: SizedStruct.priRequestMinimum, name: "page request") == nil else {
        return SWIFTVTD_EVERSION.rawValue
    }
    let known = SWIFTVTD_PRQ_READ | SWIFTVTD_PRQ_WRITE | SWIFTVTD_PRQ_EXEC | SWIFTVTD_PRQ_PRIV | SWIFTVTD_PRQ_LAST
    guard r.flags & ~known == 0 else { return SWIFTVTD_EINVAL.rawValue }
    let pageRequest = PageRequest(
        sourceID: RequesterID(rawValue: r.sid), pasid: PASID?(abi: r.pasid), address: r.addr,
        read: r.flags & SWIFTVTD_PRQ_READ != 0, write: r.flags & SWIFTVTD_PRQ_WRITE != 0,
        execute: r.flags & SWIFTVTD_PRQ_EXEC != 0, privileged: r.flags & SWIFTVTD_PRQ_PRIV != 0,
        lastInGroup: r.flags & SWIFTVTD_PRQ_LAST != 0, groupIndex: r.prg_index)
    switch withHandle(unit, { $0.unit.pageRequest(pageRequest) }) {
    case .queued: return Int32(SWIFTVTD_PRQ_QUEUED.rawValue)
    case .dropped: return Int32(SWIFTVTD_PRQ_DROPPED.rawValue)
    case .unsupported: return SWIFTVTD_EUNSUPPORTED.rawValue
    case .invalid: return SWIFTVTD_EINVAL.rawValue
    }
}
