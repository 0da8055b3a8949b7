/// Bytes held from a ``MemoryBudget``, returned exactly once: when the reservation is destroyed,
/// which for a buffer that owns one (``PieceBuffer``, ``WriteBlocks``) is when the buffer is
/// freed. Only ``MemoryBudget/reserve(_:)`` and its kin make one with bytes in it.
///
/// A reservation made with ``MemoryBudget/reserve(buffers:)`` can hold *spares*: mappings that
/// were pooled until its grant evicted them, still mapped and counted in its bytes (their total
/// is never more than ``bytes``), for its buffers to reuse instead of mapping fresh pages. A
/// spare that no buffer takes is unmapped before anything else is allocated in its place, or
/// given back to the budget's pool with the bytes, so the bytes mapped for a reservation never
/// pass what it holds.
struct MemoryReservation: ~Copyable, Sendable {
  /// The bytes held.
  private(set) var bytes: Int
  /// Mappings held for reuse, counted in ``bytes``.
  private(set) var spares: [MemoryMapping]
  /// The budget they come from.
  let budget: MemoryBudget

  init(bytes: Int, spares: [MemoryMapping] = [], budget: MemoryBudget) {
    precondition(
      spares.reduce(0) { $0 + $1.count } <= bytes, "Invalid reservation: spares of more than its \(bytes) bytes.")
    self.bytes = bytes
    self.spares = spares
    self.budget = budget
  }

  deinit {
    if bytes > 0 { budget.release(bytes, returning: spares) }
  }

  /// Moves `count` of these bytes into a reservation of their own (for one of the buffers of a
  /// job that reserved for all of them at once), with a spare of exactly `count` bytes if there
  /// is one. Spares that no longer fit in the bytes left here are unmapped.
  mutating func split(_ count: Int) -> MemoryReservation {
    precondition(count >= 0 && count <= bytes, "Invalid split: \(count) of \(bytes) reserved bytes.")
    bytes -= count
    var moved: [MemoryMapping] = []
    if let index = spares.firstIndex(where: { $0.count == count }) {
      moved.append(spares.remove(at: index))
    }
    var spareBytes = spares.reduce(0) { $0 + $1.count }
    var surplus: [MemoryMapping] = []
    while spareBytes > bytes {
      let spare = spares.removeLast()
      spareBytes -= spare.count
      surplus.append(spare)
    }
    budget.unmap(surplus)
    return MemoryReservation(bytes: count, spares: moved, budget: budget)
  }

  /// A mapping of `count` bytes (at most ``bytes``) for the buffer that owns this reservation:
  /// its spare of that size, or else (its spares unmapped first, as the buffer needs their
  /// bytes) one from ``MemoryBudget/map(count:)``; `nil` when the kernel refuses.
  mutating func map(count: Int) -> MemoryMapping? {
    precondition(count <= bytes, "Invalid mapping: \(count) of \(bytes) reserved bytes.")
    if let index = spares.firstIndex(where: { $0.count == count }) { return spares.remove(at: index) }
    unmapSpares()
    return budget.map(count: count)
  }

  /// Unmaps the spares (for bytes that will be allocated otherwise).
  mutating func unmapSpares() {
    budget.unmap(spares)
    spares = []
  }

  /// Hands a freed mapping back to the budget together with the bytes of this reservation that
  /// covered it (the budget pools or unmaps it).
  mutating func returnMapping(_ mapping: MemoryMapping) {
    precondition(
      mapping.count + spares.reduce(0) { $0 + $1.count } <= bytes,
      "Invalid mapping return: \(mapping.count) of \(bytes) reserved bytes.")
    bytes -= mapping.count
    budget.release(mapping.count, returning: [mapping])
  }
}
