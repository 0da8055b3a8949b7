import Dispatch

/// A serial executor on a dispatch queue of its own, for actors whose methods make blocking
/// system calls (`pwrite`, `fsync`, `rename`): they run there instead of on the cooperative
/// pool, which has only one thread per core.
final class IOExecutor: SerialExecutor {
  private let queue: DispatchQueue

  init(label: String) {
    queue = DispatchQueue(label: label)
  }

  func enqueue(_ job: consuming ExecutorJob) {
    let job = UnownedJob(job)
    queue.async { job.runSynchronously(on: self.asUnownedSerialExecutor()) }
  }

  func asUnownedSerialExecutor() -> UnownedSerialExecutor {
    UnownedSerialExecutor(ordinary: self)
  }
}

/// Runs a blocking call (`pread`) on a dispatch thread and resumes with its result, so the
/// cooperative pool is never blocked on I/O.
func blockingIO<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
  try await withCheckedThrowingContinuation { continuation in
    DispatchQueue.global(qos: .userInitiated).async {
      continuation.resume(with: Result { try body() })
    }
  }
}
