// An in-memory guest for driving the model: RAM as a byte array at guest-physical 0, and a
// record of every MSI, notification and log line the unit produced.

import Synchronization
@testable import VTdModel

final class FakeGuest: Platform, @unchecked Sendable {
    struct Record {
        var ram: [UInt8]
        var msis: [MSIMessage] = []
        var events: [PlatformEvent] = []
        var logs: [(LogLevel, String)] = []
        var reads = 0
    }
    let record: Mutex<Record>

    init(ramSize: Int = 1 << 20) {
        record = Mutex(Record(ram: [UInt8](repeating: 0, count: ramSize)))
    }

    // MARK: Platform

    func readGuest(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        record.withLock { r in
            r.reads += 1
            guard address <= UInt64(r.ram.count), UInt64(buffer.count) <= UInt64(r.ram.count) - address else { return false }
            for i in 0..<buffer.count { buffer[i] = r.ram[Int(address) + i] }
            return true
        }
    }

    func writeGuest(_ address: UInt64, from bytes: UnsafeRawBufferPointer) -> Bool {
        record.withLock { r in
            guard address <= UInt64(r.ram.count), UInt64(bytes.count) <= UInt64(r.ram.count) - address else { return false }
            for i in 0..<bytes.count { r.ram[Int(address) + i] = bytes[i] }
            return true
        }
    }

    func compareExchangeGuest64(_ address: UInt64, expected: UInt64, desired: UInt64) -> UInt64? {
        guard let found = read64(address) else { return nil }
        if found == expected { write64(address, desired) }
        return found
    }

    func sendMSI(address: UInt64, data: UInt32) {
        record.withLock { $0.msis.append(MSIMessage(address: address, data: data)) }
    }

    func notify(_ event: PlatformEvent) {
        record.withLock { $0.events.append(event) }
    }

    func log(_ level: LogLevel, _ message: String) {
        record.withLock { $0.logs.append((level, message)) }
    }

    // MARK: Scenario helpers

    func read64(_ address: UInt64) -> UInt64? { readGuest64(address) }

    func write64(_ address: UInt64, _ value: UInt64) {
        var le = value.littleEndian
        let ok = withUnsafeBytes(of: &le) { writeGuest(address, from: $0) }
        precondition(ok, "fixture write outside guest RAM")
    }

    var msis: [MSIMessage] { record.withLock { $0.msis } }
    var events: [PlatformEvent] { record.withLock { $0.events } }
    var reads: Int { record.withLock { $0.reads } }
    func logs(_ level: LogLevel) -> [String] { record.withLock { $0.logs.filter { $0.0 == level }.map(\.1) } }
}
