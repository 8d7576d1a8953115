import Glibc
import NIOPosix

extension NIOThreadPool {
    /// A started pool of one thread scheduled as batch work (Linux `SCHED_BATCH`): when it wakes it does not preempt
    /// an event loop running on its core, it waits until the loop blocks or uses up its time slice.
    ///
    /// For the threads that take work off the loops, the spool's (seals, spare segments) and the access log's writer:
    /// under load they wake hundreds of times a second, and with normal scheduling each wake-up interrupts the loop
    /// in the middle of its requests (the largest part of the tail that recording added). Their work is not waited
    /// on by any request, so letting the loop finish its turn first costs nothing but a little delay to the disk.
    public static func singleBatchThread() -> NIOThreadPool {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        pool.submit { _ in
            var parameters = sched_param(sched_priority: 0)
            // Best effort: where the policy is refused, the thread keeps the default one.
            _ = sched_setscheduler(0, schedulingPolicyBatch, &parameters)
        }
        return pool
    }
}

/// `SCHED_BATCH` from `<sched.h>`, which Swift's Glibc module leaves out (it is behind `_GNU_SOURCE`).
private let schedulingPolicyBatch: Int32 = 3
