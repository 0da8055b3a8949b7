/// Bytes held from a ``MemoryBudget``, returned exactly once: when the reservation is destroyed,
/// which for a buffer that owns one (``PieceBuffer``, ``WriteBlocks``) is when the buffer is
/// freed. Only ``MemoryBudget/reserve(_:)`` makes one with bytes in it.
struct MemoryReservation: ~Copyable, Sendable {
  /// The bytes held.
  private(set) var bytes: Int
  /// The budget they come from.
  let budget: MemoryBudget

  init(bytes: Int, budget: MemoryBudget) {
    self.bytes = bytes
    self.budget = budget
  }

  deinit {
    if bytes > 0 { budget.release(bytes) }
  }

  /// Moves `count` of these bytes into a reservation of their own (for one of the buffers of a
  /// job that reserved for all of them at once).
  mutating func split(_ count: Int) -> MemoryReservation {
    precondition(count >= 0 && count <= bytes, "Invalid split: \(count) of \(bytes) reserved bytes.")
    bytes -= count
    return MemoryReservation(bytes: count, budget: budget)
  }

  /// Hands a freed mapping back to the budget together with the bytes of this reservation that
  /// covered it (the budget pools or unmaps it).
  mutating func returnMapping(_ mapping: MemoryMapping) {
    precondition(mapping.count <= bytes, "Invalid mapping return: \(mapping.count) of \(bytes) reserved bytes.")
    bytes -= mapping.count
    budget.returnMapping(mapping)
  }
}
