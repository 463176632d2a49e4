// The C ABI passes requester IDs as uint16_t and PASIDs as uint32_t with SWIFTVTD_NO_PASID for
// "none"; the model takes RequesterID and PASID?. The conversion is here, once.

import CSwiftVTd
import VTdSpec

extension Optional where Wrapped == PASID {
    /// A PASID as the ABI passes it (SWIFTVTD_NO_PASID: none). The caller checked the 20 bits.
    @inline(__always) init(abi word: UInt32) { self = word == SWIFTVTD_NO_PASID ? nil : PASID(rawValue: word) }
    /// The ABI's word for this PASID.
    @inline(__always) var abiWord: UInt32 { self?.rawValue ?? SWIFTVTD_NO_PASID }
}
