import Testing

@testable import Pipeline

@Suite("MemoryBudgetStateMachine")
struct MemoryBudgetStateMachineTests {
  typealias Machine = MemoryBudgetStateMachine<String>

  static func mapping(_ address: UInt, _ mib: Int) -> MemoryMapping {
    MemoryMapping(address: address, count: mib << 20)
  }

  /// Reserves `bytes` that must be granted with nothing to unmap.
  static func grant(_ machine: inout Machine, _ bytes: Int) {
    #expect(machine.reserve(bytes) == .granted(spares: [], unmap: []))
  }

  /// Queues `name` for `bytes`, which must have to wait; returns its id.
  @discardableResult
  static func wait(_ machine: inout Machine, _ name: String, _ bytes: Int) -> UInt64? {
    guard case .suspend(let id) = machine.reserve(bytes) else {
      Issue.record("\(name) was not told to suspend")
      return nil
    }
    guard case .wait = machine.suspend(id: id, bytes: bytes, waiter: name, cancelled: false) else {
      Issue.record("\(name) was not queued")
      return nil
    }
    return id
  }

  @Test func aRequestThatFitsIsGrantedAndCounted() {
    var machine = Machine(capacity: 100, poolLimit: 0)
    Self.grant(&machine, 60)
    Self.grant(&machine, 40)
    #expect(machine.reserved == 100)
    #expect(machine.reserve(0) == .granted(spares: [], unmap: []))
  }

  @Test func aRequestLargerThanTheCapacityIsRefusedAndOneAsLargeIsNot() {
    var machine = Machine(capacity: 100, poolLimit: 0)
    #expect(machine.reserve(101) == .exceedsCapacity)
    #expect(machine.reserved == 0)
    Self.grant(&machine, 100)
  }

  @Test func aRequestThatDoesNotFitSuspendsUnderADistinctID() {
    var machine = Machine(capacity: 100, poolLimit: 0)
    Self.grant(&machine, 80)
    #expect(machine.reserve(30) == .suspend(id: 0))
    #expect(machine.reserve(30) == .suspend(id: 1))
    #expect(machine.reserved == 80)
  }

  @Test func aWaiterWhoseBytesWereReleasedMeanwhileResumesAtOnce() {
    var machine = Machine(capacity: 100, poolLimit: 0)
    Self.grant(&machine, 80)
    guard case .suspend(let id) = machine.reserve(30) else {
      Issue.record("not suspended")
      return
    }
    #expect(machine.release(80).granted.isEmpty)
    guard case .resume(let spares, let unmap) = machine.suspend(id: id, bytes: 30, waiter: "a", cancelled: false) else {
      Issue.record("not resumed")
      return
    }
    #expect(spares.isEmpty && unmap.isEmpty)
    #expect(machine.reserved == 30)
    #expect(machine.waiting == 0)
  }

  @Test func aTaskCancelledBeforeItWaitsIsNotQueued() {
    var machine = Machine(capacity: 100, poolLimit: 0)
    Self.grant(&machine, 100)
    guard case .suspend(let id) = machine.reserve(10) else {
      Issue.record("not suspended")
      return
    }
    guard case .cancelled = machine.suspend(id: id, bytes: 10, waiter: "a", cancelled: true) else {
      Issue.record("not cancelled")
      return
    }
    #expect(machine.waiting == 0)
    #expect(machine.release(100).granted.isEmpty)
    #expect(machine.reserved == 0)
  }

  @Test func waitersAreGrantedFirstComeFirstServedAndNoneOvertakes() {
    var machine = Machine(capacity: 100, poolLimit: 0)
    Self.grant(&machine, 90)
    Self.wait(&machine, "a", 50)
    // 10 bytes are free, but "a" waits: a small request queues behind it instead of overtaking.
    Self.wait(&machine, "b", 5)
    Self.wait(&machine, "c", 40)
    #expect(machine.release(30).granted.isEmpty)  // 40 free: "a" still does not fit
    #expect(machine.release(10).granted.map(\.waiter) == ["a"])  // 50 free: "a"; then "b" does not fit
    #expect(machine.reserved == 100)
    #expect(machine.release(50).granted.map(\.waiter) == ["b", "c"])
    #expect(machine.waiting == 0)
    #expect(machine.reserved == 95)
  }

  @Test func oneReleaseCanGrantSeveralWaitersAndStopsAtTheFirstThatDoesNotFit() {
    var machine = Machine(capacity: 100, poolLimit: 0)
    Self.grant(&machine, 100)
    Self.wait(&machine, "a", 20)
    Self.wait(&machine, "b", 30)
    Self.wait(&machine, "c", 60)
    Self.wait(&machine, "d", 1)
    #expect(machine.release(100).granted.map(\.waiter) == ["a", "b"])
    #expect(machine.reserved == 50)
    #expect(machine.waiting == 2)
  }

  @Test func cancellingTheHeadWaiterLetsTheOnesBehindItThrough() {
    var machine = Machine(capacity: 100, poolLimit: 0)
    Self.grant(&machine, 70)
    guard let big = Self.wait(&machine, "big", 60) else { return }
    Self.wait(&machine, "small", 20)
    let (cancelled, resumptions) = machine.cancel(id: big)
    #expect(cancelled == "big")
    #expect(resumptions.granted.map(\.waiter) == ["small"])
    #expect(machine.reserved == 90)
    #expect(machine.waiting == 0)
  }

  @Test func cancellingAWaiterThatWasAlreadyGrantedDoesNothing() {
    var machine = Machine(capacity: 100, poolLimit: 0)
    Self.grant(&machine, 100)
    guard let id = Self.wait(&machine, "a", 10) else { return }
    #expect(machine.release(50).granted.map(\.waiter) == ["a"])
    let (cancelled, resumptions) = machine.cancel(id: id)
    #expect(cancelled == nil)
    #expect(resumptions.granted.isEmpty)
    #expect(machine.reserved == 60)
  }

  @Test func aFreedMappingIsPooledAndStaysCountedAndThePoolKeepsTheMostRecentOnes() {
    var machine = Machine(capacity: 10 << 20, poolLimit: 3 << 20)
    Self.grant(&machine, 4 << 20)
    #expect(machine.release(2 << 20, returning: [Self.mapping(0x1000, 2)]).unmap.isEmpty)
    #expect(machine.pool == [Self.mapping(0x1000, 2)])
    #expect(machine.reserved == 2 << 20)
    #expect(machine.pooledBytes == 2 << 20)
    // A second one passes the pool limit: the older one makes room.
    #expect(machine.release(2 << 20, returning: [Self.mapping(0x2000, 2)]).unmap == [Self.mapping(0x1000, 2)])
    #expect(machine.pool == [Self.mapping(0x2000, 2)])
    #expect(machine.pooledBytes == 2 << 20)
    #expect(machine.reserved == 0)
    // One larger than the limit is never pooled.
    Self.grant(&machine, 4 << 20)
    #expect(machine.release(4 << 20, returning: [Self.mapping(0x3000, 4)]).unmap == [Self.mapping(0x3000, 4)])
    #expect(machine.pool == [Self.mapping(0x2000, 2)])
  }

  @Test func aMappingFreedWhileSomeoneWaitsIsPooledAndHandedToTheWaiterItsBytesLetIn() {
    var machine = Machine(capacity: 4 << 20, poolLimit: 4 << 20)
    Self.grant(&machine, 4 << 20)
    Self.wait(&machine, "a", 3 << 20)
    var resumptions = machine.release(2 << 20, returning: [Self.mapping(0x1000, 2)])
    #expect(resumptions.unmap.isEmpty)  // pooled although "a" waits
    #expect(resumptions.granted.isEmpty)  // 2 MiB free, "a" needs 3
    #expect(machine.pooledBytes == 2 << 20)
    // 1 more MiB free: "a" fits once the pooled mapping makes room, and gets it instead of its
    // being unmapped and "a" mapping fresh pages of the same size.
    resumptions = machine.release(1 << 20)
    #expect(resumptions.granted.map(\.waiter) == ["a"])
    #expect(resumptions.granted.first?.spares == [Self.mapping(0x1000, 2)])
    #expect(resumptions.unmap.isEmpty)
    #expect(machine.reserved == 4 << 20)
    #expect(machine.pooledBytes == 0)
  }

  @Test func aMappingFreedWhileTheHeadWaiterStillDoesNotFitStaysPooledAndCounted() {
    var machine = Machine(capacity: 8 << 20, poolLimit: 8 << 20)
    Self.grant(&machine, 8 << 20)
    Self.wait(&machine, "a", 6 << 20)
    #expect(machine.release(2 << 20, returning: [Self.mapping(0x1000, 2)]).granted.isEmpty)
    #expect(machine.pool == [Self.mapping(0x1000, 2)])
    #expect(machine.reserved + machine.pooledBytes == 8 << 20)
    // "a" is let in by reserved bytes alone: the pool gives way at once.
    let resumptions = machine.release(4 << 20)
    #expect(resumptions.granted.map(\.waiter) == ["a"])
    #expect(resumptions.granted.first?.spares == [Self.mapping(0x1000, 2)])
    #expect(machine.reserved == 8 << 20)
  }

  @Test func pooledBytesGiveWayOldestFirstAndBecomeSparesUpToTheRequestsBytes() {
    var machine = Machine(capacity: 8 << 20, poolLimit: 8 << 20)
    Self.grant(&machine, 6 << 20)
    _ = machine.release(2 << 20, returning: [Self.mapping(0x1000, 2)])
    _ = machine.release(2 << 20, returning: [Self.mapping(0x2000, 2)])
    _ = machine.release(2 << 20, returning: [Self.mapping(0x3000, 2)])
    #expect(machine.reserved == 0)
    #expect(machine.pooledBytes == 6 << 20)
    Self.grant(&machine, 2 << 20)  // fits beside the pool
    // 3 MiB need two pooled mappings gone; only one fits in the 3 MiB as a spare.
    #expect(
      machine.reserve(3 << 20) == .granted(spares: [Self.mapping(0x1000, 2)], unmap: [Self.mapping(0x2000, 2)]))
    #expect(machine.pool == [Self.mapping(0x3000, 2)])
    #expect(machine.reserved + machine.pooledBytes == 7 << 20)
  }

  @Test func pooledBytesGiveWayToTheHeadWaiterOnReleaseAsItsSpares() {
    var machine = Machine(capacity: 8 << 20, poolLimit: 8 << 20)
    Self.grant(&machine, 8 << 20)
    _ = machine.release(4 << 20, returning: [Self.mapping(0x1000, 4)])  // pooled: nobody waits yet
    Self.wait(&machine, "a", 6 << 20)  // 4 reserved: 6 more do not fit even without the pool
    #expect(machine.release(1 << 20).granted.isEmpty)  // 3 reserved: still not
    // 2 reserved: "a" fits once the pooled mapping is evicted, and keeps it.
    let resumptions = machine.release(1 << 20)
    #expect(resumptions.granted.map(\.waiter) == ["a"])
    #expect(resumptions.granted.first?.spares == [Self.mapping(0x1000, 4)])
    #expect(resumptions.unmap.isEmpty)
    #expect(machine.reserved == 8 << 20)
    #expect(machine.pooledBytes == 0)
  }

  @Test func sparesReturnedWithTheirReservationArePooled() {
    var machine = Machine(capacity: 8 << 20, poolLimit: 4 << 20)
    Self.grant(&machine, 8 << 20)
    let resumptions = machine.release(
      6 << 20, returning: [Self.mapping(0x1000, 2), Self.mapping(0x2000, 2), Self.mapping(0x3000, 2)])
    #expect(machine.pool == [Self.mapping(0x2000, 2), Self.mapping(0x3000, 2)])
    #expect(resumptions.unmap == [Self.mapping(0x1000, 2)])  // the oldest, past the pool limit
    #expect(machine.reserved == 2 << 20)
  }

  @Test func takingAPooledMappingOfTheSameSizeFreesItsPooledBytes() {
    var machine = Machine(capacity: 8 << 20, poolLimit: 8 << 20)
    Self.grant(&machine, 4 << 20)
    _ = machine.release(2 << 20, returning: [Self.mapping(0x1000, 2)])
    Self.grant(&machine, 2 << 20)  // a new buffer's reservation, beside the pool
    #expect(machine.takeMapping(count: 3 << 20).mapping == nil)
    let (mapping, resumptions) = machine.takeMapping(count: 2 << 20)
    #expect(mapping == Self.mapping(0x1000, 2))
    #expect(resumptions.granted.isEmpty)
    #expect(machine.pooledBytes == 0)
    #expect(machine.reserved == 4 << 20)
  }

  @Test func drainingThePoolHandsBackEveryMapping() {
    var machine = Machine(capacity: 8 << 20, poolLimit: 8 << 20)
    Self.grant(&machine, 4 << 20)
    _ = machine.release(2 << 20, returning: [Self.mapping(0x1000, 2)])
    _ = machine.release(2 << 20, returning: [Self.mapping(0x2000, 2)])
    #expect(machine.drainPool() == [Self.mapping(0x1000, 2), Self.mapping(0x2000, 2)])
    #expect(machine.pooledBytes == 0)
    #expect(machine.pool.isEmpty)
  }

  /// A seeded random walk over every transition, against a plain model of what must hold:
  /// the bytes held never pass the capacity, counting every mapping (in buffers, spares or the
  /// pool); a reservation's mappings never pass its bytes; no mapping is in two places; waiters
  /// come out in the order they went in; and every byte reserved is accounted for.
  @Test(arguments: [1, 2, 3, 4, 5])
  func aRandomWalkKeepsEveryInvariant(seed: UInt64) {
    // SplitMix64 (seeded), so that a failing walk can be replayed.
    var random = SpillTestData.Generator(state: seed)
    let capacity = 64
    var machine = Machine(capacity: capacity, poolLimit: 24)
    // Granted reservations: their bytes and the mappings they hold (spares, or a buffer's).
    var held: [(bytes: Int, mappings: [MemoryMapping])] = []
    var queued: [(id: UInt64, name: String, bytes: Int)] = []
    var grantedOrder: [String] = []
    var queuedOrder: [String] = []
    var nextAddress: UInt = 1
    var unmapped: Set<UInt> = []
    var reused = 0
    func perform(_ resumptions: Machine.Resumptions) {
      unmapped.formUnion(resumptions.unmap.map(\.address))
      for grant in resumptions.granted {
        let index = queued.firstIndex { $0.name == grant.waiter }!
        held.append((queued.remove(at: index).bytes, grant.spares))
        grantedOrder.append(grant.waiter)
      }
    }
    for step in 0..<4000 {
      switch random.next() % 6 {
      case 0, 1:
        let bytes = Int(random.next() % 40)
        switch machine.reserve(bytes) {
        case .granted(let spares, let unmap):
          #expect(queued.isEmpty)
          held.append((bytes, spares))
          unmapped.formUnion(unmap.map(\.address))
        case .suspend(let id):
          let name = "w\(step)"
          switch machine.suspend(id: id, bytes: bytes, waiter: name, cancelled: random.next() % 8 == 0) {
          case .wait:
            queued.append((id, name, bytes))
            queuedOrder.append(name)
          case .resume(let spares, let unmap):
            held.append((bytes, spares))
            unmapped.formUnion(unmap.map(\.address))
          case .cancelled: break
          }
        case .exceedsCapacity: Issue.record("\(bytes) is within the capacity")
        }
      case 2 where !held.isEmpty, 3 where !held.isEmpty:
        // A reservation is destroyed with the mappings it holds.
        let (bytes, mappings) = held.remove(at: Int(random.next() % UInt64(held.count)))
        perform(machine.release(bytes, returning: mappings))
      case 4 where !queued.isEmpty:
        let victim = queued.remove(at: Int(random.next() % UInt64(queued.count)))
        queuedOrder.removeAll { $0 == victim.name }
        let (cancelled, resumptions) = machine.cancel(id: victim.id)
        #expect(cancelled == victim.name)
        perform(resumptions)
      case 5 where !held.isEmpty:
        // A reservation's buffer of all its bytes is allocated as PieceBuffer does: its spare of
        // that size, else (its spares unmapped) a pooled one, else fresh pages.
        let index = Int(random.next() % UInt64(held.count))
        let bytes = held[index].bytes
        guard bytes > 0, held[index].mappings.count != 1 || held[index].mappings[0].count != bytes else { break }
        if let spare = held[index].mappings.first(where: { $0.count == bytes }) {
          held[index].mappings = [spare]
          reused += 1
          break
        }
        unmapped.formUnion(held[index].mappings.map(\.address))
        let (pooled, resumptions) = machine.takeMapping(count: bytes)
        if let pooled {
          #expect(pooled.count == bytes)
          reused += 1
          held[index].mappings = [pooled]
        } else {
          nextAddress += 1
          held[index].mappings = [MemoryMapping(address: nextAddress, count: bytes)]
        }
        perform(resumptions)
      default:
        break
      }
      let live = held.flatMap(\.mappings) + machine.pool
      #expect(machine.reserved == held.reduce(0) { $0 + $1.bytes })
      #expect(held.allSatisfy { $0.mappings.reduce(0) { $0 + $1.count } <= $0.bytes })
      #expect(live.reduce(0) { $0 + $1.count } <= capacity)
      #expect(Set(live.map(\.address)).count == live.count)
      #expect(unmapped.isDisjoint(with: live.map(\.address)))
      #expect(machine.reserved + machine.pooledBytes <= capacity)
      #expect(machine.pooledBytes <= 24)
      #expect(machine.waiting == queued.count)
    }
    #expect(reused > 0)
    #expect(grantedOrder == Array(queuedOrder.filter { name in grantedOrder.contains(name) }))
  }
}
