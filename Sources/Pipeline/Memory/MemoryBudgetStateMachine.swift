/// The pure state of a ``MemoryBudget``: what is reserved, which freed mappings are pooled, and
/// who waits. Every mutating method returns what the caller must do once it has left the lock
/// (resume waiters, unmap mappings); nothing here blocks, suspends or touches memory.
///
/// Invariants, checked after every transition:
/// - `reserved + pooledBytes <= capacity`: a pooled mapping stays counted until it is unmapped
///   or reused, so the bytes the process holds never pass the capacity;
/// - `pooledBytes <= poolLimit`;
/// - waiters are granted first come, first served: a waiter is granted only when every waiter
///   before it has been, and a new request suspends while anyone waits;
/// - pooled bytes never keep a waiter waiting: they are evicted (oldest first) as soon as the
///   head waiter, or a new request, needs them.
struct MemoryBudgetStateMachine<Waiter: Sendable>: Sendable {
  /// What ``reserve(_:)`` tells the caller to do.
  enum ReserveAction: Equatable {
    /// The bytes are reserved; unmap these pooled mappings first (they made room).
    case granted(unmap: [MemoryMapping])
    /// The bytes do not fit now, or others wait: suspend and call ``suspend(id:bytes:waiter:cancelled:)``.
    case suspend(id: UInt64)
    /// The request is larger than the whole capacity and can never be granted.
    case exceedsCapacity
  }

  /// What ``suspend(id:bytes:waiter:cancelled:)`` tells the caller to do.
  enum SuspendAction {
    /// The bytes fit after all (released while the caller was on its way): resume at once.
    case resume(unmap: [MemoryMapping])
    /// The task was cancelled before it could wait: resume it with `CancellationError`.
    case cancelled
    /// The waiter is queued; a later release or cancellation resumes it.
    case wait
  }

  /// Work to do outside the lock after a release, a cancellation or a pool change.
  struct Resumptions {
    /// Waiters whose bytes are now reserved: resume them (normally).
    var granted: [Waiter] = []
    /// Pooled mappings evicted to make room: unmap them.
    var unmap: [MemoryMapping] = []
  }

  /// The bytes that may be held at once.
  let capacity: Int
  /// The most bytes of freed mappings kept for reuse.
  let poolLimit: Int
  /// The bytes held by live reservations.
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
      return .granted(unmap: take(bytes))
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
      return .resume(unmap: take(bytes))
    }
    waiters.append((id, bytes, waiter))
    return .wait
  }

  /// Returns `bytes` of a reservation; grants the waiters that now fit, in order.
  mutating func release(_ bytes: Int) -> Resumptions {
    precondition(bytes >= 0 && bytes <= reserved, "Invalid release: \(bytes) bytes, \(reserved) reserved.")
    reserved -= bytes
    var resumptions = Resumptions()
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

  /// Takes back a freed mapping together with the reservation of its bytes: it is pooled when
  /// the pool has room and nobody waits, and otherwise unmapped.
  mutating func returnMapping(_ mapping: MemoryMapping) -> Resumptions {
    precondition(
      mapping.count <= reserved, "Invalid mapping return: \(mapping.count) bytes, \(reserved) reserved.")
    reserved -= mapping.count
    var resumptions = Resumptions()
    if waiters.isEmpty && pooledBytes + mapping.count <= poolLimit {
      pool.append(mapping)
      pooledBytes += mapping.count
    } else {
      resumptions.unmap.append(mapping)
    }
    grantWaiters(into: &resumptions)
    return resumptions
  }

  /// Empties the pool (when the run ends).
  mutating func drainPool() -> [MemoryMapping] {
    defer {
      pool = []
      pooledBytes = 0
    }
    return pool
  }

  /// Reserves `bytes`, which fit once the pool is evicted far enough; returns the evicted mappings.
  private mutating func take(_ bytes: Int) -> [MemoryMapping] {
    var evicted: [MemoryMapping] = []
    while reserved + pooledBytes + bytes > capacity {
      guard !pool.isEmpty else { preconditionFailure("Invalid state: \(bytes) bytes do not fit although checked.") }
      let mapping = pool.removeFirst()
      pooledBytes -= mapping.count
      evicted.append(mapping)
    }
    reserved += bytes
    checkInvariants()
    return evicted
  }

  private mutating func grantWaiters(into resumptions: inout Resumptions) {
    while let first = waiters.first, reserved + first.bytes <= capacity {
      waiters.removeFirst()
      resumptions.unmap += take(first.bytes)
      resumptions.granted.append(first.waiter)
    }
    checkInvariants()
  }

  private func checkInvariants() {
    precondition(
      reserved >= 0 && pooledBytes >= 0 && reserved + pooledBytes <= capacity && pooledBytes <= poolLimit,
      "Invalid state: \(reserved) reserved and \(pooledBytes) pooled of \(capacity) (pool limit \(poolLimit)).")
  }
}
