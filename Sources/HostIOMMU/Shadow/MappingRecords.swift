/// What one device's IOAS holds, as non-overlapping records sorted by IOVA. The shadow backend
/// changes it only after the host confirmed each step, so it always agrees with the kernel.
struct MappingRecords {
    struct Record: Equatable {
        var mapping: ShadowMapping
        /// False when the mapping was deliberately not made on the host (read-only under the
        /// nest-parent erratum): remembered so it is not "changed" again, but never unmapped.
        var onHost: Bool
    }

    private(set) var records: ContiguousArray<Record> = []

    var isEmpty: Bool { records.isEmpty }
    var count: Int { records.count }

    /// Indices of the records that intersect [first, last].
    func overlapping(_ first: UInt64, _ last: UInt64) -> Range<Int> {
        // Lowest record whose last byte reaches `first`.
        var low = 0
        var high = records.count
        while low < high {
            let mid = (low + high) / 2
            if records[mid].mapping.last < first { low = mid + 1 } else { high = mid }
        }
        var end = low
        while end < records.count && records[end].mapping.iova <= last { end += 1 }
        return low..<end
    }

    subscript(index: Int) -> Record { records[index] }

    mutating func insert(_ record: Record) {
        let index = overlapping(record.mapping.iova, record.mapping.last).lowerBound
        records.insert(record, at: index)
    }

    mutating func remove(_ mapping: ShadowMapping) {
        if let index = records.firstIndex(where: { $0.mapping == mapping }) { records.remove(at: index) }
    }

    mutating func removeSubrange(_ range: Range<Int>) { records.removeSubrange(range) }
}
