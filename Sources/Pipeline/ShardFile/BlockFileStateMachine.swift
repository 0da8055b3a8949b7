import SystemPackage

/// The ordering rules of a ``BlockFile``'s writes, hashes and commits, without any I/O: each event
/// returns the actions its caller performs once it has left the lock that guards the state.
///
/// - A write waits for every earlier write still in flight that ends past where it begins. With
///   direct I/O, blocks are whole pages: a block that starts in the page where the one before it
///   ended writes that page again, with more bytes, and must land after it; other blocks are
///   written at once, several together, in any order. Without direct I/O only a block's new bytes
///   are written, and every write waits for all earlier ones, so the file only grows at its end.
/// - Blocks are hashed one at a time, in the order they were submitted, beside the writes.
/// - A block goes back to its pool once it is both written and hashed.
/// - A commit (`fsync`, then its journal line) waits for the writes submitted before it and for the
///   commit before it, not for the writes submitted after it.
/// - A direct write that the file system refuses with `EINVAL` (it took the flag at `open` but not
///   this write) is retried through the page cache, and direct I/O is off for the rest of the file.
/// - The first failure is kept: writes not yet begun are skipped, and commits not yet begun are
///   dropped (their journal line is never written).
struct BlockFileStateMachine<Block: Sendable, Commit: Sendable>: Sendable {
  /// A write to perform: `block`'s bytes `range`, at file offset `offset`.
  struct Write: Sendable {
    var id: Int
    var block: Block
    var range: Range<Int>
    var offset: Int
    /// Whether it is a write of whole pages around the page cache.
    var direct: Bool

    /// The file offset where it ends.
    var end: Int { offset + range.count }
  }

  /// What the caller does after an event, in this order.
  enum Action: Sendable {
    /// Perform `write`, then report ``writeFinished(_:failure:)``.
    case write(Write)
    /// Hash `block`'s bytes `range`, then report ``hashFinished(_:)``.
    case hash(id: Int, block: Block, range: Range<Int>)
    /// `fsync` the file and run `commit`, then report ``syncFinished(failure:)``.
    case sync(Commit)
    /// Give `block` back to its pool.
    case release(Block)
    /// Turn direct I/O off for the file, before the write that follows is retried.
    case disableDirectIO
    /// Wake the caller of ``drain()``: nothing is in flight any more.
    case resumeDrain
  }

  private enum Phase {
    case waiting, writing
    /// Written, or skipped after a failure.
    case done
  }

  private struct Entry {
    var write: Write
    /// The block's bytes that no earlier block had: the ones to hash.
    var new: Range<Int>
    var phase: Phase
    var hashed = false
  }

  private struct PendingCommit {
    var commit: Commit
    /// It waits for the writes with a smaller id.
    var before: Int
  }

  /// Whether blocks are written whole, around the page cache.
  private(set) var direct: Bool
  /// The first failure of a write or a commit.
  private(set) var failure: PipelineError?
  /// Blocks submitted and not yet released, by id.
  private var entries: [Int: Entry] = [:]
  private var submitted = 0
  private var nextHash = 0
  private var hashing = false
  private var commits: [PendingCommit] = []
  private var syncing = false
  private var drainWaiting = false

  /// The state of a file with nothing in flight, written with direct I/O or not.
  init(direct: Bool) {
    self.direct = direct
  }

  /// A filled block that goes at file offset `start` (page-aligned): its first `padded` bytes are
  /// whole pages, and its bytes `new` were in no earlier block (the ones before them repeat the
  /// last page of the block before it).
  mutating func submit(_ block: Block, at start: Int, padded: Int, new: Range<Int>) -> [Action] {
    let id = submitted
    submitted += 1
    let write =
      direct
      ? Write(id: id, block: block, range: 0..<padded, offset: start, direct: true)
      : Write(id: id, block: block, range: new, offset: start + new.lowerBound, direct: false)
    entries[id] = Entry(write: write, new: new, phase: failure == nil ? .waiting : .done)
    return next()
  }

  /// Write `id` has returned, with `failure` when it failed.
  mutating func writeFinished(_ id: Int, failure error: PipelineError?) -> [Action] {
    guard var entry = entries[id], entry.phase == .writing else {
      preconditionFailure("Invalid state. Write \(id) finished, but it was not in flight")
    }
    if let error, error.errno == Errno.invalidArgument.rawValue, entry.write.direct, failure == nil {
      var actions: [Action] = []
      if direct {
        direct = false
        actions.append(.disableDirectIO)
      }
      entry.write.direct = false
      entries[id] = entry
      return actions + [.write(entry.write)]
    }
    entries[id]?.phase = .done
    if let error { fail(error) }
    return next()
  }

  /// The hash of block `id` has been taken.
  mutating func hashFinished(_ id: Int) -> [Action] {
    guard hashing, entries[id]?.hashed == false else {
      preconditionFailure("Invalid state. Hash \(id) finished, but it was not in flight")
    }
    hashing = false
    entries[id]?.hashed = true
    return next()
  }

  /// A commit of every block submitted so far; dropped after a failure.
  mutating func commit(_ commit: Commit) -> [Action] {
    guard failure == nil else { return [] }
    commits.append(PendingCommit(commit: commit, before: submitted))
    return next()
  }

  /// The last ``Action/sync(_:)`` has returned, with `failure` when the `fsync` or the commit failed.
  mutating func syncFinished(failure error: PipelineError?) -> [Action] {
    precondition(syncing, "Invalid state. A sync finished, but none was in flight")
    syncing = false
    if let error { fail(error) }
    return next()
  }

  /// Whether nothing is in flight. When something is, the event that ends the last of it returns
  /// ``Action/resumeDrain``.
  mutating func drain() -> Bool {
    if isIdle { return true }
    precondition(!drainWaiting, "Invalid state. Two callers drain one file")
    drainWaiting = true
    return false
  }

  private var isIdle: Bool { entries.isEmpty && commits.isEmpty && !syncing }

  private mutating func fail(_ error: PipelineError) {
    if failure == nil { failure = error }
    commits.removeAll()
    for (id, entry) in entries where entry.phase == .waiting {
      entries[id]?.phase = .done
    }
  }

  /// Starts what may start now, and releases what is done.
  private mutating func next() -> [Action] {
    var actions: [Action] = []
    for id in entries.keys.sorted() where entries[id]?.phase == .waiting {
      let write = entries[id]!.write
      let waitsForEarlier = entries.values.contains { earlier in
        earlier.write.id < id && earlier.phase != .done && (!write.direct || earlier.write.end > write.offset)
      }
      if !waitsForEarlier {
        entries[id]?.phase = .writing
        actions.append(.write(write))
      }
    }
    if !hashing, let entry = entries[nextHash] {
      hashing = true
      nextHash += 1
      actions.append(.hash(id: entry.write.id, block: entry.write.block, range: entry.new))
    }
    for id in entries.keys.sorted() {
      guard let entry = entries[id], entry.phase == .done, entry.hashed else { continue }
      entries[id] = nil
      actions.append(.release(entry.write.block))
    }
    if !syncing, let first = commits.first,
      !entries.values.contains(where: { $0.write.id < first.before && $0.phase != .done })
    {
      syncing = true
      commits.removeFirst()
      actions.append(.sync(first.commit))
    }
    if drainWaiting && isIdle {
      drainWaiting = false
      actions.append(.resumeDrain)
    }
    return actions
  }
}
