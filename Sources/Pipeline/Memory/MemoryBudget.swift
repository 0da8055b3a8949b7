import CPlatform
import Foundation
import Synchronization

/// The one memory budget of a conversion: every buffer that holds tensor bytes is allocated with
/// a ``MemoryReservation`` from it, and the reservation is returned when the buffer is freed.
///
/// ``reserve(_:)`` returns at once when nobody waits and the bytes fit; otherwise it suspends,
/// first come first served, until releases make room, so a slow writer slows the readers
/// instead of growing memory. A task cancelled while it waits resumes at once with
/// `CancellationError` and holds nothing (a task cancelled before it calls is still granted when
/// its bytes fit at once: it sees the cancellation at its next check). ``MemoryReservation``
/// returns its bytes synchronously (from a `deinit`), and never suspends.
///
/// Freed mappings of large buffers (see ``PieceBuffer``) are kept in a pool of at most
/// ``poolLimit(capacity:)`` bytes (the most recent ones) for the next buffer of the same size,
/// which spares the kernel faulting in and zeroing fresh pages for every chunk. A pooled mapping
/// stays counted against ``capacity`` until it is reused or unmapped, and the pool gives way
/// (oldest first) whenever a reservation needs its bytes, so it never makes anyone wait. A
/// mapping freed while others wait is pooled too. The mappings a grant evicts go to the granted
/// reservation as its *spares* (up to its bytes, and counted in them) instead of being unmapped,
/// so that its buffers reuse them: a buffer takes a spare of its size, else a pooled one, else
/// fresh pages (see ``MemoryReservation``). Only reservations made with ``reserve(buffers:)``
/// keep spares (their bytes are for buffers; the statistic pass, whose reservation also holds a
/// statistic, unmaps what is left once its buffers are split off); the others unmap them at once.
///
/// No deadlock, as long as these hold (they do in ``Converter``):
/// - whoever waits in ``reserve(_:)`` holds nothing that only the writer side can free: the
///   writer side never reserves (its write blocks, read-back buffer and spill scratch are
///   reserved once, before the first piece moves), so every piece in flight is eventually
///   written, staged (staging is bounded by ``StagingAccount``) or spilled, and its bytes come
///   back;
/// - the bytes left when staging is full cover at least one request of the largest size, so the
///   head waiter is always granted in the end;
/// - a job that holds some bytes while it waits for more (a tensor's gathered parts, then its
///   chunks) is the only one that does: tensors run one after another. Running two tensors at
///   once would need their whole-tensor and chunk bytes in one request.
///
/// Spares change none of this: they are counted in their reservation's bytes, and a grant hands
/// them over without waiting for anything.
final class MemoryBudget: Sendable {
  typealias Waiter = UnsafeContinuation<[MemoryMapping], any Error>

  /// The most bytes of freed mappings kept for reuse under a budget of `capacity`: half of it, and
  /// at least 72 MiB (all of it below that). What the readers hold swings by several chunks as
  /// tensors change and the writer drains, and the freed mappings that the next chunks reuse must
  /// survive the swing: converting 4.2 GB with `--memory 256MiB` mapped about 0.9 GB of fresh
  /// pages with a pool of 72 MiB, 0.45 GB with one of 128 MiB or more (issue 13). The pool keeps
  /// the most recent mappings, so sizes no longer in use age out.
  static func poolLimit(capacity: Int) -> Int {
    min(capacity, max(72 << 20, capacity / 2))
  }

  /// The bytes that may be held at once.
  let capacity: Int
  /// What buffers hold, measured by the buffers themselves.
  let gauge = MemoryGauge()
  private let state: Mutex<MemoryBudgetStateMachine<Waiter>>

  /// Fixes glibc's mmap threshold at its default of 128 KiB, once per process. Left dynamic, glibc
  /// raises it (up to 32 MiB) each time a mapped allocation is freed, after which freed blocks of
  /// that size (the spill codec's scratch, sub-MiB pieces) stay resident in per-thread arenas: at
  /// `--memory 64MiB` that kept the process 60 MiB over its buffers.
  private static let fixedMallocThreshold: Void = {
    safeshard_fix_mmap_threshold(128 << 10)
  }()

  /// Creates a budget of `capacity` bytes that pools at most ``poolLimit(capacity:)`` bytes of
  /// freed mappings.
  init(capacity: Int) {
    Self.fixedMallocThreshold
    self.capacity = capacity
    state = Mutex(MemoryBudgetStateMachine(capacity: capacity, poolLimit: Self.poolLimit(capacity: capacity)))
  }

  deinit {
    unmap(state.withLock { $0.drainPool() })
  }

  /// Reserves `bytes`, suspending until they fit and every earlier request has been granted.
  ///
  /// - Returns: the reservation, which returns the bytes when it is destroyed.
  /// - Throws: ``PipelineError`` (`budget`) at once when `bytes` is more than the whole budget;
  ///   `CancellationError` when the task is cancelled while it waits (it then holds nothing).
  func reserve(_ bytes: Int) async throws -> MemoryReservation {
    let spares = try await reserveMappings(bytes)
    unmap(spares)
    return MemoryReservation(bytes: bytes, budget: self)
  }

  /// Reserves `bytes` that only ``PieceBuffer``s will hold (the whole reservation, or parts split
  /// off it): like ``reserve(_:)``, but the reservation keeps the pooled mappings evicted to make
  /// room for it as its spares, for its buffers to reuse. A holder that allocates anything else
  /// under it must call ``MemoryReservation/unmapSpares()`` first.
  ///
  /// - Throws: as ``reserve(_:)``.
  func reserve(buffers bytes: Int) async throws -> MemoryReservation {
    MemoryReservation(bytes: bytes, spares: try await reserveMappings(bytes), budget: self)
  }

  /// Reserves `bytes` when they fit at once and nobody waits; never suspends.
  ///
  /// - Returns: the reservation, or `nil` when the bytes do not fit now.
  func tryReserve(_ bytes: Int) -> MemoryReservation? {
    guard case .granted(let spares, let evicted) = state.withLock({ $0.reserve(bytes) }) else { return nil }
    unmap(evicted + spares)
    return MemoryReservation(bytes: bytes, budget: self)
  }

  /// Reserves `bytes` as ``reserve(_:)`` describes, and returns the spares of the grant.
  private func reserveMappings(_ bytes: Int) async throws -> [MemoryMapping] {
    let id: UInt64
    switch state.withLock({ $0.reserve(bytes) }) {
    case .granted(let spares, let evicted):
      unmap(evicted)
      return spares
    case .exceedsCapacity:
      throw PipelineError(
        .budget, "one step needs \(bytes) bytes, more than the whole memory budget of \(capacity); raise --memory")
    case .suspend(let waiterID):
      id = waiterID
    }
    return try await withTaskCancellationHandler {
      try await withUnsafeThrowingContinuation { (continuation: Waiter) in
        // `Task.isCancelled` is read under the lock: a cancellation handler that ran before this
        // found nothing to cancel, and its flag is seen here.
        let action = state.withLock {
          $0.suspend(id: id, bytes: bytes, waiter: continuation, cancelled: Task.isCancelled)
        }
        switch action {
        case .resume(let spares, let evicted):
          unmap(evicted)
          continuation.resume(returning: spares)
        case .cancelled:
          continuation.resume(throwing: CancellationError())
        case .wait:
          break
        }
      }
    } onCancel: {
      let (cancelled, resumptions) = state.withLock { $0.cancel(id: id) }
      cancelled?.resume(throwing: CancellationError())
      perform(resumptions)
    }
  }

  /// The bytes held by reservations now (pooled mappings not included).
  var reserved: Int { state.withLock { $0.reserved } }

  /// The number of tasks waiting in ``reserve(_:)`` now.
  var waiting: Int { state.withLock { $0.waiting } }

  /// The bytes of freed mappings kept for reuse now.
  var pooled: Int { state.withLock { $0.pooledBytes } }

  /// Returns `bytes`, among them those of `mappings` (a freed buffer's mapping, or unused
  /// spares), which are pooled, or unmapped when the pool is full; resumes the waiters that now
  /// fit, in order. Called by ``MemoryReservation``.
  func release(_ bytes: Int, returning mappings: [MemoryMapping] = []) {
    perform(state.withLock { $0.release(bytes, returning: mappings) })
  }

  /// A mapping of `count` bytes for a buffer whose reservation covers them: a pooled one of that
  /// size, or a fresh `mmap` (with transparent huge pages asked for); `nil` when the kernel refuses.
  func map(count: Int) -> MemoryMapping? {
    let (pooled, resumptions) = state.withLock { $0.takeMapping(count: count) }
    perform(resumptions)
    if let pooled { return pooled }
    guard let address = mmap(nil, count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
      address != MAP_FAILED
    else { return nil }
    safeshard_advise_huge_pages(address, count)
    gauge.allocated(count)
    return MemoryMapping(address: UInt(bitPattern: address), count: count)
  }

  /// Unmaps evicted mappings, then resumes the granted waiters with their spares: outside the
  /// lock, and in that order, so that the memory is gone before anyone allocates in its place.
  private func perform(_ resumptions: MemoryBudgetStateMachine<Waiter>.Resumptions) {
    unmap(resumptions.unmap)
    for grant in resumptions.granted { grant.waiter.resume(returning: grant.spares) }
  }

  /// Unmaps mappings that nobody keeps (evicted beyond a grant's spares, or spares that a
  /// reservation cannot use); the bytes they were counted in stay where they are.
  func unmap(_ mappings: [MemoryMapping]) {
    for mapping in mappings {
      munmap(UnsafeMutableRawPointer(bitPattern: mapping.address), mapping.count)
      gauge.freed(mapping.count)
    }
  }
}
