// An in-memory guest for tests: sparse 4 KiB pages of RAM, holes that fail like unbacked
// addresses, recorded MSIs/events/logs, and a compare-and-exchange that a test can make
// lose races. Table builders (GuestTables.swift) lay out root/context/PASID/page tables on
// it so a test reads like the scenario it checks.
//
// Bit layouts here are written from the spec independently of the model's entry types, so
// a test that builds tables with them checks the model rather than mirroring it.

import Synchronization
@testable import VTdModel

final class GuestMemory: Platform, @unchecked Sendable {
    static let pageSize: UInt64 = 4096

    private struct State {
        var pages: [UInt64: [UInt8]] = [:]
        /// Accessible guest-physical memory is [0, ramTop) minus `holes`.
        var ramTop: UInt64
        var holes: [Range<UInt64>] = []
        var nextFreePage: UInt64
        var msis: [MSIMessage] = []
        var events: [PlatformEvent] = []
        var logs: [(LogLevel, String)] = []
        var compareExchanges = 0
        var reads = 0
        var bytesRead = 0
        /// Compare-exchange answers "not accessible" (memory the host cannot update atomically).
        var compareExchangeFails = false
        /// Run (outside the lock) after a read that touches the key's address.
        var readHooks: [UInt64: () -> Void] = [:]
        /// Applied to the target word just before each of the next compare-exchanges, as if
        /// another agent (a CPU) wrote it first.
        var interference: [(UInt64) -> UInt64] = []
    }

    private let state: Mutex<State>

    /// `ramTop`: first inaccessible address. Table pages are allocated from `tablesBase` up.
    init(ramTop: UInt64 = 1 << 36, tablesBase: UInt64 = 0x1000_0000) {
        state = Mutex(State(ramTop: ramTop, nextFreePage: tablesBase))
    }

    // MARK: Scenario controls

    /// A zeroed page for a table; never reused.
    func allocatePage() -> UInt64 {
        state.withLock { s in
            let page = s.nextFreePage
            s.nextFreePage += Self.pageSize
            return page
        }
    }

    /// Accesses that touch `range` fail from now on (an unbacked hole, MMIO, ...).
    func makeInaccessible(_ range: Range<UInt64>) {
        state.withLock { $0.holes.append(range) }
    }

    func read64(_ address: UInt64) -> UInt64 {
        var value: UInt64 = 0
        state.withLock { s in
            for i in 0..<UInt64(8) { value |= UInt64(Self.byte(in: &s, address + i)) << (8 * i) }
        }
        return value
    }

    func write64(_ address: UInt64, _ value: UInt64) {
        state.withLock { s in
            for i in 0..<UInt64(8) { Self.setByte(in: &s, address + i, UInt8(truncatingIfNeeded: value >> (8 * i))) }
        }
    }

    /// The next `count` compare-exchanges first apply `change` to the word they target.
    func interfereWithNextCompareExchanges(_ count: Int = 1, _ change: @escaping (UInt64) -> UInt64) {
        state.withLock { s in
            for _ in 0..<count { s.interference.append(change) }
        }
    }

    var compareExchangeCount: Int { state.withLock { $0.compareExchanges } }
    /// Number of readGuest calls so far (a cached entry is not read again).
    var readCount: Int { state.withLock { $0.reads } }
    /// Bytes the unit asked readGuest for so far.
    var bytesRead: Int { state.withLock { $0.bytesRead } }

    /// From now on compare-exchange fails as on memory the host cannot update atomically.
    func failCompareExchanges() { state.withLock { $0.compareExchangeFails = true } }

    /// Runs `action` right after the unit reads the 8 bytes at `address`, as if another CPU
    /// acted while the walk was in flight. One-shot.
    func whenRead(_ address: UInt64, _ action: @escaping () -> Void) {
        state.withLock { $0.readHooks[address] = action }
    }
    var sentMSIs: [MSIMessage] { state.withLock { $0.msis } }
    var events: [PlatformEvent] { state.withLock { $0.events } }
    var logs: [(LogLevel, String)] { state.withLock { $0.logs } }

    // MARK: Platform

    func readGuest(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        let (ok, hook) = state.withLock { s -> (Bool, (() -> Void)?) in
            s.reads += 1
            s.bytesRead += buffer.count
            guard Self.isAccessible(s, address, count: buffer.count) else { return (false, nil) }
            Self.copy(from: &s, address, into: buffer)
            let hit = s.readHooks.keys.first { $0 >= address && $0 < address + UInt64(buffer.count) }
            return (true, hit.flatMap { s.readHooks.removeValue(forKey: $0) })
        }
        hook?()
        return ok
    }

    func writeGuest(_ address: UInt64, from bytes: UnsafeRawBufferPointer) -> Bool {
        state.withLock { s in
            guard Self.isAccessible(s, address, count: bytes.count) else { return false }
            for i in 0..<bytes.count { Self.setByte(in: &s, address + UInt64(i), bytes[i]) }
            return true
        }
    }

    func compareExchangeGuest64(_ address: UInt64, expected: UInt64, desired: UInt64) -> UInt64? {
        state.withLock { s in
            guard Self.isAccessible(s, address, count: 8), !s.compareExchangeFails else { return nil }
            s.compareExchanges += 1
            var current: UInt64 = 0
            for i in 0..<UInt64(8) { current |= UInt64(Self.byte(in: &s, address + i)) << (8 * i) }
            if !s.interference.isEmpty {
                current = s.interference.removeFirst()(current)
            }
            let stored = current == expected ? desired : current
            for i in 0..<UInt64(8) { Self.setByte(in: &s, address + i, UInt8(truncatingIfNeeded: stored >> (8 * i))) }
            return current
        }
    }

    func sendMSI(address: UInt64, data: UInt32) {
        state.withLock { $0.msis.append(MSIMessage(address: address, data: data)) }
    }

    func notify(_ event: PlatformEvent) {
        state.withLock { $0.events.append(event) }
    }

    func log(_ level: LogLevel, _ message: String) {
        state.withLock { $0.logs.append((level, message)) }
    }

    // MARK: Storage

    private static func isAccessible(_ s: State, _ address: UInt64, count: Int) -> Bool {
        let (end, overflow) = address.addingReportingOverflow(UInt64(count))
        guard !overflow, end <= s.ramTop else { return false }
        return !s.holes.contains { $0.overlaps(address..<end) }
    }

    /// Page by page: a table page is one dictionary lookup, not 4096.
    private static func copy(from s: inout State, _ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) {
        var done = 0
        while done < buffer.count {
            let at = address + UInt64(done)
            let offset = Int(at % pageSize)
            let n = min(buffer.count - done, Int(pageSize) - offset)
            if let page = s.pages[at / pageSize] {
                page.withUnsafeBytes { src in
                    UnsafeMutableRawBufferPointer(rebasing: buffer[done..<done + n])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: src[offset..<offset + n]))
                }
            } else {
                UnsafeMutableRawBufferPointer(rebasing: buffer[done..<done + n]).initializeMemory(as: UInt8.self, repeating: 0)
            }
            done += n
        }
    }

    private static func byte(in s: inout State, _ address: UInt64) -> UInt8 {
        s.pages[address / pageSize]?[Int(address % pageSize)] ?? 0
    }

    private static func setByte(in s: inout State, _ address: UInt64, _ value: UInt8) {
        let page = address / pageSize
        if s.pages[page] == nil { s.pages[page] = [UInt8](repeating: 0, count: Int(pageSize)) }
        s.pages[page]![Int(address % pageSize)] = value
    }
}
