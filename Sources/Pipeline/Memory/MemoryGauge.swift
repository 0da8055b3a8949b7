import Synchronization

/// What the buffers of a run hold, counted by the buffers themselves when they allocate and free
/// (and by the budget when it unmaps a pooled mapping): the measurement that the budget's
/// reservations are checked against.
final class MemoryGauge: Sendable {
  private let state = Mutex<(live: Int, peak: Int)>((0, 0))

  /// The bytes held now.
  var live: Int { state.withLock { $0.live } }
  /// The most bytes held at once.
  var peak: Int { state.withLock { $0.peak } }

  func allocated(_ count: Int) {
    state.withLock {
      $0.live += count
      $0.peak = max($0.peak, $0.live)
    }
  }

  func freed(_ count: Int) {
    state.withLock { $0.live -= count }
  }

  /// Counts `count` bytes while `body` runs: for scratch memory that code outside the pipeline
  /// (the spill codec) allocates for the length of one call.
  func counting<Result, Failure: Error>(_ count: Int, _ body: () throws(Failure) -> Result) throws(Failure) -> Result {
    allocated(count)
    defer { freed(count) }
    return try body()
  }
}
