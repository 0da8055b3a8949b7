/// The pure state of a ``MemoryBudget``: what is reserved, which freed mappings are pooled, and
/// who waits. Every mutating method returns what the caller must do once it has left the lock
/// (resume waiters, hand over or unmap mappings); nothing here blocks, suspends or touches memory.
///
/// Invariants, checked after every transition:
/// - `reserved + pooledBytes <= capacity`: a pooled mapping stays counted until it is unmapped
///   or reused, and a mapping handed to a reservation as a spare is counted in its bytes, so the
///   bytes the process holds never pass the capacity;
/// - `pooledBytes <= poolLimit`, the pool keeping the most recently freed mappings;
/// - waiters are granted first come, first served: a waiter is granted only when every waiter
///   before it has been, and a new request suspends while anyone waits;
/// - pooled bytes never keep a waiter waiting: they are evicted (oldest first) as soon as the
///   head waiter, or a new request, needs them, and what is evicted goes to that request as its
///   spares, up to its bytes (unmapped beyond).
struct MemoryBudgetStateMachine<Waiter: Sendable>: Sendable {
  /// What ``reserve(_:)`` tells the caller to do.
  enum ReserveAction: Equatable {
    /// The bytes are reserved; `spares` are pooled mappings evicted to make room, now counted in
    /// the reservation's bytes (at most those); unmap `unmap`, evicted beyond them.
    case granted(spares: [MemoryMapping], unmap: [MemoryMapping])
    /// The bytes do not fit now, or others wait: suspend and call ``suspend(id:bytes:waiter:cancelled:)``.
    case suspend(id: UInt64)
    /// The request is larger than the whole capacity and can never be granted.
    case exceedsCapacity
  }

  /// What ``suspend(id:bytes:waiter:cancelled:)`` tells the caller to do.
  enum SuspendAction {
    /// The bytes fit after all (released while the caller was on its way): resume at once, with
    /// `spares` as in ``ReserveAction/granted(spares:unmap:)``, after unmapping `unmap`.
    case resume(spares: [MemoryMapping], unmap: [MemoryMapping])
    /// The task was cancelled before it could wait: resume it with `CancellationError`.
    case cancelled
    /// The waiter is queued; a later release or cancellation resumes it.
    case wait
  }

  /// A waiter whose bytes are now reserved, with the pooled mappings evicted to make room for
  /// them (its spares, counted in its bytes).
  struct Grant {
    var waiter: Waiter
    var spares: [MemoryMapping]
  }

  /// Work to do outside the lock after a release, a cancellation or a pool change.
  struct Resumptions {
    /// Waiters whose bytes are now reserved: resume them (normally), handing each its spares.
    var granted: [Grant] = []
    /// Mappings that nobody keeps: unmap them (before resuming anyone).
    var unmap: [MemoryMapping] = []
  }

  /// The bytes that may be held at once.
  let capacity: Int
  /// The most bytes of freed mappings kept for reuse.
  let poolLimit: Int
  /// The bytes held by live reservations (spare mappings included).
  private(set) var reserved = 0
  /// The bytes of freed mappings kept for reuse (counted against ``capacity``).
  private(set) var pooledBytes = 0
  /// Freed mappings, oldest first.
  private(set) var pool: [MemoryMapping] = []
  private var waiters: [(id: UInt64, bytes: Int, waiter: Waiter)] = []
  private var nextID: UInt64 = 0

  init(capacity: Int, poolLimit: Int) {
    precondition(capacity >= 0 && poolLimit >= 0, "Invalid budget: capacity and pool limit must not be negative.")
    self.capacity = capacity
    self.poolLimit = poolLimit
  }

  /// The number of waiters.
  var waiting: Int { waiters.count }

  /// Reserves `bytes` when nobody waits and they fit, evicting pooled mappings when they must
  /// make room; otherwise hands out the id the caller waits under.
  mutating func reserve(_ bytes: Int) -> ReserveAction {
    precondition(bytes >= 0, "Invalid reservation: \(bytes) bytes.")
    guard bytes <= capacity else { return .exceedsCapacity }
    if waiters.isEmpty && reserved + bytes <= capacity {
      let (spares, unmap) = take(bytes)
      return .granted(spares: spares, unmap: unmap)
    }
    defer { nextID += 1 }
    return .suspend(id: nextID)
  }

  /// Queues a waiter for `bytes` under `id` (from ``reserve(_:)``), unless its bytes fit now or
  /// its task is already cancelled.
  ///
  /// The caller passes `Task.isCancelled` read under the same lock: a cancellation handler that
  /// ran before this call found no waiter to cancel, and this is where that cancellation is seen.
  mutating func suspend(id: UInt64, bytes: Int, waiter: Waiter, cancelled: Bool) -> SuspendAction {
    if cancelled { return .cancelled }
    if waiters.isEmpty && reserved + bytes <= capacity {
      let (spares, unmap) = take(bytes)
      return .resume(spares: spares, unmap: unmap)
    }
    waiters.append((id, bytes, waiter))
    return .wait
  }

  /// Returns `bytes` of a reservation, among them the bytes of `mappings` it held (a freed
  /// buffer's mapping, or spares it did not use): each is pooled, the oldest pooled mappings
  /// unmapped to keep the pool within its limit (one larger than the limit is unmapped). Then
  /// grants the waiters that now fit, in order, handing them the pooled mappings their bytes need
  /// as spares.
  mutating func release(_ bytes: Int, returning mappings: [MemoryMapping] = []) -> Resumptions {
    let mapped = mappings.reduce(0) { $0 + $1.count }
    precondition(
      bytes >= 0 && bytes <= reserved && mapped <= bytes,
      "Invalid release: \(bytes) bytes (\(mapped) of them mapped), \(reserved) reserved.")
    reserved -= bytes
    var resumptions = Resumptions()
    for mapping in mappings {
      guard mapping.count <= poolLimit else {
        resumptions.unmap.append(mapping)
        continue
      }
      // The pool keeps the most recent mappings: the sizes the run uses now.
      while pooledBytes + mapping.count > poolLimit {
        let oldest = pool.removeFirst()
        pooledBytes -= oldest.count
        resumptions.unmap.append(oldest)
      }
      pool.append(mapping)
      pooledBytes += mapping.count
    }
    grantWaiters(into: &resumptions)
    return resumptions
  }

  /// Removes the waiter `id` from the queue when it still waits; the caller resumes it with
  /// `CancellationError`. Removing it can let the waiters behind it through.
  mutating func cancel(id: UInt64) -> (cancelled: Waiter?, resumptions: Resumptions) {
    var resumptions = Resumptions()
    guard let index = waiters.firstIndex(where: { $0.id == id }) else { return (nil, resumptions) }
    let cancelled = waiters.remove(at: index).waiter
    grantWaiters(into: &resumptions)
    return (cancelled, resumptions)
  }

  /// Takes a pooled mapping of exactly `count` bytes for a buffer whose reservation already
  /// covers them; the pooled bytes it held are free again, which can grant waiters.
  mutating func takeMapping(count: Int) -> (mapping: MemoryMapping?, resumptions: Resumptions) {
    var resumptions = Resumptions()
    guard let index = pool.firstIndex(where: { $0.count == count }) else { return (nil, resumptions) }
    let mapping = pool.remove(at: index)
    pooledBytes -= mapping.count
    grantWaiters(into: &resumptions)
    return (mapping, resumptions)
  }

  /// Empties the pool (when the run ends).
  mutating func drainPool() -> [MemoryMapping] {
    defer {
      pool = []
      pooledBytes = 0
    }
    return pool
  }

  /// Reserves `bytes`, which fit once the pool is evicted far enough. The evicted mappings become
  /// the new reservation's spares as long as their total stays within `bytes` (it will use them,
  /// or give them back, in place of fresh ones); the rest are to be unmapped.
  private mutating func take(_ bytes: Int) -> (spares: [MemoryMapping], unmap: [MemoryMapping]) {
    var spares: [MemoryMapping] = []
    var spareBytes = 0
    var unmap: [MemoryMapping] = []
    while reserved + pooledBytes + bytes > capacity {
      guard !pool.isEmpty else { preconditionFailure("Invalid state: \(bytes) bytes do not fit although checked.") }
      let mapping = pool.removeFirst()
      pooledBytes -= mapping.count
      if spareBytes + mapping.count <= bytes {
        spares.append(mapping)
        spareBytes += mapping.count
      } else {
        unmap.append(mapping)
      }
    }
    reserved += bytes
    checkInvariants()
    return (spares, unmap)
  }

  private mutating func grantWaiters(into resumptions: inout Resumptions) {
    while let first = waiters.first, reserved + first.bytes <= capacity {
      waiters.removeFirst()
      let (spares, unmap) = take(first.bytes)
      resumptions.unmap += unmap
      resumptions.granted.append(Grant(waiter: first.waiter, spares: spares))
    }
    checkInvariants()
  }

  private func checkInvariants() {
    precondition(
      reserved >= 0 && pooledBytes >= 0 && reserved + pooledBytes <= capacity && pooledBytes <= poolLimit,
      "Invalid state: \(reserved) reserved and \(pooledBytes) pooled of \(capacity) (pool limit \(poolLimit)).")
  }
}
