// The lock of the unit's state: one word, taken with a compare-and-exchange.
//
// Why not Synchronization's Mutex: on Linux it is a priority-inheritance futex whose word holds
// the owner's thread id, which it keeps in a thread-local. This library is loaded with dlopen,
// so that thread-local is reached through __tls_get_addr: a call into the dynamic linker and its
// cold lines on every lock. The unit takes its lock twice per strict-mode IQT write and twice
// per translate miss, and a guest profile put __tls_get_addr and the thread-local's load among
// the queue path's hottest instructions (docs/PERFORMANCE.md, seventh pass).
//
// The unit's sections are short and never call out (callbacks run after the lock is released),
// so a waiter spins a little and then yields; an uncontended lock and unlock are one atomic
// each, with no thread id and no system call. Not recursive: a section that took the lock again
// would wait forever, which the unit's rule (no callback under the lock) excludes.

import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Sendable only for Sendable values: what the lock guards is checked as Mutex's would be.
struct StateLock<Value: Sendable>: ~Copyable, @unchecked Sendable {
    /// 0 free, 1 held.
    private let word = Atomic<UInt32>(0)
    /// The guarded value, in its own allocation: a borrowed lock can hand it out mutably.
    private let value: UnsafeMutablePointer<Value>

    init(_ initial: consuming Value) {
        value = .allocate(capacity: 1)
        value.initialize(to: initial)
    }

    deinit {
        value.deinitialize(count: 1)
        value.deallocate()
    }

    /// Runs `body` with the value while holding the lock.
    @inline(__always)
    borrowing func withLock<Result, E: Error>(_ body: (inout Value) throws(E) -> Result) throws(E) -> Result {
        if !word.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged { waitForLock() }
        defer { word.store(0, ordering: .releasing) }
        return try body(&value.pointee)
    }

    /// Contended: another thread's section is short, so spin first, then give the CPU away.
    @inline(never)
    private borrowing func waitForLock() {
        var attempts = 0
        while !word.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged {
            attempts += 1
            if attempts > 100 { sched_yield() }
        }
    }
}
