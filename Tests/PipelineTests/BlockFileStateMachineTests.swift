import SystemPackage
import Testing

@testable import Pipeline

/// The ordering rules of a block file, event by event, with no disk: blocks and commits are named
/// by strings, and each event's actions are compared as short sentences.
@Suite("BlockFileStateMachine")
struct BlockFileStateMachineTests {
  typealias Machine = BlockFileStateMachine<String, String>

  static let refused = PipelineError.systemCall("pwrite", .invalidArgument, path: "out.partial")
  static let diskFull = PipelineError.systemCall("pwrite", .noSpace, path: "out.partial")

  @Test(
    "a direct block that starts in the page where the one before it ended waits for that write; one on a new page does not"
  )
  func pageOverlap() {
    var machine = Machine(direct: true)
    // A: 5,000 bytes from offset 0, written as two whole pages.
    #expect(
      say(machine.submit("A", at: 0, padded: 8192, new: 0..<5000)) == [
        "write A 0..<8192 at 0 direct", "hash A 0..<5000",
      ])
    // B starts in A's last page: its first 904 bytes repeat A's, and its write rewrites that page.
    #expect(say(machine.submit("B", at: 4096, padded: 8192, new: 904..<8192)) == [])
    // C starts where B ends, on a page of its own.
    #expect(say(machine.submit("C", at: 12288, padded: 4096, new: 0..<100)) == ["write C 0..<4096 at 12288 direct"])
    #expect(say(machine.writeFinished(0, failure: nil)) == ["write B 0..<8192 at 4096 direct"])
    #expect(say(machine.hashFinished(0)) == ["hash B 904..<8192", "release A"])
    #expect(say(machine.writeFinished(2, failure: nil)) == [])
    #expect(say(machine.writeFinished(1, failure: nil)) == [])
    #expect(say(machine.hashFinished(1)) == ["hash C 0..<100", "release B"])
    #expect(say(machine.hashFinished(2)) == ["release C"])
    let idle = machine.drain()
    #expect(idle)
  }

  @Test("without direct I/O only new bytes are written, one write at a time, in order")
  func cachedWritesAppend() {
    var machine = Machine(direct: false)
    #expect(
      say(machine.submit("A", at: 0, padded: 8192, new: 0..<5000)) == ["write A 0..<5000 at 0", "hash A 0..<5000"])
    #expect(say(machine.submit("B", at: 4096, padded: 8192, new: 904..<8192)) == [])
    #expect(say(machine.submit("C", at: 12288, padded: 4096, new: 0..<100)) == [])
    #expect(say(machine.writeFinished(0, failure: nil)) == ["write B 904..<8192 at 5000"])
    #expect(say(machine.writeFinished(1, failure: nil)) == ["write C 0..<100 at 12288"])
  }

  @Test("a commit waits for the writes submitted before it, not those after it, and for the commit before it")
  func commitOrdering() {
    var machine = Machine(direct: true)
    #expect(say(machine.submit("A", at: 0, padded: 4096, new: 0..<4096)).count == 2)
    #expect(say(machine.submit("B", at: 4096, padded: 4096, new: 0..<4096)) == ["write B 0..<4096 at 4096 direct"])
    #expect(say(machine.commit("c1")) == [])
    #expect(say(machine.submit("C", at: 8192, padded: 4096, new: 0..<4096)) == ["write C 0..<4096 at 8192 direct"])
    #expect(say(machine.commit("c2")) == [])
    #expect(say(machine.writeFinished(0, failure: nil)) == [])
    #expect(say(machine.writeFinished(1, failure: nil)) == ["sync c1"])
    // C is written, but c1's `fsync` and journal line come first.
    #expect(say(machine.writeFinished(2, failure: nil)) == [])
    #expect(say(machine.syncFinished(failure: nil)) == ["sync c2"])
    let busy = !machine.drain()
    #expect(busy)
    #expect(say(machine.syncFinished(failure: nil)) == [])
    #expect(say(machine.hashFinished(0)) == ["hash B 0..<4096", "release A"])
    #expect(say(machine.hashFinished(1)) == ["hash C 0..<4096", "release B"])
    #expect(say(machine.hashFinished(2)) == ["release C", "drained"])
  }

  @Test(
    "a direct write refused with EINVAL mid-file is retried through the page cache, and later blocks are written as without direct I/O"
  )
  func fallbackMidFile() {
    var machine = Machine(direct: true)
    #expect(say(machine.submit("A", at: 0, padded: 4096, new: 0..<4096)).count == 2)
    #expect(say(machine.submit("B", at: 4096, padded: 8192, new: 0..<5000)) == ["write B 0..<8192 at 4096 direct"])
    #expect(say(machine.submit("C", at: 8192, padded: 8192, new: 904..<8192)) == [])
    #expect(say(machine.writeFinished(0, failure: Self.refused)) == ["direct I/O off", "write A 0..<4096 at 0"])
    #expect(!machine.direct)
    // B was handed out as a direct write too: it is retried, and direct I/O is already off.
    #expect(say(machine.writeFinished(1, failure: Self.refused)) == ["write B 0..<8192 at 4096"])
    // D is planned without direct I/O: its new bytes only, after every write before it.
    #expect(say(machine.submit("D", at: 16384, padded: 4096, new: 0..<10)) == [])
    #expect(say(machine.writeFinished(0, failure: nil)) == [])
    #expect(say(machine.writeFinished(1, failure: nil)) == ["write C 0..<8192 at 8192 direct"])
    #expect(say(machine.writeFinished(2, failure: nil)) == ["write D 0..<10 at 16384"])
    #expect(machine.failure == nil)
  }

  @Test("a refused write without direct I/O is a failure, not a retry")
  func refusedCachedWriteFails() {
    var machine = Machine(direct: false)
    #expect(say(machine.submit("A", at: 0, padded: 4096, new: 0..<100)).count == 2)
    #expect(say(machine.writeFinished(0, failure: Self.refused)) == [])
    #expect(machine.failure?.message == Self.refused.message)
  }

  @Test(
    "after a failed write, writes not begun are skipped, commits are dropped, blocks still go back, and the first failure is kept"
  )
  func failedWrite() {
    var machine = Machine(direct: true)
    #expect(say(machine.submit("A", at: 0, padded: 8192, new: 0..<5000)).count == 2)
    #expect(say(machine.submit("B", at: 4096, padded: 8192, new: 904..<8192)) == [])
    #expect(say(machine.commit("c1")) == [])
    #expect(say(machine.writeFinished(0, failure: Self.diskFull)) == [])
    #expect(machine.failure?.errno == Errno.noSpace.rawValue)
    #expect(say(machine.commit("c2")) == [])
    #expect(say(machine.submit("C", at: 12288, padded: 4096, new: 0..<4096)) == [])
    #expect(say(machine.hashFinished(0)) == ["hash B 904..<8192", "release A"])
    #expect(say(machine.hashFinished(1)) == ["hash C 0..<4096", "release B"])
    #expect(say(machine.hashFinished(2)) == ["release C"])
    let idle = machine.drain()
    #expect(idle)
    #expect(machine.failure?.errno == Errno.noSpace.rawValue)
  }

  @Test("a failed commit is kept, and the commits queued behind it are dropped")
  func failedCommit() {
    var machine = Machine(direct: true)
    #expect(say(machine.submit("A", at: 0, padded: 4096, new: 0..<4096)).count == 2)
    #expect(say(machine.commit("c1")) == [])
    #expect(say(machine.commit("c2")) == [])
    #expect(say(machine.writeFinished(0, failure: nil)) == ["sync c1"])
    let journalGone = PipelineError(.io, "the journal is gone")
    #expect(say(machine.syncFinished(failure: journalGone)) == [])
    #expect(machine.failure?.message == "the journal is gone")
    #expect(say(machine.submit("B", at: 4096, padded: 4096, new: 0..<4096)) == [])
    #expect(say(machine.hashFinished(0)) == ["hash B 0..<4096", "release A"])
  }

  @Test("drain waits for every write, hash and commit; the event that ends the last one wakes it")
  func drain() {
    var machine = Machine(direct: true)
    let idleAtFirst = machine.drain()
    #expect(idleAtFirst)
    #expect(say(machine.submit("A", at: 0, padded: 4096, new: 0..<4096)).count == 2)
    #expect(say(machine.commit("c1")) == [])
    let busy = !machine.drain()
    #expect(busy)
    #expect(say(machine.writeFinished(0, failure: nil)) == ["sync c1"])
    #expect(say(machine.hashFinished(0)) == ["release A"])
    #expect(say(machine.syncFinished(failure: nil)) == ["drained"])
  }

  /// Each action as a short sentence.
  private func say(_ actions: [Machine.Action]) -> [String] {
    actions.map { action in
      switch action {
      case .write(let write):
        "write \(write.block) \(write.range) at \(write.offset)" + (write.direct ? " direct" : "")
      case .hash(_, let block, let range): "hash \(block) \(range)"
      case .sync(let commit): "sync \(commit)"
      case .release(let block): "release \(block)"
      case .disableDirectIO: "direct I/O off"
      case .resumeDrain: "drained"
      }
    }
  }
}
