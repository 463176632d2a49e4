// Real OS threads for concurrency tests: Swift concurrency's pool has as many threads as cores
// (two here), so tasks that wait on each other could starve; these cannot. A watchdog turns a
// deadlock into a crash that names the test instead of a hung test run.

import Glibc
import Synchronization

private final class ThreadBody {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

private func startThread(_ body: @escaping () -> Void) -> pthread_t {
    var thread = pthread_t()
    let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    let rc = pthread_create(&thread, nil, { argument in
        Unmanaged<ThreadBody>.fromOpaque(argument!).takeRetainedValue().run()
        return nil
    }, box)
    precondition(rc == 0, "pthread_create: \(rc)")
    return thread
}

private final class Flag: Sendable {
    let value = Atomic<Bool>(false)
}

/// Runs every body on a thread of its own and returns when all have returned. If they have not
/// after `seconds`, the process aborts with `name` in the message: they are deadlocked.
func onThreads(_ name: String, deadlockAfter seconds: Int = 60, _ bodies: [() -> Void]) {
    let finished = Flag()
    let watchdog = startThread {
        for _ in 0..<(seconds * 100) {
            if finished.value.load(ordering: .acquiring) { return }
            usleep(10_000)
        }
        fatalError("\(name): threads still running after \(seconds) s: deadlock")
    }
    let threads = bodies.map { startThread($0) }
    for thread in threads { pthread_join(thread, nil) }
    finished.value.store(true, ordering: .releasing)
    pthread_join(watchdog, nil)
}
