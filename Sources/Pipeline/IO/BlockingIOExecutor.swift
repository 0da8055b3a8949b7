import Dispatch
import Foundation
import Synchronization

/// A fixed set of threads for blocking system calls (`pread`, `pwrite`, `fsync`, `rename`), so
/// that they never hold a thread of the cooperative pool, which has only one per core.
///
/// Work runs first come, first served, on whichever thread is free. ``execute(_:)`` suspends the
/// calling task until its work has run; work whose task is cancelled before a thread takes it
/// never runs, and the call resumes at once with the cancellation. ``enqueue(_:)`` hands work over
/// without waiting for it (the writes of a ``BlockFile``, which report back through its state).
///
/// Work run here never waits for other work handed to the executor, so a fixed number of threads
/// cannot deadlock however much is queued. Only callers outside it wait for its work: a task in
/// ``execute(_:)``, or a shard writer's thread (``SerialThreadExecutor``) waiting for a free
/// write block.
///
/// The threads start in `init` and run until ``shutdown()``. The ``shared`` executor, used by
/// every stage of a conversion, is never shut down: its threads sleep while there is no work.
final class BlockingIOExecutor: Sendable {
  /// The executor of the process: enough threads for the write blocks in flight
  /// (``WriteBlocks/count``), the hash and the `fsync` of a shard, and the workers' reads.
  static let shared = BlockingIOExecutor(threadCount: 8, name: "safeshard-io")

  /// The number of threads.
  let threadCount: Int
  private let state: Mutex<State>
  /// Signalled once for each piece of work queued, and once for each thread at shutdown.
  private let wakeUp = DispatchSemaphore(value: 0)
  private let nextID = Atomic<UInt64>(0)

  private struct Work: Sendable {
    var id: UInt64
    /// Runs the work, or (`true`) tells it that it was cancelled before it began.
    var run: @Sendable (_ cancelled: Bool) -> Void
  }

  private enum Lifecycle {
    /// Taking work.
    case running
    /// Running the work queued before ``shutdown()``, taking no more.
    case shuttingDown
    /// Every thread has ended.
    case stopped
  }

  private struct State {
    var lifecycle = Lifecycle.running
    /// Work not yet taken by a thread, oldest first (a few dozen at most: an array will do).
    var queue: [Work] = []
    var threadsRunning: Int
  }

  /// Starts `threadCount` threads named `name-<n>`.
  init(threadCount: Int, name: String) {
    precondition(threadCount > 0, "a BlockingIOExecutor needs at least one thread")
    self.threadCount = threadCount
    state = Mutex(State(threadsRunning: threadCount))
    for index in 0..<threadCount {
      Thread { [self] in
        // Named from inside: on Linux a name set before `start()` is not applied.
        Thread.current.name = "\(name)-\(index)"
        runThread()
      }.start()
    }
  }

  /// Runs `work` on one of the executor's threads and returns its result.
  ///
  /// Suspends until a thread has run `work`. When the task is cancelled before a thread takes the
  /// work, `work` never runs and the call resumes at once, throwing `E(cancellation:)`; once begun,
  /// `work` runs to its end.
  ///
  /// - Throws: what `work` throws, or the cancellation.
  func execute<T: Sendable, E: ExpressibleByCancellation>(
    _ work: @escaping @Sendable () throws(E) -> T
  ) async throws(E) -> T {
    let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
    let result = await withTaskCancellationHandler {
      await withUnsafeContinuation { (continuation: UnsafeContinuation<Result<T, E>, Never>) in
        submit(
          Work(id: id) { cancelled in
            continuation.resume(
              returning: cancelled
                ? .failure(E(cancellation: CancellationError())) : Result { () throws(E) in try work() })
          }, unlessCancelled: true)
      }
    } onCancel: {
      cancel(id)
    }
    return try result.get()
  }

  /// Hands `work` to a thread of the executor and returns at once; `work` runs even when the
  /// caller's task is cancelled.
  func enqueue(_ work: @escaping @Sendable () -> Void) {
    submit(Work(id: nextID.wrappingAdd(1, ordering: .relaxed).oldValue) { _ in work() }, unlessCancelled: false)
  }

  /// Takes no more work; each thread ends once the work queued before this call has run.
  ///
  /// Returns at once. Handing work to the executor afterwards is a programming error.
  func shutdown() {
    let wasRunning = state.withLock { state in
      guard case .running = state.lifecycle else { return false }
      state.lifecycle = .shuttingDown
      return true
    }
    if wasRunning {
      for _ in 0..<threadCount { wakeUp.signal() }
    }
  }

  /// Whether every thread has ended, after ``shutdown()``.
  var isStopped: Bool {
    state.withLock { if case .stopped = $0.lifecycle { true } else { false } }
  }

  private func submit(_ work: Work, unlessCancelled: Bool) {
    let queued = state.withLock { state in
      guard case .running = state.lifecycle else {
        preconditionFailure("Invalid state. Work handed to a BlockingIOExecutor after shutdown()")
      }
      // `onCancel` runs after the task is marked cancelled; checking under the lock that it has
      // not been closes the window between this check and `cancel(_:)`.
      if unlessCancelled && Task.isCancelled { return false }
      state.queue.append(work)
      return true
    }
    if queued {
      wakeUp.signal()
    } else {
      work.run(true)
    }
  }

  /// Takes work `id` off the queue, if no thread has taken it yet, and tells it it was cancelled.
  private func cancel(_ id: UInt64) {
    let removed = state.withLock { state in
      state.queue.firstIndex { $0.id == id }.map { state.queue.remove(at: $0) }
    }
    // Its wake-up signal stays: a thread wakes to an empty queue and sleeps again.
    removed?.run(true)
  }

  private enum Next {
    case run(Work)
    /// The queue is empty (its work was cancelled): wait for the next signal.
    case sleep
    case exit
  }

  private func runThread() {
    while true {
      wakeUp.wait()
      let next = state.withLock { state -> Next in
        if !state.queue.isEmpty { return .run(state.queue.removeFirst()) }
        guard case .shuttingDown = state.lifecycle else { return .sleep }
        state.threadsRunning -= 1
        if state.threadsRunning == 0 { state.lifecycle = .stopped }
        return .exit
      }
      switch next {
      case .run(let work): work.run(false)
      case .sleep: continue
      case .exit: return
      }
    }
  }
}
