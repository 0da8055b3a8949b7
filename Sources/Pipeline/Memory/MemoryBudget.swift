/// The one memory budget of a conversion: every buffer is reserved here before it is
/// allocated and released after its bytes are written.
///
/// ``reserve(_:)`` suspends until the bytes fit, in first-come order, so a slow writer slows the
/// readers instead of growing memory. Cancellation of a waiting task resumes it with
/// `CancellationError` and returns nothing. The high-water mark is kept for reports and tests.
public actor MemoryBudget {
  /// The budget in bytes.
  public let capacity: Int
  /// The bytes reserved now.
  public private(set) var reserved = 0
  /// The most bytes ever reserved at once.
  public private(set) var peak = 0
  private var waiters: [(id: Int, bytes: Int, continuation: CheckedContinuation<Void, any Error>)] = []
  private var nextWaiter = 0

  /// Creates a budget of `capacity` bytes.
  public init(capacity: Int) {
    self.capacity = capacity
  }

  /// Reserves `bytes`, suspending until they fit.
  ///
  /// - Throws: ``PipelineError`` (`budget`) when `bytes` is more than the whole budget;
  ///   `CancellationError` when the task is cancelled while it waits.
  public func reserve(_ bytes: Int) async throws {
    guard bytes <= capacity else {
      throw PipelineError(
        .budget, "one step needs \(bytes) bytes, more than the whole memory budget of \(capacity); raise --memory")
    }
    if waiters.isEmpty && reserved + bytes <= capacity {
      take(bytes)
      return
    }
    let id = nextWaiter
    nextWaiter += 1
    try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
        if Task.isCancelled {
          continuation.resume(throwing: CancellationError())
        } else {
          waiters.append((id, bytes, continuation))
        }
      }
    } onCancel: {
      Task { await self.cancelWaiter(id) }
    }
  }

  /// Returns `bytes` to the budget and resumes the waiters that now fit, in order.
  public func release(_ bytes: Int) {
    reserved -= bytes
    precondition(reserved >= 0, "released more than was reserved")
    grantWaiters()
  }

  /// Resumes the waiters at the front that now fit, in order.
  private func grantWaiters() {
    while let first = waiters.first, reserved + first.bytes <= capacity {
      waiters.removeFirst()
      take(first.bytes)
      first.continuation.resume()
    }
  }

  private func take(_ bytes: Int) {
    reserved += bytes
    peak = max(peak, reserved)
  }

  private func cancelWaiter(_ id: Int) {
    guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
    waiters.remove(at: index).continuation.resume(throwing: CancellationError())
    grantWaiters()
  }
}
