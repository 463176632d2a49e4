/* ThreadSanitizer builds only (make test-tsan): a Synchronization.Mutex that TSan can see.
 *
 * Mutex.withLock inlines its fast paths (a compare-exchange acquiring on lock, releasing on
 * unlock) into our instrumented code, so TSan sees those. When the lock is contended, it calls
 * _MutexHandle._lockSlow in libswiftSynchronization, which is not instrumented: it spins on the
 * lock word and then asks the kernel to hand the lock over (FUTEX_LOCK_PI / FUTEX_UNLOCK_PI).
 * TSan never sees that handoff, so two critical sections of one Mutex on two threads are
 * reported as a race (reproduced with a 15-line program: a Mutex<[Int]> appended to from two
 * threads gives "data race" reports; with this file, none, and a counter updated outside the
 * lock is still reported).
 *
 * This definition takes the place of _lockSlow in the test executable: it takes the lock with
 * the same acquiring compare-exchange (0 -> thread id) as the fast path, yielding while another
 * thread holds it. It never sets FUTEX_WAITERS, so unlocking always takes the inlined releasing
 * fast path and _unlockSlow is never needed. Mutual exclusion is unchanged; only the waiting
 * differs (yield instead of a kernel queue), which is fine for tests. Other builds compile
 * nothing here. */
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SWIFTVTD_TSAN_MUTEX_SHIM 1
#endif
#endif

#ifdef SWIFTVTD_TSAN_MUTEX_SHIM
/* Swift's `borrowing func _lockSlow(_ selfId: UInt32)` on _MutexHandle: swiftcall, the handle
   (whose first and only field is the 32-bit lock word) by address in the self register. */
__attribute__((swiftcall)) void swiftvtd_tsan_lock_slow(uint32_t self_id, __attribute__((swift_context)) void *handle)
    __asm__("$s15Synchronization12_MutexHandleV9_lockSlowyys6UInt32VF");

__attribute__((swiftcall)) void swiftvtd_tsan_lock_slow(uint32_t self_id, __attribute__((swift_context)) void *handle)
{
    uint32_t *word = handle;
    for (;;) {
        uint32_t expected = 0;
        if (__atomic_compare_exchange_n(word, &expected, self_id, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
            return;
        }
        sched_yield();
    }
}
#endif
