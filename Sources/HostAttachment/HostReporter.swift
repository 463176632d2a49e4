// What HostDevices tells the world: log lines, and trace records of what the host backend was
// told. Behind the C ABI these become the host's log callback and SWIFTVTD_TRACE_HOST_* records.

import VTdModel
import VTdSpec

public protocol HostReporter: AnyObject, Sendable {
    func log(_ level: LogLevel, _ message: String)
    func trace(_ record: HostTraceRecord)
}

/// One thing the host IOMMU backend was asked to do. A `result` says how the backend took it: 0
/// done, else the kernel's errno, or -1 for a refusal that has none.
public enum HostTraceRecord: Equatable, Sendable {
    /// A PASID entry was bound: its first-level table (0 for pass-through or second level).
    case bind(RequesterID, pasid: UInt32, domainID: UInt16, table: UInt64, result: Int32)
    /// A PASID entry was cleared or blocked.
    case unbind(RequesterID, pasid: UInt32, domainID: UInt16, result: Int32)
    /// A PASID-based IOTLB invalidation was queued for the host (address nil: every address).
    case invalidate(domainID: UInt16, pasid: UInt32, address: UInt64?, addressMask: UInt8)
    /// The host refused a batch of invalidations and its full flush too.
    case invalidationFailed
}
