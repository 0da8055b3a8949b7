/// A serial executor with a thread of its own, for actors whose methods block: the shard writers
/// of a run share one, so that copying into write blocks, waiting for a free block and spilling
/// hold neither a thread of the cooperative pool nor one of ``BlockingIOExecutor/shared``.
///
/// Jobs run one at a time, in the order they were enqueued. The thread ends when the executor is
/// released (the actors that use it hold it), after the jobs already enqueued.
final class SerialThreadExecutor: SerialExecutor {
  private let thread: BlockingIOExecutor

  /// Starts a thread named `name-0`.
  init(name: String) {
    thread = BlockingIOExecutor(threadCount: 1, name: name)
  }

  deinit {
    thread.shutdown()
  }

  func enqueue(_ job: consuming ExecutorJob) {
    let job = UnownedJob(job)
    let executor = asUnownedSerialExecutor()
    thread.enqueue { job.runSynchronously(on: executor) }
  }

  func asUnownedSerialExecutor() -> UnownedSerialExecutor {
    UnownedSerialExecutor(ordinary: self)
  }
}
