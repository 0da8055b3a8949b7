import Synchronization

/// The bytes staged in memory by every shard writer, against one limit: counted as the budget
/// counts them (each piece's ``PieceBuffer/footprint(_:)``), or staging could hold more than the
/// share of the budget it was given and starve the readers that the cursor waits for.
final class StagingAccount: Sendable {
  let limit: Int
  private let bytes = Mutex(0)

  init(limit: Int) {
    self.limit = limit
  }

  /// Adds `count` bytes when they fit under the limit; returns whether they did.
  func tryAdd(_ count: Int) -> Bool {
    bytes.withLock { total in
      guard total + count <= limit else { return false }
      total += count
      return true
    }
  }

  func remove(_ count: Int) {
    bytes.withLock { $0 -= count }
  }
}
