import Synchronization
import Testing

@testable import Pipeline

@Suite("MemoryBudget")
struct MemoryBudgetTests {
  /// Waits (without a deadline that could pass on a slow machine, but with a bound) until `condition` holds.
  static func eventually(_ condition: () -> Bool) async throws {
    for _ in 0..<20_000 {
      if condition() { return }
      try await Task.sleep(for: .milliseconds(1))
    }
    Issue.record("the condition never held")
  }

  /// The names of the tasks granted, in order.
  final class Log: Sendable {
    private let names = Mutex<[String]>([])
    var all: [String] { names.withLock { $0 } }
    func append(_ name: String) { names.withLock { $0.append(name) } }
  }

  /// A task that reserves `bytes`, logs `name` once granted, and holds the bytes until `gate` ends.
  static func holder(
    _ budget: MemoryBudget, _ bytes: Int, _ name: String, log: Log, gate: AsyncStream<Void>
  ) -> Task<Void, any Error> {
    Task {
      let reservation = try await budget.reserve(bytes)
      log.append(name)
      for await _ in gate {}
      _ = consume reservation
    }
  }

  @Test func aReservationReturnsItsBytesWhenItIsDestroyed() async throws {
    let budget = MemoryBudget(capacity: 100)
    do {
      let reservation = try await budget.reserve(40)
      #expect(reservation.bytes == 40)
      #expect(budget.reserved == 40)
    }
    #expect(budget.reserved == 0)
  }

  @Test func aSplitReservationReturnsEachPartOnItsOwn() async throws {
    let budget = MemoryBudget(capacity: 100)
    var whole = try await budget.reserve(70)
    do {
      let part = whole.split(30)
      #expect(part.bytes == 30)
      #expect(whole.bytes == 40)
    }
    #expect(budget.reserved == 40)
    _ = consume whole
    #expect(budget.reserved == 0)
  }

  @Test func aRequestLargerThanTheBudgetFailsAtOnce() async {
    let budget = MemoryBudget(capacity: 100)
    await #expect(throws: PipelineError.self) { _ = try await budget.reserve(101) }
    guard case .none = budget.tryReserve(101) else {
      Issue.record("a request larger than the budget was granted")
      return
    }
    #expect(budget.waiting == 0)
  }

  @Test func aCancelledWaiterResumesWithCancellationErrorAndHoldsNothing() async throws {
    let budget = MemoryBudget(capacity: 100)
    let hold = budget.tryReserve(90)
    #expect(budget.reserved == 90)
    let waiter = Task { _ = try await budget.reserve(20) }
    try await Self.eventually { budget.waiting == 1 }
    waiter.cancel()
    await #expect(throws: CancellationError.self) { try await waiter.value }
    #expect(budget.waiting == 0)
    #expect(budget.reserved == 90)
    _ = consume hold
  }

  @Test func aTaskCancelledBeforeItWouldWaitDoesNotWait() async throws {
    let budget = MemoryBudget(capacity: 100)
    let hold = budget.tryReserve(100)
    #expect(budget.reserved == 100)
    let waiter = Task {
      withUnsafeCurrentTask { $0?.cancel() }
      _ = try await budget.reserve(20)
    }
    await #expect(throws: CancellationError.self) { try await waiter.value }
    #expect(budget.waiting == 0)
    _ = consume hold
  }

  @Test func cancellingTheHeadWaiterLetsTheNextOneIn() async throws {
    let budget = MemoryBudget(capacity: 100)
    let log = Log()
    let (gate, open) = AsyncStream<Void>.makeStream()
    let hold = budget.tryReserve(50)
    let big = Task { _ = try await budget.reserve(80) }
    try await Self.eventually { budget.waiting == 1 }
    let small = Self.holder(budget, 30, "small", log: log, gate: gate)
    try await Self.eventually { budget.waiting == 2 }
    #expect(log.all.isEmpty)  // 30 fit, but "small" queues behind "big"
    big.cancel()
    try await Self.eventually { log.all == ["small"] }
    #expect(budget.reserved == 80)
    open.finish()
    try await small.value
    _ = consume hold
    #expect(budget.reserved == 0)
  }

  @Test func waitersAreGrantedInTheOrderTheyCameAndNoLaterOneOvertakes() async throws {
    let budget = MemoryBudget(capacity: 100)
    let log = Log()
    let gates = (0..<3).map { _ in AsyncStream<Void>.makeStream() }
    let hold = budget.tryReserve(100)
    let a = Self.holder(budget, 60, "a", log: log, gate: gates[0].stream)
    try await Self.eventually { budget.waiting == 1 }
    let b = Self.holder(budget, 50, "b", log: log, gate: gates[1].stream)
    try await Self.eventually { budget.waiting == 2 }
    let c = Self.holder(budget, 10, "c", log: log, gate: gates[2].stream)
    try await Self.eventually { budget.waiting == 3 }
    _ = consume hold
    try await Self.eventually { !log.all.isEmpty }
    // "a" is in; "b" does not fit beside it, and "c", which would, waits behind "b".
    #expect(log.all == ["a"])
    #expect(budget.waiting == 2)
    #expect(budget.reserved == 60)
    gates[0].continuation.finish()
    try await a.value
    try await Self.eventually { log.all.count == 3 }
    #expect(Set(log.all.dropFirst()) == ["b", "c"])
    #expect(budget.reserved == 60)
    for gate in gates { gate.continuation.finish() }
    try await b.value
    try await c.value
    #expect(budget.reserved == 0)
  }

  @Test func aFreedMappingStaysCountedInThePoolAndIsReusedOrUnmappedWhenItsBytesAreNeeded() async throws {
    let budget = MemoryBudget(capacity: 8 << 20)
    let count = (1 << 20) + 12_345
    #expect(PieceBuffer.footprint(count) == 2 << 20)
    var buffer: PieceBuffer? = PieceBuffer(count: count, reservation: try await budget.reserve(2 << 20))
    #expect(buffer?.bytes.count == count)
    #expect(budget.gauge.live == 2 << 20)
    buffer = nil
    #expect(budget.reserved == 0)
    #expect(budget.pooled == 2 << 20)
    #expect(budget.gauge.live == 2 << 20)  // still mapped, and still counted
    buffer = PieceBuffer(count: count, reservation: try await budget.reserve(2 << 20))
    #expect(budget.pooled == 0)  // reused
    #expect(budget.gauge.peak == 2 << 20)
    buffer = nil
    let everything = try await budget.reserve(8 << 20)  // the pooled mapping makes room
    #expect(budget.pooled == 0)
    #expect(budget.gauge.live == 0)
    _ = consume everything
    _ = buffer
  }

  /// Maps buffers of `mebibytes` and frees them, so that the budget pools their mappings (oldest first).
  static func pool(_ budget: MemoryBudget, _ mebibytes: [Int]) async throws {
    var buffers: [PieceBuffer] = []
    for size in mebibytes {
      buffers.append(PieceBuffer(count: size << 20, reservation: try await budget.reserve(buffers: size << 20)))
    }
    buffers.removeAll()
    #expect(budget.pooled == mebibytes.reduce(0, +) << 20)
  }

  @Test func aMappingFreedWhileSomeoneWaitsIsReusedByTheWaiterItLetsIn() async throws {
    let budget = MemoryBudget(capacity: 4 << 20)
    var freed: PieceBuffer? = PieceBuffer(count: 2 << 20, reservation: try await budget.reserve(buffers: 2 << 20))
    freed?.bytes.initializeMemory(as: UInt8.self, repeating: 0x5A)
    let hold = budget.tryReserve(2 << 20)
    let waiter = Task {
      let buffer = PieceBuffer(count: 2 << 20, reservation: try await budget.reserve(buffers: 2 << 20))
      // Fresh pages would read as zeros: these are the freed buffer's.
      return buffer.bytes.allSatisfy { $0 == 0x5A }
    }
    try await Self.eventually { budget.waiting == 1 }
    freed = nil
    #expect(try await waiter.value)
    #expect(budget.gauge.peak <= 4 << 20)
    _ = consume hold
    _ = freed
  }

  @Test func aGrantKeepsTheMappingsEvictedForItAsSparesUpToItsBytes() async throws {
    let budget = MemoryBudget(capacity: 8 << 20)
    try await Self.pool(budget, [2, 3, 3])
    // 5 MiB fit once 2 and 3 MiB of the pool are gone: both stay mapped, as the grant's spares.
    let reservation = try await budget.reserve(buffers: 5 << 20)
    #expect(reservation.spares.map(\.count) == [2 << 20, 3 << 20])
    #expect(budget.pooled == 3 << 20)
    #expect(budget.gauge.live == 8 << 20)
    _ = consume reservation
    // Given back with the reservation: pooled again.
    #expect(budget.pooled == 8 << 20)
    #expect(budget.reserved == 0)
    // A request that needs no room evicts nothing; one of plain bytes unmaps what it evicts.
    let small = try await budget.reserve(buffers: 0)
    #expect(small.spares.isEmpty)
    let plain = try await budget.reserve(4 << 20)
    #expect(plain.spares.isEmpty)
    #expect(budget.gauge.live == 3 << 20)  // 2 and 3 MiB evicted and unmapped
  }

  @Test func aSplitTakesTheSpareOfItsSizeAndTheRestUnmapsSparesThatNoLongerFit() async throws {
    let budget = MemoryBudget(capacity: 8 << 20)
    try await Self.pool(budget, [2, 3, 3])
    var whole = try await budget.reserve(buffers: 5 << 20)
    let three = whole.split(3 << 20)
    #expect(three.spares.map(\.count) == [3 << 20])
    #expect(whole.spares.map(\.count) == [2 << 20])
    // 1 MiB has no spare of its size, and the 2 MiB spare does not fit in the 1 MiB left.
    let one = whole.split(1 << 20)
    #expect(one.spares.isEmpty)
    #expect(whole.spares.isEmpty)
    #expect(budget.gauge.live == 6 << 20)
    let buffer = PieceBuffer(count: 3 << 20, reservation: three)
    #expect(budget.gauge.live == 6 << 20)  // the spare, not fresh pages
    #expect(budget.reserved == 5 << 20)
    _ = buffer
    _ = consume whole
  }

  @Test func aBufferThatCannotUseItsSparesUnmapsThemBeforeItMapsFreshPages() async throws {
    let budget = MemoryBudget(capacity: 8 << 20)
    try await Self.pool(budget, [2, 3, 3])
    let reservation = try await budget.reserve(buffers: 5 << 20)
    #expect(reservation.spares.count == 2)
    let buffer = PieceBuffer(count: 5 << 20, reservation: reservation)
    #expect(buffer.bytes.count == 5 << 20)
    #expect(budget.gauge.live == 8 << 20)  // 5 MiB fresh, 3 pooled
    #expect(budget.gauge.peak <= 8 << 20)
  }

  @Test func thePoolKeepsHalfTheBudgetAndAtLeast72MiBOrAllOfASmallerOne() {
    #expect(MemoryBudget.poolLimit(capacity: 64 << 20) == 64 << 20)
    #expect(MemoryBudget.poolLimit(capacity: 100 << 20) == 72 << 20)
    #expect(MemoryBudget.poolLimit(capacity: 256 << 20) == 128 << 20)
  }

  @Test func aSmallBufferIsCountedByItsBytes() async throws {
    let budget = MemoryBudget(capacity: 1 << 20)
    do {
      let buffer = PieceBuffer(count: 1000, reservation: try await budget.reserve(1000))
      #expect(buffer.bytes.count == 1000)
      #expect(budget.gauge.live == 1000)
      #expect(budget.reserved == 1000)
    }
    #expect(budget.gauge.live == 0)
    #expect(budget.reserved == 0)
    #expect(budget.pooled == 0)
  }
}
