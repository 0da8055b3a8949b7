import Synchronization

/// The pieces staged in memory by every shard writer, against one limit in bytes. A piece counts
/// what its buffer holds from the budget (``PieceBuffer/reservedBytes``), not its length: staging
/// must never hold more than the share of the budget it was given, or it could starve the
/// readers that the cursor waits for.
final class StagingAccount: Sendable {
  let limit: Int
  private let bytes = Mutex(0)

  init(limit: Int) {
    self.limit = limit
  }

  /// Adds `piece` when it fits under the limit; returns whether it did.
  func tryAdd(_ piece: Piece) -> Bool {
    let count = piece.buffer.reservedBytes
    return bytes.withLock { total in
      guard total + count <= limit else { return false }
      total += count
      return true
    }
  }

  /// Takes out a piece ``tryAdd(_:)`` added.
  func remove(_ piece: Piece) {
    bytes.withLock { $0 -= piece.buffer.reservedBytes }
  }
}
